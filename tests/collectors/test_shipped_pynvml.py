"""fleetscope.shipped_pynvml: the pynvml shipped to GPU hosts is nvidia-ml-py's, with the same names and error
classes, without importing ctypes.util or string (and what those pull in) at import time."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from fleetscope.shipped_pynvml import REPLACEMENTS, lighten
from fleetscope.stage import PACKAGE, collector_sources

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
                  "libc": m.find_library("c"),
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


def test_a_line_not_found_is_left_alone_and_named():
    source = "from ctypes import *\nimport string\nimport sys\n"
    lightened, missing = lighten(source)
    assert missing == ["from ctypes.util import find_library"]
    assert lightened.startswith("from ctypes import *\nclass string:") and lightened.endswith("import sys\n")
    assert lighten("")[0] == ""


def test_the_collector_ships_the_lightened_pynvml():
    assert collector_sources()[f"{PACKAGE}.pynvml_shipped"][1] == lighten(INSTALLED)[0]
