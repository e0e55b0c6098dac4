"""`fleetscope admin` on a real sshd host: a test process is terminated for real, refused when it is not
what the report showed, left alone in check mode; the NVIDIA actions (maintenance, power limit) change
the settings of the fake two-H100 host (tests/fake_gpu_host.py: the host's python3 sees the fake NVML,
whose settings persist in a state file) as NVML would, or are refused; every action lands in admin_actions."""

from __future__ import annotations

import os
import secrets
import subprocess
import time

import duckdb
import pytest

from collectors._util import owner_and_command
from tests.conftest import PROJECT, bare_python, fleetscope_bin, sql_json
from tests.fake_gpu_host import FakeGpuHost

DEFAULT, PROHIBITED = 0, 2  # NVML_COMPUTEMODE_*


def admin_runner(sshd_fleet, tmp_path, python):
    """Run `fleetscope admin ... node1` against the first loopback sshd, node1 using `python`."""
    node = sshd_fleet.hosts[0]
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"[lab]\nnode1 ansible_host={node.address} ansible_port={node.port} ansible_user={sshd_fleet.user} "
        f"ansible_ssh_private_key_file={sshd_fleet.key} ansible_python_interpreter={python} "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd_fleet.known_hosts}'\n")
    data = tmp_path / "data"
    data.mkdir()  # as `fleetscope collect` leaves it

    def run(*args, stdin=None):
        return subprocess.run([*fleetscope_bin(), "admin", *args, "-i", str(inventory), "--data", str(data),
                               "--no-become"], cwd=PROJECT, capture_output=True, text=True, timeout=120,
                              input=stdin, env=dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp")))

    run.data = data
    return run


@pytest.fixture
def admin(sshd_fleet, tmp_path):
    """node1 as a freshly installed host: no NVIDIA driver."""
    return admin_runner(sshd_fleet, tmp_path, bare_python())


@pytest.fixture
def gpu_host(tmp_path):
    """The fake two-H100 host's settings, freshly booted (compute mode default, 700 W) and, as if root,
    allowed to change them."""
    return FakeGpuHost(tmp_path / "gpuhost", bare_python(), privileged=True)


@pytest.fixture
def gpu_admin(sshd_fleet, tmp_path, gpu_host):
    """node1 as the fake two-H100 host."""
    return admin_runner(sshd_fleet, tmp_path, gpu_host.python)


def modes(gpu_host):
    return [gpu_host.gpu(i)["compute_mode"] for i in (0, 1)]


def limits(gpu_host):
    return [gpu_host.gpu(i)["power_limit_mw"] for i in (0, 1)]


def recorded(run_fleetscope, data):
    return [(r["action"], r["target"], r["check_mode"], r["status"], r["changed"]) for r in sql_json(
        run_fleetscope, data, "SELECT action, target, check_mode, status, changed FROM admin_actions ORDER BY ts")]


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
    assert not_asked.stderr.count(f"pid {victim.pid}") == 1, not_asked.stderr  # said once

    check = admin("kill", "node1", str(victim.pid), "--user", user, "--command", command, "--check")
    assert check.returncode == 0 and "would send SIGTERM" in check.stdout, check.stdout + check.stderr
    assert victim.poll() is None

    wrong = admin("kill", "node1", str(victim.pid), "--user", "mallory", "--command", command, "--yes")
    assert wrong.returncode == 1 and "refusing" in wrong.stdout, wrong.stdout + wrong.stderr
    assert victim.poll() is None

    # the right user, but the pid runs another command than the report showed: refused as well
    other = command.replace("victim-", "other-")
    wrong_command = admin("kill", "node1", str(victim.pid), "--user", user, "--command", other, "--yes")
    assert wrong_command.returncode == 1 and "refusing" in wrong_command.stdout, (
        wrong_command.stdout + wrong_command.stderr)
    assert f"not {other!r} as {user}" in wrong_command.stdout, wrong_command.stdout
    assert victim.poll() is None

    done = admin("kill", "node1", str(victim.pid), "--user", user, "--command", command, "--yes")
    assert done.returncode == 0 and "it ended" in done.stdout, done.stdout + done.stderr
    assert victim.wait(5) is not None

    rows = sql_json(run_fleetscope, admin.data,
                    "SELECT action, target, check_mode, status, changed FROM admin_actions ORDER BY ts")
    assert [(r["check_mode"], r["status"], r["changed"]) for r in rows] == [
        (True, "ok", True), (False, "failed", False), (False, "failed", False), (False, "ok", True)]
    assert {r["target"] for r in rows} == {f"pid {victim.pid}"}
    # the DuckDB CLI's file sees the table's first rows at once, not after the next collect's ingest
    with duckdb.connect(str(admin.data / "fleet.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM admin_actions").fetchone() == (4,)


def test_gpu_actions_on_a_host_without_a_driver_say_so(admin):
    proc = admin("maintenance", "node1", "on", "--check")
    assert proc.returncode == 1 and "no NVIDIA driver" in proc.stdout, proc.stdout + proc.stderr
    proc = admin("power-limit", "node1", "--gpu", "0", "--watts", "300", "--yes")
    assert proc.returncode == 1 and "no NVIDIA driver" in proc.stdout
    assert "traceback unavailable" not in proc.stdout  # ansible-core 2.19's placeholder is no reason


def test_a_signal_sent_to_a_process_that_stays_is_recorded_as_a_change(admin, run_fleetscope):
    stubborn = subprocess.Popen([bare_python(), "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(300)",
                                 f"stubborn-{secrets.token_hex(4)}"], stdout=subprocess.PIPE, text=True)
    try:
        assert stubborn.stdout.readline() == "ready\n"
        user, command = owner_and_command(stubborn.pid)
        proc = admin("kill", "node1", str(stubborn.pid), "--user", user, "--command", command, "--wait", "1", "--yes")
        assert proc.returncode == 1 and "still running after 1 s (add --force to send SIGKILL)" in proc.stdout, (
            proc.stdout + proc.stderr)
        assert stubborn.poll() is None
        assert recorded(run_fleetscope, admin.data) == [("kill", f"pid {stubborn.pid}", False, "failed", True)]
    finally:
        stubborn.kill()
        stubborn.wait()


@pytest.mark.parametrize("args, why", [(("1",), "the pid must be above 1"), (("-5",), "the pid must be above 1"),
                                       (("4242", "--wait", "-1"), "--wait must be >= 0")])
def test_a_kill_that_cannot_be_meant_is_refused_before_anything_runs(admin, args, why):
    proc = admin("kill", "node1", *args, "--user", "root", "--command", "x", "--yes")
    assert proc.returncode == 2 and why in proc.stderr and not (admin.data / "admin_actions").exists()


@pytest.mark.parametrize("args, why", [
    (("kill", "node1", "4242", "--user", "root", "--command", "x", "--started", "garbage"),
     "--started is not a time as the report shows it"),
    (("maintenance", "node1", "on", "--gpu", "-1"), "--gpu is a GPU index, 0 or more, not -1"),
    (("power-limit", "node1", "--gpu", "0", "--watts", "-5"), "--watts must be a positive number of watts, not -5"),
    (("power-limit", "node1", "--gpu", "0", "--watts", "nan"), "not nan"),
    (("power-limit", "node1", "--gpu", "0", "--watts", "inf"), "not inf"),
])
def test_arguments_no_host_could_take_are_a_usage_error_not_a_hosts_failure(admin, args, why):
    """Walkthrough: these went to the host, failed there, exited 1 and were recorded as the host's failure."""
    proc = admin(*args, "--yes")
    assert proc.returncode == 2 and why in proc.stderr, proc.stdout + proc.stderr
    assert not (admin.data / "admin_actions").exists()


def test_no_confirmation_from_a_closed_stdin_is_a_no(admin):
    proc = subprocess.run([*fleetscope_bin(), "admin", "maintenance", "node1", "on", "--data", str(admin.data)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          preexec_fn=lambda: os.close(0))  # started with no stdin at all
    assert proc.returncode == 2 and "not confirmed" in proc.stderr and "Traceback" not in proc.stderr


def test_a_data_folder_that_is_not_there_is_refused_before_anything_runs(admin, victim, tmp_path):
    user, command = owner_and_command(victim.pid)
    typo = tmp_path / "dta"
    proc = subprocess.run([*fleetscope_bin(), "admin", "kill", "node1", str(victim.pid), "--user", user,
                           "--command", command, "--yes", "--data", str(typo)], cwd=PROJECT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "no data folder" in proc.stderr, proc.stdout + proc.stderr
    assert victim.poll() is None and not typo.exists()


def test_an_unknown_host_is_refused_before_anything_runs(admin):
    proc = admin("maintenance", "nosuch", "on", "--yes")
    assert proc.returncode == 2 and "not in" in proc.stderr


def test_maintenance_check_one_gpu_whole_host_and_off(gpu_admin, gpu_host, run_fleetscope):
    def ok(*args):
        proc = gpu_admin("maintenance", "node1", *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    out = ok("on", "--check")
    assert "(check mode): would set compute mode prohibited on GPU 0, 1" in out, out
    assert modes(gpu_host) == [DEFAULT, DEFAULT]

    out = ok("on", "--gpu", "1", "--yes")
    assert "node1: ok: set compute mode prohibited on GPU 1" in out, out
    assert modes(gpu_host) == [DEFAULT, PROHIBITED]

    out = ok("on", "--yes")
    assert "set compute mode prohibited on GPU 0; GPU 1 already prohibited" in out, out
    assert modes(gpu_host) == [PROHIBITED, PROHIBITED]

    out = ok("on", "--yes")  # again: nothing to do, changed=false
    assert "GPU 0, 1 compute mode already prohibited: nothing to do" in out, out

    out = ok("off", "--check")
    assert "would set compute mode default on GPU 0, 1" in out, out
    assert modes(gpu_host) == [PROHIBITED, PROHIBITED]

    out = ok("off", "--gpu", "0", "--yes")
    assert "set compute mode default on GPU 0" in out, out
    assert modes(gpu_host) == [DEFAULT, PROHIBITED]

    out = ok("off", "--yes")
    assert "set compute mode default on GPU 1; GPU 0 already default" in out, out
    assert modes(gpu_host) == [DEFAULT, DEFAULT]

    assert recorded(run_fleetscope, gpu_admin.data) == [
        ("maintenance", "all gpus", True, "ok", True),
        ("maintenance", "gpu 1", False, "ok", True),
        ("maintenance", "all gpus", False, "ok", True),
        ("maintenance", "all gpus", False, "ok", False),
        ("maintenance", "all gpus", True, "ok", True),
        ("maintenance", "gpu 0", False, "ok", True),
        ("maintenance", "all gpus", False, "ok", True),
    ]


def test_power_limit_within_constraints_in_milliwatts_refused_outside(gpu_admin, gpu_host, run_fleetscope):
    proc = gpu_admin("power-limit", "node1", "--gpu", "0", "--watts", "300", "--check")
    assert proc.returncode == 0 and "(check mode): would set GPU 0 power limit 700 W -> 300 W" in proc.stdout, (
        proc.stdout + proc.stderr)
    assert limits(gpu_host) == [700_000, 700_000]

    proc = gpu_admin("power-limit", "node1", "--gpu", "0", "--watts", "300", "--yes")
    assert proc.returncode == 0 and "node1: ok: set GPU 0 power limit 700 W -> 300 W" in proc.stdout, proc.stdout
    assert limits(gpu_host) == [300_000, 700_000]

    proc = gpu_admin("power-limit", "node1", "--gpu", "0", "--watts", "300", "--yes")
    assert proc.returncode == 0 and "GPU 0 power limit already 300 W: nothing to do" in proc.stdout, proc.stdout

    proc = gpu_admin("power-limit", "node1", "--gpu", "1", "--watts", "412.5", "--yes")
    assert proc.returncode == 0 and "set GPU 1 power limit 700 W -> 412.5 W" in proc.stdout, proc.stdout
    assert limits(gpu_host) == [300_000, 412_500]

    proc = gpu_admin("power-limit", "node1", "--gpu", "0", "--watts", "800", "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "refusing: GPU 0 accepts 200 W to 700 W, not 800 W: nothing changed" in proc.stdout, proc.stdout
    proc = gpu_admin("power-limit", "node1", "--gpu", "0", "--watts", "150", "--check")
    assert proc.returncode == 1 and "accepts 200 W to 700 W, not 150 W" in proc.stdout, proc.stdout
    proc = gpu_admin("power-limit", "node1", "--gpu", "2", "--watts", "300", "--yes")
    assert proc.returncode == 1 and "no GPU 2 on this host (it has GPU 0-1)" in proc.stdout, proc.stdout
    assert limits(gpu_host) == [300_000, 412_500]

    assert recorded(run_fleetscope, gpu_admin.data) == [
        ("power_limit", "gpu 0", True, "ok", True),
        ("power_limit", "gpu 0", False, "ok", True),
        ("power_limit", "gpu 0", False, "ok", False),
        ("power_limit", "gpu 1", False, "ok", True),
        ("power_limit", "gpu 0", False, "failed", False),
        ("power_limit", "gpu 0", True, "failed", False),
        ("power_limit", "gpu 2", False, "failed", False),
    ]


def test_without_root_nvml_refuses_and_nothing_changes(gpu_admin, gpu_host, run_fleetscope):
    gpu_host.set_privileged(False)  # NVML answers NO_PERMISSION to a setter, as to a user who is not root

    proc = gpu_admin("maintenance", "node1", "on", "--gpu", "0", "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "node1: failed: maintenance on failed: not permitted (Insufficient Permissions): this action needs " \
        "root on the host (become)" in proc.stdout, proc.stdout
    proc = gpu_admin("power-limit", "node1", "--gpu", "1", "--watts", "500", "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "power limit failed: not permitted (Insufficient Permissions): this action needs root" in proc.stdout
    assert modes(gpu_host) == [DEFAULT, DEFAULT] and limits(gpu_host) == [700_000, 700_000]

    assert recorded(run_fleetscope, gpu_admin.data) == [
        ("maintenance", "gpu 0", False, "failed", False),
        ("power_limit", "gpu 1", False, "failed", False),
    ]


def test_an_action_that_could_not_be_recorded_is_not_run(gpu_admin, gpu_host, tmp_path):
    """Every action is on record: where admin_actions cannot be written (a data folder of another user, a
    full disk), nothing is done. It changed the GPU, then said "nothing was changed" (exit 2)."""
    (gpu_admin.data / "admin_actions").write_text("")  # not a folder: nothing can be written in it
    proc = gpu_admin("power-limit", "node1", "--gpu", "0", "--watts", "300", "--yes")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot record the action" in proc.stderr and "nothing was done" in proc.stderr
    assert limits(gpu_host) == [700_000, 700_000]
    missing = subprocess.run([*fleetscope_bin(), "admin", "power-limit", "node1", "--gpu", "0", "--watts", "300",
                              "--yes", "-i", str(tmp_path / "nosuch.ini"), "--data", str(gpu_admin.data)],
                             cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr
    assert "inventory not found" in missing.stderr


def test_an_interrupted_action_exits_130_and_is_recorded_as_not_known(admin, run_fleetscope):
    """Ctrl-C while the host acts (here: waiting for a process that ignores SIGTERM): the signal may have been
    sent. It was recorded as a timeout that changed nothing, exit 1."""
    import signal

    termed = admin.data.parent / f"termed-{secrets.token_hex(4)}"  # written when SIGTERM reaches it
    stubborn = subprocess.Popen([bare_python(), "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, "
                                 "lambda *_: open(sys.argv[1], 'w').close()); time.sleep(300)", str(termed),
                                 f"stubborn-{secrets.token_hex(4)}"])
    try:
        deadline = time.monotonic() + 5
        while owner_and_command(stubborn.pid)[1] is None or "stubborn-" not in owner_and_command(stubborn.pid)[1]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        user, command = owner_and_command(stubborn.pid)
        proc = subprocess.Popen(
            [*fleetscope_bin(), "admin", "kill", "node1", str(stubborn.pid), "--user", user, "--command", command,
             "--wait", "60", "--yes", "-i", str(admin.data.parent / "inventory.ini"), "--data", str(admin.data),
             "--no-become"], cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=str(admin.data.parent / "cp")))
        deadline = time.monotonic() + 60
        while not termed.exists():  # connected, signal sent: the action now waits for the process to end
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.5)  # the action is in its wait by now (it polls the process after the signal)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        stubborn.kill()
        stubborn.wait()
    assert proc.returncode == 130, out + err
    assert "interrupted" in out and "Traceback" not in err
    assert recorded(run_fleetscope, admin.data) == [("kill", f"pid {stubborn.pid}", False, "interrupted", None)]


def test_kill_refuses_a_process_that_started_at_another_time(admin, victim, run_fleetscope):
    """The same pid, user and command as the report showed, but started at another time: a job restarted on
    a reused pid. Given the start time the report shows (--started), kill refuses it; the right one is hit."""
    import datetime

    from collectors._util import boot_time, user_hz

    user, command = owner_and_command(victim.pid)
    with open(f"/proc/{victim.pid}/stat", "rb") as f:
        ticks = int(f.read().rsplit(b")", 1)[-1].split()[19])
    started = datetime.datetime.fromtimestamp(boot_time() + ticks / user_hz(), datetime.timezone.utc)
    shown = started.strftime("%Y-%m-%d %H:%M")  # as the report's process table shows it
    earlier = (started - datetime.timedelta(hours=2)).strftime("%Y-%m-%d %H:%M")
    blank = admin("kill", "node1", str(victim.pid), "--user", user, "--command", command, "--started", "  ",
                  "--check")  # blank: no check of the start, here and on the host (which read "  " as a time)
    assert blank.returncode == 0 and "would send SIGTERM" in blank.stdout, blank.stdout + blank.stderr
    wrong = admin("kill", "node1", str(victim.pid), "--user", user, "--command", command, "--started", earlier,
                  "--yes")
    assert wrong.returncode == 1 and "refusing" in wrong.stdout and "started at" in wrong.stdout, wrong.stdout
    assert victim.poll() is None
    # a start two hours after this process's (a time mistyped, or another process's): refused too, as the
    # earlier one was; only the minute shown (and seconds either side) matches
    later = (started + datetime.timedelta(hours=2)).strftime("%Y-%m-%d %H:%M")
    too_late = admin("kill", "node1", str(victim.pid), "--user", user, "--command", command, "--started", later,
                     "--yes")
    assert too_late.returncode == 1 and "refusing" in too_late.stdout and f"not {later}" in too_late.stdout, (
        too_late.stdout + too_late.stderr)
    assert victim.poll() is None
    done = admin("kill", "node1", str(victim.pid), "--user", user, "--command", command, "--started", shown,
                 "--yes")
    assert done.returncode == 0 and "it ended" in done.stdout, done.stdout + done.stderr
    # the blank --check first, then the two refused, then the one done
    assert [r[3] for r in recorded(run_fleetscope, admin.data)] == ["ok", "failed", "failed", "ok"]
