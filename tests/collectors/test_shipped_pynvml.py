"""fleetscope.shipped_pynvml: the pynvml shipped to GPU hosts is nvidia-ml-py's, with the same names and error
classes, without importing ctypes.util or string (and what those pull in) at import time, and without the
functions and classes no shipped module uses."""

import ast
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import collectors
from collectors import gpus
from fleetscope.shipped_pynvml import REPLACEMENTS, lighten, prune, used_names
from fleetscope.stage import ADMIN_MODULE, PACKAGE, SHIPPED_PYNVML, bundle_of, collector_sources, pruned, split_parts

INSTALLED = Path(importlib.util.find_spec("pynvml").origin).read_text(encoding="utf-8")

# Imports `module` from sys.argv[1] and prints what a GPU host would see of it.
PROBE = """
import importlib, json, sys
before = set(sys.modules)
sys.path.insert(0, sys.argv[1])
m = importlib.import_module(sys.argv[2])
errors = sorted(n for n in dir(m) if n.startswith("NVMLError_") and issubclass(getattr(m, n), m.NVMLError))
print(json.dumps({"imported": sorted(set(sys.modules) - before), "names": sorted(dir(m)), "errors": errors,
                  "error_of_code": {str(code): cls.__name__ for code, cls in m.NVMLError._valClassMapping.items()},
                  "libc": m.find_library("c") if hasattr(m, "find_library") else None,  # pruned: unused
                  "capwords": [m.string.capwords("NVML_ERROR_GPU_IS_LOST", "_"), m.string.capwords(" a  bC\\td ")]}))
"""


def probe(tmp_path, name, source):
    (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    out = subprocess.run([sys.executable, "-I", "-c", PROBE, str(tmp_path), name], capture_output=True,
                         text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_every_replacement_applies_to_the_installed_nvidia_ml_py():
    # Fails after an nvidia-ml-py whose import lines differ: bring REPLACEMENTS up to date (the collector
    # would still work, only slower).
    source, missing = lighten(INSTALLED)
    assert missing == []
    for line, replacement in REPLACEMENTS.items():
        assert line not in source.splitlines(keepends=True) and replacement in source


def test_the_lightened_pynvml_has_the_same_names_and_imports_less(tmp_path):
    original = probe(tmp_path, "pynvml_original", INSTALLED)
    lightened = probe(tmp_path, "pynvml_lightened", lighten(INSTALLED)[0])
    assert lightened["names"] == original["names"]
    assert lightened["errors"] == original["errors"] and len(lightened["errors"]) > 20
    assert lightened["error_of_code"] == original["error_of_code"]
    assert lightened["libc"] == original["libc"]
    assert lightened["capwords"] == original["capwords"] == ["Nvml_Error_Gpu_Is_Lost", "A Bc D"]
    # What the replacements are for. Modules the interpreter's startup already imported are not counted
    # (on the lent H200, shutil was imported before the probe ran), so the two lines' own modules are
    # asserted, the rest as "fewer, and none of these".
    assert {"ctypes.util", "string"} <= set(original["imported"])
    assert set(lightened["imported"]) - {"pynvml_lightened"} < set(original["imported"]) - {"pynvml_original"}
    heavy = {"ctypes.util", "shutil", "subprocess", "string"}  # and re, where startup has not imported it
    assert not heavy & set(lightened["imported"]), sorted(heavy & set(lightened["imported"]))


# Imports `module` from sys.argv[1] in an interpreter started without site (-S), which imports neither
# functools nor threading itself (json, for the probe above, imports functools through re), and prints
# the modules the import added, then what the stand-ins do.
BARE_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
before = set(sys.modules)
m = __import__(sys.argv[2])
print(" ".join(sorted(set(sys.modules) - before)))
lock = m.threading.Lock()
print(type(lock).__name__, lock.acquire(False), lock.acquire(False))

def original(a, b=2):
    "the docstring"
    return a + b

original.extra = 1
wrapped = m.wraps(original)(lambda *args, **kwargs: original(*args, **kwargs))
print(wrapped.__name__, wrapped.__qualname__, wrapped.__doc__, wrapped.__module__, wrapped.extra,
      wrapped.__wrapped__ is original, wrapped(1))
"""


def bare_probe(tmp_path, name, source):
    (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", BARE_PROBE, str(tmp_path), name], capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout.splitlines()


def test_the_lightened_pynvml_imports_neither_functools_nor_threading_and_its_stand_ins_behave(tmp_path):
    """Nothing else a collection runs imports them (the collector's threads are _thread's): 7-8 ms of a GPU
    host's CPU on every collection, for wraps and one Lock."""
    original = bare_probe(tmp_path, "pynvml_original", INSTALLED)
    lightened = bare_probe(tmp_path, "pynvml_lightened", lighten(INSTALLED)[0])
    assert {"functools", "threading", "collections"} <= set(original[0].split())
    assert not {"functools", "threading", "collections"} & set(lightened[0].split()), lightened[0]
    assert lightened[1] == original[1] == "lock True False"
    assert lightened[2] == original[2] == "original original the docstring __main__ 1 True 3"


def test_a_line_not_found_is_left_alone_and_named():
    source = "from ctypes import *\nimport string\nimport sys\n"
    lightened, missing = lighten(source)
    assert missing == ["from ctypes.util import find_library", "from functools import wraps", "import threading"]
    assert lightened.startswith("from ctypes import *\nclass string:") and lightened.endswith("import sys\n")
    assert lighten("")[0] == ""


def test_the_collector_ships_the_lightened_pynvml():
    assert collector_sources()[f"{PACKAGE}.pynvml_shipped"][1] == lighten(INSTALLED)[0]


# -- pruning ---------------------------------------------------------------------------------------------

PRUNED = pruned(collector_sources())[SHIPPED_PYNVML][1]


def _defined(source):
    return {n.name for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def test_the_pruned_pynvml_has_every_name_the_collector_and_the_admin_module_use(tmp_path):
    users = [source for name, (_, source) in collector_sources().items() if name != SHIPPED_PYNVML]
    used = used_names(users + [ADMIN_MODULE.read_text(encoding="utf-8")])
    full = probe(tmp_path, "pynvml_full", lighten(INSTALLED)[0])
    cut = probe(tmp_path, "pynvml_cut", PRUNED)
    wanted = used & set(full["names"])
    assert {"nvmlInit", "nvmlDeviceGetSamples", "nvmlDeviceSetPowerManagementLimit", "nvmlMemory_v2",
            "nvmlDeviceGetComputeRunningProcesses_v2", "NVMLError_NotSupported"} <= wanted  # collector, admin
    assert wanted <= set(cut["names"]), sorted(wanted - set(cut["names"]))
    assert "c_nvmlMemory_v2_t" in cut["names"]  # not named by the collector: by nvmlDeviceGetMemoryInfo
    # the same error classes and codes, made at import from the constants, which all stay
    assert (cut["errors"], cut["error_of_code"], cut["capwords"]) == (full["errors"], full["error_of_code"],
                                                                      full["capwords"])
    assert {n for n in full["names"] if n.isupper()} <= set(cut["names"])
    assert len(_defined(PRUNED)) < len(_defined(INSTALLED)) / 4 and len(PRUNED) < len(INSTALLED) / 1.5


def test_whatever_the_pruned_pynvml_names_it_defines():
    """Closed: no kept function or class names one that was left out (a NameError on a GPU host only)."""
    left_out = _defined(INSTALLED) - _defined(PRUNED)
    named = used_names([PRUNED])
    assert left_out and not named & left_out, sorted(named & left_out)


def test_prune_follows_names_decorators_and_strings_and_keeps_the_rest():
    source = (
        "import sys\n"
        "X = 1  # constants stay\n"
        "def deco(f):\n    return f\n"
        "class Base:\n    pass\n"
        "class Struct(Base):\n    _fields_ = [('a', int)]\n"
        "@deco\n"
        "def used():\n    return Struct()\n"
        "def unused():\n    return Base()\n"
        "def twice():\n    return 1\n"
        "def twice():\n    return 2\n"
        "def by_the_loader():\n    return 3\n"
        "LOADER = by_the_loader()\n"
    )
    out = prune(source, {"used", "twice"})
    namespace = {}
    exec(compile(out, "pruned", "exec"), namespace)
    assert {"deco", "Base", "Struct", "used", "twice", "by_the_loader"} <= set(namespace)
    assert "unused" not in namespace and namespace["twice"]() == 2 and namespace["LOADER"] == 3
    assert isinstance(namespace["used"](), namespace["Base"]) and namespace["X"] == 1
    assert "@deco\ndef used():" in out
    # a form feed counts as a line break for str.splitlines, not for Python; a line of two statements
    odd = prune("X = 1  # \x0c page\nN = 0; N += 1\ndef unused():\n    pass\ndef used():\n    return X + N\n",
                {"used"})
    assert odd == "X = 1  # \x0c page\nN = 0; N += 1\ndef used():\n    return X + N\n"
    assert used_names(['reader.read("nvmlDeviceGetName", h)', "nvml.nvmlInit()"]) >= {"nvmlDeviceGetName",
                                                                                       "nvmlInit", "reader"}


def test_the_bundle_ships_the_pruned_pynvml_and_the_module_utils_too(tmp_path):
    from fleetscope.stage import stage_module_utils

    parts = split_parts(bundle_of(collector_sources()))
    shipped = json.loads(__import__("zlib").decompress(parts[2]))
    assert shipped == {SHIPPED_PYNVML: [False, PRUNED]}
    staged = stage_module_utils(tmp_path / "stage") / PACKAGE / "pynvml_shipped.py"
    assert staged.read_text(encoding="utf-8") == PRUNED


def test_the_pruned_pynvml_without_a_driver_says_why(monkeypatch):
    """Its library loader and errors, run for real: what a host whose driver library is missing reports."""
    module = types.ModuleType("collectors.pynvml_shipped")
    monkeypatch.setitem(sys.modules, "collectors.pynvml_shipped", module)  # it finds itself there at import
    exec(compile(PRUNED, "pynvml_shipped", "exec"), module.__dict__)
    monkeypatch.setattr(gpus, "driver_present", lambda: True)
    if Path("/proc/driver/nvidia/version").exists():
        assert collectors.collect(only="gpus")["gpus"]["available"] is True  # a GPU host: it reads them
    else:
        assert collectors.collect(only="gpus")["gpus"]["reason"] == "NVML library not found (no NVIDIA driver)"
