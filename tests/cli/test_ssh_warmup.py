"""ssh_warmup's own parts: the recorded command lines, the choice of hosts to open, the openings' processes.
The whole of it, over real sshd with Ansible reusing the masters, is tests/e2e/test_ssh_warmup.py."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from fleetscope import ssh_warmup
from fleetscope.ssh_warmup import ORDER_FILE, control_path, keep_order, read_record, record, start, wait
from fleetscope.stage import host_file


def argv(path: str, address: str = "127.0.0.2") -> list[str]:
    return ["ssh", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s", "-o", f'ControlPath="{path}"', address]


@pytest.mark.parametrize("args, expected", [
    (["-o", 'ControlPath="/cp/abc"'], "/cp/abc"),  # as Ansible writes it
    (["-oControlPath=/cp/abc"], "/cp/abc"),
    (["-o", "controlpath /cp/abc"], "/cp/abc"),
    (["-S", "/cp/abc"], "/cp/abc"),
    (["-o", "ControlPath=/cp/first", "-o", "ControlPath=/cp/second"], "/cp/first"),  # ssh takes the first
    (["-o", "ControlPath=/cp/%h-%p"], None),  # ssh would expand it
    (["-o", "ControlPath=/cp/${HOME}"], None),
    (["-o", "ControlPath=/cp/o", "-S", "/cp/s1", "-S", "/cp/s2"], "/cp/s2"),  # -S wins, the last one
    (["-o", "ControlPath=~/.ansible/cp/x"], None),
    (["-o", "ControlMaster=auto"], None),
])
def test_control_path_is_the_one_ssh_would_use_or_none(args, expected):
    assert control_path(["ssh", *args, "host"]) == expected


@pytest.mark.parametrize("args, expected", [
    (["-o", "ControlMaster=auto", "-o", "ControlPersist=60s"], True),  # Ansible's default ssh_args
    (["-o", "ControlMaster=autoask", "-o", "ControlPersist=yes"], True),
    (["-o", "ControlPersist=60s"], False),  # ControlMaster no: the opening would hold a connection, no master
    (["-o", "ControlMaster=yes", "-o", "ControlPersist=60s"], False),  # Ansible's ssh would not join it
    (["-M", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s"], False),
    (["-o", "ControlMaster=auto", "-o", "ControlPersist=no"], False),  # the master ends with its opening
    (["-o", "ControlMaster=auto"], False),
    (["-o", "ControlMaster=no", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s"], False),  # first wins
])
def test_only_command_lines_that_multiplex_as_ansibles_are_used(args, expected):
    line = ["ssh", *args, "-o", 'ControlPath="/cp/abc"', "host"]
    assert (ssh_warmup.usable(line) == "/cp/abc") is expected


def test_an_option_is_read_as_ssh_reads_it():
    line = ["ssh", "-o", "BatchMode=no", "-oBatchMode=yes", "-o", "LocalCommand a=b", "-o", " batchmode = yes", "h"]
    assert ssh_warmup.option(line, "batchmode") == "no"
    assert ssh_warmup.option(line, "localcommand") == "a=b"
    assert ssh_warmup.option(["ssh", "-o", "User root", "h"], "user") == "root"
    assert ssh_warmup.option(["ssh", "h"], "batchmode") is None


def test_a_record_is_read_back_for_its_host_only(tmp_path):
    record(tmp_path, "node1", argv("/cp/a"))
    assert read_record(tmp_path, "node1") == argv("/cp/a")
    assert read_record(tmp_path, "node2") is None
    assert [p.name for p in tmp_path.iterdir()] == [host_file(tmp_path, "node1").name]  # no temporary left
    # a file that is not a record, or a record of another name under this one's file, reads as none
    for bad in ("{", "[]", '{"host": "node1", "argv": "ssh"}', '{"host": "node1", "argv": ["ssh", 1]}',
                '{"host": "node1", "argv": ["ssh"]}', json.dumps({"host": "other", "argv": argv("/cp/a")})):
        host_file(tmp_path, "node1").write_text(bad)
        assert read_record(tmp_path, "node1") is None, bad


def test_records_are_this_users_alone_whatever_the_umask(tmp_path):
    old = os.umask(0o002)  # Debian's for users with a group of their own
    try:
        record(tmp_path / "records", "n1", argv("/cp/a"))
        keep_order(tmp_path / "records", ["n1"])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "records").stat().st_mode) == 0o700
    for path in (tmp_path / "records").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert read_record(tmp_path / "records", "n1") == argv("/cp/a")


def test_recording_into_an_unwritable_place_costs_nothing_else(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    record(blocker / "records", "node1", argv("/cp/a"))  # a folder under a file: cannot be made
    assert read_record(blocker / "records", "node1") is None


def test_the_order_is_kept_and_hosts_that_left_the_inventory_are_forgotten(tmp_path):
    for host in ("a", "b", "gone"):
        record(tmp_path, host, argv(f"/cp/{host}"))
    keep_order(tmp_path, ["b", "a", "new"])
    assert json.loads((tmp_path / ORDER_FILE).read_text()) == ["b", "a", "new"]
    assert read_record(tmp_path, "gone") is None
    assert read_record(tmp_path, "a") and read_record(tmp_path, "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [ORDER_FILE, host_file(tmp_path, "a").name, host_file(tmp_path, "b").name])


def ended(opened: Path, host: str, limit: float = 10) -> str | None:
    """The exit status this run's opening of ``host`` left, once it has (None if it has not within limit)."""
    deadline = time.monotonic() + limit
    while not host_file(opened, host).exists():
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)
    return host_file(opened, host).read_text()


def executable(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_start_opens_the_first_hosts_in_order_once_per_master(tmp_path):
    records, opened = tmp_path / "records", tmp_path / "opened"
    log = tmp_path / "log"
    ssh = executable(tmp_path / "ssh", f'echo "$*" >> {log}')  # stands in for ssh: says how it was run
    hosts = ["n1", "alias-of-n1", "no-record", "n2", "n3", "n4"]
    for host in hosts:
        if host != "no-record":
            path = f"{tmp_path}/cp/n1" if host == "alias-of-n1" else f"{tmp_path}/cp/{host}"
            record(records, host, [ssh, *argv(path, f"addr-{host}")[1:]])
    keep_order(records, hosts)
    warmup = start(records, opened, 3)
    try:
        # in the last run's order; the alias shares n1's ControlPath (one master); no record, not opened
        assert list(warmup.started) == ["n1", "n2", "n3"]
        for host in warmup.started:
            assert ended(opened, host) == "0", host
            assert wait(opened, host, "/nonexistent", 10) is None  # ended well: Ansible connects as ever
    finally:
        warmup.close()
    lines = sorted(log.read_text().splitlines())
    assert len(lines) == 3
    for line, host in zip(lines, ["n1", "n2", "n3"]):
        # BatchMode first (it wins over a later setting), no remote command, the recorded options as they were
        assert line == ("-o BatchMode=yes -N -o ControlMaster=auto -o ControlPersist=60s "
                        f'-o ControlPath="{tmp_path}/cp/{host}" addr-{host}')


def test_start_without_an_order_or_with_none_wanted_opens_nothing(tmp_path):
    records = tmp_path / "records"
    record(records, "n1", argv(f"{tmp_path}/cp/n1"))
    assert start(records, tmp_path / "opened", 5).started == {}  # no order yet: the first run
    keep_order(records, ["n1"])
    assert start(records, tmp_path / "opened", 0).started == {}  # a --limit run, or ssh_warmup off
    (records / ORDER_FILE).write_text('{"n1": 1}')
    assert start(records, tmp_path / "opened", 5).started == {}


def test_an_opening_that_does_not_end_is_ended_by_close(tmp_path):
    records, opened = tmp_path / "records", tmp_path / "opened"
    stuck = executable(tmp_path / "ssh", "exec sleep 600")  # a host that accepts and never answers
    record(records, "n1", [stuck, *argv(f"{tmp_path}/cp/n1")[1:]])
    keep_order(records, ["n1"])
    warmup = start(records, opened, 5)
    began = time.monotonic()
    assert wait(opened, "n1", str(tmp_path / "no-socket"), 0.3) is None  # still running: the wait runs out
    assert time.monotonic() - began >= 0.3 and ended(opened, "n1", 0) is None
    began = time.monotonic()
    warmup.close()
    assert time.monotonic() - began < 5
    assert all(p.poll() is not None for p in warmup._procs)
    assert ended(opened, "n1") == "-9"  # killed
    assert wait(opened, "n1", str(tmp_path / "no-socket"), 1) is None


def test_an_opening_that_could_not_connect_tells_why(tmp_path):
    records, opened = tmp_path / "records", tmp_path / "opened"
    dead = executable(tmp_path / "ssh", "echo 'some warning' >&2\n"
                      "echo 'ssh: connect to host 127.0.0.9 port 22: Connection refused' >&2\nexit 255")
    refusing = executable(tmp_path / "ssh-other", "echo 'no such option' >&2\nexit 1")  # not a connection error
    record(records, "dead", [dead, *argv(str(tmp_path / "cp" / "dead"))[1:]])
    record(records, "odd", [refusing, *argv(str(tmp_path / "cp" / "odd"))[1:]])
    keep_order(records, ["dead", "odd"])
    warmup = start(records, opened, 5)
    try:
        assert (tmp_path / "cp").is_dir()  # the ControlPath's folder is made, as Ansible makes it
        assert wait(opened, "dead", str(tmp_path / "cp" / "dead"), 10) == (  # as Ansible's connection tells it
            "some warning\nssh: connect to host 127.0.0.9 port 22: Connection refused")
        assert wait(opened, "odd", str(tmp_path / "cp" / "odd"), 10) is None and ended(opened, "odd") == "1"
        (tmp_path / "cp" / "dead").write_text("")  # another ssh's master is up after all: use it
        assert wait(opened, "dead", str(tmp_path / "cp" / "dead"), 10) is None
    finally:
        warmup.close()


def test_an_opening_whose_ssh_cannot_start_is_over_at_once(tmp_path):
    records, opened = tmp_path / "records", tmp_path / "opened"
    record(records, "n1", [str(tmp_path / "no-such-ssh"), *argv(f"{tmp_path}/cp/n1")[1:]])
    keep_order(records, ["n1"])
    warmup = start(records, opened, 5)
    assert list(warmup.started) == ["n1"] and ended(opened, "n1", 0) == "-1"
    assert wait(opened, "n1", "/nonexistent", 0) is None
    warmup.close()


def test_wait_ends_when_the_master_is_up_even_if_its_opening_goes_on(tmp_path):
    socket = tmp_path / "master"
    socket.write_text("")  # another ssh's master, up first: this opening keeps its own connection till close
    began = time.monotonic()
    assert wait(tmp_path / "opened", "n1", str(socket), 10) is None
    assert time.monotonic() - began < 5


def test_ending_a_master_that_is_not_there_is_quiet_and_quick(tmp_path):
    began = time.monotonic()
    ssh_warmup.end_master("ssh", str(tmp_path / "none"))
    ssh_warmup.end_master(str(tmp_path / "no-such-ssh"), str(tmp_path / "none"))
    assert time.monotonic() - began < 5


def test_wait_ends_as_the_master_comes_up(tmp_path):
    """The wait ends because the socket came, not because a timer ran: the socket is there when it returns
    (a lower bound on the elapsed time raced the Timer's own start, and failed CI at 0.2996 s)."""
    socket = tmp_path / "master"
    began = time.monotonic()
    threading.Timer(0.3, socket.write_text, ("",)).start()
    assert wait(tmp_path / "opened", "n1", str(socket), 10) is None
    assert socket.exists()
    assert time.monotonic() - began < 5


def test_a_host_whose_control_path_is_taken_is_left_to_ansible(tmp_path):
    """A live master there (of a run a minute ago, `hosts check`, another Ansible) or a stale socket: an
    opening would join or replace it, and the action could end a master that is not this run's."""
    records, opened = tmp_path / "records", tmp_path / "opened"
    ssh = executable(tmp_path / "ssh", "exit 0")
    for host in ("busy", "free"):
        record(records, host, [ssh, *argv(f"{tmp_path}/cp/{host}")[1:]])
    keep_order(records, ["busy", "free"])
    (tmp_path / "cp").mkdir()
    (tmp_path / "cp" / "busy").write_text("")
    warmup = start(records, opened, 5)
    assert ended(opened, "free") == "0"
    warmup.close()
    assert list(warmup.started) == ["free"]


def test_records_someone_else_could_write_are_not_run(tmp_path):
    records, opened = tmp_path / "records", tmp_path / "opened"
    log = tmp_path / "log"
    ssh = executable(tmp_path / "ssh", f"echo ran >> {log}")
    for host in ("n1", "n2"):
        record(records, host, [ssh, *argv(f"{tmp_path}/cp/{host}")[1:]])
    keep_order(records, ["n1", "n2"])
    host_file(records, "n1").chmod(0o666)  # anyone may write this one
    warmup = start(records, opened, 5)
    assert ended(opened, "n2") == "0"
    warmup.close()
    assert list(warmup.started) == ["n2"]
    records.chmod(0o777)  # or the whole folder
    assert start(records, tmp_path / "opened2", 5).started == {}
    records.chmod(0o700)
    link = tmp_path / "linked"
    link.symlink_to(records)
    assert start(link, tmp_path / "opened3", 5).started == {}
    assert log.read_text() == "ran\n"


def test_records_its_group_or_another_user_could_write_are_not_run(tmp_path, monkeypatch):
    """A record is an ssh command line that is run (ProxyCommand runs anything): a record, an order file or a
    records folder that the group may write (umask 002, a shared group) is as untrusted as a world-writable
    one, and so is one another user owns."""
    records, log = tmp_path / "records", tmp_path / "log"
    ssh = executable(tmp_path / "ssh", f"echo ran >> {log}")
    record(records, "n1", [ssh, *argv(f"{tmp_path}/cp/n1")[1:]])
    keep_order(records, ["n1"])
    for path, mode in ((host_file(records, "n1"), 0o620), (records / ORDER_FILE, 0o620), (records, 0o770)):
        path.chmod(mode)
        assert start(records, tmp_path / f"opened-{path.name}", 5).started == {}, path
        path.chmod(0o700 if path == records else 0o600)
    me = os.geteuid()
    monkeypatch.setattr(ssh_warmup.os, "geteuid", lambda: me + 1)  # the files are another user's
    assert start(records, tmp_path / "opened-other", 5).started == {}
    monkeypatch.undo()
    warmup = start(records, tmp_path / "opened", 5)  # as they were: trusted
    assert ended(tmp_path / "opened", "n1") == "0"
    warmup.close()
    assert list(warmup.started) == ["n1"] and log.read_text() == "ran\n"
