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

from ..spool import Spool
from . import partitions
from .catalog import connect, quote_literal, refresh_catalog_file, schemas
from .rows import DocumentError, host_rows

STATUSES = ("ok", "unreachable", "failed", "timeout")
# One encoder for every row: json.dumps with options builds a new one per call (~40% of the JSON time).
_ENCODE = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


@dataclass
class IngestReport:
    runs: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rejected: list[str] = field(default_factory=list)  # one message per refused document
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
        os.replace(tmp, dest)
    finally:
        for leftover in (jsonl, tmp):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass


def ingest_run(data_dir: Path, spool: Spool, run_id: str, report: IngestReport, keep_spool: bool = False) -> None:
    # one connection for the two lookups and the writes (each connection costs ~25 ms)
    con = connect(data_dir, tables=("runs", "hosts"))
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
    tables: dict[str, list[dict]] = defaultdict(list)
    for path, error in unreadable:
        message = f"rejected spool file {path.name}: {error}"
        spool.reject(run_id, path, message)
        report.rejected.append(message)
    for result in run.results:
        path = Path(result.pop("_path"))
        try:
            rows = host_rows(result, run_id)
        except DocumentError as e:
            message = f"rejected document: {e}"
            spool.reject(run_id, path, message)
            report.rejected.append(message)
            ts = result.get("ts") if isinstance(result.get("ts"), str) else None
            rows = {"host_status": [{
                "run_id": run_id, "ts": ts or run.meta.get("started_at") or _now(), "host": result["host"],
                "status": "failed", "message": message, "errors": None, "duration_s": None,
            }]}
        for table, table_rows in rows.items():
            tables[table].extend(table_rows)

    tables["hosts"] = _changed_hosts(con, run_id, tables.get("hosts", []))
    counts = {s: 0 for s in STATUSES}
    for row in tables["host_status"]:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    meta = run.meta
    tables["runs"] = [{
        "run_id": run_id, "ts": meta.get("started_at"), "started_at": meta.get("started_at"),
        "finished_at": meta.get("finished_at"), "inventory": meta.get("inventory"),
        "hosts_total": len(tables["host_status"]), "hosts_ok": counts["ok"],
        "hosts_unreachable": counts["unreachable"], "hosts_failed": counts["failed"],
        "hosts_timeout": counts["timeout"], "fleetscope_version": meta.get("fleetscope_version"),
    }]
    for table in sorted(tables, key=lambda t: t == "runs"):  # runs last: it marks the run stored
        report.rows[table] += write_table(con, data_dir, table, run_id, tables[table])
    spool.done(run_id, keep=keep_spool)
    report.runs.append(run_id)


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


def ingest_pending(data_dir: Path, keep_spool: bool = False) -> IngestReport:
    """Ingest every spooled run, oldest first, then refresh the catalog file's views."""
    data_dir = Path(data_dir)
    partitions.sweep_temp(data_dir)  # leftovers of a killed run (we hold the lock: nobody else writes)
    spool = Spool(data_dir)
    report = IngestReport()
    for run_id in spool.pending():
        ingest_run(data_dir, spool, run_id, report, keep_spool=keep_spool)
    if report.runs or not (data_dir / "fleet.duckdb").exists():
        warning = refresh_catalog_file(data_dir)
        if warning:
            report.warnings.append(warning)
    return report
