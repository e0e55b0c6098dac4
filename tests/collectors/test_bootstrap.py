"""The collector as the fleetscope_collect action sends it: `python3 -c STUB`, then the bootstrap, the
arguments and the package on stdin. Run here on this python and on the oldest supported one, exactly as the
action runs it on a host (the end-to-end and fault tests run it over real sshd)."""

import importlib.util
import json
import marshal
import os
import shutil
import subprocess
import sys
import time
import zlib

import pytest

from fleetscope.stage import (
    PACKAGE,
    STUB,
    CompileError,
    bundle_of,
    bytecode_pythons,
    code_entries,
    code_entry,
    collector_bundle,
    collector_sources,
    compile_with,
    for_magic,
    join_parts,
    pack_code,
    pack_sources,
    payload,
    probe_bootstrap,
    read_host_pythons,
    shipped_filename,
    split_parts,
    update_host_pythons,
    write_bundle,
)
from tests import faults
from tests.collectors.test_collect_main import PYTHON38


def _runs(python):
    """`python` if it starts (a pyenv shim may exist for a version that is not installed), else None."""
    try:
        return python if python and subprocess.run([python, "-c", "pass"], timeout=60).returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


#: This Python, the oldest the hosts may have (3.8, where pyenv has it) and PyPy (a Python 3.9 with other
#: bytecode and another _socket; .ci/run installs Debian's pypy3).
PYPY = _runs(shutil.which("pypy3"))
PYTHONS = [sys.executable, PYTHON38, PYPY]


def run_bootstrap(python, args, cwd, bootstrap=None, timeout=60, bundle=None):
    args = {"top_n": 15, "timeout": 30, **args}
    proc = subprocess.Popen([python, "-c", STUB], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=cwd, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    out, err = proc.communicate(payload(args, bundle or collector_bundle(), bootstrap), timeout=timeout)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    done.pid = proc.pid
    return done, json.loads(out) if out.strip() else None


@pytest.mark.parametrize("python", PYTHONS)
def test_the_document_comes_back_and_nothing_is_written(tmp_path, check_document, python):
    if python is None:
        pytest.skip("not on this machine")
    proc, answer = run_bootstrap(python, {"top_n": 3}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert answer["changed"] is False
    document = check_document(answer["document"])
    assert document["errors"] == []
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip()
    assert document["host"]["python"] == version
    assert len(document["processes"]["top"]) <= 6  # top 3 by CPU plus top 3 by memory
    assert list(tmp_path.iterdir()) == []  # imported from memory: no file, no __pycache__


def test_the_host_sees_a_one_line_command_and_the_collector_leaves_itself_out(tmp_path):
    assert "\n" not in STUB and len(STUB) < 100  # what `ps` on the host shows, instead of the bootstrap
    proc, answer = run_bootstrap(sys.executable, {"top_n": 100000}, tmp_path)  # every process
    assert proc.returncode == 0, proc.stderr
    pids = {p["pid"] for p in answer["document"]["processes"]["top"]}
    assert os.getpid() in pids  # this test's process is there, so the list is complete ...
    assert proc.pid not in pids  # ... but for the collector itself


def test_only_the_asked_subsystems_are_collected(tmp_path):
    proc, answer = run_bootstrap(sys.executable, {"only": ["host", "memory"]}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    document = answer["document"]
    assert document["host"]["hostname"] and document["memory"]["total_bytes"] > 0
    assert "processes" not in document and "disks" not in document


@pytest.mark.parametrize("ship_pynvml", [True, False])
def test_the_bundle_holds_the_flat_package_and_pynvml_when_asked(ship_pynvml):
    sources = collector_sources(ship_pynvml)
    assert sources[PACKAGE][0] is True  # the package itself
    assert all(not is_package for name, (is_package, _) in sources.items() if name != PACKAGE)
    assert {f"{PACKAGE}.gpus", f"{PACKAGE}.processes", f"{PACKAGE}.redact"} <= set(sources)
    assert (f"{PACKAGE}.pynvml_shipped" in sources) is ship_pynvml
    for name, (_, source) in sources.items():
        compile(source, name, "exec")  # every shipped module compiles


@pytest.mark.parametrize("python", PYTHONS)
def test_the_shipped_pynvml_imports_from_the_bundle(tmp_path, python):
    """The bootstrap's loader, made to import the shipped pynvml instead of running the collector."""
    if python is None:
        pytest.skip("not on this machine")
    proc, answer = run_bootstrap(python, {"timeout": 0}, tmp_path, bootstrap=probe_bootstrap(
        "from fleetscope_collectors import gpus\n"
        "answer({'module': gpus.load_pynvml().__name__, 'has_init': hasattr(gpus.load_pynvml(), 'nvmlInit')})\n"))
    assert answer == {"module": f"{PACKAGE}.pynvml_shipped", "has_init": True}, proc.stderr


@pytest.mark.parametrize("fault", ["hang", "stuck_in_c"])
def test_a_hung_collector_answers_at_its_timeout_with_what_it_has(tmp_path, fault):
    """statvfs of a dead network mount never returns (in Python, or in C where no signal handler can run):
    at the time limit the collector answers with every subsystem but disks, which says it timed out."""
    hung = faults.interpreter(tmp_path, fault, sys.executable)
    started = time.monotonic()
    proc, answer = run_bootstrap(str(hung), {"timeout": 5}, tmp_path / fault, timeout=60)
    assert time.monotonic() - started < 15  # stuck_in_c's call takes 20 s; 5 s leaves a loaded machine room
    assert proc.returncode == 0 and "failed" not in answer, proc.stderr
    document = answer["document"]
    assert document["disks"] is None and document["errors"] == [{
        "subsystem": "disks", "type": "Timeout",
        "message": "did not finish: the collector's time limit (5 s) was reached"}]
    assert document["host"]["hostname"] and document["cpu"]["jiffies"]["user"] > 0
    assert document["processes"]["total"] > 0 and document["gpus"] is not None


def test_a_collector_hung_before_it_starts_fails_as_timed_out(tmp_path):
    """Stuck in its imports (here: the bundle's package itself never loads): nothing to answer with."""
    proc, answer = run_bootstrap(sys.executable, {"timeout": 1}, tmp_path, timeout=30, bootstrap=probe_bootstrap(
        "import time\ntime.sleep(30)\n"))
    assert proc.returncode == 1
    assert answer == {"failed": True, "timed_out": True, "msg": "collector timed out after 1 s on the host"}


def test_an_old_python_gets_a_clear_refusal(tmp_path):
    old = faults.interpreter(tmp_path, "old_python", sys.executable)
    proc, answer = run_bootstrap(str(old), {}, tmp_path / "old_python")
    assert proc.returncode == 1 and answer["failed"] is True
    assert "minimum of Python version 3.8" in answer["msg"] and "3.6.9" in answer["msg"]


def _bundle(module_source: str, code_source: str, magic: bytes, before: bytes = b"") -> bytes:
    """A bundle of one module, `fleetscope_collectors`, whose shipped source and bytecode differ, so the
    answer says which of the two ran; its bytecode entry has `magic`, after the entries `before`."""
    sources = pack_sources({PACKAGE: [True, module_source]})
    (compiled,) = code_entries(pack_code({PACKAGE: [True, code_source]})).values()
    return join_parts([sources, before + code_entry(magic[:4], magic[4:] + compiled), b"", b""])


WHICH = """
class Collection:
    def __init__(self, **kwargs):
        pass

    def run(self) -> dict:
        return {{"ran": "{}", "file": Collection.run.__code__.co_filename,
                "annotation": repr(Collection.run.__annotations__["return"])}}
"""


OTHERS = code_entry(b"\x00\x00\r\n", b"another Python's") + code_entry(b"\x01\x00\r\n", b"")


@pytest.mark.parametrize(("magic", "before", "ran"), [
    (importlib.util.MAGIC_NUMBER, b"", "bytecode"),  # this Python's: the shipped bytecode runs, nothing compiled
    (importlib.util.MAGIC_NUMBER, OTHERS, "bytecode"),  # found among other Pythons' entries
    (b"\x00\x00\r\n", b"", "source"),  # another Python's: the sources are compiled
    (importlib.util.MAGIC_NUMBER + b"garbage", b"", "source"),  # bytecode that does not load: the sources
], ids=["ours", "ours-after-others", "another", "garbage"])
def test_shipped_bytecode_runs_only_where_the_python_matches(tmp_path, magic, before, ran):
    bundle = _bundle(WHICH.format("source"), WHICH.format("bytecode"), magic, before)
    stdin = payload({"top_n": 1, "timeout": 30}, bundle)
    out = subprocess.run([sys.executable, "-c", STUB], input=stdin, capture_output=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    # either way the module looks the same: its file name in tracebacks, no `from __future__` flags of
    # fleetscope.stage's own (it compiles the bytecode) leaking into the collector's
    assert json.loads(out.stdout)["document"] == {"ran": ran, "file": "<fleetscope>/fleetscope_collectors.py",
                                                   "annotation": "<class 'dict'>"}


def test_the_bundle_carries_bytecode_for_every_shipped_module():
    parts = split_parts(collector_bundle())
    for source_part, code_part in (parts[:2], parts[2:]):
        entries = code_entries(code_part)
        assert list(entries) == [importlib.util.MAGIC_NUMBER]
        sources = json.loads(zlib.decompress(source_part))
        code = marshal.loads(zlib.decompress(entries[importlib.util.MAGIC_NUMBER]))
        assert set(code) == set(sources)
        for name, compiled in code.items():
            assert compiled.co_filename == shipped_filename(name)


def bundle_parts(bundle: bytes) -> list:
    """The four parts, decoded: package sources, its code's module names, pynvml's sources, its code's names."""
    return [None if not part else json.loads(zlib.decompress(part)) if i % 2 == 0 else
            sorted(marshal.loads(zlib.decompress(code_entries(part)[importlib.util.MAGIC_NUMBER])))
            for i, part in enumerate(split_parts(bundle))]


def test_the_staged_bundle_is_built_once_per_collector_version(tmp_path):
    first = write_bundle(tmp_path)
    built = first.stat().st_ino
    assert write_bundle(tmp_path) == first and first.stat().st_ino == built  # reused, not rebuilt
    assert bundle_parts(first.read_bytes()) == bundle_parts(collector_bundle())
    other = write_bundle(tmp_path, ship_pynvml=False)  # other sources: another bundle, beside the first
    assert other != first and bundle_parts(other.read_bytes()) == bundle_parts(collector_bundle(ship_pynvml=False))
    day_ago = time.time() - 86500
    os.utime(first, (day_ago, day_ago))
    (tmp_path / ".collector-0.bundle.1.tmp").write_bytes(b"left by a killed run")
    os.utime(tmp_path / ".collector-0.bundle.1.tmp", (day_ago, day_ago))
    write_bundle(tmp_path, ship_pynvml=False)
    assert sorted(tmp_path.iterdir()) == [other]  # a day unused: removed


def test_a_staged_bundle_cut_short_is_built_again(tmp_path):
    staged = write_bundle(tmp_path)
    whole = staged.read_bytes()
    staged.write_bytes(whole[:len(whole) // 2])  # a full disk, a crash half-way
    assert write_bundle(tmp_path) == staged and staged.read_bytes() == whole


@pytest.mark.parametrize("python", PYTHONS)
def test_the_bootstrap_finds_its_pythons_magic_number(tmp_path, python):
    """Where the bytecode can run, the bootstrap knows it (else every host compiles, only more slowly)."""
    if python is None:
        pytest.skip("not on this machine")
    proc, answer = run_bootstrap(python, {"timeout": 0}, tmp_path, bootstrap=probe_bootstrap(
        "import importlib.util\nanswer({'found': MAGIC is not None and MAGIC == importlib.util.MAGIC_NUMBER})\n"))
    assert answer == {"found": True}, proc.stderr


# -- bytecode compiled by the controller's other Pythons (collect.bytecode_pythons) ---------------------------

OTHER_PYTHONS = [p for p in PYTHONS[1:] if p]  # those whose bytecode is not ours


@pytest.mark.parametrize("python", OTHER_PYTHONS or [None])
def test_bytecode_compiled_by_another_python_here_runs_on_hosts_with_that_python(tmp_path, python):
    if python is None:
        pytest.skip("no other Python here (python3.8, pypy3)")
    bundle = collector_bundle(pythons=[python])
    package, pynvml = (code_entries(part) for part in split_parts(bundle)[1::2])
    assert list(package) == list(pynvml) and len(package) == 2 and importlib.util.MAGIC_NUMBER in package
    # on that Python every module runs from the bytecode shipped for it, the shipped pynvml included
    proc, answer = run_bootstrap(python, {"timeout": 0}, tmp_path, bundle=bundle, bootstrap=probe_bootstrap(
        "import importlib.util\n"
        "from fleetscope_collectors import gpus\n"
        "gpus.load_pynvml()\n"
        "answer({'magic': importlib.util.MAGIC_NUMBER.hex(),\n"
        "        'compiled': sorted(name for name, entry in modules.items() if len(entry) < 3)})\n"))
    assert answer["compiled"] == [], proc.stderr
    magic = bytes.fromhex(answer["magic"])
    assert magic in package and magic != importlib.util.MAGIC_NUMBER
    # the collector runs from it, and its answer names the magic number for the next run's choice
    proc, answer = run_bootstrap(python, {"top_n": 2}, tmp_path, bundle=for_magic(bundle, magic))
    assert proc.returncode == 0 and answer["document"]["errors"] == [], proc.stderr
    assert answer["python_magic"] == magic.hex()
    # and its implementation, which decides the interpreter that compiles for it (pypy3.N, not python3.N)
    implementation = subprocess.run([python, "-c", "import sys; print(sys.implementation.name)"],
                                    capture_output=True, text=True, check=True).stdout.strip()
    assert answer["python_implementation"] == implementation


def test_a_host_is_sent_the_entry_of_its_own_magic_only():
    ours = importlib.util.MAGIC_NUMBER
    sources = {PACKAGE: [True, "x = 1"], f"{PACKAGE}.pynvml_shipped": [False, "y = 2"]}
    parts = split_parts(bundle_of(sources))
    other = code_entry(b"\x00\x00\r\n", b"another Python's")
    parts[1], parts[3] = other + parts[1], parts[3] + other  # ours last in one part, first in the other
    several = join_parts(parts)
    assert for_magic(several, None) == several  # unknown Python: everything
    mine = split_parts(for_magic(several, ours))
    assert [list(code_entries(p)) for p in mine[1::2]] == [[ours], [ours]] and mine[::2] == parts[::2]
    assert split_parts(for_magic(several, b"\x02\x00\r\n")) == [parts[0], b"", parts[2], b""]  # no bytecode


def test_an_interpreter_that_cannot_compile_is_left_out_and_said_once(tmp_path):
    broken = tmp_path / "python3.9"
    broken.write_text("#!/bin/sh\necho 'python3.9: cannot execute' >&2\nexit 126\n")
    broken.chmod(0o755)
    said = []
    staged = write_bundle(tmp_path / "stage", pythons=[str(broken)], warn=said.append)
    assert len(said) == 1 and str(broken) in said[0] and "cannot execute" in said[0]
    code_parts = split_parts(staged.read_bytes())[1::2]
    assert [list(code_entries(p)) for p in code_parts] == [[importlib.util.MAGIC_NUMBER]] * 2
    assert write_bundle(tmp_path / "stage", pythons=[str(broken)], warn=said.append) == staged
    assert len(said) == 1  # the bundle without it is reused: not tried, nor said, on every run


def test_auto_finds_python3_n_for_the_minor_versions_the_hosts_run(tmp_path, monkeypatch):
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    there, absent, named = [v for v in ("3.9", "3.10", "3.12", "3.13") if v != ours][:3]
    for name in (f"python{there}", f"python{named}", f"python{ours}", "python3.7", "python3.123"):
        (tmp_path / name).symlink_to(sys.executable)
    elsewhere = tmp_path / "relative"
    elsewhere.mkdir()
    (elsewhere / f"python{absent}").symlink_to(sys.executable)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path), "relative"]))
    said = []
    # versions as hosts tell them, some hostile: not 3.N in ASCII digits, older than 3.8, too long, not text
    versions = {f"{there}.16", f"{there}.2", f"{absent}.1", f"{ours}.0", None, 3.9, "garbage", "3.7.17",
                "3.123", "3.\u0661\u0662", "../../bin/sh"}
    found = bytecode_pythons(["auto", f"python{named}", "nosuchpython"], told(versions), said.append)
    # `there`: on PATH; `absent`: only in a relative PATH folder, which auto does not search; ours: the
    # bundle has it already; `named`: asked for by name
    assert found == [str(tmp_path / f"python{there}"), str(tmp_path / f"python{named}")]
    assert said == ["collect.bytecode_pythons: nosuchpython not found on PATH, left out"]
    assert bytecode_pythons([], told({f"{there}.16"})) == []
    many = {f"3.{n}.0" for n in range(14, 40)}
    for version in many:
        (tmp_path / f"python{version[:-2]}").symlink_to(sys.executable)
    assert len(bytecode_pythons(["auto"], told(many))) == 8  # a bound on what hosts can make it run
    # the bound counts interpreters found, oldest version first: versions without one do not crowd it out
    assert bytecode_pythons(["auto"], told(many | {f"{there}.1"}))[0] == str(tmp_path / f"python{there}")


def told(versions, implementation=None) -> list[dict]:
    """What host-pythons.json holds for hosts that told these versions (and, if given, implementation)."""
    return [{"python": v, **({"implementation": implementation} if implementation else {})} for v in versions]


def test_auto_finds_pypy3_n_for_pypy_hosts_and_python3_n_for_cpython_ones(tmp_path, monkeypatch):
    """A PyPy host tells its language version; CPython's bytecode for that version is not PyPy's."""
    for name in ("python3.9", "pypy3.9", "pypy3.10", f"pypy{sys.version_info[0]}.{sys.version_info[1]}"):
        (tmp_path / name).symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(tmp_path))
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}.0"
    hosts = [*told(["3.9.16"], "pypy"), *told(["3.9.2"], "cpython"), *told(["3.9.1"]),  # none: CPython
             *told([ours], "pypy"),  # our version, another implementation: compiled for too
             *told(["3.10.1"], "ironpython"), *told(["3.10.1"], ["pypy"]), {"python": "3.10.1"}, "garbage"]
    found = bytecode_pythons(["auto"], hosts)
    assert found == [str(tmp_path / "python3.9"), str(tmp_path / "pypy3.9"),  # oldest version first
                     str(tmp_path / f"pypy{ours[:-2]}")]
    assert bytecode_pythons(["auto"], told(["3.9.16"], "pypy")) == [str(tmp_path / "pypy3.9")]


def test_an_interpreter_that_failed_is_tried_again_after_an_hour(tmp_path):
    """Like a pyenv shim of a version installed later: the file (the bundle's key) does not change."""
    target = tmp_path / "target"
    target.write_text("/nonexistent/python3.9")
    shim = tmp_path / "python3.9"
    shim.write_text(f'#!/bin/sh\nexec "$(cat {target})" "$@"\n')
    shim.chmod(0o755)
    said = []
    staged = write_bundle(tmp_path / "stage", pythons=[str(shim)], warn=said.append)
    missing = staged.with_suffix(".missing")
    assert missing.read_text() == str(shim) and len(said) == 1
    assert write_bundle(tmp_path / "stage", pythons=[str(shim)], warn=said.append) == staged
    assert len(said) == 1  # within the hour: not tried again
    hour_ago = time.time() - 3700
    os.utime(missing, (hour_ago, hour_ago))
    assert write_bundle(tmp_path / "stage", pythons=[str(shim)], warn=said.append) == staged
    assert len(said) == 2  # tried again, and said again: it still fails
    if OTHER_PYTHONS:  # the version is installed now: its bytecode comes with the next retry
        target.write_text(OTHER_PYTHONS[0])
        os.utime(missing, (hour_ago, hour_ago))
        assert write_bundle(tmp_path / "stage", pythons=[str(shim)], warn=said.append) == staged
        assert len(said) == 2 and not missing.exists()
        assert len(code_entries(split_parts(staged.read_bytes())[1])) == 2


@pytest.mark.parametrize("answer", [
    b"zz 3.9 1 1\nab",  # not a magic number
    b"00000d0a 3.9 5 1\nab",  # sizes that are not what follows
    b"00000d0a 3.9\n",  # fewer parts than asked
    b"",  # nothing
])
def test_an_interpreter_that_answers_nonsense_is_a_compile_error(tmp_path, answer):
    liar = tmp_path / "python3.9"
    (tmp_path / "answer").write_bytes(answer)
    liar.write_text(f"#!/bin/sh\ncat > /dev/null\ncat {tmp_path / 'answer'}\n")
    liar.chmod(0o755)
    with pytest.raises(CompileError, match="python3.9"):
        compile_with(str(liar), [{PACKAGE: [True, "x = 1"]}, {}])


def test_a_bytecode_part_is_read_as_the_bootstrap_reads_it():
    first, second = code_entry(b"\x00\x00\r\n", b"first"), code_entry(b"\x00\x00\r\n", b"second")
    assert code_entries(first + second) == {b"\x00\x00\r\n": b"first"}  # the first of a magic number
    cut = code_entry(b"\x01\x00\r\n", b"whole")[:-1]
    assert code_entries(first + cut) == {b"\x00\x00\r\n": b"first"}  # an entry cut short is none


def test_what_hosts_said_of_their_pythons_is_kept_for_the_next_run(tmp_path):
    update_host_pythons(tmp_path, {"a": {"python": "3.10.12", "magic": "6f0d0d0a"}, "b": {"python": "3.9.2"}})
    update_host_pythons(tmp_path, {"b": {"python": "3.12.1", "magic": "cb0d0d0a"}})  # a --limit run: a stays
    assert read_host_pythons(tmp_path) == {"a": {"python": "3.10.12", "magic": "6f0d0d0a"},
                                           "b": {"python": "3.12.1", "magic": "cb0d0d0a"}}
    update_host_pythons(tmp_path, {}, hosts=["b", "c"])  # a whole run: a has left the inventory
    assert list(read_host_pythons(tmp_path)) == ["b"]
    (tmp_path / "host-pythons.json").write_text("[not what we wrote")
    assert read_host_pythons(tmp_path) == {}  # unreadable: as if new


def test_a_hung_collector_whose_controller_went_away_still_ends(tmp_path):
    """The connection closed (the controller stopped waiting): the answer at the time limit cannot be written,
    and the process must end anyway, not stay stuck in the call that hung."""
    hung = faults.interpreter(tmp_path, "hang", sys.executable)
    proc = subprocess.Popen([str(hung), "-c", STUB], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=tmp_path)
    proc.stdout.close()  # nobody reads the answer
    proc.stdin.write(payload({"top_n": 15, "timeout": 1}, collector_bundle()))
    proc.stdin.close()
    try:
        proc.wait(timeout=20)  # ended: before, stuck in the hung call for good
    finally:
        proc.kill()


def test_an_answer_json_cannot_hold_fails_with_its_traceback(tmp_path):
    """A defect in a subsystem (a value JSON cannot hold) must not look like a collector that said nothing
    and succeeded (exit 0, no output): it exits 1 with the traceback, which the controller shows."""
    proc, answer = run_bootstrap(sys.executable, {"timeout": 5}, tmp_path, bootstrap=probe_bootstrap(
        "answer({'document': {'load': {1, 2}}})\n"))
    assert proc.returncode == 1 and answer is None
    assert b"Traceback" in proc.stderr and b"set is not JSON serializable" in proc.stderr
