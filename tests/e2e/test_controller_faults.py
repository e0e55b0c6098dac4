"""The controller under abuse: overlapping runs, kill -9 at random moments, an unwritable data folder."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetscope.lock import Busy, DataLock
from fleetscope.spool import Spool
from fleetscope.warehouse import connect, partitions
from tests.conftest import PROJECT, fleetscope_bin

pytestmark = pytest.mark.slow


def local_inventory(path: Path, hosts: int = 3, python: str | None = None) -> Path:
    """Hosts on this machine over Ansible's local connection: the controller is what is under test here."""
    interp = python or "{{ ansible_playbook_python }}"
    path.write_text("[local]\n" + "".join(
        f'local{i} ansible_connection=local ansible_python_interpreter="{interp}"\n' for i in range(hosts)))
    return path


def start(*args, data: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([*fleetscope_bin(), *args, "--data", str(data)], cwd=PROJECT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=site_beside(data), **kw)


def site_beside(data: Path) -> dict:
    """The environment for a run whose site goes beside its data, never into the checkout's site/."""
    return dict(os.environ, FLEETSCOPE_OUT=str(data.parent / "site"))


def holds_lock(data: Path) -> bool:
    try:
        with DataLock(data):
            return False
    except Busy:
        return True


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_a_second_run_exits_75_at_once_and_the_first_finishes(tmp_path):
    data = tmp_path / "data"
    slow = local_inventory(tmp_path / "inv.ini", hosts=2)
    first = start("collect", "--inventory", str(slow), "--no-report", data=data)
    # the run has begun under the lock (its spool folder): not probed by taking the lock, which, held for an
    # instant by this process, could be the one the first run meets (it then exits 75 and never holds it)
    wait_for(lambda: list((data / "spool").glob("*/run.json")))
    assert holds_lock(data)
    t = time.monotonic()
    second = subprocess.run([*fleetscope_bin(), "collect", "--inventory", str(slow), "--data", str(data)],
                            cwd=PROJECT, capture_output=True, text=True, timeout=60, env=site_beside(data))
    assert second.returncode == 75 and "another fleetscope run" in second.stderr
    assert time.monotonic() - t < 10
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    con = connect(data)
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    con.close()


def test_kill_9_at_random_moments_never_corrupts_or_loses_spooled_data(tmp_path):
    data = tmp_path / "data"
    inventory = local_inventory(tmp_path / "inv.ini", hosts=3)
    rng = random.Random(20261126)
    spooled: set[str] = set()
    kills = 0
    home_tmp = Path.home() / ".ansible" / "tmp"
    before = set(home_tmp.iterdir()) if home_tmp.exists() else set()
    collect, rollup = ["collect", "--inventory", str(inventory)], ["rollup"]
    # How long each command takes here, uninterrupted: the kills land at random moments inside that span,
    # whatever the speed of the machine (or of the code).
    took = {}
    for command in (collect, collect, rollup):  # the second collect's time: the first also builds a first site
        t = time.monotonic()
        proc = start(*command, data=data)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
        took[command[0]] = time.monotonic() - t
    for i in range(20):
        command = rollup if i % 5 == 4 else collect
        proc = start(*command, data=data, start_new_session=True)
        time.sleep(rng.uniform(0.02, 0.8) * took[command[0]])
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(60)
        # What the killed run had spooled, host results included, must reach the warehouse later.
        spool = Spool(data)
        for run_id in spool.pending():
            if any(p.name != "run.json" for p in spool.run_dir(run_id).glob("*.json")):
                spooled.add(run_id)
        assert_consistent(data)
    assert kills >= 15, f"the kill moments should mostly land inside a run: {kills} of 20 did"
    final = subprocess.run([*fleetscope_bin(), "collect", "--inventory", str(inventory), "--data", str(data)],
                           cwd=PROJECT, capture_output=True, text=True, timeout=300, env=site_beside(data))
    assert final.returncode == 0, final.stdout + final.stderr
    assert not Spool(data).pending()
    con = connect(data)
    stored = {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()}
    con.close()
    assert spooled <= stored, f"spooled but never stored: {spooled - stored}"
    assert_consistent(data)
    # a killed writer's temp files are left to a later run's sweep, once old enough not to be a live write's
    partitions.sweep_temp(data, now=time.time() + partitions.STALE_TEMP_S + 1)
    assert not list(data.glob("*/date=*/.*")), "temp files left behind"
    assert not [*tmp_path.glob(".site.new-*"), *tmp_path.glob(".site.old-*")], "a killed build's folder was left"
    # Ansible's temporary folders of killed runs stay under the data folder (swept an hour later), not in ~
    assert (set(home_tmp.iterdir()) if home_tmp.exists() else set()) <= before


def assert_consistent(data: Path) -> None:
    """The warehouse opens, every view reads, and no (run, host) is stored twice."""
    if not data.exists():
        return
    con = connect(data)
    try:
        for table in ("runs", "host_status", "host_samples", "hosts", "gpu_hourly", "host_hourly"):
            con.execute(f"SELECT count(*) FROM {table}").fetchone()
        dup = con.execute("SELECT run_id, host, count(*) FROM host_status GROUP BY ALL HAVING count(*) > 1").fetchall()
        assert not dup, dup
        dup = con.execute("SELECT run_id, host, count(*) FROM host_samples GROUP BY ALL HAVING count(*) > 1").fetchall()
        assert not dup, dup
        dup = con.execute("SELECT run_id, count(*) FROM runs GROUP BY ALL HAVING count(*) > 1").fetchall()
        assert not dup, dup
    finally:
        con.close()


def test_an_unwritable_data_folder_is_a_clear_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "spool").write_text("not a folder")  # the spool cannot be created: like a read-only mount
    proc = subprocess.run([*fleetscope_bin(), "collect", "--inventory",
                           str(local_inventory(tmp_path / "inv.ini", hosts=1)), "--data", str(data)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=120, env=site_beside(data))
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr and "cannot write" in proc.stderr and str(data / "spool") in proc.stderr
    assert not list(data.rglob("*.parquet"))


def test_sigterm_stops_ansible_at_once_and_keeps_what_came_back(tmp_path):
    """cron or a person stops a run while one host hangs: Ansible stops within seconds (not at the host
    timeout), the answered host's document is kept and stored by the next run, and the exit says so."""
    from tests import faults

    data = tmp_path / "data"
    hung = faults.interpreter(tmp_path / "faults", "hang", sys.executable)
    inventory = tmp_path / "inv.ini"
    inventory.write_text(f"[local]\nfast ansible_connection=local ansible_python_interpreter={sys.executable}\n"
                         f"stuck ansible_connection=local ansible_python_interpreter={hung}\n")
    config = tmp_path / "fleetscope.toml"
    config.write_text("[collect]\nhost_timeout_s = 120\n")
    proc = start("collect", "--config", str(config), "--inventory", str(inventory), "--no-report", data=data)
    try:
        wait_for(lambda: list((data / "spool").glob("*/fast.json")), timeout=60)
        wait_for(lambda: (tmp_path / "faults" / "hang" / "pid").exists(), timeout=30)
        out, err, stopped_in = stop(proc, signal.SIGTERM)
        # nothing of the run outlives it: Ansible's worker for the stuck host (which had left ansible-playbook's
        # process group, which ansible-runner kills) ran on to the host timeout, and its command with it
        hung = int((tmp_path / "faults" / "hang" / "pid").read_text())
        wait_for(lambda: not faults.alive(hung), timeout=10)
    finally:
        proc.kill()
        pid = tmp_path / "faults" / "hang" / "pid"
        if pid.exists():
            try:
                os.kill(int(pid.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert proc.returncode == 130, out + err
    assert "interrupted" in err and "1 host result(s)" in err and "Traceback" not in err
    assert "the 1 host(s) that had not answered are left out of it" in err
    assert stopped_in < 15  # the runner asks every second whether to stop; the host timeout is 120 s
    assert not run_files(data)
    after = subprocess.run([*fleetscope_bin(), "ingest", "--data", str(data)], cwd=PROJECT,
                           capture_output=True, text=True, timeout=120, env=site_beside(data))
    assert after.returncode == 0, after.stderr
    con = connect(data)
    try:
        # the stuck host is not stored as failing: the run was stopped, not by it (it shows as silent)
        assert con.execute("SELECT host, status, message FROM host_status ORDER BY host").fetchall() == [
            ("fast", "ok", None)]
        assert con.execute("SELECT hosts_total, hosts_ok, hosts_failed FROM runs").fetchall() == [(1, 1, 0)]
    finally:
        con.close()


def test_an_interrupted_hosts_check_exits_130_and_blames_no_host(tmp_path):
    """Ctrl-C in `hosts check` read as the stuck host's timeout, exit 1: a host was blamed for the operator's
    stop. Now the host is "interrupted", and the command exits 130."""
    from tests import faults

    data = tmp_path / "data"
    data.mkdir()
    hung = faults.interpreter(tmp_path / "faults", "stall", sys.executable)
    inventory = tmp_path / "inv.ini"
    inventory.write_text(f"[local]\nstuck ansible_connection=local ansible_python_interpreter={hung}\n")
    config = tmp_path / "fleetscope.toml"
    config.write_text("[collect]\nhost_timeout_s = 120\n")
    proc = start("hosts", "check", "--config", str(config), "--inventory", str(inventory), data=data)
    try:
        wait_for(lambda: (tmp_path / "faults" / "stall" / "pid").exists(), timeout=60)
        out, err, stopped_in = stop(proc, signal.SIGINT)
    finally:
        proc.kill()
        end(tmp_path / "faults" / "stall" / "pid")
    assert proc.returncode == 130, out + err
    assert "fleetscope hosts check: interrupted" in err and "Traceback" not in err
    assert "stuck: interrupted before this host answered" in out and "time limit" not in out
    assert stopped_in < 15


def test_an_interrupt_before_any_host_answered_stores_no_run(tmp_path, monkeypatch):
    """Ctrl-C before the hosts answer: they are not the run's fault, so none is stored as failing (the problems
    page, their "status since"), and a run of no results is not stored as the fleet's latest."""
    from fleetscope import collect
    from fleetscope.settings import Settings
    from fleetscope.warehouse import ingest_pending

    settings = Settings()
    settings.values["storage"]["data_dir"] = str(tmp_path / "data")
    sent = []

    def host_result(event, *args):  # the signal as the play starts (its hosts known); no host's answer counts
        if not sent and event.get("event") == "playbook_on_play_start":
            sent.append(os.kill(os.getpid(), signal.SIGINT))  # the runner's handler notes it, the run stops
        return None

    monkeypatch.setattr(collect, "host_result", host_result)
    with pytest.raises(collect.CollectError) as raised:
        collect.run_collect(settings, inventory=local_inventory(tmp_path / "inv.ini", hosts=2))
    assert sent
    assert isinstance(raised.value, collect.CollectInterrupted), raised.value
    assert "before any host answered: nothing was collected" in str(raised.value)
    assert Spool(tmp_path / "data").pending() == []
    assert ingest_pending(tmp_path / "data").runs == []


@pytest.mark.parametrize("ansible", ["exiting", "gone"])
def test_an_interrupt_as_the_run_ends_after_every_host_answered_is_not_lost(tmp_path, monkeypatch, ansible):
    """The run returns at Ansible's last event while ansible-playbook exits ("exiting"), or once it is gone;
    a SIGINT that came as it ended was taken by ansible-runner's handler and lost: the run was stored, the
    report made, exit 1 or 0."""
    import threading

    from fleetscope import collect
    from fleetscope.settings import Settings

    settings = Settings()
    settings.values["storage"]["data_dir"] = str(tmp_path / "data")
    real_update, real_close = collect.update_host_pythons, collect.Progress.close

    def close(self):  # as the wait for the hosts ends: "gone" waits for the runner, so the end takes that path
        real_close(self)
        if ansible == "gone":
            for thread in threading.enumerate():
                if thread.name == "ansible-runner":
                    thread.join(60)

    monkeypatch.setattr(collect.Progress, "close", close)

    def update(*args, **kw):  # as the run ends
        os.kill(os.getpid(), signal.SIGINT)
        return real_update(*args, **kw)

    monkeypatch.setattr(collect, "update_host_pythons", update)
    with pytest.raises(collect.CollectInterrupted, match=r"the 2 host result\(s\)"):
        collect.run_collect(settings, inventory=local_inventory(tmp_path / "inv.ini", hosts=2))
    (run_id,) = Spool(tmp_path / "data").pending()  # kept for the next run
    run, _ = Spool(tmp_path / "data").read(run_id)
    assert sorted(r["host"] for r in run.results) == ["local0", "local1"]


def run_files(data: Path) -> list[Path]:
    """What a run hands Ansible and its action in <data>/.runner, which the run removes when it ends: the
    hosts' hints, the play's host list, the warm-up's openings."""
    return [p for pattern in ("hints-*", ".hints-*", "hosts-*.json*", "ssh-opened-*")
            for p in (data / ".runner").glob(pattern)]


@pytest.mark.parametrize("case", ["limit", "unparsable", "empty"])
def test_a_run_that_reaches_no_host_exits_3_and_says_why(tmp_path, case):
    """Under cron a run that targets no host must not pass for a good one: an inventory Ansible cannot parse,
    one with no hosts, a --limit that matches none."""
    data = tmp_path / "data"
    inventory = local_inventory(tmp_path / "inv.ini")
    args = ["--limit", "nosuchhost"] if case == "limit" else []
    if case == "unparsable":
        inventory.write_text("[gpu\nfoo bar=\n")
    elif case == "empty":
        inventory.write_text("# every host removed\n")
    proc = subprocess.run([*fleetscope_bin(), "collect", "--inventory", str(inventory), *args, "--no-report",
                           "--data", str(data)], cwd=PROJECT, capture_output=True, text=True, timeout=120,
                          env=site_beside(data))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "0 hosts: none" in proc.stdout and "Traceback" not in proc.stderr
    assert "fleetscope collect: nothing collected: " in proc.stderr
    if case == "limit":
        assert "--limit 'nosuchhost' matches no host of" in proc.stderr
        # Ansible's warning once, from its run, not again from fleetscope's own parse of the inventory
        assert proc.stderr.count("Could not match supplied host pattern") == 1, proc.stderr
    else:
        assert f"{inventory} has no hosts, or Ansible could not parse it" in proc.stderr
    if case == "unparsable":  # Ansible's own words, which its run's output would otherwise keep to itself
        assert f"warning: Ansible: Unable to parse {inventory} as an inventory source" in proc.stderr
    assert not run_files(data)
    con = connect(data)
    try:  # the run itself is on record
        assert con.execute("SELECT hosts_total, hosts_ok FROM runs").fetchall() == [(0, 0)]
    finally:
        con.close()


def test_a_document_the_warehouse_refuses_fails_its_host_in_the_runs_summary_and_exit_code(tmp_path):
    """The host answered, but its document breaks the schema: stored as failed (the document kept aside), and
    collect says so and exits 1, not "ok" and 0."""
    wrapper = tmp_path / "python-that-lies"
    wrapper.write_text(f"""#!/bin/sh
{sys.executable} "$@" | {sys.executable} -c '
import json, sys
text = sys.stdin.read()
try:
    answer = json.loads(text)
    answer["document"]["load"]["load1"] = -1
    text = json.dumps(answer)
except (ValueError, KeyError, TypeError):
    pass
sys.stdout.write(text)
'
""")
    wrapper.chmod(0o755)
    inventory = tmp_path / "inv.ini"
    inventory.write_text("[local]\n"
                         'good ansible_connection=local ansible_python_interpreter="{{ ansible_playbook_python }}"\n'
                         f"liar ansible_connection=local ansible_python_interpreter={wrapper}\n")
    data = tmp_path / "data"
    proc = subprocess.run([*fleetscope_bin(), "collect", "--inventory", str(inventory), "--no-report",
                           "--data", str(data)], cwd=PROJECT, capture_output=True, text=True, timeout=180,
                          env=site_beside(data))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "2 hosts: 1 ok, 1 failed" in proc.stdout
    assert "liar: failed: rejected document: host 'liar': field 'load.load1': must be >= 0, got -1" in proc.stdout
    con = connect(data)
    try:
        assert con.execute("SELECT host, status FROM host_status ORDER BY host").fetchall() == [
            ("good", "ok"), ("liar", "failed")]
    finally:
        con.close()
    assert list((data / "spool" / "rejected").glob("*/liar.json"))


def hanging_inventory(tmp_path: Path) -> tuple[Path, Path]:
    """A dynamic inventory that never answers, and the file its pid goes to."""
    pid = tmp_path / "inventory.pid"
    script = tmp_path / "inventory.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {pid}\nexec sleep 600\n")
    script.chmod(0o755)
    return script, pid


def stop(proc: subprocess.Popen, sig: int) -> tuple[str, str, float]:
    """Send `sig` to the running command: its (stdout, stderr) and the seconds it took to end."""
    t = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    return out, err, time.monotonic() - t


def end(pid_file: Path) -> None:
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def test_sigterm_while_the_inventory_hangs_stops_the_run_at_once(tmp_path):
    """A dynamic inventory that hangs: SIGTERM stopped Ansible, after which collect parsed the inventory itself,
    ran the same script and hung with it, holding the lock (every later cron run: 75)."""
    data = tmp_path / "data"
    script, pid = hanging_inventory(tmp_path)
    proc = start("collect", "--inventory", str(script), "--no-report", data=data)
    try:
        wait_for(pid.exists, timeout=60)
        out, err, stopped_in = stop(proc, signal.SIGTERM)
    finally:
        proc.kill()
        end(pid)
    assert proc.returncode == 130, out + err
    assert "interrupted before Ansible reached the play" in err and "Traceback" not in err
    assert stopped_in < 15
    assert not holds_lock(data) and not Spool(data).pending()  # nothing collected: no run to store


def test_a_run_whose_inventory_hangs_stops_at_its_start_limit(tmp_path, monkeypatch):
    from fleetscope import collect
    from fleetscope.settings import Settings

    monkeypatch.setattr(collect, "START_LIMIT_S", 3)
    script, pid = hanging_inventory(tmp_path)
    settings = Settings()
    settings.values["storage"]["data_dir"] = str(tmp_path / "data")
    began = time.monotonic()
    try:
        with pytest.raises(collect.CollectError, match="had not reached the play after 3 s"):
            collect.run_collect(settings, inventory=script)
    finally:
        end(pid)
    assert time.monotonic() - began < 30


def test_hosts_without_a_result_at_the_runs_time_limit_are_timeout(tmp_path, monkeypatch):
    """The run's own limit, the backstop should Ansible not end a host's task: Ansible is stopped there, each
    host that has not answered is `timeout` with "no result before the run's time limit" (not `failed`, nor
    the run an error), and the host that answered keeps its document.

    The limit is waves x (connect + host timeout + 20 s) + 30 s after the play starts, always later than the
    task's own bound (host timeout + 15 s), which a real host hits first; it is brought forward here to 8 s
    after the play starts, before the hung host's task bound (18 s)."""
    from fleetscope import collect
    from fleetscope.settings import Settings
    from tests import faults

    stalled = faults.interpreter(tmp_path / "faults", "stall", sys.executable)
    inventory = tmp_path / "inv.ini"
    inventory.write_text(f"[local]\nfast ansible_connection=local ansible_python_interpreter={sys.executable}\n"
                         f"stuck ansible_connection=local ansible_python_interpreter={stalled}\n")
    settings = Settings()
    settings.values["storage"]["data_dir"] = str(tmp_path / "data")
    settings.values["collect"]["host_timeout_s"] = 3  # time for the fast host on a loaded machine
    settings.values["collect"]["connect_timeout_s"] = 1
    monkeypatch.setattr(collect, "run_limit_s", lambda *args: 8)
    began = time.monotonic()
    try:
        summary = collect.run_collect(settings, inventory=inventory)
    finally:
        end(tmp_path / "faults" / "stall" / "pid")
    took = time.monotonic() - began
    assert summary.status == {"fast": "ok", "stuck": "timeout"}, summary.messages
    assert summary.messages["stuck"] == "no result before the run's time limit"
    assert summary.runner_status == "timeout"
    assert took < 18 + 10  # stopped at the run's limit, not by the task's bound after it (plus Ansible's start)
    run, unreadable = Spool(tmp_path / "data").read(summary.run_id)
    results = {r["host"]: r for r in run.results}
    assert not unreadable and run.meta["runner_status"] == "timeout"
    assert results["stuck"]["status"] == "timeout" and results["stuck"]["document"] is None
    assert results["fast"]["document"]["schema_version"]


def test_sigterm_after_the_hosts_answered_interrupts_storing_and_the_rest(tmp_path):
    """Once Ansible was done, SIGTERM and SIGINT did nothing: the handlers that stop Ansible stayed in place,
    so a calendar that never answers (bookings) held the run for its whole timeout, and it exited 0."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    data = tmp_path / "data"
    config = tmp_path / "fleetscope.toml"
    config.write_text(f'[bookings]\nsources = ["http://127.0.0.1:{server.getsockname()[1]}/cal.ics"]\n'
                      "timeout_s = 60\n")
    proc = start("collect", "--config", str(config), "--inventory", str(local_inventory(tmp_path / "inv.ini", 1)),
                 "--no-report", data=data)
    try:
        server.settimeout(60)
        conn, _ = server.accept()  # collect is reading the calendar: the hosts are stored by now
        out, err, stopped_in = stop(proc, signal.SIGTERM)
        conn.close()
    finally:
        proc.kill()
        server.close()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, out + err
    assert stopped_in < 10
    con = connect(data)
    try:
        assert con.execute("SELECT host, status FROM host_status").fetchall() == [("local0", "ok")]
    finally:
        con.close()


def test_a_full_disk_while_results_arrive_stops_the_run_and_keeps_what_was_written(tmp_path, monkeypatch):
    """The spool cannot be written (ENOSPC) at the second host's result: the run stops (exit 4, storage, not
    3, 'Ansible could not run'), says what was kept, and the next ingest stores that."""
    import errno

    from fleetscope import collect
    from fleetscope.settings import Settings
    from fleetscope.warehouse import ingest_pending

    settings = Settings()
    settings.values["storage"]["data_dir"] = str(tmp_path / "data")
    settings.values["collect"]["forks"] = 1  # one host at a time: the first result is written, then the disk is full
    real_put = Spool.put
    puts = []

    def put(self, run_id, result):
        puts.append(result["host"])
        if len(puts) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_put(self, run_id, result)

    monkeypatch.setattr(Spool, "put", put)
    with pytest.raises(collect.CollectStorageError, match="No space left on device.*The 1 host result"):
        collect.run_collect(settings, inventory=local_inventory(tmp_path / "inv.ini", hosts=3))
    monkeypatch.setattr(Spool, "put", real_put)
    report = ingest_pending(tmp_path / "data")
    assert len(report.runs) == 1
    con = connect(tmp_path / "data")
    try:
        statuses = dict(con.execute("SELECT host, status FROM host_status").fetchall())
    finally:
        con.close()
    assert sorted(statuses.values()) == ["failed", "failed", "ok"], statuses  # the two unwritten: no result


def test_a_long_rollup_in_collect_shows_its_days_with_progress_and_not_in_cron_s_log(tmp_path):
    """Review: the first collect after an upgrade re-rolls up to 30 days (about 21 s for 100 hosts x 8 GPUs) with
    nothing on the screen, where `fleetscope rollup` shows each day. With --progress (a terminal's default) it
    shows them too; without it, as under cron, the log gets the summary line only."""
    from datetime import datetime, timedelta

    import tests.docfactory as f

    data = tmp_path / "data"
    days = [datetime(2026, 11, 20, 9, 0), datetime(2026, 11, 21, 9, 0)]
    for t in days:
        f.spool_run(data, t, [f.ok("gpu01", t, f.document("gpu01", t, gpus=[f.gpu(0, util=50)]))])
    inventory = local_inventory(tmp_path / "inv.ini", hosts=1)
    args = [*fleetscope_bin(), "collect", "--inventory", str(inventory), "--no-report", "--data", str(data)]
    shown = subprocess.run([*args, "--progress"], cwd=PROJECT, capture_output=True, text=True, timeout=120,
                           env=site_beside(data))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for i, t in enumerate(days, 1):
        assert f"rollup: {t.date()} ({i}/" in shown.stderr, shown.stderr
    assert "day(s) rolled up" in shown.stdout
    (data / ".rollup.json").unlink()  # due again; the days come back with the next sample's day
    t = days[-1] + timedelta(days=1)
    f.spool_run(data, t, [f.ok("gpu01", t, f.document("gpu01", t, gpus=[f.gpu(0, util=50)]))])
    quiet = subprocess.run(args, cwd=PROJECT, capture_output=True, text=True, timeout=120, env=site_beside(data))
    assert quiet.returncode == 0 and "rollup: 0 day" not in quiet.stdout, quiet.stdout + quiet.stderr  # days rolled
    assert "rollup: 2026-" not in quiet.stderr and "\r" not in quiet.stderr, quiet.stderr


#: A query that runs for many seconds, and on one thread, so that DuckDB reads a signal within a few ms (on several
#: threads it noticed one only after 5-25 s); a real query, stopped by a real signal.
LONG_QUERY = "SET threads = 1; SELECT count(*) FROM range(3000000000) t(i) WHERE i % 7 = 3"


@pytest.fixture
def ctrl_c_raises():
    """SIGINT as at a terminal, KeyboardInterrupt: a shell starts a background job (make test &) with it ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _query_stopped_by(sig, con):
    """Runs LONG_QUERY on con with ``sig`` sent to this process 0.3 s in, as Ctrl-C or a kill would come."""
    import threading

    threading.Timer(0.3, os.kill, (os.getpid(), sig)).start()
    con.execute(LONG_QUERY).fetchall()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_rollup_of_a_collect_stops_it_as_an_interrupt(tmp_path, monkeypatch, capsys, sig,
                                                                           ctrl_c_raises):
    """Upgrade review: a signal while DuckDB ran one of the rollup's queries came back as RuntimeError("Query
    interrupted"), which collect took for a failed rollup: it said so, went on to build the report and exited 4.
    Now: exit 130, "interrupted", no report; the run was stored before the rollup began."""
    from fleetscope import cli
    from fleetscope.warehouse import rollup

    calls = []

    def rollup_day(con, *args, **kwargs):
        calls.append(args)
        _query_stopped_by(sig, con)

    monkeypatch.setattr(rollup, "rollup_day", rollup_day)
    monkeypatch.setenv("FLEETSCOPE_OUT", str(tmp_path / "site"))
    data = tmp_path / "data"
    status = cli.main(["collect", "--inventory", str(local_inventory(tmp_path / "inv.ini", hosts=1)),
                       "--data", str(data)])
    out, err = capsys.readouterr()
    assert calls and status == 130, out + err
    assert "interrupted" in err and "rollup failed" not in err and "Traceback" not in err, err
    assert not (tmp_path / "site").exists() and "report:" not in out
    con = connect(data)
    try:
        assert con.execute("SELECT host, status FROM host_status").fetchall() == [("local0", "ok")]
    finally:
        con.close()


def test_a_signal_during_a_query_of_the_report_or_of_storing_is_an_interrupt(tmp_path, monkeypatch, capsys,
                                                                             ctrl_c_raises):
    """Upgrade review: `report` interrupted in a query exited 6 with a traceback; storing went on to the next
    spooled run after Ctrl-C, and called the run it was writing one that could not be stored."""
    from datetime import datetime

    import reports
    import tests.docfactory as f
    from fleetscope import cli
    from fleetscope.warehouse import ingest, ingest_pending

    data = tmp_path / "data"
    t = datetime(2026, 11, 20, 9, 0)
    f.spool_run(data, t, [f.ok("gpu01", t, f.document("gpu01", t))])
    ingest_pending(data)
    monkeypatch.setattr(reports, "build_site", lambda con, *a, **k: _query_stopped_by(signal.SIGTERM, con))
    status = cli.main(["report", "--data", str(data), "--out", str(tmp_path / "site")])
    err = capsys.readouterr().err
    assert status == 130 and "interrupted" in err and "Traceback" not in err, err

    for hour in (10, 11):
        f.spool_run(data, t.replace(hour=hour), [f.ok("gpu01", t.replace(hour=hour), f.document("gpu01", t))])
    written = []
    real = ingest._write_tables

    def write_tables(con, *args, **kwargs):
        written.append(args[1])
        _query_stopped_by(signal.SIGINT, con)
        return real(con, *args, **kwargs)

    monkeypatch.setattr(ingest, "_write_tables", write_tables)
    with pytest.raises(KeyboardInterrupt):
        ingest_pending(data)
    assert len(written) == 1 and len(Spool(data).pending()) == 2  # the second run was not begun; both kept
    monkeypatch.setattr(ingest, "_write_tables", real)
    assert len(ingest_pending(data).runs) == 2
