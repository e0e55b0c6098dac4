"""`fleetscope admin`: one action on one host through playbooks/admin.yml, recorded in admin_actions.

The action runs as a module on the host (roles/admin), which re-checks what it acts on there (a process
must still run as the user and command the report showed). `--check` runs it in Ansible's check mode:
the module reports what it would do and changes nothing. Every action, refused or done, is recorded.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .collect import (
    PROJECT_DIR,
    CollectError,
    callers_signal_handlers,
    classify,
    host_result,
    inventory_hosts,
    local_temp,
    playbook_args,
    runner_env,
)
from .interrupts import query_interrupted
from .lock import Busy, admin_actions_lock
from .settings import Settings
from .stage import stage_module_utils

PLAYBOOK = PROJECT_DIR / "playbooks" / "admin.yml"
MODULE = "fleetscope_admin"


class AdminError(ValueError):
    """The action cannot be run as asked (unknown host, bad arguments); nothing was done."""


@dataclass
class AdminResult:
    host: str
    action: str
    target: str
    status: str  # ok | failed | unreachable | timeout | interrupted
    changed: bool | None  # None: not known (no answer came: timeout, interrupted)
    message: str
    check_mode: bool
    unrecorded: str | None = None  # why the action could not be recorded in admin_actions, after it ran
    warning: str | None = None  # recorded, but the DuckDB CLI's views (fleet.duckdb) could not be updated


def describe(action: str, args: dict) -> str:
    if action == "kill":
        return f"pid {args['pid']}"
    if args.get("gpu") is None:
        return "all gpus"
    return f"gpu {args['gpu']}"


def run_action(settings: Settings, host: str, args: dict, *, inventory: Path | None = None, check: bool = False,
               become: bool = True, timeout_s: int = 120) -> AdminResult:
    """Run the admin module with `args` on `host`; record and return the result. The run's bound is
    ``timeout_s``, or a kill's --wait (and a SIGKILL after it) plus a minute, whichever is longer."""
    import ansible_runner

    timeout_s = max(timeout_s, int(args.get("wait") or 0) + 60)
    inventory = Path(inventory or settings.path("collect", "inventory")).resolve()
    data_dir = settings.data_dir
    try:
        known = inventory_hosts(inventory)
    except CollectError as e:  # missing, or not an inventory Ansible can parse
        raise AdminError(str(e)) from e
    if host not in known:
        raise AdminError(f"{host} is not in {inventory}")
    _check_recordable(data_dir)
    local_temp(data_dir)
    module_utils = stage_module_utils(data_dir / ".stage", settings.get("collect", "ship_pynvml"))
    private, envvars = runner_env(data_dir, module_utils, int(settings.get("collect", "connect_timeout_s")))
    action = args["action"]
    result = AdminResult(host, action, describe(action, args), "timeout", None,
                         "no answer before the time limit", check)

    def on_event(event: dict) -> bool:
        answer = host_result(event, MODULE)
        if answer is None or answer[0] != host:
            return True
        _, name, res = answer
        if name == "runner_on_ok":
            result.status, result.changed, result.message = "ok", bool(res.get("changed")), str(res.get("message"))
        else:  # a failure may come after a change (maintenance on GPU 0 done, GPU 1 refused)
            result.status, result.message = classify(name, res)
            result.changed = bool(res.get("changed"))
        return True

    with callers_signal_handlers():
        runner = ansible_runner.run(
            private_data_dir=str(private), **playbook_args(PLAYBOOK, *(["--check"] if check else [])),
            inventory=str(inventory), envvars=envvars,
            extravars={"admin_host": host, "admin_args": args, "admin_become": become},
            event_handler=on_event, quiet=True, timeout=timeout_s,
            rotate_artifacts=max(1, int(settings.get("collect", "keep_artifacts"))),
        )
    if result.status == "timeout" and runner.status == "canceled":  # SIGINT or SIGTERM stopped it
        result.status = "interrupted"
        result.message = "interrupted before the host answered: whether it acted is not known"
    return _on_record(data_dir, result, args)


def _on_record(data_dir: Path, result: AdminResult, args: dict) -> AdminResult:
    """``result`` recorded in admin_actions; where it cannot be (a full disk, Ctrl-C as it is written), said in
    ``result.unrecorded``: the action ran all the same. The DuckDB CLI's views refreshed after (a warning)."""
    import duckdb

    from .warehouse.catalog import refresh_catalog_quietly

    try:
        record(data_dir, result, args)
    except Exception as e:  # the action ran: say so, and that it is not on record
        if query_interrupted(e):  # Ctrl-C while it was written: said as such
            e = OSError(f"interrupted while it was written ({str(e).strip().splitlines()[0]})")
        elif not isinstance(e, (OSError, duckdb.Error, Busy)):
            raise
        where = f" ({e.filename})" if isinstance(e, OSError) and e.filename else ""
        result.unrecorded = f"{getattr(e, 'strerror', None) or str(e).strip().splitlines()[0]}{where}"
    else:  # the table's first file changes its view in the DuckDB CLI's file
        try:
            result.warning = refresh_catalog_quietly(data_dir)
        except KeyboardInterrupt:  # the action ran and is on record: its result is said all the same
            result.warning = "interrupted while the DuckDB CLI's views were refreshed; the next collect does"
    return result


def _check_recordable(data_dir: Path) -> None:
    """Raise AdminError where the action could not be recorded (a data folder this user cannot write, a full
    disk): it is not run then, since every action must be on record."""
    folder = Path(data_dir) / "admin_actions"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise AdminError(f"cannot record the action in {folder}: {e.strerror or e}; nothing was done") from e


def record(data_dir: Path, result: AdminResult, args: dict, now: dt.datetime | None = None) -> None:
    """Append the action to admin_actions (one small Parquet file; compaction merges them per day).
    ``now``: when the action ended, naive UTC (default: the controller's clock)."""
    import duckdb

    from .warehouse.ingest import write_table

    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    run_id = f"admin-{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(2)}"
    try:
        operator = getpass.getuser()
    except (KeyError, OSError):
        operator = None
    row = {"run_id": run_id, "ts": now.isoformat(sep=" "), "operator": operator, "host": result.host,
           "action": result.action, "target": result.target, "args": json.dumps(args, sort_keys=True),
           "check_mode": result.check_mode, "status": result.status, "changed": result.changed,
           "message": result.message}
    con = duckdb.connect()
    try:
        waiting = True
        with admin_actions_lock(data_dir):
            waiting = False
            write_table(con, data_dir, "admin_actions", run_id, [row])
    except KeyboardInterrupt:  # the action ran: its result is said, with what became of its record
        raise OSError("interrupted while it waited for admin_actions' lock (a rollup compacting the table)"
                      if waiting else "interrupted while it was written: whether it is on record is not known") \
            from None
    finally:
        con.close()
