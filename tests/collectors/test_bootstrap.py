"""The collector as the fleetscope_collect action sends it: `python3 -c STUB`, then the bootstrap, the
arguments and the package on stdin. Run here on this python and on the oldest supported one, exactly as the
action runs it on a host (the end-to-end and fault tests run it over real sshd)."""

import json
import os
import subprocess
import sys

import pytest

from fleetscope.stage import BOOTSTRAP, PACKAGE, STUB, collector_bundle, collector_sources, payload
from tests import faults
from tests.collectors.test_collect_main import PYTHON38

PYTHONS = [sys.executable, PYTHON38]


def run_bootstrap(python, args, cwd, bootstrap=None, timeout=60):
    args = {"top_n": 15, "timeout": 30, **args}
    proc = subprocess.Popen([python, "-c", STUB], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=cwd, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    out, err = proc.communicate(payload(args, collector_bundle(), bootstrap), timeout=timeout)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    done.pid = proc.pid
    return done, json.loads(out) if out.strip() else None


@pytest.mark.parametrize("python", PYTHONS)
def test_the_document_comes_back_and_nothing_is_written(tmp_path, check_document, python):
    if python is None:
        pytest.skip("no python3.8 on this machine")
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
        pytest.skip("no python3.8 on this machine")
    probe = BOOTSTRAP.read_text().split("from fleetscope_collectors import collect")[0] + (
        "from fleetscope_collectors import gpus\n"
        "answer({'module': gpus.load_pynvml().__name__, 'has_init': hasattr(gpus.load_pynvml(), 'nvmlInit')})\n")
    proc, answer = run_bootstrap(python, {"timeout": 0}, tmp_path, bootstrap=probe.encode())
    assert answer == {"module": f"{PACKAGE}.pynvml_shipped", "has_init": True}, proc.stderr


def test_a_hung_collector_stops_itself_at_its_timeout(tmp_path):
    hang = faults.interpreter(tmp_path, "hang", sys.executable)
    proc, answer = run_bootstrap(str(hang), {"timeout": 1}, tmp_path / "hang", timeout=30)
    assert proc.returncode == 1
    assert answer == {"failed": True, "timed_out": True, "msg": "collector timed out after 1 s on the host"}


def test_an_old_python_gets_a_clear_refusal(tmp_path):
    old = faults.interpreter(tmp_path, "old_python", sys.executable)
    proc, answer = run_bootstrap(str(old), {}, tmp_path / "old_python")
    assert proc.returncode == 1 and answer["failed"] is True
    assert "minimum of Python version 3.8" in answer["msg"] and "3.6.9" in answer["msg"]
