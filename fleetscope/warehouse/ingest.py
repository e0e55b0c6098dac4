"""Ingest spooled runs into Parquet: one file per table, day and run, written atomically.

Idempotent by construction: a run's rows go to files named after the run, so ingesting it again
(after a crash between writing and clearing the spool) rewrites the same files and adds nothing.
A document that breaks the schema is kept aside in spool/rejected/ and its host is marked failed;
every other host of the run is stored.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..files import fsync_path
from ..interrupts import reraise
from ..spool import RUN_META, Spool, result_files
from ..text import first_line
from . import partitions
from .catalog import connect, quote_literal, refresh_catalog_quietly, schemas
from .rows import MAX_TEXT, STATUSES, DocumentError, host_rows, parse_time

# One encoder for every row: json.dumps with options builds a new one per call (~40% of the JSON time).
_ENCODE = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


@dataclass
class IngestReport:
    runs: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rejected: list[str] = field(default_factory=list)  # one message per refused document
    #: (run_id, host) -> why: hosts whose results the warehouse refused; stored as failed
    refused: dict[tuple[str, str], str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ")


def _day(ts: str) -> str:
    return ts[:10]


def write_table(con: duckdb.DuckDBPyConnection, data_dir: Path, table: str, run_id: str, rows: list[dict]) -> int:
    """Write rows to <data>/<table>/date=D/<run_id>.parquet, one file per day the rows touch."""
    if not rows:
        return 0
    by_day: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_day[_day(row["ts"] or row.get("started_at") or "0000-00-00")].append(row)
    for day, day_rows in by_day.items():
        write_rows(con, table, day_rows, Path(data_dir) / table / f"date={day}" / f"{run_id}.parquet")
    return len(rows)


def write_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict], dest: Path) -> None:
    """Write rows (dicts by column name) to the Parquet file `dest`, typed as `table` declares, atomically."""
    columns = schemas()[table]
    names = [c for c, _ in columns]
    new_day = not dest.parent.is_dir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, jsonl = tempfile.mkstemp(dir=dest.parent, prefix=".rows.", suffix=".jsonl")
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for row in rows:
                # "replace": text the controller made itself (messages) may still hold a lone surrogate
                f.write(_ENCODE([row.get(n) for n in names]).encode("utf-8", "replace"))
                f.write(b"\n")
        # Rows travel as JSON arrays: DuckDB reads them typed by the declared schema in one pass.
        # ->> '$' takes each element as text (JSON null -> NULL), which then casts to the column type.
        select = ", ".join(f"CAST(r[{i + 1}] ->> '$' AS {t}) AS \"{c}\"" for i, (c, t) in enumerate(columns))
        con.execute(
            f"COPY (SELECT {select} FROM read_json({quote_literal(jsonl)}, format = 'newline_delimited', "
            f"columns = {{'r': 'JSON[]'}}, records = false)) "
            f"TO {quote_literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd)"
        )
        # on the disk before the spool that holds the same rows is removed: a power cut after that removal
        # must not find the file empty, or its name missing from its folder
        fsync_path(tmp)
        os.replace(tmp, dest)
        fsync_path(dest.parent)
        if new_day:
            fsync_path(dest.parent.parent)
    finally:
        for leftover in (jsonl, tmp):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass


def ingest_run(data_dir: Path, spool: Spool, run_id: str, report: IngestReport, keep_spool: bool = False) -> None:
    # one connection for the lookups and the writes (each connection costs ~25 ms)
    con = connect(data_dir, tables=("runs", "hosts", "gpu_xid"))
    try:
        _ingest_run(con, data_dir, spool, run_id, report, keep_spool)
    finally:
        con.close()


def _ingest_run(con: duckdb.DuckDBPyConnection, data_dir: Path, spool: Spool, run_id: str, report: IngestReport,
                keep_spool: bool) -> None:
    if _already_stored(con, run_id):
        # Its runs row is written last, so every table has the run: a crash came after storing it (and
        # compaction may since have merged its files, so writing it again would count it twice).
        spool.done(run_id, keep=keep_spool)
        report.warnings.append(f"run {run_id} was already stored; cleared it from the spool")
        return
    run, unreadable = spool.read(run_id)
    meta = _run_meta(run_id, run.meta)
    if not (meta["hosts"] or run.results or unreadable or meta["finished_at"]):
        # Killed (kill -9, a reboot) before Ansible listed its hosts: nothing was collected, and no host was
        # asked. An interrupted run says so and leaves nothing (collect); stored, this one would be the
        # fleet's latest run, of 0 hosts, and move the report's "last run" and its charts' end to it.
        spool.done(run_id, keep=keep_spool)
        report.warnings.append(f"run {run_id} was stopped before it listed its hosts: nothing was collected; "
                               f"cleared it from the spool")
        return
    fallback_ts = meta["started_at"]
    hosts: list[_Host] = []
    for path, why in run.duplicates:  # its host's result is read from its other file: set aside, no row
        message = f"run {run_id}: spool file {path.name} set aside: {why}"
        spool.reject(run_id, path, message)
        report.warnings.append(message)
    spooled = {result["host"] for result in run.results}
    for path, error in unreadable:
        if path.name == RUN_META:
            message = f"run {run_id}: unreadable {RUN_META} ({error}); its hosts are stored with the run's " \
                      f"start read from its id"
            spool.reject(run_id, path, message)
            report.warnings.append(message)
            continue
        message = f"rejected spool file {path.name}: {error}"
        spool.reject(run_id, path, message)
        report.rejected.append(message)
        name = _host_of(path, meta["hosts"])
        if name in spooled:  # the host's result is in its other file (an older version's name): one row a run
            continue
        report.refused[(run_id, name)] = message
        hosts.append(_Host.failed(name, None, message, run_id, fallback_ts))
    for result in run.results:
        path = Path(result.pop("_path"))
        try:
            hosts.append(_Host(result["host"], path, host_rows(result, run_id)))
        except Exception as e:  # noqa: BLE001 - a DocumentError, or a document no check foresaw: its host only
            message = f"rejected document: {e}" if isinstance(e, DocumentError) else \
                f"rejected document: host {result['host']!r}: {type(e).__name__}: {e}"
            spool.reject(run_id, path, message)
            report.rejected.append(message)
            report.refused[(run_id, result["host"])] = message
            hosts.append(_Host.failed(result["host"], path, message, run_id,
                                      parse_time(result.get("ts")) or fallback_ts))
    answered = {h.name for h in hosts}
    for name in meta["hosts"]:  # a run killed before it wrote these hosts' results: say so, per host
        if name not in answered:
            hosts.append(_Host.failed(name, None, "no result was spooled for this host (the run ended before it "
                                      "answered)", run_id, fallback_ts))
    try:
        _write_run(con, data_dir, run_id, meta, hosts, report)
    except DATA_ERRORS as e:
        # Something the document checks let through that DuckDB will not store: find the hosts it comes
        # from, keep their documents aside, store the others. (A disk's error is no host's fault: raised.)
        refused = _unwritable_hosts(con, data_dir, hosts)
        if not refused:
            raise
        for i, (host, why) in refused.items():
            message = f"rejected document: host {host.name!r}: the warehouse cannot store it: {why}"
            if host.path is not None:
                spool.reject(run_id, host.path, message)
            report.rejected.append(message)
            report.refused[(run_id, host.name)] = message
            hosts[i] = _Host.failed(host.name, host.path, message, run_id,
                                    host.rows["host_status"][0]["ts"] or fallback_ts)
        report.warnings.append(f"run {run_id}: {len(refused)} host(s) refused on writing ({type(e).__name__})")
        _write_run(con, data_dir, run_id, meta, hosts, report)
    spool.done(run_id, keep=keep_spool)
    report.runs.append(run_id)


@dataclass
class _Host:
    """One host's rows in a run, and the spool file they came from (None: no readable file)."""

    name: str
    path: Path | None
    rows: dict[str, list[dict]]

    @classmethod
    def failed(cls, name: str, path: Path | None, message: str, run_id: str, ts: str) -> _Host:
        return cls(name, path, {"host_status": [{
            "run_id": run_id, "ts": ts, "host": name, "status": "failed", "message": message[:MAX_TEXT],
            "errors": None, "duration_s": None}]})


#: DuckDB's errors that come from the data written (a value it cannot convert), not from the disk.
DATA_ERRORS = (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.OutOfRangeException,
               duckdb.TypeMismatchException)


def _write_run(con: duckdb.DuckDBPyConnection, data_dir: Path, run_id: str, meta: dict, hosts: list[_Host],
               report: IngestReport) -> None:
    """Write the run's rows, its runs row last; on any failure remove what was written of it (a run with no
    runs row is not stored: its rows must not show in the tables either)."""
    try:
        _write_tables(con, data_dir, run_id, meta, hosts, report)
    except BaseException:
        _remove_run_files(data_dir, run_id)
        raise


def _write_tables(con: duckdb.DuckDBPyConnection, data_dir: Path, run_id: str, meta: dict, hosts: list[_Host],
                  report: IngestReport) -> None:
    tables: dict[str, list[dict]] = defaultdict(list)
    for host in hosts:
        for table, table_rows in host.rows.items():
            tables[table].extend(table_rows)
    tables["hosts"] = _changed_hosts(con, run_id, tables.get("hosts", []))
    tables["gpu_xid"] = _new_xid_events(con, run_id, tables.get("gpu_xid", []))
    counts = {s: 0 for s in STATUSES}
    for row in tables["host_status"]:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    tables["runs"] = [{
        "run_id": run_id, "ts": meta["started_at"], "started_at": meta["started_at"],
        "finished_at": meta["finished_at"], "inventory": meta["inventory"],
        "hosts_total": len(tables["host_status"]), "hosts_ok": counts["ok"],
        "hosts_unreachable": counts["unreachable"], "hosts_failed": counts["failed"],
        "hosts_timeout": counts["timeout"], "fleetscope_version": meta["fleetscope_version"],
    }]
    written = {}
    for table in sorted(tables, key=lambda t: t == "runs"):  # runs last: it marks the run stored
        written[table] = write_table(con, data_dir, table, run_id, tables[table])
    for table, n in written.items():  # counted once all is written: a retry does not count twice
        report.rows[table] += n


def _remove_run_files(data_dir: Path, run_id: str) -> None:
    """This run's files, written before a write failed: the retry writes what it stores again."""
    for path in Path(data_dir).glob(f"*/date=*/{run_id}.parquet"):
        path.unlink(missing_ok=True)


def _unwritable_hosts(con: duckdb.DuckDBPyConnection, data_dir: Path,
                      hosts: list[_Host]) -> dict[int, tuple[_Host, str]]:
    """The hosts whose rows DuckDB refuses, each alone, with its error: written to a scratch folder."""
    refused = {}
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".trial-") as scratch:
        for i, host in enumerate(hosts):
            for table, table_rows in host.rows.items():
                if not table_rows:
                    continue
                try:
                    write_rows(con, table, table_rows, Path(scratch) / f"{i}-{table}.parquet")
                except DATA_ERRORS as e:  # anything else (a full disk) is raised: no host's fault
                    refused[i] = (host, f"{table}: {first_line(e)[:300]}")
                    break
    return refused


def _host_of(path: Path, names: list[str]) -> str:
    """The host an unreadable spool file was for: its file name is one of result_files(host)."""
    return next((name for name in names if path.name in result_files(name)), path.stem)


def _run_meta(run_id: str, meta: dict) -> dict:
    """The run's metadata as the runs table takes it, whatever run.json held (it may be damaged)."""
    text = {k: meta.get(k) if isinstance(meta.get(k), str) else None for k in ("inventory", "fleetscope_version")}
    hosts = meta.get("hosts")
    return text | {
        "started_at": parse_time(meta.get("started_at")) or _started_from_id(run_id) or _now(),
        "finished_at": parse_time(meta.get("finished_at")),
        "hosts": [h for h in hosts if isinstance(h, str)] if isinstance(hosts, list) else [],
    }


def _started_from_id(run_id: str) -> str | None:
    """A run id begins with its start, in UTC (collect.new_run_id): 20261123T090000123456Z-ab12."""
    try:
        return dt.datetime.strptime(run_id.split("-")[0], "%Y%m%dT%H%M%S%fZ").isoformat(sep=" ",
                                                                                           timespec="microseconds")
    except ValueError:
        return None


def _already_stored(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    return con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()[0] > 0


def _changed_hosts(con: duckdb.DuckDBPyConnection, run_id: str, rows: list[dict]) -> list[dict]:
    """Inventory rows only for hosts whose facts differ from what the warehouse last stored."""
    if not rows:
        return []
    last = dict(con.execute(
        "SELECT host, arg_max(facts_hash, ts) FROM hosts WHERE run_id <> ? GROUP BY host", [run_id]
    ).fetchall())
    return [row for row in rows if last.get(row["host"]) != row["facts_hash"]]


#: How far back (by the runs' clock) an Xid event sent again is looked for: beyond the collector's margin
#: (collectors/xid.py MARGIN_S, 1 h) and a run kept a while in the spool.
XID_LOOKBACK_DAYS = 2


def _new_xid_events(con: duckdb.DuckDBPyConnection, run_id: str, rows: list[dict]) -> list[dict]:
    """The run's Xid events not stored yet: each host sends those of the last hour again (the collector's
    margin), told apart by the boot and the kernel log's sequence number (an event without a boot id, from a
    kernel without /proc/sys/kernel/random/boot_id, is kept: the problems page counts it once by its time)."""
    if not rows:
        return []
    stored = set(con.execute(
        f"SELECT host, boot_id, seq FROM gpu_xid WHERE run_id <> ? AND boot_id IS NOT NULL "
        f"AND ts > ?::TIMESTAMP - INTERVAL {XID_LOOKBACK_DAYS} DAY",
        [run_id, min(row["ts"] for row in rows)]).fetchall())
    out = []
    for row in rows:
        key = (row["host"], row["boot_id"], row["seq"])
        if row["boot_id"] is None or key not in stored:
            stored.add(key)
            out.append(row)
    return out


def ingest_pending(data_dir: Path, keep_spool: bool = False) -> IngestReport:
    """Ingest every spooled run, oldest first, then refresh the catalog file's views."""
    data_dir = Path(data_dir)
    partitions.sweep_temp(data_dir)  # leftovers of a killed run
    spool = Spool(data_dir)
    spool.sweep_trash()
    report = IngestReport()
    # A rollup killed between the two renames of a day's swap left the day as .old-/.new- folders: a run written
    # now would make the day's folder anew, and recovery would then take it for a finished swap and delete the
    # day's earlier runs (.old-) with the compacted day (.new-). Finished here first, as the next rollup would.
    report.warnings += [f"storage: {what} (a rollup was stopped in a swap)" for what in partitions.recover(data_dir)]
    failed = []
    for run_id in spool.pending():
        try:
            ingest_run(data_dir, spool, run_id, report, keep_spool=keep_spool)
        except Exception as e:  # noqa: BLE001 - this run stays in the spool; the next runs are stored
            reraise(e)  # Ctrl-C in a query: the run stays in the spool, and the next ones are not begun
            failed.append(f"run {run_id}: {type(e).__name__}: {first_line(e)}")
    if report.runs or not (data_dir / "fleet.duckdb").exists():
        warning = refresh_catalog_quietly(data_dir)
        if warning:
            report.warnings.append(warning)
    if failed:
        raise IngestError(f"{len(failed)} run(s) could not be stored and stay in {spool.root} "
                          f"({len(report.runs)} stored): " + "; ".join(failed), report)
    return report


class IngestError(RuntimeError):
    """Some runs could not be stored (they stay in the spool); ``report`` says what was."""

    def __init__(self, message: str, report: IngestReport):
        super().__init__(message)
        self.report = report
