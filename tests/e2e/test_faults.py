"""The fault matrix: one collect run over healthy hosts and every kind of broken host, all real (sshd on
loopback, a tarpit server, wrapped interpreters). The run ends in bounded time, the healthy hosts are
stored, and each broken host gets the right status and a readable reason."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests import faults, sshd
from tests.conftest import PROJECT, bare_python, fleetscope_bin, sql_json

pytestmark = pytest.mark.slow

HOST_TIMEOUT, CONNECT_TIMEOUT = 5, 3
EXPECTED = {
    "node1": "ok", "node2": "ok", "node3": "ok",
    "dead": "unreachable", "tarpit": "unreachable", "wrongkey": "unreachable",
    "unknownhost": "unreachable", "impostor": "unreachable",
    "hang": "ok", "stalled": "timeout",
    "nopython": "failed", "oldpython": "failed", "truncated": "failed", "garbage": "failed",
    "diskserror": "ok", "clockahead": "ok",
}


@pytest.fixture(scope="module")
def fault_run(sshd_fleet, tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    tarpit = faults.SilentServer("127.0.0.8")
    wrong_key = root / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
    node2, node3 = sshd_fleet.hosts[1], sshd_fleet.hosts[2]
    known = f"-o UserKnownHostsFile={sshd_fleet.known_hosts}"

    def line(name, address, port, python=None, key=sshd_fleet.key, known=known, own_connection=False):
        python = python or bare_python()
        # Ansible names its shared SSH connection after address, port and user only: a host that must log in
        # afresh (another key, another known_hosts) gets its own, or it could ride on another host's session,
        # which checked neither
        own = f" ansible_control_path=%(directory)s/{name}" if own_connection else ""
        return (f"{name} ansible_host={address} ansible_port={port} ansible_user={sshd_fleet.user} "
                f"ansible_ssh_private_key_file={key} ansible_python_interpreter={python} "
                f"ansible_ssh_common_args='{known}'{own}")

    # Host keys stay checked: a host not in known_hosts, and one that answers with another host's key (as a
    # man in the middle would), are refused, and known_hosts is left as it was.
    unknown = root / "known_hosts_empty"
    unknown.write_text("")
    impostor = root / "known_hosts_impostor"  # node3's address, but node1's key
    node1_key = sshd_fleet.known_hosts.read_text().splitlines()[0].split(" ", 1)[1]
    impostor.write_text(f"[{node3.address}]:{node3.port} {node1_key}\n")

    broken = [
        line("dead", "127.0.0.9", sshd.free_port("127.0.0.9")),
        line("tarpit", tarpit.address, tarpit.port),
        line("wrongkey", node2.address, node2.port, key=wrong_key, own_connection=True),
        line("nopython", node3.address, node3.port, python="/nonexistent/python3"),
        line("unknownhost", node2.address, node2.port, known=f"-o UserKnownHostsFile={unknown}",
             own_connection=True),
        line("impostor", node3.address, node3.port, known=f"-o UserKnownHostsFile={impostor}", own_connection=True),
    ]
    for name, fault in [("hang", "hang"), ("stalled", "stall"), ("diskserror", "disks_error"),
                        ("clockahead", "clock_ahead"), ("oldpython", "old_python"), ("truncated", "truncated"),
                        ("garbage", "garbage")]:
        broken.append(line(name, node3.address, node3.port, python=faults.interpreter(root, fault, bare_python())))
    inventory = root / "inventory.ini"
    inventory.write_text(sshd_fleet.inventory(bare_python(), extra=broken))
    config = root / "fleetscope.toml"
    config.write_text(f"[collect]\nhost_timeout_s = {HOST_TIMEOUT}\nconnect_timeout_s = {CONNECT_TIMEOUT}\n")
    env = dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=str(root / "cp"))
    started = time.monotonic()
    proc = subprocess.run(
        [*fleetscope_bin(), "collect", "--config", str(config), "--data", str(root / "data"),
         "--out", str(root / "site"), "--inventory", str(inventory), "--no-progress"],
        capture_output=True, text=True, timeout=300, env=env, cwd=PROJECT)
    elapsed = time.monotonic() - started
    tarpit.close()
    return root, proc, elapsed


def test_the_run_ends_in_bounded_time_with_exit_1(fault_run):
    _, proc, elapsed = fault_run
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # The hung host is stopped at its timeout, the stalled one at its task's bound (timeout + 15 s margin),
    # the tarpit at the connect timeout; nothing waits longer.
    assert elapsed < HOST_TIMEOUT + 15 + CONNECT_TIMEOUT + 30, elapsed


def test_the_output_has_one_line_per_host_that_is_not_ok(fault_run):
    """The tarpit's ssh said two lines ("... during banner exchange", "Connection to ... timed out"): the
    second stood alone in the output, a line of no host (cron's mail, grep)."""
    _, proc, _ = fault_run
    lines = proc.stdout.splitlines()
    hosts = [line.split(":")[0].strip() for line in lines if line.startswith("  ")]
    assert sorted(hosts) == sorted(h for h, status in EXPECTED.items() if status != "ok"), proc.stdout
    assert all(line.startswith(("run ", "  ", "report: ", "rollup: ")) for line in lines), proc.stdout


def test_every_host_gets_the_right_status(fault_run, run_fleetscope):
    root, proc, _ = fault_run
    rows = sql_json(run_fleetscope, root / "data", "SELECT host, status, message, errors FROM host_status")
    assert {r["host"]: r["status"] for r in rows} == EXPECTED, proc.stdout
    messages = {r["host"]: r["message"] or "" for r in rows}
    assert "Permission denied" in messages["wrongkey"]
    # fleetscope runs Ansible through ansible-runner, which turns host key checking off unless told not to
    for host in ("unknownhost", "impostor"):
        assert "Host key verification failed" in messages[host], messages[host]
    assert (root / "known_hosts_empty").read_text() == ""  # nothing was learnt from an unknown host
    # stopped at its time limit in disks: the rest of its document is stored, disks says why it is missing
    assert messages["hang"] == "disks: Timeout: did not finish: the collector's time limit (5 s) was reached"
    assert "20 second" in messages["stalled"], messages["stalled"]  # the task's bound: timeout + margin
    # Ansible's own module code refuses an old Python before ours runs, and says so plainly.
    assert "minimum of Python version 3.8" in messages["oldpython"] and "3.6.9" in messages["oldpython"]
    assert "/nonexistent/python3" in messages["nopython"]
    for host in ("dead", "tarpit", "truncated", "garbage"):
        assert messages[host], f"{host} has no reason"
    errors = {r["host"]: r["errors"] for r in rows}
    assert errors["diskserror"] == 1 and "disks" in messages["diskserror"]


def test_healthy_and_partly_broken_hosts_are_stored(fault_run, run_fleetscope):
    root, *_ = fault_run
    rows = sql_json(run_fleetscope, root / "data",
                    "SELECT host, fs_total_bytes, mem_total_bytes, clock_skew_s FROM host_samples ORDER BY host")
    got = {r["host"]: r for r in rows}
    assert sorted(got) == ["clockahead", "diskserror", "hang", "node1", "node2", "node3"]
    assert got["diskserror"]["fs_total_bytes"] is None and got["diskserror"]["mem_total_bytes"] > 0
    assert got["hang"]["fs_total_bytes"] is None and got["hang"]["mem_total_bytes"] > 0
    assert got["node1"]["fs_total_bytes"] > 0
    assert abs(got["clockahead"]["clock_skew_s"] - 3 * 3600) < 120
    assert abs(got["node1"]["clock_skew_s"]) < 120


@pytest.mark.parametrize("fault", ["hang", "stall"])
def test_the_hung_collector_is_not_left_running(fault_run, fault):
    """hang: the collector's own timeout stops it. stall: the interpreter never started the collector; the
    host's `timeout` ends it at the task's bound, when the controller stops waiting."""
    root, *_ = fault_run
    pid = int((root / fault / "pid").read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] if Path(f"/proc/{pid}").exists() else ""
        if state == "Z":
            break
        time.sleep(0.2)
    alive = Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    assert not alive, f"collector pid {pid} still running on the host"


def test_the_problems_page_names_each_bad_host_and_why(fault_run):
    import html

    root, *_ = fault_run
    page = html.unescape((root / "site" / "problems.html").read_text())
    for host, status in EXPECTED.items():
        if status != "ok":
            assert host in page, f"{host} ({status}) missing from the problems page"
    assert "Permission denied" in page and "timed out" in page
    assert "clockahead" in page  # its clock is three hours off
    assert "diskserror" in page and "disks: PermissionError" in page  # ok, but one subsystem failed
