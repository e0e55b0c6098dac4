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
changed) it ends that master first (``end_master``), so Ansible opens its own. Only command lines that
multiplex as Ansible's default does are recorded (``usable``), and a host whose ControlPath is taken when
the run starts (a live master of a run a minute ago, of `hosts check`, of another Ansible; a stale socket)
is left to Ansible, so the action never ends a master this run did not open.

The command lines are run: the records folder and each file in it must belong to this user and be writable
by no one else (``_trusted``), or nothing is opened.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from .files import remove_stale
from .stage import host_file

#: Environment variables the action reads: the folder of recorded commands (kept between runs) and this run's
#: folder of finished openings (a file per host whose `ssh` has ended, opened or not).
RECORDS_ENV = "FLEETSCOPE_SSH_COMMANDS"
OPENED_ENV = "FLEETSCOPE_SSH_OPENED"
#: In the records folder: the inventory's hosts in order, as the last full run saw them (Ansible's `free`
#: strategy starts them in that order, so the first `forks` of them are the ones whose connections it opens
#: first).
ORDER_FILE = "order.json"


#: ``Name=value`` or ``Name value`` of an ``-o`` option. Compiled as this module is imported, in Ansible's main
#: process when it loads the fleetscope_collect action: re's own cache would compile it in every host's worker.
_OPTION = re.compile(r"\s*([A-Za-z]+)\s*(?:=|\s)\s*(.*)", re.S)


def option(argv: List[str], name: str) -> Optional[str]:
    """The value an `ssh` command line gives option ``name`` (lower case), the first, as ssh takes it:
    ``-o Name=value``, ``-oName=value``, ``-o "Name value"``; for controlpath, the last ``-S path`` wins over
    those. None if unset."""
    if name == "controlpath":
        given = [argv[i] for i in range(2, len(argv)) if argv[i - 1] == "-S"]
        if given:
            return given[-1]
    for i, arg in enumerate(argv[1:], 1):
        if argv[i - 1] == "-o" and i > 1:
            text = arg
        elif arg.startswith("-o") and len(arg) > 2:
            text = arg[2:]
        else:
            continue
        found = _OPTION.match(text)
        if found and found[1].lower() == name:
            return found[2].strip().strip('"')
    return None


def control_path(argv: List[str]) -> Optional[str]:
    """The ControlPath an `ssh` command line sets (Ansible writes ``-o ControlPath="<folder>/<hash>"``), or
    None: none, or one ssh would expand (``%h``, ``~``, ``${VAR}``), which this module does not try to
    predict."""
    value = option(argv, "controlpath")
    return value if value and value.startswith("/") and "%" not in value and "$" not in value else None


def usable(argv: List[str]) -> Optional[str]:
    """The ControlPath of a command line that multiplexes as Ansible's default ssh_args do (ControlMaster
    auto, a ControlPersist other than no), so that a master opened with it outlives its opening and Ansible's
    `ssh` joins it; else None."""
    persist = (option(argv, "controlpersist") or "no").lower()
    if (option(argv, "controlmaster") or "").lower() not in ("auto", "autoask") or persist in ("no", "0", "false"):
        return None
    if any(a.startswith("-M") for a in argv[1:-1]):  # -M: ControlMaster yes
        return None
    return control_path(argv)


def _trusted(path: Path) -> bool:
    """This user's, not a symlink, and writable by no one else: what this module runs comes from there."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not stat.S_ISLNK(st.st_mode) and not st.st_mode & 0o022


def is_command(value) -> bool:
    """Whether ``value`` is an `ssh` command line as recorded: the program, options, the address; strings."""
    return isinstance(value, list) and len(value) >= 2 and all(isinstance(a, str) for a in value)


def read_record(folder: Path | str, host: str) -> Optional[List[str]]:
    """The command line recorded for ``host``, or None (none, not a list of strings, or a file someone else
    could have written)."""
    path = host_file(folder, host)
    if not _trusted(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    argv = entry.get("argv") if isinstance(entry, dict) and entry.get("host") == host else None
    return argv if is_command(argv) else None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole (beside, then renamed), readable and writable by this user only
    (whatever the umask: _trusted refuses what others could write)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temp, path)
    except OSError:
        try:
            temp.unlink()
        except OSError:
            pass
        raise


def record(folder: Path | str, host: str, argv: List[str]) -> None:
    """Keep ``argv`` (Ansible's `ssh` command line for ``host``, ending with the address) for the next run.
    Written beside and renamed, so a reader never sees half of it; a failure costs only the next run's head
    start."""
    path = host_file(folder, host)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_private(path, json.dumps({"host": host, "argv": argv}))
    except OSError:
        pass


def opening_command(argv: List[str]) -> List[str]:
    """The recorded command, made to open the master and return: no remote command (-N), never a prompt
    (BatchMode first, so it wins over a later setting). With ControlPersist, `ssh` hands the master to a
    background process once it is up and exits."""
    return [argv[0], "-o", "BatchMode=yes", "-N", *argv[1:]]


def end_master(ssh: str, path: str, timeout: float = 5) -> None:
    """Ask the master on ControlPath ``path`` (if one is up) to stop: `ssh -S path -O stop`. It removes its
    socket at once, so the next `ssh` opens a master of its own, and ends when its sessions have (an idle one
    at once): a session another host name with the same address runs over it is not cut."""
    try:
        subprocess.run([ssh, "-S", path, "-O", "stop", "any"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        pass


def wait(opened: Path | str, host: str, socket: str, limit: float) -> Optional[str]:
    """Wait, at most ``limit`` seconds, until the master's ``socket`` is there or this run's opening of
    ``host`` has ended without one. Returns ssh's messages where the opening could not connect (exit status
    255, as Ansible's ssh connection takes it), else None: Ansible then connects as it would have anyway."""
    marker = host_file(opened, host)
    deadline = time.monotonic() + limit
    while not os.path.exists(socket):
        try:
            status = marker.read_text(encoding="utf-8")
        except OSError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)
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
            try:
                temp.write_text(str(status), encoding="utf-8")
                os.replace(temp, marker)
            except OSError:  # the action then waits its limit, and connects as ever
                pass

        try:
            with open(marker.with_suffix(".err"), "wb") as err:  # ssh's messages: the reason it failed
                proc = subprocess.Popen(opening_command(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=err, start_new_session=True)
        except (OSError, ValueError, subprocess.SubprocessError):  # no ssh, no file descriptors left, ...
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
    command and no socket at their ControlPath yet. ``opened`` gets a file per host as its `ssh` ends; the
    returned Warmup's ``started`` says which hosts were opened with which command (the hints tell the
    action)."""
    warmup = Warmup(opened)
    if count <= 0 or not _trusted(records) or not _trusted(records / ORDER_FILE):
        return warmup
    try:
        order = json.loads((records / ORDER_FILE).read_text(encoding="utf-8"))
        opened.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (OSError, ValueError):
        return warmup
    if not isinstance(order, list):
        return warmup
    paths = set()
    for host in order:
        if len(warmup.started) >= count:
            break
        argv = read_record(records, host) if isinstance(host, str) else None
        path = usable(argv) if argv is not None else None
        # one opening per master: two names for one address, port and user share Ansible's ControlPath
        if path is None or path in paths or os.path.lexists(path):
            continue
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
        records.mkdir(mode=0o700, parents=True, exist_ok=True)
        keep = {host_file(records, h).name for h in hosts}
        for path in records.glob("*.json"):
            if path.name != ORDER_FILE and path.name not in keep:
                path.unlink()
        remove_stale(list(records.glob(".*")), 3600)  # a killed writer's temporary files
        _write_private(records / ORDER_FILE, json.dumps(hosts))
    except OSError:
        pass
