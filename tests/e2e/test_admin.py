"""`fleetscope admin` on a real sshd host: a test process is terminated for real, refused when it is not
what the report showed, left alone in check mode; every action lands in admin_actions."""

from __future__ import annotations

import os
import secrets
import subprocess
import time

import pytest

from collectors._util import owner_and_command
from tests.conftest import PROJECT, bare_python, fleetscope_bin, sql_json


@pytest.fixture
def admin(sshd_fleet, tmp_path):
    node = sshd_fleet.hosts[0]
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"[lab]\nnode1 ansible_host={node.address} ansible_port={node.port} ansible_user={sshd_fleet.user} "
        f"ansible_ssh_private_key_file={sshd_fleet.key} ansible_python_interpreter={bare_python()} "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd_fleet.known_hosts}'\n")
    data = tmp_path / "data"

    def run(*args, stdin=None):
        return subprocess.run([*fleetscope_bin(), "admin", *args, "-i", str(inventory), "--data", str(data),
                               "--no-become"], cwd=PROJECT, capture_output=True, text=True, timeout=120,
                              input=stdin, env=dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp")))

    run.data = data
    return run


@pytest.fixture
def victim():
    proc = subprocess.Popen([bare_python(), "-c", "import time; time.sleep(300)", f"victim-{secrets.token_hex(4)}",
                             "--api-key=abc"])
    deadline = time.monotonic() + 5
    while owner_and_command(proc.pid)[1] is None or "victim-" not in owner_and_command(proc.pid)[1]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield proc
    proc.kill()
    proc.wait()


def test_kill_check_refuse_and_do(admin, victim, run_fleetscope):
    user, command = owner_and_command(victim.pid)  # what the report showed (redacted as collected)
    assert "<redacted>" in command

    not_asked = admin("kill", "node1", str(victim.pid), "--user", user, "--command", command)
    assert not_asked.returncode == 2 and "not confirmed" in not_asked.stderr

    check = admin("kill", "node1", str(victim.pid), "--user", user, "--command", command, "--check")
    assert check.returncode == 0 and "would send SIGTERM" in check.stdout, check.stdout + check.stderr
    assert victim.poll() is None

    wrong = admin("kill", "node1", str(victim.pid), "--user", "mallory", "--command", command, "--yes")
    assert wrong.returncode == 1 and "refusing" in wrong.stdout, wrong.stdout + wrong.stderr
    assert victim.poll() is None

    done = admin("kill", "node1", str(victim.pid), "--user", user, "--command", command, "--yes")
    assert done.returncode == 0 and "it ended" in done.stdout, done.stdout + done.stderr
    assert victim.wait(5) is not None

    rows = sql_json(run_fleetscope, admin.data,
                    "SELECT action, target, check_mode, status, changed FROM admin_actions ORDER BY ts")
    assert [(r["check_mode"], r["status"], r["changed"]) for r in rows] == [
        (True, "ok", True), (False, "failed", False), (False, "ok", True)]
    assert {r["target"] for r in rows} == {f"pid {victim.pid}"}


def test_gpu_actions_on_a_host_without_a_driver_say_so(admin):
    proc = admin("maintenance", "node1", "on", "--check")
    assert proc.returncode == 1 and "no NVIDIA driver" in proc.stdout, proc.stdout + proc.stderr
    proc = admin("power-limit", "node1", "--gpu", "0", "--watts", "300", "--yes")
    assert proc.returncode == 1 and "no NVIDIA driver" in proc.stdout


def test_an_unknown_host_is_refused_before_anything_runs(admin):
    proc = admin("maintenance", "nosuch", "on", "--yes")
    assert proc.returncode == 2 and "not in" in proc.stderr
