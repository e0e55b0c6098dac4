"""Open the SSH connections of a run's first hosts while ansible-playbook starts.

ansible-playbook needs about a second (its imports, plugins, inventory and play) before it reaches the first
host; a host's first command then opens the SSH connection, which ControlPersist (ansible.cfg) keeps as a
master that later commands share. On a cold run (every cron run: the interval outlasts ControlPersist) that
handshake is on every host's critical path. `fleetscope collect` opens those masters itself while Ansible
starts, with the exact `ssh` command line Ansible built for the host on the previous run: the
fleetscope_collect action records it (``record``), and the action waits for the master before its first
command (``wait``).

Nothing rides on a master opened with other options: the action compares the command Ansible builds this time
with the one the master was opened with, and where they differ (the inventory, ansible.cfg or the environment
changed) it ends that master first (``end_master``), so Ansible opens its own. Hosts with a password, a
private key given as data, or no ControlPersist are not recorded, so never opened here.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from .stage import host_file

#: Environment variables the action reads: the folder of recorded commands (kept between runs) and this run's
#: folder of finished openings (a file per host whose `ssh` has ended, opened or not).
RECORDS_ENV = "FLEETSCOPE_SSH_COMMANDS"
OPENED_ENV = "FLEETSCOPE_SSH_OPENED"
#: In the records folder: the inventory's hosts in order, as the last full run saw them (Ansible's `free`
#: strategy starts them in that order, so the first `forks` of them are the ones whose connections it opens
#: first).
ORDER_FILE = "order.json"


def control_path(argv: List[str]) -> Optional[str]:
    """The ControlPath an `ssh` command line sets (the first, as ssh takes it; Ansible writes
    ``-o ControlPath="<folder>/<hash>"``), or None: none, or one ssh would expand (``%h``, ``~``), which this
    module does not try to predict."""
    for i, arg in enumerate(argv[1:], 1):
        option = arg[2:] if arg.startswith("-o") and len(arg) > 2 else arg
        if i > 1 and argv[i - 1] == "-S":
            value = arg
        elif option.lower().startswith("controlpath"):
            value = option[len("controlpath"):].lstrip(" =\t")
        else:
            continue
        value = value.strip('"')
        return value if value.startswith("/") and "%" not in value else None
    return None


def read_record(folder: Path | str, host: str) -> Optional[List[str]]:
    """The command line recorded for ``host``, or None (none, or not a list of strings)."""
    try:
        with open(host_file(folder, host), encoding="utf-8") as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    argv = entry.get("argv") if isinstance(entry, dict) and entry.get("host") == host else None
    if isinstance(argv, list) and len(argv) >= 2 and all(isinstance(a, str) for a in argv):
        return argv
    return None


def record(folder: Path | str, host: str, argv: List[str]) -> None:
    """Keep ``argv`` (Ansible's `ssh` command line for ``host``, ending with the address) for the next run.
    Written beside and renamed, so a reader never sees half of it; a failure costs only the next run's head
    start."""
    path = host_file(folder, host)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(json.dumps({"host": host, "argv": argv}), encoding="utf-8")
        os.replace(temp, path)
    except OSError:
        try:
            temp.unlink()
        except OSError:
            pass


def opening_command(argv: List[str]) -> List[str]:
    """The recorded command, made to open the master and return: no remote command (-N), never a prompt
    (BatchMode first, so it wins over a later setting). With ControlPersist, `ssh` hands the master to a
    background process once it is up and exits."""
    return [argv[0], "-o", "BatchMode=yes", "-N", *argv[1:]]


def end_master(argv: List[str], timeout: float = 5) -> None:
    """Ask the master opened with ``argv`` (if any is up) to end: `ssh -O exit` on its ControlPath."""
    try:
        subprocess.run([argv[0], *argv[1:-1], "-O", "exit", argv[-1]], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        pass


def wait(opened: Path | str, host: str, socket: str, limit: float) -> Optional[str]:
    """Wait, at most ``limit`` seconds, until the master's ``socket`` is there (opened by this run, or by
    another `ssh` first) or this run's opening of ``host`` has ended. Returns ssh's messages where the opening
    could not connect (exit status 255, as Ansible's ssh connection takes it): Ansible's own connection, with
    the same command line, would fail alike a second later, and waiting out a dead host's connect timeout
    twice would double its cost. None otherwise: Ansible then connects as it would have anyway."""
    marker = host_file(opened, host)
    deadline = time.monotonic() + limit
    while not os.path.exists(socket):
        try:
            status = marker.read_text(encoding="utf-8")
        except OSError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.005)
            continue
        if status.strip() != "255" or os.path.exists(socket):
            return None
        try:
            error = marker.with_suffix(".err").read_text(encoding="utf-8", errors="replace").rstrip()
        except OSError:
            error = ""
        return error or "ssh could not connect"
    return None


class Warmup:
    """The openings one run started: ``started`` maps each host to the command line it was opened with."""

    def __init__(self, opened: Path):
        self.opened = opened
        self.started: Dict[str, List[str]] = {}
        self._procs: List[subprocess.Popen] = []
        self._threads: List[threading.Thread] = []

    def _open(self, host: str, argv: List[str]) -> None:
        marker = host_file(self.opened, host)

        def ended(status: int) -> None:  # the exit status, written whole (wait reads it)
            temp = marker.with_name(f".{marker.name}")
            temp.write_text(str(status), encoding="utf-8")
            os.replace(temp, marker)

        try:
            with open(marker.with_suffix(".err"), "wb") as err:  # ssh's messages: the reason it failed
                proc = subprocess.Popen(opening_command(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=err, start_new_session=True)
        except OSError:
            ended(-1)
            return
        self._procs.append(proc)

        def reap() -> None:
            ended(proc.wait())

        thread = threading.Thread(target=reap, name=f"ssh-warmup-{len(self._procs)}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        """End the openings still in the foreground (a host that never answered, or an `ssh` that found
        another master in its place and kept its own connection); the masters stay, as Ansible's own do."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
        for thread in self._threads:
            thread.join(5)


def start(records: Path, opened: Path, count: int) -> Warmup:
    """Open up to ``count`` hosts' connections, the first ones of the last run's order that have a recorded
    command. ``opened`` gets a file per host as its `ssh` ends; the returned Warmup's ``started`` says which
    hosts were opened with which command (the hints tell the action)."""
    warmup = Warmup(opened)
    try:
        order = json.loads((records / ORDER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return warmup
    if not isinstance(order, list):
        return warmup
    try:
        opened.mkdir(parents=True, exist_ok=True)
    except OSError:
        return warmup
    paths = set()
    for host in order:
        if len(warmup.started) >= count:
            break
        argv = read_record(records, host) if isinstance(host, str) else None
        path = control_path(argv) if argv is not None else None
        # one opening per master: two names for one address, port and user share Ansible's ControlPath
        if path is not None and path not in paths:
            paths.add(path)
            try:  # as Ansible makes it before its first command: else this ssh could not put its socket there
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            except OSError:
                continue
            warmup.started[host] = argv
            warmup._open(host, argv)
    return warmup


def keep_order(records: Path, hosts: Iterable[str]) -> None:
    """After a run over the whole inventory: remember its hosts' order, and forget the commands of hosts that
    left it."""
    hosts = list(hosts)
    try:
        records.mkdir(parents=True, exist_ok=True)
        keep = {host_file(records, h).name for h in hosts}
        for path in records.glob("*.json"):
            if path.name != ORDER_FILE and path.name not in keep:
                path.unlink()
        temp = records / f".{ORDER_FILE}.{os.getpid()}"
        temp.write_text(json.dumps(hosts), encoding="utf-8")
        os.replace(temp, records / ORDER_FILE)
    except OSError:
        pass
