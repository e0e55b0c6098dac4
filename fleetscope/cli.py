"""The `fleetscope` command: a thin layer over the Python API (collect, warehouse, reports).

Exit codes (docs/operations.md):
  0   done; every host ok
  1   done, but at least one host was not ok (unreachable, failed, timeout): its status is stored
  2   usage or settings error (bad option, unreadable settings file, missing inventory)
  3   Ansible could not run at all: nothing collected
  4   storage error: data is kept in the spool and the next run stores it
  5   SQL error (fleetscope sql)
  6   the run is stored, but rendering the report failed (the previous report stays)
  75  another fleetscope run holds the data directory: nothing done (try again later)
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from . import __version__
from .settings import Settings, SettingsError, load

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


def _build_report(settings: Settings) -> Path:
    import reports

    from .warehouse import connect

    con = connect(settings.data_dir)
    try:
        return reports.build_site(con, settings.out_dir, settings=dict(settings.values["report"]))
    finally:
        con.close()


def cmd_collect(args) -> int:
    from .collect import CollectError, run_collect
    from .lock import Busy, DataLock
    from .warehouse import ingest_pending
    from .warehouse.rollup import rollup, rollup_due

    settings = _settings(args)
    try:
        with DataLock(settings.data_dir):
            try:
                summary = run_collect(settings, args.inventory, args.limit, progress=args.progress)
            except CollectError as e:
                _say(f"fleetscope collect: {e}")
                return EXIT_USAGE if "inventory not found" in str(e) else EXIT_ANSIBLE
            try:
                report = ingest_pending(settings.data_dir, keep_spool=settings.get("storage", "keep_spool"))
            except Exception as e:  # noqa: BLE001 - whatever broke storing, the spool keeps the data
                _say(f"fleetscope collect: storing failed, the results stay in {settings.data_dir / 'spool'}: "
                     f"{type(e).__name__}: {e}")
                return EXIT_STORAGE
            rollup_failed = False
            if rollup_due(settings.data_dir, settings):
                try:
                    rolled = rollup(settings.data_dir, settings)
                except Exception as e:  # noqa: BLE001 - the run is stored; the next rollup redoes the work
                    _say(f"fleetscope collect: rollup failed (the run is stored; the next rollup retries): "
                         f"{type(e).__name__}: {e}")
                    rollup_failed = True
                else:
                    print(f"rollup: {rolled.summary()}")
    except Busy as e:
        _say(f"fleetscope collect: {e}; nothing done")
        return EXIT_BUSY
    for message in report.rejected + report.warnings:
        _say(f"warning: {message}")
    counts = summary.counts()
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    print(f"run {summary.run_id}: {len(summary.hosts)} hosts: {line or 'none'}")
    for host in summary.hosts:
        if summary.status[host] != "ok":
            print(f"  {host}: {summary.status[host]}: {summary.messages.get(host, '')}")
    if not args.no_report:
        try:
            index = _build_report(settings)
        except Exception as e:  # noqa: BLE001 - the run is stored; only the pages are missing
            _say(f"fleetscope collect: the run is stored, but rendering the report failed: {type(e).__name__}: {e}")
            return EXIT_REPORT
        print(f"report: {index}")
    if rollup_failed:
        return EXIT_STORAGE
    bad = any(s != "ok" for s in summary.status.values())
    return EXIT_HOSTS if bad else EXIT_OK


def cmd_ingest(args) -> int:
    from .lock import Busy, DataLock
    from .warehouse import ingest_pending

    settings = _settings(args)
    try:
        with DataLock(settings.data_dir):
            report = ingest_pending(settings.data_dir, keep_spool=settings.get("storage", "keep_spool"))
    except Busy as e:
        _say(f"fleetscope ingest: {e}; nothing done")
        return EXIT_BUSY
    for message in report.rejected + report.warnings:
        _say(f"warning: {message}")
    print(f"ingested {len(report.runs)} run(s): " + ", ".join(f"{n} {t}" for t, n in sorted(report.rows.items())))
    return EXIT_OK


def cmd_rollup(args) -> int:
    from .lock import Busy, DataLock
    from .warehouse import ingest_pending
    from .warehouse.rollup import rollup

    settings = _settings(args)
    progress = (lambda line: print("\r\033[K" + line, end="", file=sys.stderr, flush=True)) \
        if sys.stderr.isatty() else None
    try:
        with DataLock(settings.data_dir):
            # Runs left in the spool first: compaction must not merge a day a pending run still belongs to.
            ingest_pending(settings.data_dir, keep_spool=settings.get("storage", "keep_spool"))
            report = rollup(settings.data_dir, settings, progress=progress)
    except Busy as e:
        _say(f"fleetscope rollup: {e}; nothing done")
        return EXIT_BUSY
    if progress:
        print(file=sys.stderr)
    for line in report.recovered:
        _say(f"recovered: {line}")
    print(f"rollup: {report.summary()}")
    return EXIT_OK


def cmd_report(args) -> int:
    settings = _settings(args)
    index = _build_report(settings)
    print(f"report: {index}")
    if args.open:
        import webbrowser

        webbrowser.open(index.as_uri())
    return EXIT_OK


def cmd_sql(args) -> int:
    import duckdb

    from .sqlshell import format_result, repl
    from .warehouse import connect

    settings = _settings(args)
    con = connect(settings.data_dir)
    if args.query is None:
        return repl(con, settings.data_dir)
    try:
        cursor = con.execute(args.query)
    except duckdb.Error as e:
        _say(f"fleetscope sql: {e}")
        return EXIT_SQL
    print(format_result(cursor, args.format))
    return EXIT_OK


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
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="settings file (default: ./fleetscope.toml or $FLEETSCOPE_CONFIG)")
    common.add_argument("--data", help="data directory (default: data/, or $FLEETSCOPE_DATA)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser(
        "collect", parents=[common], help="collect from every host, store the run, render the report",
        description="Run the collect playbook on every host of the inventory, store the results and "
        "render the report.",
        epilog="examples:\n  fleetscope collect\n  fleetscope collect --inventory lab.ini --limit gpu\n"
        "  */5 * * * * cd /path/to/fleetscope && make collect   # cron",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("-i", "--inventory", help="Ansible inventory (default: collect.inventory, inventory.ini)")
    c.add_argument("-l", "--limit", help="Ansible host pattern to collect from (e.g. 'gpu:!gpu07')")
    c.add_argument("--out", help="report folder (default: site/)")
    c.add_argument("--no-report", action="store_true", help="store the run but do not render the report")
    c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show hosts done/total while running (default: only on a terminal)")
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
                       description="Render the static HTML report from the warehouse.",
                       epilog="example:\n  fleetscope report --out /var/www/fleet",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--out", help="report folder (default: site/)")
    r.add_argument("--open", action="store_true", help="open the report in a browser")
    r.set_defaults(func=cmd_report)

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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
        _say(f"fleetscope {args.command}: cannot write or read the data: {e.strerror or e}{where}; "
             f"nothing half-written is kept, and the spool keeps what was collected")
        return EXIT_STORAGE


if __name__ == "__main__":
    sys.exit(main())
