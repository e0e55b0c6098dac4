"""Run the collect playbook through ansible-runner and spool each host's result as it arrives.

Every host of the inventory (after --limit) ends the run with exactly one status:
  ok           the collector ran; its document is spooled (subsystem failures are inside it)
  unreachable  SSH could not connect or authenticate (Ansible's "unreachable")
  failed       connected, but the module failed (no python3, a crash, a refused document, ...)
  timeout      the collector ran past its time on the host, or no answer came before the run's limit
"""

from __future__ import annotations

import configparser
import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import re
import secrets
import shlex
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import __version__, playbook_launcher, ssh_warmup
from .files import remove_stale
from .inventory import ANSIBLE_CFG, not_found, with_vault_hint
from .playbook_launcher import CACHE_ENV
from .settings import PROJECT_DIR, Settings
from .spool import Spool
from .stage import bytecode_pythons, host_file, read_host_pythons, update_host_pythons, write_bundle

STATUSES = ("ok", "unreachable", "failed", "timeout")
PLAYBOOK = PROJECT_DIR / "playbooks" / "collect.yml"
MODULE = "fleetscope_collect"


class CollectError(RuntimeError):
    """The run could not start or Ansible itself failed (not one host's problem)."""


class CollectUsageError(CollectError):
    """The command named what is not there: an inventory or a --limit file (exit 2, not 3)."""


class CollectStorageError(CollectError):
    """The spool could not be written (a full disk): the run was stopped; what was written is kept (exit 4)."""


class CollectInterrupted(CollectError):
    """SIGTERM or SIGINT stopped the run; what came back is in the spool."""


@dataclass
class RunSummary:
    run_id: str
    started_at: str
    finished_at: str | None = None
    inventory: str = ""
    hosts: list[str] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)  # host -> status
    messages: dict[str, str] = field(default_factory=dict)
    runner_status: str = ""
    #: Things the operator should know that cost no host its data (an interpreter that could not compile).
    warnings: list[str] = field(default_factory=list)
    #: Waits for ansible-playbook to exit when run_collect returned at its last event (see run_collect).
    wait_ansible: Callable[[], None] = lambda: None

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for v in self.status.values() if v == s) for s in STATUSES}

    def meta(self) -> dict:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "inventory": self.inventory,
            "hosts": self.hosts,
            "runner_status": self.runner_status,
            "fleetscope_version": __version__,
        }


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def iso(t: dt.datetime) -> str:
    return t.isoformat(sep=" ", timespec="microseconds")


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(2)


def inventory_hosts(inventory: Path, limit: str | None = None, ordered: bool = False,
                    quiet_limit: bool = False) -> list[str]:
    """The host names the playbook will target: parsed by Ansible itself, so every inventory form works.
    Sorted, or with ``ordered`` in the inventory's order, in which Ansible starts them. ``quiet_limit``: as
    inventory.host_names's."""
    from .inventory import InventoryError, host_names, open_inventory

    if not inventory.exists():
        raise CollectUsageError(not_found(inventory))
    try:
        manager, _ = open_inventory(inventory, limit)
    except InventoryError as e:
        raise (CollectUsageError if "limit file" in str(e) else CollectError)(str(e)) from e
    names = host_names(manager, quiet_limit)
    return names if ordered else sorted(names)


def play_hosts(path: Path, started: threading.Event, ended: threading.Event, parse: Callable[[], list[str]],
               patience: float = 60.0) -> list[str]:
    """The hosts the play targets, in Ansible's order, as fleetscope's ansible-playbook writes them to
    ``path`` when the play lists its batches, before its first event (playbook_launcher.install_play_hosts):
    Ansible parsed the inventory already, so this process need not (0.3 s of CPU while Ansible starts; a
    dynamic inventory run once). ``parse()`` (this process's own parse of the inventory) where the play has
    started (``started``: its first event came) or Ansible has ended without the file, where Ansible says it
    cannot, or where it has not reached the play after ``patience`` seconds (an inventory slow to load)."""
    give_up = time.monotonic() + patience
    while True:
        try:
            with open(path, encoding="utf-8") as f:
                hosts = json.load(f).get("hosts")
            if isinstance(hosts, list) and all(isinstance(h, str) for h in hosts):
                return hosts
            return parse()  # this Ansible cannot say, or said something else
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError):
            return parse()
        if started.is_set() or ended.is_set() or time.monotonic() > give_up:
            if not path.exists():  # written before the event: the play started without it
                return parse()
            continue
        ended.wait(0.01)


#: The most of the host's last output line a failed host's message quotes (the rest is in the artifacts).
MESSAGE_DETAIL = 300


#: Ansible's words where the pipe to ssh broke and ssh then said why (the action's _send), for what its
#: connection says where ssh fails before any data: one failure, one message (GROUP BY message, problems).
DATA_NOT_SENT = re.compile(r'Data could not be sent to remote host "[^"]*"\. Make sure this host can be reached '
                           r"over ssh: (?!\[Errno 32\])")


def classify(event: str, res: dict) -> tuple[str, str]:
    """(status, message) of one runner_on_* event."""
    msg = str(res.get("msg") or "").strip()
    if event == "runner_on_unreachable":
        return "unreachable", DATA_NOT_SENT.sub("Failed to connect to the host via ssh: ", msg, count=1) or \
            "unreachable"
    if event == "runner_on_ok":
        if isinstance(res.get("document"), dict):
            return "ok", ""
        return "failed", "the module returned no document"
    # runner_on_failed
    if res.get("timed_out") or res.get("timedout") or "timed out" in msg or "time frame" in msg:
        return "timeout", msg or "timed out"
    detail = res.get("module_stderr") or res.get("module_stdout") or res.get("exception") or ""
    detail = [line for line in str(detail).strip().splitlines()
              if line.strip() != "(traceback unavailable)"]  # ansible-core 2.19's placeholder, not a reason
    if detail and detail[-1] not in msg:
        last = detail[-1].strip()
        last = last if len(last) <= MESSAGE_DETAIL else last[:MESSAGE_DETAIL] + "…"  # a line of junk, bounded
        msg = f"{msg}: {last}" if msg else last
    return "failed", with_vault_hint(msg) or "failed"  # an encrypted ansible_user: Ansible fails the host for it


def host_result(event: dict, module: str = MODULE) -> tuple[str, str, dict] | None:
    """(host, event name, result) when a runner event is a host's answer: ok from `module` (not from any
    other task a playbook may add), or failed / unreachable at any task. None for every other event."""
    name = event.get("event", "")
    if name not in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
        return None
    data = event.get("event_data") or {}
    if name == "runner_on_ok" and not str(data.get("task_action", "")).endswith(module):
        return None
    return data.get("host"), name, data.get("res") or {}


class Progress:
    """`collect: 12/40 hosts, 1 unreachable, 0 failed` on one updating terminal line; silent under cron."""

    def __init__(self, total: int, stream=None, enabled: bool | None = None):
        self.total, self.stream = total, stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()

    def update(self, counts: dict[str, int]) -> None:
        if not self.enabled:
            return
        done = sum(counts.get(s, 0) for s in STATUSES)
        bad = ", ".join(f"{counts[s]} {s}" for s in STATUSES[1:] if counts[s])
        line = f"collect: {done}/{self.total} hosts{', ' + bad if bad else ''} ({time.monotonic() - self.started:.0f}s)"
        self.stream.write("\r\033[K" + line)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


#: How long Ansible may take to reach the play (its start, the inventory) before the run is stopped: a
#: dynamic inventory that hangs would otherwise hold the data folder's lock, and every later run, forever.
START_LIMIT_S = 300


def run_collect(
    settings: Settings,
    inventory: Path | None = None,
    limit: str | None = None,
    progress: bool | None = None,
) -> RunSummary:
    """Collect from every host once; spool the results. Does not ingest (see warehouse.ingest_pending).

    ansible-playbook starts first; this process writes the hosts' hints while it does, then takes the host
    list from Ansible as the play starts (play_hosts); a result that comes before it waits for it. SIGTERM and
    SIGINT stop the run (CollectInterrupted); their handlers are those of the caller again once it returns,
    so that what the caller does next (storing the run, the report) can be interrupted too."""
    with callers_signal_handlers():
        return _run_collect(settings, inventory, limit, progress)


@contextlib.contextmanager
def callers_signal_handlers():
    """The caller's SIGTERM and SIGINT handlers, back once the block ends: ansible-runner installs its own,
    which only note a signal (to stop its run), and leaves them (main thread only: others cannot set any)."""
    import signal

    main = threading.current_thread() is threading.main_thread()
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)} if main else {}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def run_limit_s(hosts: int, forks: int, connect_timeout: int, host_timeout: int) -> float:
    """Seconds the run may take once its play has started, a backstop behind each host task's own bound: hosts
    go in waves of `forks`, each costing at most a connection and the host timeout (and a margin)."""
    waves = math.ceil(hosts / min(forks, max(1, hosts)))
    return waves * (connect_timeout + host_timeout + 20) + 30


def usable_inventory(settings: Settings, inventory: Path | None, limit: str | None) -> Path:
    """The run's inventory, resolved; CollectUsageError where it or a --limit @file is not there (checked before
    the data folder is locked, and so made: a typo must leave nothing behind)."""
    from .inventory import missing_limit_file

    inventory = Path(inventory or settings.path("collect", "inventory")).resolve()
    if not inventory.exists():
        raise CollectUsageError(not_found(inventory))
    missing = missing_limit_file(limit)
    if missing:
        raise CollectUsageError(missing)
    return inventory


def _run_collect(settings: Settings, inventory: Path | None, limit: str | None,
                 progress: bool | None) -> RunSummary:
    from ansible_runner.interface import init_runner
    from ansible_runner.utils import signal_handler

    inventory = usable_inventory(settings, inventory, limit)
    data_dir = settings.data_dir
    started, began = utcnow(), time.time()
    summary = RunSummary(new_run_id(started), iso(started), inventory=str(inventory))
    spool = Spool(data_dir)
    local_temp(data_dir)
    bundle, known = stage_bundle(settings, summary.warnings.append)
    seen = {}  # host: {"python": version, "magic": hex, "implementation": name}, as this run's answers tell
    host_timeout = int(settings.get("collect", "host_timeout_s"))
    connect_timeout = int(settings.get("collect", "connect_timeout_s"))
    forks = max(1, int(settings.get("collect", "forks")))  # Ansible uses no more workers than hosts
    hosts_known = threading.Event()
    play_started = threading.Event()
    # Set when the runner returns, or earlier, at Ansible's last event once every host has answered: the
    # ansible-playbook process then still takes ~0.3 s to exit, which the caller overlaps with storing.
    finished = threading.Event()
    stop = {"why": None, "deadline": None}  # why: None, "no hosts" or "error"
    unwritable: list[OSError] = []  # the spool could not be written (a full disk): the run stops
    interrupted = signal_handler()  # SIGTERM / SIGINT cancel the run, as ansible_runner.run() would
    bar = Progress(0, enabled=False)
    order: list[str] = []  # the hosts in the inventory's order, once known

    def cancel() -> bool:
        if interrupted is not None and interrupted():
            return True
        deadline = stop["deadline"]
        return stop["why"] is not None or (deadline is not None and time.monotonic() > deadline)

    def on_event(event: dict) -> bool:
        if event.get("event") == "playbook_on_play_start":
            play_started.set()  # the play's hosts are written by now, or will not be (play_hosts)
        if event.get("event") == "playbook_on_stats":  # Ansible's last event: the play is over
            hosts_known.wait()
            if "pending" not in summary.status.values():
                finished.set()
            return True
        answer = host_result(event)
        if answer is None:
            return True
        hosts_known.wait()
        host, name, res = answer
        if host not in summary.status or summary.status[host] != "pending":
            return False
        status, message = classify(name, res)
        seen_python(seen, host, res)
        if unwritable:  # the run is being stopped: nothing more can be kept
            return False
        try:
            spool.put(
                summary.run_id,
                {
                    "host": host,
                    "status": status,
                    "message": message,
                    "ts": iso(utcnow()),
                    "document": res.get("document") if status == "ok" else None,
                },
            )
        except OSError as e:  # a full disk: stop Ansible (cancel), keep what is written, say so (exit 4)
            unwritable.append(e)
            stop["why"] = "error"
            return False
        summary.status[host], summary.messages[host] = status, message
        bar.update(summary.counts())
        return False  # the document is spooled: no need for a second copy in the runner's artifacts

    def drop_run_files() -> None:
        """This run's hints and openings: the action has read them, or will not."""
        shutil.rmtree(hints, ignore_errors=True)
        play_hosts_file.unlink(missing_ok=True)
        warm.close()
        shutil.rmtree(opened, ignore_errors=True)

    def finish(runner_status: str) -> RunSummary:
        drop_run_files()
        if warmup and not limit and order:
            ssh_warmup.keep_order(records, order)
        drop_unreadable(facts, began - 1)
        try:
            update_host_pythons(data_dir / ".stage", seen, None if limit else order)
        except OSError as e:  # only costs the next run some bytes and the hosts some CPU
            summary.warnings.append(f"could not record the hosts' Pythons: {e}")
        summary.finished_at = iso(utcnow())
        summary.runner_status = runner_status
        spool.finish_run(summary.run_id, summary.meta())
        return summary

    spool.start_run(summary.run_id, summary.meta())  # an unwritable data folder fails here, before Ansible
    private, envvars = runner_env(data_dir, None, connect_timeout, bundle)
    # Written while Ansible starts, read by the action when a host's task runs (it waits for the folder).
    hints = private / f"hints-{summary.run_id}"
    envvars["FLEETSCOPE_HINTS"] = str(hints)
    # The hosts the play targets, written by Ansible as the play starts (play_hosts).
    play_hosts_file = private / f"hosts-{summary.run_id}.json"
    envvars[playbook_launcher.HOSTS_ENV] = str(play_hosts_file)
    # The first hosts' SSH connections, opened while Ansible starts (ssh_warmup); not for a --limit run. The
    # command lines are kept per inventory (two inventories on one data folder keep their own).
    warmup = bool(settings.get("collect", "ssh_warmup"))
    records = private / "ssh-commands" / hashlib.sha256(str(inventory).encode()).hexdigest()[:16]
    opened = private / f"ssh-opened-{summary.run_id}"
    if warmup:
        envvars[ssh_warmup.RECORDS_ENV], envvars[ssh_warmup.OPENED_ENV] = str(records), str(opened)
    remove_stale([*private.glob("hints-*"), *private.glob(".hints-*"), *private.glob("ssh-opened-*"),
                  *private.glob("hosts-*.json*")], 3600)  # killed runs'
    remove_stale(list(private.glob("ssh-commands/*")), 30 * 86400)  # inventories not collected for a month
    facts, cache_args = fact_cache(data_dir, envvars)
    runner = init_runner(
        private_data_dir=str(private),
        **playbook_args(PLAYBOOK),
        inventory=str(inventory),
        limit=limit,
        forks=forks,
        envvars=envvars,
        extravars={
            "collect_top_n": int(settings.get("collect", "top_processes")),
            "collect_host_timeout": host_timeout,
        },
        event_handler=on_event,
        cancel_callback=cancel,
        quiet=True,
        rotate_artifacts=max(1, int(settings.get("collect", "keep_artifacts"))),
        **cache_args,
    )
    # How often the runner asks cancel(): the deadline's resolution (5 s by default). Set here, not as
    # ansible-runner's settings={"pexpect_timeout": 1}: with suppress_env_files (playbook_args) it drops
    # settings it is given unless <private>/env/settings exists.
    runner.config.pexpect_timeout = 1
    crashed: list[BaseException] = []

    def run_runner() -> None:
        try:
            runner.run()
        except BaseException as e:  # noqa: BLE001 - reported below, as the run's error
            crashed.append(e)
        finally:
            hosts_known.set()
            finished.set()

    thread = threading.Thread(target=run_runner, name="ansible-runner", daemon=True)
    thread.start()
    warm = ssh_warmup.Warmup(opened)
    try:
        warm = ssh_warmup.start(records, opened, forks if warmup and not limit else 0)
        write_hints(hints, accounting_since(data_dir), known, warm.started)

        def parse_hosts() -> list[str]:  # not when the run was stopped before the play: nothing to wait for
            if interrupted is not None and interrupted():
                raise CollectInterrupted("interrupted before Ansible reached the play: nothing was collected")
            if time.monotonic() > stop["deadline"]:
                raise CollectError(f"Ansible had not reached the play after {START_LIMIT_S} s, and was stopped: "
                                   f"the inventory did not load (a dynamic inventory that hangs?)")
            return inventory_hosts(inventory, limit, ordered=True, quiet_limit=True)  # Ansible's run warns

        stop["deadline"] = time.monotonic() + START_LIMIT_S  # until the play starts: then by the hosts
        order = play_hosts(play_hosts_file, play_started, finished, parse_hosts, patience=START_LIMIT_S + 30)
        summary.hosts = sorted(order)
        summary.status = dict.fromkeys(summary.hosts, "pending")
        spool.start_run(summary.run_id, summary.meta())  # again, with the hosts
    except BaseException as e:
        stop["why"] = "error"
        hosts_known.set()
        thread.join()
        drop_run_files()
        if isinstance(e, (CollectUsageError, CollectInterrupted)):  # "nothing done": no run to store either
            shutil.rmtree(spool.run_dir(summary.run_id), ignore_errors=True)
        raise
    hosts = summary.hosts
    if not hosts:
        stop["why"] = "no hosts"
    stop["deadline"] = time.monotonic() + run_limit_s(len(hosts), forks, connect_timeout, host_timeout)
    bar = Progress(len(hosts), enabled=progress)
    bar.update(summary.counts())
    hosts_known.set()
    try:
        while not finished.wait(0.5):  # a timeout, so that SIGTERM's handler runs
            pass
    finally:
        bar.close()
    # every host answered and Ansible is exiting: its status follows from theirs (not a runner thread still
    # alive after an interrupt or a crash, with hosts pending: that is the path below)
    if hosts and thread.is_alive() and "pending" not in summary.status.values():
        summary.wait_ansible = lambda: thread.join(60)
        finish("successful" if all(s == "ok" for s in summary.status.values()) else "failed")
        if interrupted is not None and interrupted():  # ansible-runner's handler took the signal: it is ours
            thread.join(60)
            raise CollectInterrupted(f"interrupted: every host had answered; the {len(hosts)} host result(s) are "
                                     f"kept in {spool.run_dir(summary.run_id)} and stored by the next run")
        return summary
    thread.join()
    if crashed and hosts:
        drop_run_files()
        raise CollectError(f"ansible-runner failed: {type(crashed[0]).__name__}: {crashed[0]}")
    if unwritable:
        drop_run_files()
        e = unwritable[0]
        kept = sum(1 for status in summary.status.values() if status != "pending")
        raise CollectStorageError(
            f"could not write to {spool.run_dir(summary.run_id)}: {e.strerror or e}; the run was stopped there. "
            f"The {kept} host result(s) written before it are kept and stored by the next run "
            f"(or `fleetscope ingest`) once there is room")
    if not hosts:  # an inventory Ansible could not parse ends here too: what it said is the reason
        summary.warnings.extend(f"Ansible: {line}" for line in _ansible_warnings(runner))
        return finish("no hosts")
    if runner.status == "canceled" and stop["deadline"] is not None and time.monotonic() > stop["deadline"]:
        runner.status = "timeout"
    late = "no result before the run's time limit" if runner.status == "timeout" else None
    stopped = interrupted is not None and interrupted()
    unanswered = [host for host, status in summary.status.items() if status == "pending"]
    if stopped:
        # Stopped by the operator, cron or a shutdown, not by the hosts: those that had not answered are left
        # out of the run rather than stored as failing (the problems page, "status since"). A host that hangs
        # every run still shows: as silent, its last status ageing, or as a timeout at the run's own limit.
        summary.hosts = [host for host in summary.hosts if host not in unanswered]
        for host in unanswered:
            del summary.status[host]
    if not stopped and not late and unanswered and len(unanswered) == len(summary.hosts):
        # Ansible ended before any host's task did (a vault secret missing, a playbook error): no host was
        # reached, so none is stored as failing (the problems page, "status since"); the run collected nothing
        drop_run_files()
        shutil.rmtree(spool.run_dir(summary.run_id), ignore_errors=True)
        raise CollectError(f"Ansible stopped before any of the {len(unanswered)} host(s) answered: "
                           f"{_runner_failure(runner)}")
    for host in [] if stopped else unanswered:
        summary.status[host] = "timeout" if late else "failed"
        summary.messages[host] = late or _runner_failure(runner)
        spool.put(
            summary.run_id,
            {"host": host, "status": summary.status[host], "message": summary.messages[host],
             "ts": iso(utcnow()), "document": None},
        )
    finish(runner.status)
    if stopped and not summary.hosts:  # nothing came back: no run to store (it would be the latest, of 0 hosts)
        shutil.rmtree(spool.run_dir(summary.run_id), ignore_errors=True)
        raise CollectInterrupted("interrupted: Ansible stopped before any host answered: nothing was collected")
    if stopped:
        raise CollectInterrupted(f"interrupted: Ansible stopped; the {len(summary.hosts)} host result(s) that came "
                                 f"back are kept in {spool.run_dir(summary.run_id)} and stored by the next run; "
                                 f"the {len(unanswered)} host(s) that had not answered are left out of it")
    if interrupted is not None and interrupted():  # as the run ended (ansible-runner's handler took it): ours
        raise CollectInterrupted(f"interrupted: the run had ended; the {len(summary.hosts)} host result(s) are "
                                 f"kept in {spool.run_dir(summary.run_id)} and stored by the next run")
    if runner.status not in ("successful", "failed", "timeout") and not any(
        s == "ok" for s in summary.status.values()
    ):
        raise CollectError(f"ansible-runner ended with status {runner.status!r}: {_runner_failure(runner)}")
    return summary


def local_temp(data_dir: Path) -> Path:
    """Ansible's local temporary folders under <data>/.runner/tmp, not ~/.ansible/tmp: this process's (it
    parses the inventory through Ansible, which makes one and removes it at exit) and ansible-playbook's
    (runner_env). A killed process's folder stays there and is removed a day later. Call it before the
    first in-process use of Ansible: its settings are read once, at import."""
    tmp = runner_dir(data_dir) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["ANSIBLE_LOCAL_TEMP"] = str(tmp)
    remove_stale(tmp.glob("ansible-local-*"), 86400)
    return tmp


#: The fact cache plugin of collect and hosts check (roles/collect/cache_plugins): Ansible's jsonfile, except
#: that a host name that is no file name is hashed and a damaged file reads as missing; with jsonfile, either
#: failed every host of the run.
FACT_CACHE_PLUGIN = "fleetscope_jsonfile"


def fact_cache(data_dir: Path, envvars: dict[str, str]) -> tuple[Path, dict]:
    """The folder and ansible-runner's arguments of the fact cache of collect and hosts check, and its
    settings for Ansible in ``envvars``. It outlives the run (ansible-runner keeps one per run by default):
    the interpreter discovered on a host is remembered for a day (Ansible's cache timeout), which saves an SSH
    command per host and run; the action looks again where it has gone. Entries a day past expiry are
    removed here. ansible-runner sets up only its own type of cache ("jsonfile"), so with this one it leaves
    the settings to ``envvars``."""
    facts = runner_dir(data_dir) / "fact_cache"
    remove_stale(list(facts.glob("*")), 2 * 86400)
    envvars["ANSIBLE_CACHE_PLUGIN"] = FACT_CACHE_PLUGIN
    envvars["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(facts)
    return facts, {"fact_cache_type": FACT_CACHE_PLUGIN}


def runner_dir(data_dir: Path) -> Path:
    """ansible-runner's private folder: its inputs, the last runs' artifacts, Ansible's temporary folders."""
    return Path(data_dir) / ".runner"


def runner_env(data_dir: Path, module_utils: Path | None, connect_timeout: int,
               bundle: Path | None = None) -> tuple[Path, dict[str, str]]:
    """ansible-runner's private folder and the environment every fleetscope playbook runs with.

    ``bundle``: the staged collector for the fleetscope_collect action (stage.write_bundle);
    ``module_utils``: the staged package for Ansible modules that import it (the admin module)."""
    private = runner_dir(data_dir)
    private.mkdir(parents=True, exist_ok=True)
    # ansible-runner reads arguments left in <private>/env/ (by an older fleetscope, which let it write
    # them there, or by hand) on top of those it is given: fleetscope's runs write none (playbook_args).
    shutil.rmtree(private / "env", ignore_errors=True)
    shutil.rmtree(private / "routing-cache", ignore_errors=True)  # an older fleetscope's; now in yaml-cache
    envvars = {
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        "ANSIBLE_ROLES_PATH": str(PROJECT_DIR / "roles"),
        "ANSIBLE_LIBRARY": str(PROJECT_DIR / "roles" / "collect" / "library"),
        "ANSIBLE_ACTION_PLUGINS": str(PROJECT_DIR / "roles" / "collect" / "action_plugins"),
        "ANSIBLE_CACHE_PLUGINS": str(PROJECT_DIR / "roles" / "collect" / "cache_plugins"),
        "ANSIBLE_TIMEOUT": str(connect_timeout),
        "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    # ansible-runner turns host key checking off (ANSIBLE_HOST_KEY_CHECKING=False, as AWX wants) unless the
    # environment sets it, and an environment variable beats ansible.cfg: pass ansible.cfg's own setting on,
    # unless the user's environment sets one.
    envvars["ANSIBLE_HOST_KEY_CHECKING"] = os.environ.get("ANSIBLE_HOST_KEY_CHECKING") or _host_key_checking()
    if module_utils is not None:
        envvars["ANSIBLE_MODULE_UTILS"] = str(module_utils)
    if bundle is not None:
        envvars["FLEETSCOPE_BUNDLE"] = str(bundle)
        # The fleetscope_collect action bounds its task at the host timeout + 15 s where no task timeout
        # applies; Ansible's task_timeout setting (ansible.cfg, or ANSIBLE_TASK_TIMEOUT in the user's
        # environment, which ansible-runner passes on) would replace that bound on every host.
        envvars["ANSIBLE_TASK_TIMEOUT"] = "0"
    # ansible-runner starts the playbooks with this Python (playbook_args); ansible-playbook's own children
    # (ssh, the local connection's commands) look in PATH: this Python's folder first, so that
    # `.venv/bin/fleetscope` works from cron without an activated venv.
    envvars["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
    envvars[CACHE_ENV] = str(private / "yaml-cache")
    return private, envvars


def playbook_args(playbook: Path, *options: str) -> dict:
    """ansible-runner's arguments that run `playbook` with fleetscope's ansible-playbook: Ansible's own, with
    the YAML of its start kept parsed and garbage collection held until its first worker (playbook_launcher),
    run by this Python. `options` go to
    ansible-playbook (ansible-runner's `cmdline`); ansible-runner adds the inventory, --limit, the extra
    variables and --forks, as for its own ansible-playbook.

    ansible-runner would otherwise write its arguments (this command line, the environment, the extra
    variables) to <private>/env/ and read them back, and collect, `hosts check` and the admin actions share
    that folder and may run at once: one could run another's playbook. suppress_env_files passes them
    straight on. (It also drops `settings` passed to it: see collect.)"""
    words = [playbook_launcher.__file__, str(playbook), *options]
    return {"binary": sys.executable, "cmdline": shlex.join(words), "suppress_env_files": True}


def _host_key_checking() -> str:
    """ansible.cfg's host_key_checking as written there (Ansible reads the environment variable as it reads
    the file: yes/no, true/false, y/n, t/f, on/off, 1/0), "True" (Ansible's default) where it does not say.
    The file is read as Ansible reads it (a `;` comment may end a line); importing Ansible's own config
    code here would cost 0.3 s before Ansible can start."""
    cfg = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    try:
        cfg.read(ANSIBLE_CFG)
    except configparser.Error:  # Ansible itself will say what is wrong with the file
        return "True"
    return cfg.get("defaults", "host_key_checking", fallback="True").strip() or "True"


def check_hosts(settings: Settings, inventory: Path | None = None, limit: str | None = None,
                warn: Callable[[str], None] | None = None) -> list[dict]:
    """For `fleetscope hosts check`: per host, can we log in and run python3, does NVML answer, and does /proc
    show other users' processes to the account. Where SIGINT or SIGTERM stopped the check: CollectInterrupted,
    whose ``rows`` have the status "interrupted" for the hosts that had not answered.

    Runs playbooks/check.yml (the collector's host, gpus and processes parts only). Stores no data: only what the
    hosts told of their Pythons (stage.update_host_pythons), which picks the bytecode the next collect
    sends them, and their interpreters, discovered afresh as a new host's would be, in the fact cache
    `collect` uses."""
    import ansible_runner
    from ansible_runner.utils import signal_handler

    inventory = usable_inventory(settings, inventory, limit)  # before local_temp makes the data folder
    data_dir = settings.data_dir
    began = time.time()
    local_temp(data_dir)
    hosts = inventory_hosts(inventory, limit)
    if not hosts:
        return []
    bundle, _ = stage_bundle(settings, warn)
    seen = {}
    host_timeout = int(settings.get("collect", "host_timeout_s"))
    private, envvars = runner_env(data_dir, None, int(settings.get("collect", "connect_timeout_s")), bundle)
    facts, cache_args = fact_cache(data_dir, envvars)  # the interpreters it discovers, for collect to use
    rows = {h: {"host": h, "status": "timeout", "ssh": "", "python": "", "nvml": "", "processes": "",
                "message": "no answer before the time limit"} for h in hosts}

    def on_event(event: dict) -> bool:
        answer = host_result(event)
        if answer is None or answer[0] not in rows:
            return True
        host, name, res = answer
        status, message = classify(name, res)
        seen_python(seen, host, res)
        row = rows[host]
        row.update(status=status, message=message, ssh="ok" if status != "unreachable" else "failed")
        doc = res.get("document") if status == "ok" else None
        if doc:
            row.update(check_row(doc))
        return False

    with callers_signal_handlers():  # ansible-runner's own stop the run (SIGINT, SIGTERM): said below
        interrupted = signal_handler()  # as ansible_runner.run() would install it, but ours to ask after
        runner = ansible_runner.run(
            cancel_callback=interrupted,
            private_data_dir=str(private), **playbook_args(PROJECT_DIR / "playbooks" / "check.yml"),
            inventory=str(inventory), limit=limit,
            forks=max(1, min(int(settings.get("collect", "forks")), len(hosts))),
            envvars=envvars, extravars={"collect_host_timeout": host_timeout}, event_handler=on_event, quiet=True,
            timeout=math.ceil(len(hosts) / max(1, int(settings.get("collect", "forks")))) * (host_timeout + 40) + 30,
            rotate_artifacts=max(1, int(settings.get("collect", "keep_artifacts"))),
            **cache_args,
        )
    if runner.status == "canceled":  # interrupted: the hosts that had not answered are not to blame
        for row in rows.values():
            if row["status"] == "timeout" and not row["ssh"]:
                row.update(status="interrupted", message="interrupted before this host answered")
    elif runner.status != "timeout":  # Ansible ended before their task did (a vault secret missing): its words
        failure = None
        for row in rows.values():
            if row["status"] == "timeout" and not row["ssh"]:
                failure = failure or _runner_failure(runner)
                row.update(status="failed", message=failure)
    drop_unreadable(facts, began - 1)
    try:
        update_host_pythons(data_dir / ".stage", seen)
    except OSError:  # a check stores nothing else either
        pass
    if runner.status == "canceled" or (interrupted is not None and interrupted()):  # also as the run ended
        stopped = CollectInterrupted("interrupted")
        stopped.rows = [rows[h] for h in hosts]
        raise stopped
    return [rows[h] for h in hosts]


def check_row(doc: dict) -> dict[str, str]:
    """`hosts check`'s columns python, nvml and processes, and its message, from a host's document."""
    h, g, p = doc.get("host") or {}, doc.get("gpus") or {}, doc.get("processes") or {}
    if g.get("available"):
        nvml = f"{len(g.get('devices') or [])} GPU(s), driver {h.get('nvidia_driver')}"
    else:
        nvml = g.get("reason") or "unknown"
    notes = [f"{e.get('subsystem')}: {e.get('message')}" for e in doc.get("errors") or []]
    hidden = p.get("others_hidden")
    if hidden:
        notes.append("processes: /proc hides other users' processes from this account (hidepid=): their processes, "
                     "and the owners or commands of their GPU processes, will be missing; add the account to the "
                     "group named by /proc's gid= mount option, or mount /proc with a gid= naming a group it is "
                     "in (under hidepid=ptraceable, only CAP_SYS_PTRACE helps)")
    xid = doc.get("xid") or {}
    if xid.get("available") is False:  # a GPU host whose kernel log this account may not read
        remedy = "; collect as root, or give the account CAP_SYSLOG" if "dmesg_restrict" in str(xid.get("reason")) \
            else ""  # no /dev/kmsg (a container): nothing an account's rights change
        notes.append(f"xid: {xid.get('reason')}: the NVIDIA driver's Xid errors (a GPU fallen off the bus, ECC) "
                     f"will not be read{remedy}")
    return {"python": h.get("python") or "", "nvml": nvml, "message": "; ".join(notes),
            "processes": {True: "own only (hidepid)", False: "all"}.get(hidden, "")}


def stage_bundle(settings: Settings, warn: Callable[[str], None] | None = None) -> tuple[Path, dict[str, dict]]:
    """(the collector bundle staged for this run, {host: {"python", "magic"}} as the last runs told it).
    The bundle carries bytecode for this Python and for those of collect.bytecode_pythons, which by default
    ("auto") are the python3.N (pypy3.N for PyPy) on PATH of the Pythons the hosts ran last time
    (stage.bytecode_pythons)."""
    stage = settings.data_dir / ".stage"
    known = read_host_pythons(stage)
    pythons = bytecode_pythons(settings.get("collect", "bytecode_pythons"), known.values(), warn)
    return write_bundle(stage, settings.get("collect", "ship_pynvml"), pythons, warn), known


def drop_unreadable(folder: Path, since: float) -> None:
    """Remove the fact cache files written since `since` that are not whole JSON. Ansible's jsonfile cache
    renames a file into place even when writing it failed (a full disk), and the next run would stop at
    reading it, for every host; removed, only that host's interpreter is discovered again."""
    for path in folder.glob("*"):
        try:
            if path.stat().st_mtime >= since:
                json.loads(path.read_bytes())
        except ValueError:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def seen_python(seen: dict, host: str, res: dict) -> None:
    """Note the host's Python version (its document), magic number and implementation (the bootstrap's answer)."""
    document = res.get("document")
    facts = document.get("host") if isinstance(document, dict) else None
    version = facts.get("python") if isinstance(facts, dict) else None
    entry = {k: v for k, v in (("python", version), ("magic", res.get("python_magic")),
                               ("implementation", res.get("python_implementation"))) if isinstance(v, str)}
    if entry:
        seen[host] = entry


def write_hints(folder: Path, since: dict[str, str], known: dict[str, dict],
                opened: dict[str, list[str]] | None = None) -> None:
    """The hints for the fleetscope_collect action (FLEETSCOPE_HINTS): per host, the time for
    accounting_since, its Python's magic number (the action then sends that host only the bytecode it can
    run) and the command line its SSH connection is being opened with (ssh_warmup). One small file per host
    (stage.host_file), so that each host's task reads its own, not the whole fleet's (that was 2 ms of JSON
    per host at 3,000 hosts); in a folder written beside and renamed into place, so the action, which waits
    for the folder, sees it whole."""
    building = folder.with_name(f".{folder.name}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    opened = opened or {}
    for host in {*since, *known, *opened}:
        entry = {"accounting_since": since.get(host), "python_magic": (known.get(host) or {}).get("magic"),
                 "ssh": opened.get(host)}
        entry = {k: v for k, v in entry.items() if isinstance(v, (str, list))}
        if entry:
            host_file(building, host).write_text(json.dumps(entry), encoding="utf-8")
    building.rename(folder)


def accounting_since(data_dir: Path) -> dict[str, str]:
    """Per stored host, the host clock of its latest sample (by the controller's clock, so that one sample
    from a host clock set ahead does not hide the records of the hours after it): GPU accounting records of
    processes that ended before it were stored by that run, so the collector leaves them out. New hosts are
    not in it (all records). Every stored host, not only the run's: the lookup runs before the inventory is
    parsed."""
    from .warehouse import connect

    try:
        con = connect(data_dir, tables=("host_samples",))
        try:
            rows = con.execute(
                "SELECT host, strftime(arg_max(host_ts, ts), '%Y-%m-%dT%H:%M:%SZ') FROM host_samples GROUP BY host"
            ).fetchall()
        finally:
            con.close()
    except Exception:  # noqa: BLE001 - an unreadable warehouse only means records may come twice
        return {}
    return {host: since for host, since in rows if since}


def _runner_failure(runner) -> str:
    """The last useful line Ansible printed, for hosts that got no event at all (with the vault hint where it
    says a secret is missing)."""
    try:
        lines = [ln.strip() for ln in runner.stdout.read().splitlines() if ln.strip()]
    except Exception:  # noqa: BLE001 - best effort: this only enriches a message
        lines = []
    for line in reversed(lines):
        if "ERROR" in line or "error" in line:
            return with_vault_hint(line[:500])
    return f"no result from Ansible (runner status {runner.status}, rc {runner.rc})"


def _ansible_warnings(runner, most: int = 5) -> list[str]:
    """The first warnings and errors Ansible printed (an inventory it could not parse), for a run with no host."""
    try:
        lines = runner.stdout.read().splitlines()
    except Exception:  # noqa: BLE001 - best effort: this only explains an empty run
        return []
    said = [ln.split(":", 1)[1].strip() if ln.startswith(("[WARNING]:", "[ERROR]:")) else ln.strip()
            for ln in lines if ln.startswith(("[WARNING]:", "[ERROR]:", "ERROR"))]
    return said[:most]
