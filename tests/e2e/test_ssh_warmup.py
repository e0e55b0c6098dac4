"""fleetscope opens the first hosts' SSH masters while ansible-playbook starts (fleetscope/ssh_warmup.py), with
the command lines the action recorded on the run before, and Ansible's commands run over them; a master
opened with a command line Ansible no longer builds is ended, not used. Real sshd, ssh, Ansible and
ansible-runner; the masters are told apart by their command lines (`ps`): fleetscope opens them with `-N`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from fleetscope.ssh_warmup import ORDER_FILE, read_record
from tests.conftest import PROJECT, bare_python, fleetscope_bin


def masters(cp: Path) -> dict[str, list[str]]:
    """{ControlPath: [command line of each ssh process that holds it]}; after a run, only masters are left.
    A master that ssh put in the background after its first session (Ansible's) is named
    `ssh: <ControlPath> [mux]`; one opened with -N (fleetscope's) keeps its command line."""
    out: dict[str, list[str]] = {}
    ps = subprocess.run(["ps", "-ww", "-eo", "args="], capture_output=True, text=True, check=True).stdout
    folder = re.escape(str(cp))
    for line in ps.splitlines():
        found = (re.match(rf'ssh .*ControlPath="?{folder}/(\w+)', line)
                 or re.match(rf"ssh: {folder}/(\w+) \[mux\]", line))
        if found:
            out.setdefault(str(cp / found[1]), []).append(line)
    return out


def end_masters(cp: Path) -> None:
    """As ControlPersist does a minute after a run: the next run is cold."""
    socks = list(cp.iterdir()) if cp.is_dir() else []
    for sock in socks:
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "any"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False, timeout=30)
    deadline = time.monotonic() + 10  # `-O exit` returns before the master removes its socket
    while any(sock.exists() for sock in socks) and time.monotonic() < deadline:
        time.sleep(0.02)


def ansible_control_path(cp: Path, address: str, port: int, user: str) -> str:
    """Where Ansible's ssh connection puts a host's master (its _create_control_path)."""
    return str(cp / hashlib.sha1(f"{address}-{port}-{user}".encode()).hexdigest()[:10])


class Hangup:
    """A TCP port that accepts and hangs up at once (an sshd that drops every connection): ssh fails with
    status 255, and each attempt is counted."""

    def __init__(self, address: str):
        self.sock = socket.create_server((address, 0))
        self.port = self.sock.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()


@pytest.fixture(scope="module")
def warm_runs(sshd_fleet, tmp_path_factory):
    """Five cold collect runs: the first records; the second opens early; the third after node2's ssh options
    changed; the fourth after the dead host moved to node3's address; the fifth with --limit. Returns (data,
    cp, [(CompletedProcess, {ControlPath: master command lines}, connections to the dead host so far)])."""
    root = tmp_path_factory.mktemp("warmup")
    # cp: a short folder, for the socket's name must fit in 108 bytes
    data, cp, inventory = root / "data", Path(tempfile.mkdtemp(prefix="fs-cp-")), root / "inv.ini"
    first, node2, node3 = sshd_fleet.hosts
    dead = Hangup("127.0.0.9")
    # node3's openings take 2 s, longer than Ansible's start: its first command must wait for the master
    slow = root / "slow-ssh"
    slow.write_text('#!/bin/sh\ncase " $* " in *" -N "*) sleep 2;; esac\nexec ssh "$@"\n')
    slow.chmod(0o755)
    common = f"-o UserKnownHostsFile={sshd_fleet.known_hosts} -o IdentitiesOnly=yes"
    extra = [
        # another name for node1: the same address, port and user, so Ansible's ControlPath too
        f"alias ansible_host={first.address} ansible_port={first.port} ansible_user={sshd_fleet.user} "
        f"ansible_ssh_private_key_file={sshd_fleet.key} ansible_python_interpreter={bare_python()} "
        f"ansible_ssh_common_args='{common}'",
        # it hangs up: the host is unreachable, and from the second run on its opening's failure tells so
        f"dead ansible_host=127.0.0.9 ansible_port={dead.port} ansible_user={sshd_fleet.user} "
        f"ansible_ssh_private_key_file={sshd_fleet.key} ansible_python_interpreter={bare_python()} "
        f"ansible_ssh_common_args='{common}'",
    ]
    inventory.write_text(sshd_fleet.inventory(bare_python(), extra).replace(
        "node3 ", f"node3 ansible_ssh_executable={slow} ", 1))
    config = root / "fleetscope.toml"
    config.write_text("[collect]\nconnect_timeout_s = 5\nhost_timeout_s = 60\n")
    env = dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=str(cp))
    env.pop("FLEETSCOPE_CONFIG", None)
    runs = []
    try:
        for number in range(5):
            if number == 2:  # node2's ssh options change: the master opened with the old ones must not be used
                inventory.write_text(inventory.read_text().replace(
                    f"ansible_port={node2.port} ", f"ansible_port={node2.port} "
                    "ansible_ssh_extra_args='-o ServerAliveCountMax=5' ", 1))
            if number == 3:  # the dead host is moved to a live address: its failing opening must not count
                inventory.write_text(inventory.read_text().replace(
                    f"ansible_host=127.0.0.9 ansible_port={dead.port} ",
                    f"ansible_host={node3.address} ansible_port={node3.port} ", 1))
            limit = ["--limit", "node1,node2"] if number == 4 else []
            proc = subprocess.run(
                [*fleetscope_bin(), "collect", "--config", str(config), "--data", str(data), "--no-report",
                 "--inventory", str(inventory), "--no-progress", *limit],
                capture_output=True, text=True, timeout=300, env=env, cwd=PROJECT)
            runs.append((proc, masters(cp), dead.count))
            end_masters(cp)
        yield data, cp, runs
    finally:
        end_masters(cp)
        shutil.rmtree(cp, ignore_errors=True)
        dead.sock.close()


def test_every_run_collects_as_before(warm_runs):
    _, _, runs = warm_runs
    messages = []
    for proc, *_ in runs[:3]:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "4 ok, 1 unreachable" in proc.stdout, proc.stdout + proc.stderr
        messages.append(re.search(r"^\s+dead: unreachable: .*$", proc.stdout, re.M)[0])
    # From the second run on, the dead host's opening failed first, and its error is ssh's, as Ansible's own
    # connection told it on the first run: one connection per run, not a second one that fails alike.
    assert all("ssh: kex_exchange_identification: " in m for m in messages), messages
    assert all("Failed to connect to the host via ssh: " in m for m in messages[1:]), messages
    assert [count for *_, count in runs] == [1, 2, 3, 4, 4]
    # moved to a live address, the host answers although its opening (at the old one) failed; --limit: 2 hosts
    assert [proc.returncode for proc, *_ in runs[3:]] == [0, 0]
    assert "5 hosts: 5 ok" in runs[3][0].stdout and "2 hosts: 2 ok" in runs[4][0].stdout


def test_the_first_run_records_the_command_lines_ansible_built(warm_runs, sshd_fleet):
    data, cp, runs = warm_runs
    (records,) = (data / ".runner" / "ssh-commands").iterdir()  # one inventory
    assert json.loads((records / ORDER_FILE).read_text()) == ["node1", "node2", "node3", "alias", "dead"]
    for host in sshd_fleet.hosts:
        argv = read_record(records, host.name)
        assert argv is not None and argv[-1] == host.address
        assert f"Port={host.port}" in argv
        path = ansible_control_path(cp, host.address, host.port, sshd_fleet.user)
        assert f'ControlPath="{path}"' in argv  # the master Ansible looks for
    # the first run had nothing to open: Ansible opened every master, with its first command
    _, first, _ = runs[0]
    assert sorted(first.values()) == sorted([f"ssh: {path} [mux]"] for path in first) and len(first) == 3


def test_the_next_run_opens_the_masters_and_ansible_runs_over_them(warm_runs, sshd_fleet):
    _, cp, runs = warm_runs
    _, second, _ = runs[1]
    expected = {ansible_control_path(cp, h.address, h.port, sshd_fleet.user) for h in sshd_fleet.hosts}
    # one master per ControlPath (node1 and its alias share one), each the one fleetscope opened: Ansible's
    # ssh found it up and ran its commands over it instead of opening its own
    assert set(second) == expected, second
    for lines in second.values():
        assert len(lines) == 1 and lines[0].startswith("ssh -o BatchMode=yes -N "), lines


def test_a_master_opened_with_other_options_is_ended_and_the_new_command_recorded(warm_runs, sshd_fleet):
    data, cp, runs = warm_runs
    _, third, _ = runs[2]
    node2 = sshd_fleet.hosts[1]
    changed = ansible_control_path(cp, node2.address, node2.port, sshd_fleet.user)
    assert third[changed] == [f"ssh: {changed} [mux]"]  # Ansible's own master (with the new option)
    for path, lines in third.items():
        if path != changed:
            assert lines[0].startswith("ssh -o BatchMode=yes -N "), lines
    (records,) = (data / ".runner" / "ssh-commands").iterdir()
    assert "ServerAliveCountMax=5" in read_record(records, "node2")


def test_a_limited_run_opens_nothing(warm_runs, sshd_fleet):
    _, cp, runs = warm_runs
    _, limited, _ = runs[4]
    paths = [ansible_control_path(cp, h.address, h.port, sshd_fleet.user) for h in sshd_fleet.hosts[:2]]
    assert limited == {path: [f"ssh: {path} [mux]"] for path in paths}


def test_a_moved_host_is_recorded_at_its_new_address(warm_runs, sshd_fleet):
    data, *_ = warm_runs
    argv = read_record(next((data / ".runner" / "ssh-commands").iterdir()), "dead")
    assert argv[-1] == sshd_fleet.hosts[2].address and f"Port={sshd_fleet.hosts[2].port}" in argv


def test_nothing_of_a_run_is_left_but_the_records(warm_runs):
    data, *_ = warm_runs
    assert not list((data / ".runner").glob("ssh-opened-*"))
