"""Fixtures shared by the suites: real sshd servers on loopback and the real `fleetscope` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import sshd

PROJECT = Path(__file__).resolve().parent.parent


def bare_python() -> str:
    """The python3 a freshly installed host has (no psutil, no pynvml), to prove the role ships enough."""
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and os.path.exists(candidate):
            return candidate
    return sys.executable


def magic_of(python: str) -> bytes:
    """The magic number of `python`'s bytecode."""
    code = "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"
    return bytes.fromhex(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)


@pytest.fixture(scope="session")
def sshd_fleet(tmp_path_factory):
    """Three real sshd on 127.0.0.2-127.0.0.4, keys and known_hosts in a temp dir."""
    why = sshd.available()
    if why:
        pytest.skip(why)
    fleet = sshd.SshdFleet(tmp_path_factory.mktemp("sshd"), count=3).start()
    yield fleet
    fleet.stop()


def fleetscope_bin() -> list[str]:
    script = Path(sys.executable).parent / "fleetscope"
    return [str(script)] if script.exists() else [sys.executable, "-m", "fleetscope"]


@pytest.fixture
def run_fleetscope(tmp_path):
    """Run the installed `fleetscope` command with its data and site in tmp_path; return CompletedProcess."""

    def run(*args, timeout=300, env=None):
        full_env = dict(os.environ)
        full_env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(tmp_path / "cp")
        full_env["FLEETSCOPE_OUT"] = str(tmp_path / "site")  # never the checkout's own site/
        full_env.pop("FLEETSCOPE_CONFIG", None)
        full_env.update(env or {})
        return subprocess.run(
            [*fleetscope_bin(), *args], capture_output=True, text=True, timeout=timeout, env=full_env,
            cwd=PROJECT,
        )

    return run


def sql_json(run, data_dir: Path, query: str) -> list[dict]:
    proc = run("sql", "--data", str(data_dir), "--format", "json", query)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
