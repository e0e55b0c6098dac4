"""The `fleetscope` command: a thin layer over the Python API (collect, warehouse, reports).

Exit codes (docs/operations.md):
  0   done; every host ok
  1   done, but at least one host was not ok (unreachable, failed, timeout, or its document refused by the
      warehouse): its status is stored; also `hosts check` (a host not ok), `admin` (the host refused or
      failed the action), `bookings sync` (a source could not be read)
  2   usage or settings error (bad option, unreadable or out-of-range settings, missing inventory or data
      folder, an inventory Ansible cannot parse for `hosts`)
  3   nothing collected: Ansible could not run, or the run reached no host (empty or unparsable inventory,
      a --limit matching none)
  4   storage error: what was not stored stays in the spool and the next run stores it (also: the rollup
      failed, or a damaged warehouse file)
  5   SQL error (fleetscope sql), or the warehouse could not be read for it
  6   rendering the report failed (any previous report stays in place)
  75  another fleetscope run holds the data directory: nothing done (try again later)
  130 interrupted (Ctrl-C or SIGTERM)
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

from . import __version__
from .interrupts import query_interrupted, reraise
from .settings import Settings, SettingsError, load
from .text import first_line, one_line

EXIT_OK, EXIT_HOSTS, EXIT_USAGE, EXIT_ANSIBLE, EXIT_STORAGE, EXIT_SQL, EXIT_REPORT = 0, 1, 2, 3, 4, 5, 6
EXIT_BUSY = 75
EXIT_INTERRUPTED = 130


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def _settings(args) -> Settings:
    settings = load(args.config)
    if getattr(args, "data", None):
        settings.values["storage"]["data_dir"] = str(Path(args.data).resolve())
    if getattr(args, "out", None):
        settings.values["report"]["out_dir"] = str(Path(args.out).resolve())
    return settings


#: What DuckDB says of a Parquet file gone between listing a day's files and reading them: a rollup (which
#: readers do not wait for) swapped that day's compacted files in.
VANISHED = "No such file or directory"


#: How long a reader tries again while a rollup swaps days in: a rollup that compacts many days swaps one
#: every few seconds for minutes, and a report that reads them all can lose several times in a row.
SWAP_PATIENCE_S = 60.0


def _again_if_swapped(read, reopen=None, patience_s: float = SWAP_PATIENCE_S, under: Path | None = None):
    """``read()``, again (after ``reopen()`` lists the files anew, waiting 0.2 s, then twice as long each
    time up to 2 s) where a file it listed was swapped away meanwhile, for up to ``patience_s`` after the
    first such failure (a read that takes longer than that still gets its tries); any other error at once.
    A swap while ``reopen()`` lists the files is one more such failure. ``under``: only a file gone in this
    folder (the data folder) is taken for one a rollup swapped; a person's own missing file (a COPY to a
    folder that is not there) is an error at once, not after a minute."""
    where = None if under is None else str(Path(under).resolve())
    give_up, pause, again = None, 0.2, False
    while True:
        try:
            if again and reopen is not None:
                reopen()
            return read()
        except Exception as e:
            duckdb = sys.modules.get("duckdb")
            if duckdb is None or not isinstance(e, duckdb.Error) or VANISHED not in str(e) or (
                    where is not None and where not in str(e)):
                raise
            give_up = give_up if give_up is not None else time.monotonic() + patience_s
            if time.monotonic() + pause > give_up:
                raise
            time.sleep(pause)
            pause, again = min(pause * 2, 2.0), True


def _not_a_folder(settings: Settings, command: str) -> bool:
    """True, having said so, where the data folder's path is a file."""
    if not settings.data_dir.exists() or settings.data_dir.is_dir():
        return False
    _say(f"fleetscope {command}: {settings.data_dir} is not a folder: --data, $FLEETSCOPE_DATA or "
         f"storage.data_dir must name the data folder")
    return True


def _no_data(settings: Settings, command: str) -> bool:
    """True, having said so, where the data folder is not there: a typo in --data must not read as an empty
    fleet (or replace the site with an empty one)."""
    if settings.data_dir.is_dir():
        return False
    if _not_a_folder(settings, command):
        return True
    _say(f"fleetscope {command}: no data folder at {settings.data_dir}: nothing collected there yet "
         f"(`fleetscope collect` creates it), or --data, $FLEETSCOPE_DATA or storage.data_dir name another")
    return True


def _build_report(settings: Settings, inventory: str | os.PathLike | None = None) -> Path:
    """Render the site. The inventory (``inventory`` or collect.inventory) gives each host's address, groups and
    the variables report.host_columns names; report.user_groups, each user's group. An unreadable inventory or
    groups file costs those, never the report."""
    import reports

    from .inventory import InventoryError, read_hosts
    from .user_groups import read_user_groups
    from .warehouse import connect

    report = dict(settings.values["report"])
    report["held_mem_mib"] = settings.get("rollup", "held_mem_mib")  # one rule for idle-held, rollups and report
    report["max_interval_s"] = settings.get("rollup", "max_interval_s")  # what a sample stands for, likewise
    report["hourly_days"] = settings.get("rollup", "hourly_days")  # what the 30 d and 1 y hourly views can show
    inventory_hosts = None
    path = Path(inventory) if inventory else settings.path("collect", "inventory")
    try:
        inventory_hosts = read_hosts(path, report["host_columns"],  # address, groups and the columns' vars
                                     warn=lambda m: _say(f"warning: {m}"))
    except Exception as e:  # noqa: BLE001 - InventoryError, or whatever else Ansible raised: the report goes on
        what = "report.host_columns left empty" if report["host_columns"] else "no inventory groups and addresses"
        _say(f"warning: {what}: {e if isinstance(e, InventoryError) else f'{type(e).__name__}: {e}'}")
    user_groups = None
    if report["user_groups"].strip():  # "": no groups, and not the settings file's folder read as a CSV file
        user_groups = read_user_groups(settings.path("report", "user_groups"), warn=lambda m: _say(f"warning: {m}"))
    con = connect(settings.data_dir)
    try:
        return reports.build_site(con, settings.out_dir, settings=report, inventory_hosts=inventory_hosts,
                                  bookings=dict(settings.values["bookings"]), user_groups=user_groups)
    finally:
        con.close()


def cmd_collect(args) -> int:
    from .collect import (
        CollectError,
        CollectInterrupted,
        CollectStorageError,
        CollectUsageError,
        run_collect,
        usable_inventory,
    )
    from .lock import Busy, DataLock

    settings = _settings(args)
    if _not_a_folder(settings, "collect"):
        return EXIT_USAGE
    try:
        usable_inventory(settings, args.inventory, args.limit)
    except CollectUsageError as e:  # before the lock, which makes the data folder: a typo leaves nothing
        _say(f"fleetscope collect: {e}")
        return EXIT_USAGE
    try:
        with DataLock(settings.data_dir):
            try:
                summary = run_collect(settings, args.inventory, args.limit, progress=args.progress)
            except CollectError as e:
                _say(f"fleetscope collect: {e}")
                if isinstance(e, CollectInterrupted):
                    return EXIT_INTERRUPTED
                if isinstance(e, CollectStorageError):
                    return EXIT_STORAGE
                return EXIT_USAGE if isinstance(e, CollectUsageError) else EXIT_ANSIBLE
            stored = True
            try:
                # speed: imported once Ansible runs (duckdb's import is 0.1 s); the run's warehouse lookup,
                # done while Ansible starts, has imported it by now
                from .warehouse import IngestError, ingest_pending
                from .warehouse.rollup import rollup, rollup_due

                report = ingest_pending(settings.data_dir, keep_spool=settings.get("storage", "keep_spool"))
            except IngestError as e:  # some runs stay in the spool; the others are stored
                _say(f"fleetscope collect: storing failed: {e}")
                report, stored = e.report, False
            except Exception as e:  # noqa: BLE001 - whatever broke storing, the spool keeps the data
                reraise(e)
                _say(f"fleetscope collect: storing failed, the results stay in {settings.data_dir / 'spool'}: "
                     f"{type(e).__name__}: {e}")
                return EXIT_STORAGE
            finally:
                summary.wait_ansible()  # storing overlapped its exit; the lock is held until it is gone
            for (run_id, host), why in report.refused.items():  # the warehouse refused what the host sent
                if run_id == summary.run_id and host in summary.status:
                    summary.status[host], summary.messages[host] = "failed", why
            storing_failed = not stored
            # not while a run stays in the spool: compaction must not merge a day that run belongs to
            if stored and rollup_due(settings.data_dir, settings):
                progress = _progress_line(args.progress)  # days of it after an upgrade or a long pause
                try:
                    rolled = rollup(settings.data_dir, settings, progress=progress)
                except Exception as e:  # noqa: BLE001 - the run is stored; the next rollup redoes the work
                    if progress:  # ends the progress line, if one was shown
                        print(file=sys.stderr)
                    reraise(e)
                    _say(f"fleetscope collect: rollup failed (the run is stored; the next rollup retries): "
                         f"{type(e).__name__}: {e}")
                    storing_failed = True
                else:
                    if progress and rolled.days_rolled:
                        print(file=sys.stderr)
                    print(f"rollup: {rolled.summary()}")
                    for message in rolled.warnings():
                        _say(f"warning: {message}")
            if settings.get("bookings", "sources"):
                from .bookings import sync_and_store

                try:
                    booked, breaks = sync_and_store(settings, Path(summary.inventory))
                except Exception as e:  # noqa: BLE001 - calendars are extra: the run is stored either way
                    reraise(e)
                    _say(f"fleetscope collect: reading the bookings failed: {type(e).__name__}: {e}")
                else:
                    for error in booked.errors + booked.skipped + booked.warnings:
                        _say(f"warning: bookings: {error}")
                    for line in breaks:
                        print(f"bookings rule broken: {line}")
    except Busy as e:
        _say(f"fleetscope collect: {e}; nothing done")
        return EXIT_BUSY
    for message in summary.warnings + report.rejected + report.warnings:
        _say(f"warning: {message}")
    counts = summary.counts()
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    hosts = len(summary.hosts)
    print(f"run {summary.run_id}: {hosts} host{'' if hosts == 1 else 's'}: {line or 'none'}")
    for host in summary.hosts:
        if summary.status[host] != "ok":
            print(f"  {host}: {summary.status[host]}: {one_line(summary.messages.get(host, ''))}")
    if not summary.hosts:  # under cron, a run that reaches no host must not pass for a good one
        which = f"--limit {args.limit!r} matches no host of {summary.inventory}" if args.limit else \
            f"{summary.inventory} has no hosts, or Ansible could not parse it (its warnings, above, say why)"
        _say(f"fleetscope collect: nothing collected: {which}")
        return EXIT_ANSIBLE
    if not args.no_report:
        try:
            index = _build_report(settings, args.inventory)
        except Exception as e:  # noqa: BLE001 - the run is stored; only the pages are missing
            reraise(e)
            stored_or_not = "runs that could not be stored stay in the spool" if not stored else "the run is stored"
            _say(f"fleetscope collect: {stored_or_not}, but rendering the report failed: {type(e).__name__}: {e}")
            return EXIT_STORAGE if storing_failed else EXIT_REPORT
        print(f"report: {index}")
    if storing_failed:
        return EXIT_STORAGE
    bad = any(s != "ok" for s in summary.status.values())
    return EXIT_HOSTS if bad else EXIT_OK


def cmd_ingest(args) -> int:
    from .lock import Busy, DataLock
    from .warehouse import IngestError, ingest_pending

    settings = _settings(args)
    if _no_data(settings, "ingest"):
        return EXIT_USAGE
    try:
        with DataLock(settings.data_dir):
            report = ingest_pending(settings.data_dir, keep_spool=settings.get("storage", "keep_spool"))
    except Busy as e:
        _say(f"fleetscope ingest: {e}; nothing done")
        return EXIT_BUSY
    except IngestError as e:
        report, failed = e.report, str(e)
    else:
        failed = None
    for message in report.rejected + report.warnings:
        _say(f"warning: {message}")
    rows = ", ".join(f"{n} {t}" for t, n in sorted(report.rows.items()))
    print(f"ingested {len(report.runs)} run(s)" + (f": {rows}" if rows else ""))
    if failed:
        _say(f"fleetscope ingest: {failed}")
        return EXIT_STORAGE
    return EXIT_HOSTS if report.refused else EXIT_OK


def _progress_line(enabled: bool | None):
    """A function that shows one line of progress in place on stderr; None where it is not wanted (`enabled`
    False, or None, the default, and stderr is not a terminal: cron's log gets the summary lines only)."""
    if not (sys.stderr.isatty() if enabled is None else enabled):
        return None
    return lambda line: print("\r\033[K" + line, end="", file=sys.stderr, flush=True)


def cmd_rollup(args) -> int:
    from .lock import Busy, DataLock
    from .warehouse import IngestError, ingest_pending
    from .warehouse.rollup import rollup

    settings = _settings(args)
    if _no_data(settings, "rollup"):
        return EXIT_USAGE
    progress = _progress_line(None)
    try:
        with DataLock(settings.data_dir):
            # Runs left in the spool first: compaction must not merge a day a pending run still belongs to.
            stored = ingest_pending(settings.data_dir, keep_spool=settings.get("storage", "keep_spool"))
            for message in stored.rejected + stored.warnings:
                _say(f"warning: {message}")
            try:
                report = rollup(settings.data_dir, settings, progress=progress)
            except BaseException:
                if progress:  # the error goes on a line of its own, not after the progress line's day
                    print(file=sys.stderr)
                raise
    except Busy as e:
        _say(f"fleetscope rollup: {e}; nothing done")
        return EXIT_BUSY
    except IngestError as e:
        for message in e.report.rejected + e.report.warnings:
            _say(f"warning: {message}")
        _say(f"fleetscope rollup: storing the spool failed, so nothing was rolled up: {e}")
        return EXIT_STORAGE
    if progress and report.days_rolled:  # ends the progress line
        print(file=sys.stderr)
    for line in report.recovered:
        _say(f"recovered: {line}")
    for message in report.warnings():
        _say(f"warning: {message}")
    print(f"rollup: {report.summary()}")
    return EXIT_OK


def cmd_report(args) -> int:
    settings = _settings(args)
    if _no_data(settings, "report"):
        return EXIT_USAGE
    if args.inventory and not Path(args.inventory).exists():  # named here: a typo, not a site without groups
        _say(f"fleetscope report: inventory not found: {Path(args.inventory).resolve()}; nothing was rendered")
        return EXIT_USAGE
    index = _again_if_swapped(lambda: _build_report(settings, args.inventory))
    print(f"report: {index}")
    if args.open:
        import webbrowser

        if not webbrowser.open(index.as_uri()):
            _say(f"fleetscope report: no browser found to open it; open {index.as_uri()}")
    return EXIT_OK


def cmd_sql(args) -> int:
    import duckdb

    from .sqlshell import answer, repl
    from .warehouse import connect

    settings = _settings(args)
    if _no_data(settings, "sql"):
        return EXIT_USAGE
    def opened():
        found: list[str] = []
        con = connect(settings.data_dir, unreadable=found)
        gone = [problem for problem in found if VANISHED in problem]
        if gone:  # a file listed as a rollup swapped its day in, not a damaged one: _again_if_swapped lists again
            con.close()
            raise duckdb.IOException(gone[0])
        return con, found

    con, unreadable = _again_if_swapped(opened)
    for problem in unreadable:  # the other tables answer; a query on this one says why it cannot
        _say(f"warning: {problem}")
        _say_damaged(problem)
    if args.query is None:
        # A statement (a script's too) that finds a file a rollup swapped away is made again, as a QUERY is
        # below, but on the same connection: a view lists its table's files anew each time a statement
        # reads it, and a new connection would lose the tables, macros and settings the session made.
        try:
            return repl(con, settings.data_dir,
                        again=lambda read: _again_if_swapped(read, under=settings.data_dir))
        finally:
            con.close()
    if not args.query.strip(" \t\r\n;"):  # DuckDB runs nothing and answers "ok": say so instead
        con.close()
        _say("fleetscope sql: the query is empty (no query: the interactive prompt)")
        return EXIT_USAGE
    current = {"con": con}

    def reopen() -> None:
        current["con"].close()
        current["con"] = opened()[0]

    try:  # rows are fetched inside: an error can come with them (a cast on row 3,000,001); Ctrl-C: exit 130
        text = _again_if_swapped(lambda: answer(current["con"], args.query, args.format), reopen,
                                 under=settings.data_dir)
    except duckdb.Error as e:
        _say(f"fleetscope sql: {e}")
        return EXIT_SQL
    print(text)
    return EXIT_OK


def _print_checks(rows: list[dict]) -> None:
    from .sqlshell import format_table

    names = ["host", "status", "ssh", "python", "nvml", "processes"]
    print(format_table(names, [[r[n] for n in names] for r in rows]))
    for r in rows:
        if r["message"]:
            print(f"  {r['host']}: {one_line(r['message'])}")


def cmd_hosts(args) -> int:
    from .hosts import HostsError, add_host, list_hosts, remove_host
    from .sqlshell import format_table

    settings = _settings(args)
    path = Path(args.inventory).resolve() if args.inventory else settings.path("collect", "inventory")
    if args.action == "list":
        try:
            rows = list_hosts(path)
        except HostsError as e:
            _say(f"fleetscope hosts list: {e}")
            return EXIT_USAGE
        names = ["host", "groups", "address", "port", "user", "connection", "python"]
        print(format_table(names, [[r[n] for n in names] for r in rows]))
        return EXIT_OK
    if args.action == "check":
        from .collect import CollectError, CollectInterrupted, check_hosts

        try:
            rows = check_hosts(settings, path, args.limit, warn=lambda message: _say(f"warning: {message}"))
        except CollectInterrupted as e:  # the operator's stop, no host's fault: what was learnt, then 130
            _print_checks(e.rows)
            _say("fleetscope hosts check: interrupted")
            return EXIT_INTERRUPTED
        except CollectError as e:
            _say(f"fleetscope hosts check: {e}")
            return EXIT_USAGE
        if not rows:  # as collect: a check of no host must not pass for a good one
            which = f"--limit {args.limit!r} matches no host of {path}" if args.limit else f"{path} has no hosts"
            _say(f"fleetscope hosts check: nothing checked: {which}")
            return EXIT_ANSIBLE
        _print_checks(rows)
        return EXIT_OK if all(r["status"] == "ok" for r in rows) else EXIT_HOSTS
    if not args.name:
        _say(f"fleetscope hosts {args.action}: a host name is needed")
        return EXIT_USAGE
    try:
        if args.action == "add":
            variables = {}
            for item in args.var or []:
                key, sep, value = item.partition("=")
                if not sep:
                    raise HostsError(f"--var wants KEY=VALUE, got {item!r}")
                variables[key] = value
            new = not Path(os.path.realpath(path)).exists()
            line = add_host(path, args.name, args.group, variables)
            print(f"added to [{args.group}] in {path}{' (a new inventory file)' if new else ''}: {line}")
        else:
            n = remove_host(path, args.name)
            print(f"removed {args.name} from {path} ({n} line{'s' if n != 1 else ''})")
    except HostsError as e:
        _say(f"fleetscope hosts {args.action}: {e}")
        return EXIT_USAGE
    return EXIT_OK


def cmd_bookings(args) -> int:
    from .bookings import sync_and_store
    from .collect import CollectError
    from .lock import Busy, DataLock

    settings = _settings(args)
    if _no_data(settings, "bookings"):
        return EXIT_USAGE
    if not settings.get("bookings", "sources"):
        _say("fleetscope bookings: no [bookings] sources in the settings file (docs/bookings.md)")
        return EXIT_USAGE
    inventory = Path(args.inventory).resolve() if args.inventory else settings.path("collect", "inventory")
    try:
        with DataLock(settings.data_dir):
            report, breaks = sync_and_store(settings, inventory)
    except Busy as e:
        _say(f"fleetscope bookings: {e}; nothing done")
        return EXIT_BUSY
    except CollectError as e:
        _say(f"fleetscope bookings: {e}")
        return EXIT_USAGE
    for error in report.errors + report.skipped + report.warnings:
        _say(f"warning: {error}")
    kept = report.stored - len(report.bookings)
    print(f"bookings: {report.stored} stored" + (f" ({kept} kept from sources that failed)" if kept > 0 else "")
          + f", {report.unmatched} event(s) naming no known host")
    for line in breaks:
        print(f"  rule broken: {line}")
    return EXIT_OK if not report.errors else EXIT_HOSTS


def _admin_usage(args) -> str | None:
    """Why the action's arguments cannot be right whatever the host, or None (the host checks the rest)."""
    import math

    if args.action == "kill":
        if args.pid <= 1:
            return "the pid must be above 1"
        if args.wait < 0:
            return "--wait must be >= 0"
        if args.started and args.started.strip():  # as the host reads it; empty: no check, as there
            from collectors._util import shown_utc_span

            try:
                shown_utc_span(args.started)
            except ValueError as e:
                return f"--started is {e}"
    if getattr(args, "gpu", None) is not None and args.gpu < 0:
        return f"--gpu is a GPU index, 0 or more, not {args.gpu}"
    if args.action == "power-limit" and not (math.isfinite(args.watts) and args.watts > 0):
        return f"--watts must be a positive number of watts, not {args.watts:g}"
    return None


def cmd_admin(args) -> int:
    from .admin import AdminError, describe, run_action

    settings = _settings(args)
    if _no_data(settings, "admin"):  # a typo in --data must not put the action on record elsewhere
        return EXIT_USAGE
    refused = _admin_usage(args)
    if refused:  # refused here, before any connection: nothing to record, no host to blame (exit 2, not 1)
        _say(f"fleetscope admin {args.action}: {refused}")
        return EXIT_USAGE
    if args.action == "kill":
        module_args = {"action": "kill", "pid": args.pid, "expect_user": args.user, "expect_command": args.command,
                       # blank: no check of the start, on both sides (the host's reads "  " as a time)
                       "expect_started": (args.started or "").strip() or None,
                       "signal": args.signal, "force": args.force, "wait": args.wait}
        what = f"send SIG{args.signal} to pid {args.pid} ({args.user}, {args.command!r})"
    elif args.action == "maintenance":
        module_args = {"action": "maintenance", "state": args.state, "gpu": args.gpu}
        what = f"turn maintenance {args.state} (compute mode {'prohibited' if args.state == 'on' else 'default'})"
    else:
        module_args = {"action": "power_limit", "gpu": args.gpu, "watts": args.watts}
        what = f"set the power limit to {args.watts:g} W"
    what += f" on {args.host}"
    if args.action != "kill":  # a kill's says its pid again
        what += f", {describe(module_args['action'], module_args)}"
    if not args.check and not args.yes:
        if sys.stdin is None or not sys.stdin.isatty():  # None: started with stdin closed
            _say(f"fleetscope admin: not confirmed; to {what}, run it at a terminal or add --yes")
            return EXIT_USAGE
        try:
            answer = input(f"{what}{' (as root: become)' if args.become else ''}? [y/N] ").strip().lower()
        except EOFError:  # Ctrl-D: no
            answer = ""
            print(file=sys.stderr)
        if answer not in ("y", "yes"):
            _say("fleetscope admin: cancelled, nothing done")
            return EXIT_USAGE
    try:
        result = run_action(settings, args.host, module_args, inventory=args.inventory, check=args.check,
                            become=args.become)
    except AdminError as e:
        _say(f"fleetscope admin: {e}")
        return EXIT_USAGE
    print(f"{args.host}: {result.status}{' (check mode)' if args.check else ''}: {one_line(result.message)}")
    if result.warning:
        _say(f"warning: {result.warning}")
    if result.unrecorded:
        _say(f"fleetscope admin: the action ran (above) but could not be recorded in admin_actions: "
             f"{result.unrecorded}")
        return EXIT_STORAGE
    if result.status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_OK if result.status == "ok" else EXIT_HOSTS


def build_parser() -> argparse.ArgumentParser:
    epilog = textwrap.dedent(__doc__.split("\n", 2)[2])
    p = argparse.ArgumentParser(
        prog="fleetscope",
        description="Who uses which machine and GPU, how much, and what is idle or broken: "
        "agentless collection over Ansible, a Parquet/DuckDB warehouse, a static report.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fleetscope {__version__}")
    # Also before the command (`fleetscope --config X report`), as most tools take them; after it, they win.
    p.add_argument("--config", dest="top_config", metavar="CONFIG", help="settings file (as after COMMAND)")
    p.add_argument("--data", dest="top_data", metavar="DATA", help="data directory (as after COMMAND)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="settings file (default: $FLEETSCOPE_CONFIG, else ./fleetscope.toml, "
                        "else the project's fleetscope.toml)")
    common.add_argument("--data", help="data directory (default: $FLEETSCOPE_DATA, else storage.data_dir: data/ "
                        "beside the settings file, or in the project)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser(
        "collect", parents=[common], help="collect from every host, store the run, render the report",
        description="Run the collect playbook on every host of the inventory, store the results and "
        "render the report.",
        epilog="examples:\n  fleetscope collect\n  fleetscope collect --inventory lab.ini --limit gpu\n"
        "cron, every five minutes (README: make only sets up the venv; fleetscope's exit code is kept):\n"
        "  */5 * * * * cd /path/to/fleetscope && mkdir -p data && { date -u -Iseconds; make -s "
        ".venv/bin/.installed && .venv/bin/fleetscope collect; } >> data/collect.log 2>&1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("-i", "--inventory", help="Ansible inventory (default: collect.inventory, inventory.ini)")
    c.add_argument("-l", "--limit", help="Ansible host pattern to collect from (e.g. 'gpu:!gpu07')")
    c.add_argument("--out", help="report folder (default: $FLEETSCOPE_OUT, else report.out_dir: site/ "
                   "beside the settings file, or in the project)")
    c.add_argument("--no-report", action="store_true", help="store the run but do not render the report")
    c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show hosts done/total, then the rollup's days, while running (default: only on a terminal)")
    c.set_defaults(func=cmd_collect)

    i = sub.add_parser("ingest", parents=[common], help="store runs left in the spool (after a crash)",
                       description="Store every run still in the spool. `collect` does this itself.")
    i.set_defaults(func=cmd_ingest)

    u = sub.add_parser(
        "rollup", parents=[common], help="roll raw samples up (hourly, daily), compact, apply retention",
        description="Compact past days' files, write the hourly and daily rollups of every day with new "
        "samples, and delete what is older than the [rollup] retention settings. `collect` runs it every "
        "rollup.every_minutes. Idempotent; safe to interrupt and run again.")
    u.set_defaults(func=cmd_rollup)

    r = sub.add_parser("report", parents=[common], help="render the static site from the warehouse",
                       description="Render the static HTML report from the warehouse: site/index.html (the "
                       "fleet), users.html, problems.html, hosts/<host>.html and data/latest.json.",
                       epilog="example (the folder above the site must be writable too: the new site is swapped in):\n"
                       "  fleetscope report --out /var/www/fleetscope/site",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--out", help="report folder (default: $FLEETSCOPE_OUT, else report.out_dir: site/ "
                   "beside the settings file, or in the project)")
    r.add_argument("-i", "--inventory",
                   help="inventory whose variables fill report.host_columns (default: collect.inventory)")
    r.add_argument("--open", action="store_true", help="open the report in a browser")
    r.set_defaults(func=cmd_report)

    h = sub.add_parser(
        "hosts", parents=[common], help="list, add, remove or check the hosts of the inventory",
        description="Keep the inventory: `add` and `remove` edit the inventory file (-i, else collect.inventory) "
        "in place, keeping comments and groups (the result is parsed by Ansible before it is written); `check` "
        "logs in to each host and reports SSH, python3, NVML, and whether /proc hides other users' processes "
        "from the account.",
        epilog="examples:\n  fleetscope hosts list\n"
        "  fleetscope hosts add gpu07.lab --group gpu --var ansible_user=monitor --var owner=alice\n"
        "  fleetscope hosts remove gpu07.lab\n  fleetscope hosts check --limit gpu",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inventory_help = "inventory file (default: collect.inventory, inventory.ini)"
    h.add_argument("-i", "--inventory", help=inventory_help)
    # Each action a parser of its own, with its options: `hosts add -i X -g gpu NAME` as well as `hosts add NAME
    # -i X` (one parser with an optional NAME took it as absent at the first option, and refused it after).
    # The options of `hosts` may come after the action too; given there, they are set only when given.
    later = argparse.ArgumentParser(add_help=False)
    later.add_argument("--config", default=argparse.SUPPRESS, help="settings file (as for `hosts`)")
    later.add_argument("--data", default=argparse.SUPPRESS, help="data directory (as for `hosts`)")
    later.add_argument("-i", "--inventory", default=argparse.SUPPRESS, help=inventory_help)
    hsub = h.add_subparsers(dest="action", required=True, metavar="ACTION")
    hsub.add_parser("list", parents=[later],
                    help="the inventory's hosts: groups, address, port, user, connection, python")
    ha = hsub.add_parser("add", parents=[later], help="add a host to the inventory (comments and groups kept)")
    ha.add_argument("name", help="host name")
    ha.add_argument("-g", "--group", default="ungrouped", help="group to add the host to (default: ungrouped)")
    ha.add_argument("--var", action="append", metavar="KEY=VALUE", help="a host variable (repeatable)")
    hr = hsub.add_parser("remove", parents=[later], help="remove a host from the inventory")
    hr.add_argument("name", help="host name")
    hc = hsub.add_parser("check", parents=[later], help="log in to each host: SSH, python3, NVML, /proc visibility")
    hc.add_argument("-l", "--limit", help="Ansible host pattern to check")
    h.set_defaults(func=cmd_hosts)

    b = sub.add_parser(
        "bookings", parents=[common], help="read the booking calendars ([bookings] sources) into the warehouse",
        description="Read every iCalendar source of [bookings] sources, match events to hosts and GPUs "
        "(docs/bookings.md) and store them in the bookings table. `collect` does it on every run when sources "
        "are set. A source that fails is reported (exit 1) and keeps its last bookings.")
    b.add_argument("action", choices=("sync",))
    b.add_argument("-i", "--inventory", help="inventory whose hosts events may name (default: collect.inventory)")
    b.set_defaults(func=cmd_bookings)

    a = sub.add_parser(
        "admin", help="terminate a process, GPU maintenance, power limit (asks first, records in admin_actions)",
        description="Admin actions through playbooks/admin.yml, one host at a time. Each asks for confirmation "
        "(or --yes), runs with become (root) unless --no-become, supports --check (report, change nothing), "
        "and is recorded in the admin_actions table. Exit 0 done, 1 refused or failed on the host, 2 not run, "
        "4 done but not recorded, 130 interrupted.",
        epilog="examples:\n  fleetscope admin kill gpu01 4242 --user alice --command 'python train.py'\n"
        "  fleetscope admin maintenance gpu01 on --gpu 3 --check\n"
        "  fleetscope admin power-limit gpu01 --gpu 0 --watts 500",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    asub = a.add_subparsers(dest="action", required=True, metavar="ACTION")
    admin_common = argparse.ArgumentParser(add_help=False, parents=[common])
    admin_common.add_argument("-i", "--inventory", help="inventory file (default: collect.inventory)")
    admin_common.add_argument("--check", action="store_true", help="report what would be done; change nothing")
    admin_common.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    admin_common.add_argument("--become", action=argparse.BooleanOptionalAction, default=True,
                              help="run as root on the host (default: yes; needed for other users' processes)")
    k = asub.add_parser("kill", parents=[admin_common], help="signal a process, if it is still what the report showed")
    k.add_argument("host")
    k.add_argument("pid", type=int)
    k.add_argument("--user", required=True, help="the user the process must run as")
    k.add_argument("--command", required=True, help="the command the process must have, as the report shows it")
    k.add_argument("--started", metavar="TIME", help="when it started, UTC, as the report's process table shows "
                   "it (e.g. '2026-11-23 09:00'): a process that started at another time (the pid reused by a "
                   "job restarted with the same command) is refused")
    k.add_argument("--signal", default="TERM", choices=("TERM", "INT", "KILL"), help="signal to send (default TERM)")
    k.add_argument("--wait", type=int, default=10, help="seconds to wait for it to end (default 10)")
    k.add_argument("--force", action="store_true", help="send KILL if it is still there after --wait")
    m = asub.add_parser("maintenance", parents=[admin_common], help="GPU compute mode prohibited (on) or default")
    m.add_argument("host")
    m.add_argument("state", choices=("on", "off"))
    m.add_argument("--gpu", type=int, help="GPU index (default: every GPU)")
    pl = asub.add_parser("power-limit", parents=[admin_common], help="set a GPU's power limit")
    pl.add_argument("host")
    pl.add_argument("--gpu", type=int, required=True)
    pl.add_argument("--watts", type=float, required=True)
    a.set_defaults(func=cmd_admin)

    s = sub.add_parser(
        "sql", parents=[common], help="query the warehouse (a prompt when no query is given)",
        description="Run SQL on the warehouse; every table is ready as a view (docs/sql.md).",
        epilog="examples:\n"
        "  fleetscope sql \"SELECT host, status, message FROM host_status ORDER BY ts DESC LIMIT 10\"\n"
        "  fleetscope sql --format csv \"SELECT * FROM gpu_samples\" > gpus.csv\n  fleetscope sql",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("query", nargs="?", help="SQL to run; omit for an interactive prompt")
    s.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    s.set_defaults(func=cmd_sql)
    return p


def _terminated(signum, frame):
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: "interrupted", exit 130


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("config", "data"):
        top = vars(args).pop(f"top_{name}", None)
        if getattr(args, name, None) is None:
            setattr(args, name, top)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return _run(args)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


#: The commands that run Ansible, or read the inventory through it (with fleetscope's ansible.cfg, not the
#: user's).
USES_ANSIBLE = ("collect", "hosts", "admin", "report")


def _run(args) -> int:
    if args.command in USES_ANSIBLE:
        from .inventory import foreign_ansible_config

        foreign = foreign_ansible_config()
        if foreign:  # else a setting made there (remote_user, private_key_file) is lost without a word
            _say(f"warning: ANSIBLE_CONFIG={foreign} is not read: fleetscope runs Ansible with its own "
                 f"ansible.cfg; give your settings as ANSIBLE_* environment variables or inventory variables "
                 f"(docs/operations.md)")
    try:
        return args.func(args)
    except SettingsError as e:
        _say(f"fleetscope: {e}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("fleetscope: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as e:  # a data folder that is full, read-only or not a folder: say which, no traceback
        where = f" ({e.filename})" if e.filename else ""
        _say(f"fleetscope {args.command}: cannot write or read {_what(args.command)}: {e.strerror or e}{where}; "
             f"{_kept(args.command)}")
        return FAILED.get(args.command, EXIT_STORAGE)
    except Exception as e:
        if query_interrupted(e):  # a signal that stopped a query no handler above read as one
            _say("fleetscope: interrupted")
            return EXIT_INTERRUPTED
        duckdb = sys.modules.get("duckdb")
        if (duckdb is None or not isinstance(e, duckdb.Error)) and args.command == "report":
            import traceback  # a defect, or a report too large for this machine's memory: the documented status

            traceback.print_exc()
            _say(f"fleetscope report: rendering the report failed: {type(e).__name__}: {first_line(e)}; "
                 f"{_kept('report')}")
            return EXIT_REPORT
        if duckdb is None or not isinstance(e, duckdb.Error):
            raise  # a defect in fleetscope: its traceback is what a bug report needs
        # The warehouse could not be read: a damaged file (a disk's fault, a copy cut short), not a bug.
        first = first_line(e)
        _say(f"fleetscope {args.command}: DuckDB could not read or write the warehouse: {first}")
        _say_damaged(str(e), " and run again (its rows are lost unless a backup has the file)")
        _say(f"  {_kept(args.command)}")
        return FAILED.get(args.command, EXIT_STORAGE)


#: What a command that fails on the data or the disk exits with (docs/operations.md); others: EXIT_STORAGE.
FAILED = {"report": EXIT_REPORT, "sql": EXIT_SQL, "hosts": EXIT_USAGE, "admin": EXIT_USAGE}
#: A Parquet file DuckDB names as unreadable, and the data folder it is in (the folder above its table's).
DAMAGED = re.compile(r"'((/[^']*?)?/[^/']+/date=[^/']+/[^/']+\.parquet)'")


def _say_damaged(error: str, then: str = "") -> None:
    """Where DuckDB's error names a Parquet file of the warehouse: that it is damaged, and what to do."""
    damaged = DAMAGED.search(error)
    if damaged:
        _say(f"  {damaged.group(1)} is damaged: move it out of {damaged.group(2) or 'the data folder'}{then}")


def _what(command: str) -> str:
    return "the report's folder or the data" if command == "report" else "the data"


def _kept(command: str) -> str:
    """What a failed command leaves as it was: said after its error."""
    if command == "report":
        return "any previous report stays in place"
    if command in ("collect", "ingest", "rollup", "bookings"):
        return "nothing half-written is kept, and the spool keeps what was collected"
    return "nothing was changed"


def run() -> None:
    """The `fleetscope` command (the console script, `python -m fleetscope`): main(), then a quick exit.

    speed: after a collect, this process holds Ansible's inventory code, duckdb and the run's objects, and
    an interpreter's normal shutdown frees them one by one: about 0.2 s of every cron run, for nothing the
    OS does not do at once. Once the atexit handlers have run and the output is flushed, and no non-daemon
    thread is left to wait for, the process ends with os._exit. Everything the commands write is written
    and closed before main() returns (atomic replaces, closed DuckDB connections)."""
    try:
        code = main()
    except KeyboardInterrupt:  # before main's own handling: while its parser is built and reads the arguments
        _say("fleetscope: interrupted")
        code = EXIT_INTERRUPTED
    if any(t is not threading.main_thread() and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()  # what a normal exit runs first (logging, Ansible's temp folders, ...)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: started with that descriptor closed
                stream.flush()
        except (OSError, ValueError):  # a reader gone, a full disk, a stream closed: nothing more to say
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
