"""``python3 -m collectors`` as an operator runs it, on this python and on the oldest supported one
(3.8), and the package as fleetscope stages it for Ansible (flat, relative imports, pynvml shipped)."""

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleetscope.stage import PACKAGE, stage_module_utils

ROOT = Path(__file__).resolve().parents[2]


def _python38():
    """A working python3.8 (the oldest the hosts may have), or None. pyenv shims may exist yet fail."""
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    candidates = [shutil.which("python3.8"), *pyenv]
    for candidate in filter(None, candidates):
        try:
            if subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
                              capture_output=True, timeout=30).returncode == 0:
                return candidate
        except OSError:
            continue
    return None


PYTHON38 = _python38()
needs_38 = pytest.mark.skipif(PYTHON38 is None, reason="no python3.8 on this machine")


def run(args, python=sys.executable, env=None, cwd=ROOT):
    return subprocess.run([python, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


def test_prints_one_json_document(check_document):
    out = run(["-m", "collectors", "--top", "3"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n") == 1  # compact: one line
    document = check_document(json.loads(out.stdout))
    assert document["errors"] == [] and len(document["processes"]["top"]) <= 6


def test_only_and_pretty(check_document):
    out = run(["-m", "collectors", "--only", "cpu,gpus", "--pretty"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('{\n  "schema_version": 1,')
    document = check_document(json.loads(out.stdout))
    assert [k for k in document if k in ("host", "cpu", "load", "gpus")] == ["cpu", "gpus"]


def test_an_unknown_subsystem_is_a_usage_error():
    out = run(["-m", "collectors", "--only", "cpu,disk"])
    assert out.returncode == 2 and "unknown subsystem(s): disk" in out.stderr


@needs_38
@pytest.mark.parametrize("use_psutil", ["1", ""])
def test_runs_on_python_3_8(check_document, use_psutil):
    out = run(["-m", "collectors"], python=PYTHON38, env={"FLEETSCOPE_PSUTIL": use_psutil})
    assert out.returncode == 0, out.stderr
    document = check_document(json.loads(out.stdout))
    assert document["errors"] == [] and document["host"]["python"].startswith("3.8.")


@pytest.mark.parametrize("python", [sys.executable, PYTHON38])
def test_the_staged_package_runs_with_its_shipped_pynvml(tmp_path, check_document, python):
    if python is None:
        pytest.skip("no python3.8 on this machine")
    module_utils = stage_module_utils(tmp_path)
    staged = module_utils / PACKAGE
    assert (staged / "pynvml_shipped.py").exists()
    assert not [p for p in staged.iterdir() if p.is_dir() and p.name != "__pycache__"]  # flat
    code = (f"import json, sys; sys.path.insert(0, sys.argv[1]); import {PACKAGE} as c; from {PACKAGE} import gpus; "
            "print(json.dumps(dict(c.collect(top_n=2), shipped=gpus.load_pynvml().__name__)))")
    out = run(["-c", code, str(module_utils)], python=python, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    assert document.pop("shipped") == PACKAGE + ".pynvml_shipped"
    check_document(document)
    assert document["errors"] == []
