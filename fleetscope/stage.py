"""Stage the collector for shipping, in the two forms the roles send it to hosts.

- ``collector_bundle()``: the package's sources and bytecode, compressed, which the ``fleetscope_collect`` action
  (roles/collect/action_plugins) writes to ``python3 -c STUB`` on each host, after the bootstrap
  (roles/collect/files/bootstrap.py). The bootstrap imports the package from memory. No AnsiballZ, no
  ``ansible.module_utils.basic``: one collection costs the host about a quarter of the CPU of the
  smallest Ansible module (docs/scaling.md).
- ``stage_module_utils()``: the package as ``ansible.module_utils.fleetscope_collectors``, for the admin
  module (a regular Ansible module, run rarely), which AnsiballZ packs with it.

nvidia-ml-py's pynvml.py is pure Python and travels with either as ``pynvml_shipped``, so a host with the
driver but no pynvml still reads NVML.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import os
import shutil
import zlib
from pathlib import Path

import collectors

from .files import remove_stale, write_atomic
from .settings import PROJECT_DIR

PACKAGE = "fleetscope_collectors"


def stage_module_utils(stage_root: Path, ship_pynvml: bool = True) -> Path:
    """Write <stage_root>/module_utils/fleetscope_collectors/ and return the module_utils folder."""
    module_utils = Path(stage_root) / "module_utils"
    tmp = Path(stage_root) / f".{PACKAGE}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, (is_package, source) in collector_sources(ship_pynvml).items():
        (tmp / ("__init__.py" if is_package else name.rsplit(".", 1)[1] + ".py")).write_text(source, encoding="utf-8")
    module_utils.mkdir(parents=True, exist_ok=True)
    dest = module_utils / PACKAGE
    old = module_utils / f".{PACKAGE}.old"
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return module_utils


def _pynvml_origin():
    """The file of the controller's pynvml (nvidia-ml-py), or None."""
    try:
        spec = importlib.util.find_spec("pynvml")
    except ImportError:
        return None
    return spec.origin if spec and spec.origin else None


# -- the bundle the fleetscope_collect action sends on stdin (roles/collect/files/bootstrap.py loads it) ----

def collector_sources(ship_pynvml: bool = True) -> dict:
    """{module name: [is package, source]} of the collector package as it runs on a host."""
    source = Path(collectors.__file__).resolve().parent
    modules = {}
    for f in sorted(source.glob("*.py")):
        if f.name == "pynvml_shipped.py":
            continue
        name = PACKAGE if f.stem == "__init__" else f"{PACKAGE}.{f.stem}"
        modules[name] = [f.stem == "__init__", f.read_text(encoding="utf-8")]
    origin = _pynvml_origin() if ship_pynvml else None
    if origin:
        modules[f"{PACKAGE}.pynvml_shipped"] = [False, Path(origin).read_text(encoding="utf-8")]
    return modules


def collector_bundle(ship_pynvml: bool = True, bytecode: bool = True) -> bytes:
    """The collector package, compressed, in four parts: the package's sources (about 15 KB), its bytecode,
    the shipped pynvml's sources (about 50 KB) and its bytecode. A line of the four byte lengths comes
    first; a part may be empty. Sources are zlib-compressed JSON {module name: [is package, source]}.
    Bytecode is this Python's magic number, then zlib-compressed marshal {module name: code}: a host whose
    Python has the same magic (the same minor version) runs it instead of compiling the sources, the
    largest part of the collector's CPU on a host (docs/scaling.md); any other host compiles the sources.
    The bootstrap decompresses the pynvml parts only on a host where the collector imports it (one with the
    NVIDIA driver). ``bytecode=False`` leaves the bytecode parts empty (what a host with another Python
    pays: benchmarks/collect_bench.py)."""
    return bundle_of(collector_sources(ship_pynvml), bytecode)


def bundle_of(sources: dict, bytecode: bool = True) -> bytes:
    """The bundle of `sources` ({module name: [is package, source]}), as collector_bundle describes."""
    sources = dict(sources)
    pynvml = f"{PACKAGE}.pynvml_shipped"
    shipped = {pynvml: sources.pop(pynvml)} if pynvml in sources else {}
    code = pack_code if bytecode else (lambda modules: b"")
    parts = [pack_sources(sources), code(sources), pack_sources(shipped), code(shipped)]
    return b" ".join(b"%d" % len(part) for part in parts) + b"\n" + b"".join(parts)


def pack_sources(modules: dict) -> bytes:
    return zlib.compress(json.dumps(modules, separators=(",", ":")).encode(), 9) if modules else b""


def pack_code(modules: dict) -> bytes:
    """Bytecode as the bootstrap would compile it on a host with this Python: same file names, no
    optimisation, and none of this module's `from __future__` flags (dont_inherit)."""
    if not modules:
        return b""
    code = {name: compile(source, shipped_filename(name), "exec", dont_inherit=True, optimize=0)
            for name, (_, source) in modules.items()}
    return importlib.util.MAGIC_NUMBER + zlib.compress(marshal.dumps(code), 9)


def shipped_filename(module: str) -> str:
    """The file name a shipped module's tracebacks show (the bootstrap gives its compile() the same)."""
    return "<fleetscope>/{}.py".format(module.replace(".", "/"))


def write_bundle(stage_root: Path, ship_pynvml: bool = True) -> Path:
    """<stage_root>/collector-<key>.bundle, where the key is a hash of the sources, this Python's magic number
    and the code that lays the bundle out and reads it (this file, the bootstrap); its path goes to the
    action as FLEETSCOPE_BUNDLE. Built once per collector version and reused by later runs (compiling and
    compressing it takes about 0.15 s, hashing the sources 2 ms) unless its length is not what its header
    says. Written atomically; other versions' bundles are removed after a day unused."""
    sources = collector_sources(ship_pynvml)
    key = hashlib.sha256(importlib.util.MAGIC_NUMBER + Path(__file__).read_bytes() + BOOTSTRAP.read_bytes()
                         + json.dumps(sources, sort_keys=True).encode()).hexdigest()
    stage = Path(stage_root)
    dest = stage / f"collector-{key[:16]}.bundle"
    remove_stale([*stage.glob(".collector*.tmp"), *stage.glob("collector*.bundle")], 86400, keep=dest)
    try:
        if _whole(dest):
            os.utime(dest)  # in use: not an old one for another run's clean-up
            return dest
    except FileNotFoundError:
        pass
    write_atomic(dest, bundle_of(sources))
    return dest


def _whole(bundle: Path) -> bool:
    """Whether the file is as long as its header says (not cut short by a full disk or a crash)."""
    with open(bundle, "rb") as f:
        head = f.readline()
        try:
            return len(head) + sum(int(size) for size in head.split()) == os.fstat(f.fileno()).st_size
        except ValueError:
            return False


#: The whole command line a host sees (`python3 -c STUB`): it reads the bootstrap from stdin and runs it, so
#: `ps` on the host shows one short line rather than the bootstrap's source.
STUB = "import sys;exec(sys.stdin.buffer.read(int(sys.stdin.buffer.readline())))"
BOOTSTRAP = PROJECT_DIR / "roles" / "collect" / "files" / "bootstrap.py"


def payload(args: dict, bundle: bytes, bootstrap: bytes | None = None) -> bytes:
    """What the action writes to `python3 -c STUB`'s stdin: the bootstrap (its length on a line, then its
    source), the arguments (likewise, JSON), then the bundle."""
    boot = BOOTSTRAP.read_bytes() if bootstrap is None else bootstrap
    encoded = json.dumps(args, separators=(",", ":")).encode()
    return b"%d\n" % len(boot) + boot + b"%d\n" % len(encoded) + encoded + bundle
