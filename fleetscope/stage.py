"""Stage the collector for shipping, in the two forms the roles send it to hosts.

- ``collector_bundle()``: the package's sources and bytecode, compressed, which the ``fleetscope_collect`` action
  (roles/collect/action_plugins) writes to ``python3 -c STUB`` on each host, after the bootstrap
  (roles/collect/files/bootstrap.py). The bootstrap imports the package from memory. No AnsiballZ, no
  ``ansible.module_utils.basic``: one collection costs the host about a quarter of the CPU of the
  smallest Ansible module (docs/scaling.md).
- ``stage_module_utils()``: the package as ``ansible.module_utils.fleetscope_collectors``, for the admin
  module (a regular Ansible module, run rarely), which AnsiballZ packs with it.

nvidia-ml-py's pynvml.py is pure Python and travels with either as ``pynvml_shipped``, so a host with the
driver but no pynvml still reads NVML, without two imports it does not need there and cut to the functions
and classes the shipped modules use (shipped_pynvml.py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import marshal
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import collectors

from . import shipped_pynvml
from .files import remove_stale, write_atomic, write_json_atomic
from .settings import PROJECT_DIR

PACKAGE = "fleetscope_collectors"
SHIPPED_PYNVML = f"{PACKAGE}.pynvml_shipped"
#: The Ansible module that imports the shipped package besides the collector (its pynvml names count too).
ADMIN_MODULE = PROJECT_DIR / "roles" / "admin" / "library" / "fleetscope_admin.py"


def stage_module_utils(stage_root: Path, ship_pynvml: bool = True) -> Path:
    """Write <stage_root>/module_utils/fleetscope_collectors/ and return the module_utils folder."""
    module_utils = Path(stage_root) / "module_utils"
    tmp = Path(stage_root) / f".{PACKAGE}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, (is_package, source) in pruned(collector_sources(ship_pynvml)).items():
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
        # nvidia-ml-py's pynvml, without two imports it does not need (about 40 % of its import's CPU)
        modules[SHIPPED_PYNVML] = [False, shipped_pynvml.lighten(Path(origin).read_text(encoding="utf-8"))[0]]
    return modules


def pruned(sources: dict) -> dict:
    """``sources`` with the shipped pynvml cut to what the other modules there and the admin module use
    (shipped_pynvml.prune). About 0.25 s: done when a bundle is built, not on every run."""
    if SHIPPED_PYNVML not in sources:
        return sources
    users = [source for name, (_, source) in sources.items() if name != SHIPPED_PYNVML]
    used = shipped_pynvml.used_names(users + [ADMIN_MODULE.read_text(encoding="utf-8")])
    return {**sources, SHIPPED_PYNVML: [False, shipped_pynvml.prune(sources[SHIPPED_PYNVML][1], used)]}


def collector_bundle(ship_pynvml: bool = True, bytecode: bool = True, pythons=()) -> bytes:
    """The collector package, compressed, in four parts: the package's sources (about 20 KB), its bytecode
    (44 KB), the shipped pynvml's sources (28 KB, pruned) and its bytecode (42 KB). A line of the four byte
    lengths comes first; a part may be empty. Sources are zlib-compressed JSON {module name: [is package, source]}.
    A bytecode part holds one entry per Python it was compiled for: its magic number (4 bytes), the entry's
    length (4 bytes, big-endian), then zlib-compressed marshal {module name: code}. A host whose Python has
    one of those magic numbers (CPython: the same minor version) runs that entry instead of compiling the
    sources, the largest part of the collector's CPU on a host (docs/scaling.md); any other host compiles
    the sources. The entries are this Python's, then those of `pythons` (other interpreters on the
    controller, see compile_with). The bootstrap decompresses the pynvml parts only on a host where the
    collector imports it (one with the NVIDIA driver). ``bytecode=False`` leaves the bytecode parts empty
    (what a host with another Python pays: benchmarks/collect_bench.py)."""
    return bundle_of(collector_sources(ship_pynvml), bytecode, pythons)


def bundle_of(sources: dict, bytecode: bool = True, pythons=(), failed: list | None = None,
              prune: bool = True) -> bytes:
    """The bundle of `sources` ({module name: [is package, source]}), as collector_bundle describes, the
    shipped pynvml pruned (unless ``prune`` is false: benchmarks/collect_bench.py). The interpreters of
    `pythons` that could not compile them go to `failed` as (python, why)."""
    sources = dict(pruned(sources) if prune else sources)
    shipped = {SHIPPED_PYNVML: sources.pop(SHIPPED_PYNVML)} if SHIPPED_PYNVML in sources else {}
    if not bytecode:
        codes = [b"", b""]
    else:
        codes = [pack_code(sources), pack_code(shipped)]
        magics = {importlib.util.MAGIC_NUMBER}
        for python in pythons:
            try:
                magic, entries = compile_with(python, [sources, shipped])
            except CompileError as e:
                if failed is not None:
                    failed.append((python, str(e)))
                continue
            if magic in magics:  # the same bytecode as an entry already there
                continue
            magics.add(magic)
            codes = [code + code_entry(magic, entry) if entry else code for code, entry in zip(codes, entries)]
    return join_parts([pack_sources(sources), codes[0], pack_sources(shipped), codes[1]])


def join_parts(parts: list[bytes]) -> bytes:
    """A bundle of `parts`: a line of their byte lengths, then the parts."""
    return b" ".join(b"%d" % len(part) for part in parts) + b"\n" + b"".join(parts)


def split_parts(bundle: bytes) -> list[bytes]:
    """The parts of a bundle, cut as the bootstrap cuts them: its first line gives their byte lengths."""
    head, _, rest = bundle.partition(b"\n")
    parts, start = [], 0
    for size in head.split():
        parts.append(rest[start:start + int(size)])
        start += int(size)
    return parts


def pack_sources(modules: dict) -> bytes:
    return zlib.compress(json.dumps(modules, separators=(",", ":")).encode(), 9) if modules else b""


def pack_code(modules: dict) -> bytes:
    """This Python's bytecode entry, as the bootstrap would compile it on a host with this Python: same
    file names, no optimisation, and none of this module's `from __future__` flags (dont_inherit)."""
    if not modules:
        return b""
    code = {name: compile(source, shipped_filename(name), "exec", dont_inherit=True, optimize=0)
            for name, (_, source) in modules.items()}
    return code_entry(importlib.util.MAGIC_NUMBER, zlib.compress(marshal.dumps(code), 9))


def code_entry(magic: bytes, compressed: bytes) -> bytes:
    return magic + len(compressed).to_bytes(4, "big") + compressed


def code_entries(part: bytes) -> dict[bytes, bytes]:
    """{magic number: compressed marshal} of a bundle's bytecode part (the bootstrap reads it likewise)."""
    entries, at = {}, 0
    while at + 8 <= len(part):
        size = int.from_bytes(part[at + 4:at + 8], "big")
        if at + 8 + size > len(part):  # cut short: no entry
            break
        entries.setdefault(part[at:at + 4], part[at + 8:at + 8 + size])  # the first, as the bootstrap takes
        at += 8 + size
    return entries


def for_magic(bundle: bytes, magic: bytes | None) -> bytes:
    """The bundle with only the bytecode entries for `magic`, none where it has none (the host compiles the
    sources): what a host whose Python has that magic number can use. The action sends each host this
    when an earlier run told the host's magic (its answer carries it), the whole bundle otherwise."""
    if magic is None:
        return bundle
    parts = split_parts(bundle)
    for i in (1, 3):
        entry = code_entries(parts[i]).get(magic)
        parts[i] = code_entry(magic, entry) if entry else b""
    return join_parts(parts)


class CompileError(RuntimeError):
    """Another Python of collect.bytecode_pythons could not compile the shipped modules."""


#: What compile_with runs in another interpreter: JSON [{module: [file name, source]}, ...] on stdin; on
#: stdout a line with the magic number (hex), the version and each group's length, then each group's
#: zlib-compressed marshal {module: code}. A module that interpreter cannot compile is left out (a host
#: running it compiles the source, and reports the error). Python 3.8+ and PyPy.
COMPILE = """\
import json, marshal, sys, zlib
from importlib.util import MAGIC_NUMBER
out = []
for group in json.loads(sys.stdin.buffer.read()):
    code = {}
    for name, (file, source) in group.items():
        try:
            code[name] = compile(source, file, "exec", dont_inherit=True, optimize=0)
        except SyntaxError:
            pass
    out.append(zlib.compress(marshal.dumps(code), 9) if code else b"")
head = [MAGIC_NUMBER.hex(), "%d.%d" % sys.version_info[:2]] + [str(len(group)) for group in out]
sys.stdout.buffer.write(" ".join(head).encode() + b"\\n" + b"".join(out))
"""


def compile_with(python: str, groups: list[dict], timeout: float = 60) -> tuple[bytes, list[bytes]]:
    """(magic number, [compressed marshal of each group]) of `groups` ({module: [is package, source]}) as
    the interpreter `python`, on this controller, compiles them. Bytecode never comes from hosts: a host
    that sent it could run code on every other. Raises CompileError."""
    request = json.dumps([{name: [shipped_filename(name), source] for name, (_, source) in group.items()}
                          for group in groups]).encode()
    try:
        done = subprocess.run([python, "-I", "-S", "-c", COMPILE], input=request, capture_output=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CompileError(f"{python}: {e}") from e
    head, _, rest = done.stdout.partition(b"\n")
    fields = head.split()
    try:
        magic, sizes = bytes.fromhex(fields[0].decode()), [int(size) for size in fields[2:]]
        whole = (len(fields) == 2 + len(groups) and len(magic) == 4 and min(sizes, default=0) >= 0
                 and sum(sizes) == len(rest))
    except (IndexError, ValueError):
        whole = False
    if done.returncode != 0 or not whole:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no answer it could read"])[-1]
        raise CompileError(f"{python} (exit status {done.returncode}): {last}")
    entries, start = [], 0
    for size in sizes:
        entries.append(rest[start:start + size])
        start += size
    return magic, entries


def shipped_filename(module: str) -> str:
    """The file name a shipped module's tracebacks show (the bootstrap gives its compile() the same)."""
    return "<fleetscope>/{}.py".format(module.replace(".", "/"))


def write_bundle(stage_root: Path, ship_pynvml: bool = True, pythons=(), warn=None) -> Path:
    """<stage_root>/collector-<key>.bundle, where the key is a hash of the sources, this Python's magic number,
    the other interpreters of `pythons` (each one's path, size and time) and the code that lays the bundle out
    and reads it (this file, the bootstrap); its path goes to the action as FLEETSCOPE_BUNDLE. Built once per
    collector version and set of interpreters and reused by later runs (compiling and compressing it takes
    about 0.15 s, plus about 0.3 s per other interpreter; hashing the sources 2 ms) unless its length is not
    what its header says. An interpreter that cannot compile is left out and told to `warn`; the bundle
    without it is reused for RETRY_S, then built again. Written atomically; other versions' bundles are
    removed after a day unused."""
    sources = collector_sources(ship_pynvml)
    key = hashlib.sha256(importlib.util.MAGIC_NUMBER + Path(__file__).read_bytes() + BOOTSTRAP.read_bytes()
                         + Path(shipped_pynvml.__file__).read_bytes() + ADMIN_MODULE.read_bytes()
                         + json.dumps([sources, [_identity(p) for p in pythons]], sort_keys=True).encode())
    stage = Path(stage_root)
    dest = stage / f"collector-{key.hexdigest()[:16]}.bundle"
    missing = dest.with_suffix(".missing")  # interpreters that could not compile, for a later retry
    remove_stale([*stage.glob(".collector*.tmp"), *stage.glob("collector*.bundle")], 86400, keep=dest)
    remove_stale(list(stage.glob("collector*.missing")), 86400, keep=missing)
    try:
        if _whole(dest) and not (missing.exists() and time.time() - missing.stat().st_mtime > RETRY_S):
            os.utime(dest)  # in use: not an old one for another run's clean-up
            return dest
    except FileNotFoundError:
        pass
    failed = []
    write_atomic(dest, bundle_of(sources, pythons=pythons, failed=failed))
    if failed:
        write_atomic(missing, b"\n".join(os.fsencode(python) for python, _ in failed))
    else:
        missing.unlink(missing_ok=True)
    for python, why in failed:
        if warn is not None:
            warn(f"no bytecode for {python} (collect.bytecode_pythons), its hosts compile the collector: {why}")
    return dest


#: How long a bundle built without an interpreter that could not compile is used before it is tried again
#: (a timeout, a pyenv shim whose version is installed later: neither changes the bundle's key).
RETRY_S = 3600


def _identity(python: str) -> list:
    """What tells one interpreter from another in the bundle's key: its path, size and modification time."""
    try:
        info = os.stat(python)
        return [python, info.st_size, info.st_mtime_ns]
    except OSError:
        return [python]


#: Where bytecode_pythons' "auto" looks for another Python: the name each implementation installs for a
#: minor version N (a PyPy host reports its language version; CPython's bytecode for it is not PyPy's).
AUTO = "auto"
AUTO_NAMES = {"cpython": "python{}", "pypy": "pypy{}"}
#: The most interpreters "auto" compiles with (each costs hosts nothing, the controller 0.2-0.3 s once).
AUTO_MAX = 8


def bytecode_pythons(wanted: list[str], host_pythons, warn=None) -> list[str]:
    """The interpreters to compile the collector with besides this one, as absolute paths, from the
    collect.bytecode_pythons setting: "auto" stands for python3.N (pypy3.N for PyPy) on PATH for every Python
    the fleet's hosts reported last (`host_pythons`: {"python": version, "implementation": name} each, as
    read_host_pythons holds them; no implementation is CPython) other than this one; any other entry is an
    interpreter's name or path. One that is not there is told to `warn` and skipped."""
    ours = (sys.implementation.name, f"{sys.version_info[0]}.{sys.version_info[1]}")
    found = []
    for entry in wanted:
        if entry == AUTO:
            # versions and names come from hosts: only 3.8 to 3.99 in ASCII digits, of an implementation named
            # above, looked up in the absolute folders of PATH only (a relative one would depend on where cron
            # starts us), at most AUTO_MAX found
            seen = set()
            for told in host_pythons:
                if not isinstance(told, dict):
                    continue
                version, implementation = told.get("python"), told.get("implementation", "cpython")
                if isinstance(version, str) and isinstance(implementation, str) and implementation in AUTO_NAMES:
                    seen.add((implementation, ".".join(version.split(".")[:2])))
            wanted_auto = sorted(((i, m) for i, m in seen - {ours} if re.fullmatch(r"3\.\d{1,2}", m, re.ASCII)
                                  and int(m[2:]) >= 8), key=lambda im: (int(im[1][2:]), im[0]))
            folders = os.pathsep.join(d for d in os.environ.get("PATH", os.defpath).split(os.pathsep)
                                      if os.path.isabs(d))
            candidates = (shutil.which(AUTO_NAMES[i].format(m), path=folders) for i, m in wanted_auto)
            found += [c for c in candidates if c][:AUTO_MAX]
            continue
        path = shutil.which(os.path.expanduser(entry))
        if path:
            found.append(os.path.abspath(path))
        elif warn is not None:
            warn(f"collect.bytecode_pythons: {entry} not found on PATH, left out")
    return list(dict.fromkeys(found))


# -- what the last collection told of each host's Python: bytecode_pythons' "auto" and the action's choice ----

HOST_PYTHONS = "host-pythons.json"


def read_host_pythons(stage_root: Path) -> dict[str, dict]:
    """{host: {"python": version, "magic": hex, "implementation": name}} as update_host_pythons last wrote it
    (each key there when the host told it); {} if unreadable."""
    try:
        with open(Path(stage_root) / HOST_PYTHONS, encoding="utf-8") as f:
            known = json.load(f)
    except (OSError, ValueError):
        return {}
    return {h: v for h, v in known.items() if isinstance(v, dict)} if isinstance(known, dict) else {}


def update_host_pythons(stage_root: Path, seen: dict[str, dict], hosts=None) -> None:
    """Record what hosts told this run ({host: {"python": ..., "magic": ..., "implementation": ...}}) over what
    earlier runs told.
    `hosts`, when given, is the whole inventory: hosts no longer in it are forgotten."""
    before = read_host_pythons(stage_root)
    known = {**before, **seen}
    if hosts is not None:
        inventory = set(hosts)
        known = {h: v for h, v in known.items() if h in inventory}
    if known != before:  # a run that learnt nothing new writes nothing
        write_json_atomic(Path(stage_root) / HOST_PYTHONS, known)


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


def host_file(folder: Path | str, host: str) -> Path:
    """A host's file in a folder of one file per host (the hints `fleetscope collect` leaves the action,
    collect.write_hints; the recorded SSH commands, ssh_warmup): named by a hash of the host's name, which may
    hold any character."""
    return Path(folder) / (hashlib.sha256(host.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".json")


def payload(args: dict, bundle: bytes, bootstrap: bytes | None = None) -> bytes:
    """What the action writes to `python3 -c STUB`'s stdin: the bootstrap (its length on a line, then its
    source), the arguments (likewise, JSON), then the bundle."""
    boot = BOOTSTRAP.read_bytes() if bootstrap is None else bootstrap
    encoded = json.dumps(args, separators=(",", ":")).encode()
    return b"%d\n" % len(boot) + boot + b"%d\n" % len(encoded) + encoded + bundle


#: The bootstrap's line that starts the collection: a probe runs the bootstrap up to it, then its own code.
COLLECTION_STARTS = "from fleetscope_collectors import Collection"


def probe_bootstrap(code: str) -> bytes:
    """A bootstrap for payload() (tests, benchmarks): BOOTSTRAP with ``code`` in place of the collection, the
    package unpacked and importable, ``answer`` saying what ``code`` found. Raises where the bootstrap no longer
    has COLLECTION_STARTS: the probe would run a whole collection instead (the benchmark's did, for a day,
    after the bootstrap's last line changed)."""
    text = BOOTSTRAP.read_text()
    if text.count(COLLECTION_STARTS) != 1:
        raise RuntimeError(f"{BOOTSTRAP} no longer has the line {COLLECTION_STARTS!r}: update COLLECTION_STARTS")
    return (text.split(COLLECTION_STARTS)[0] + code).encode()
