"""Rollups, compaction and retention: what keeps a year of a large fleet small and fast.

`rollup(data_dir, settings)` does, in this order, each step idempotent and safe to interrupt:

1. recover: finish or undo a day swap a crash interrupted (partitions.recover).
2. compact: a past day's per-run Parquet files become one file per table and day.
3. roll up: for each day whose raw files are newer than its rollup, write gpu_hourly, host_hourly (from the
   raw samples), gpu_daily, host_daily (from those hourly rows), user_gpu_daily and process_gpu_daily (from
   the raw samples and GPU processes), one file per table and day. The SQL is in sql/*.sql.
4. retention: delete raw days older than rollup.raw_days (only once rolled up), hourly days, host_status and
   gpu_xid older than rollup.hourly_days, daily days older than rollup.daily_days (0 keeps a tier forever);
   runs and hosts are kept forever (a row per run, a row per inventory change).

Every day is written in a hidden folder and swapped in (partitions.swap_in), so readers never see half a day.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..files import write_json_atomic
from ..interrupts import reraise
from ..lock import Busy, admin_actions_lock
from ..text import first_line
from . import partitions
from .catalog import (
    create_typed_view,
    files_source,
    quote_literal,
    refresh_catalog_file,
    schemas,
    sql_file,
    typed_select,
)

RAW_SAMPLES = ("host_samples", "gpu_samples", "gpu_processes", "gpu_mig", "host_processes")
COMPACTED = RAW_SAMPLES + ("host_status", "runs", "hosts", "admin_actions", "gpu_xid")
HOURLY = ("gpu_hourly", "host_hourly")
DAILY = ("gpu_daily", "host_daily", "user_gpu_daily", "process_gpu_daily")
# Which raw tables each rollup is computed from: a day is rolled up again when one of them is newer.
SOURCES = {"gpu": ("gpu_samples", "gpu_processes"), "host": ("host_samples",)}
ROLLUP_FILE = "rollup.parquet"
COMPACT_FILE = "compacted.parquet"
STATE_FILE = ".rollup.json"
#: <data>/.rolled/<day>: written once every rollup table of the day is (host_daily last); its time is the
#: day's "rolled up at". The hourly file alone said so before the daily ones were written: a crash between
#: them lost host_daily for good once retention took the raw day.
ROLLED_DIR = ".rolled"
#: what the marker holds: the version of the rollup rules and columns it was written with. Raised when the
#: rollup SQL gains a column or changes what a value counts, so that days whose raw samples are still kept are
#: rolled up again, once, and get it (2: unmeasured_s, util_samples, util_seconds; 3: a sample after more
#: than 24 h without one stands for 0 s, a busy CPU count that went back is a counter reset; 4: a sample
#: without a counter no longer loses the next one's delta, taken from the last sample with that counter;
#: 5: process_gpu_daily). Days past rollup.raw_days keep their rows as they were (new columns NULL, a new
#: table without those days: docs/sql.md says how queries read them).
ROLLUP_FORMAT = "5"


@dataclass
class RollupReport:
    days_rolled: list[str] = field(default_factory=list)
    compacted: dict[str, int] = field(default_factory=dict)  # table -> files merged away
    deleted: dict[str, int] = field(default_factory=dict)  # table -> day folders deleted
    recovered: list[str] = field(default_factory=list)
    #: days before the raw window that got late samples (a run kept in the spool): not in their rollups
    late: list[str] = field(default_factory=list)
    #: days before the raw window kept as they were because a raw file of theirs could not be read: day -> error
    unreadable: dict[str, str] = field(default_factory=dict)
    #: days rolled up again because their rollups were written in an older ROLLUP_FORMAT (after an upgrade)
    upgraded: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def warnings(self) -> list[str]:
        return [f"late samples for {day}, whose raw samples retention had deleted (rollup.raw_days): the day's "
                f"rollups are kept as they were, without them" for day in self.late] + [
                f"a raw file of {day}, past rollup.raw_days, could not be read ({error}): the day's rollups are "
                f"kept as they were, and retention deletes its raw files" for day, error in self.unreadable.items()]

    def summary(self) -> str:
        parts = [f"{len(self.days_rolled)} day(s) rolled up"]
        if self.upgraded:
            parts[0] += f" ({len(self.upgraded)} again, once, for this version's rollup format)"
        if self.compacted:
            parts.append(f"{sum(self.compacted.values())} files compacted")
        if self.deleted:
            parts.append("deleted " + ", ".join(f"{n} day(s) of {t}" for t, n in sorted(self.deleted.items())))
        return ", ".join(parts) + f" in {self.seconds:.1f} s"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _files_literal(files: list[Path]) -> str:
    return "[" + ", ".join(quote_literal(str(f)) for f in files) + "]"


def _source_view(con, name: str, table: str, files: list[Path]) -> None:
    """A temp view over some Parquet files of a table, with its declared columns (typed empty if none)."""
    source = files_source(table, _files_literal(files) if files else None)
    create_typed_view(con, f"CREATE OR REPLACE TEMP VIEW {name}", table, source)


def _write_day(con, data_dir: Path, table: str, day: dt.date, query: str, file_name: str,
               params: dict | None = None) -> int:
    """Write the rows of `query` as <table>/date=day/<file_name>, swapping the day in as a whole."""
    final = partitions.day_dir(data_dir, table, day)
    stage = partitions.staging_dir(final)
    dest = stage / file_name
    con.execute(f"CREATE OR REPLACE TEMP TABLE _out AS {typed_select(table, f'({query})')}", params or {})
    rows = con.execute("SELECT count(*) FROM _out").fetchone()[0]
    if rows:
        con.execute(f"COPY _out TO {quote_literal(str(dest))} (FORMAT parquet, COMPRESSION zstd)")
        partitions.swap_in(final)
    else:
        shutil.rmtree(stage, ignore_errors=True)
        partitions.remove_day(final)
    return rows


# -- compaction ----------------------------------------------------------------------------------------

def compact(con, data_dir: Path, today: dt.date, report: RollupReport) -> None:
    """Merge each past day's files into one per table (today's keep arriving and stay per run)."""
    for table in COMPACTED:
        if table != "admin_actions" or not (Path(data_dir) / table).is_dir():
            _compact_table(con, data_dir, table, today, report)
            continue
        try:  # `fleetscope admin` writes it without the data lock: a record must not land in a day being swapped
            with admin_actions_lock(data_dir):
                partitions.recover_table(Path(data_dir) / table, report.recovered)  # if recover() could not
                _compact_table(con, data_dir, table, today, report)
        except Busy:
            pass  # a record held it all that time: compacted at the next rollup


def _compact_table(con, data_dir: Path, table: str, today: dt.date, report: RollupReport) -> None:
    for day, folder in partitions.day_dirs(data_dir, table).items():
        files = partitions.parquet_files(folder)
        if day >= today or len(files) <= 1:
            continue
        _source_view(con, "_compact_src", table, files)
        order = "ts" if any(c == "ts" for c, _ in schemas()[table]) else "started_at"
        _write_day(con, data_dir, table, day, f"SELECT * FROM _compact_src ORDER BY {order}", COMPACT_FILE)
        report.compacted[table] = report.compacted.get(table, 0) + len(files) - 1


# -- rollups -------------------------------------------------------------------------------------------

def _rolled_at(data_dir: Path, day: dt.date) -> float:
    """When every rollup of ``day`` was last written whole; -1 if never."""
    try:
        return (Path(data_dir) / ROLLED_DIR / day.isoformat()).stat().st_mtime
    except FileNotFoundError:
        return -1.0


def _rolled_format(data_dir: Path, day: dt.date) -> str | None:
    """The ROLLUP_FORMAT the day's rollups were written with ("" before formats were kept), None if never."""
    try:
        return (Path(data_dir) / ROLLED_DIR / day.isoformat()).read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        return None


def _mark_rolled(data_dir: Path, day: dt.date, rollup_format: str = ROLLUP_FORMAT) -> None:
    marker = Path(data_dir) / ROLLED_DIR / day.isoformat()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(rollup_format + "\n" if rollup_format else "", encoding="ascii")
    os.utime(marker)  # an existing marker: its time is what counts


def _has_rollups(data_dir: Path, day: dt.date) -> bool:
    """Any rollup of the day: hourly, or daily only (the hourly tier's retention is shorter)."""
    return any((partitions.day_dir(data_dir, table, day) / ROLLUP_FILE).exists() for table in HOURLY + DAILY)


#: process_gpu_daily: how many days back a process still running takes its started_at from (a host down for a
#: day or two in between); one seen again after longer is counted from its own readings (the same unless the
#: host's clock stepped meanwhile).
PREVIOUS_DAYS = 7

#: Each raw table, and the rollups that count its samples (daily first: it is kept longest).
COUNTED = (("host_samples", ("host_daily", "host_hourly")), ("gpu_samples", ("gpu_daily", "gpu_hourly")))


def _raw_is_whole(con, data_dir: Path, day: dt.date) -> bool:
    """True where the raw samples kept for ``day`` are at least as many as its rollups count: the samples
    retention has left are all of them (the day was not rolled up again before it passed rollup.raw_days,
    rollups having paused; retention deletes a raw day only once it is rolled up), not a late run's alone
    (retention deleted the day, then a run kept in the spool brought a few of its samples back)."""
    def count(query: str, files: list[Path]) -> int:
        return con.execute(query.format(source=f"read_parquet({_files_literal(files)})")).fetchone()[0] or 0

    for raw, tiers in COUNTED:
        rolled = next((files for files in (partitions.parquet_files(partitions.day_dir(data_dir, t, day))
                                           for t in tiers) if files), None)
        if not rolled:
            continue
        kept = partitions.parquet_files(partitions.day_dir(data_dir, raw, day))
        if (count("SELECT count(*) FROM {source}", kept) if kept else 0) < count(
                "SELECT sum(samples) FROM {source}", rolled):
            return False
    return True


def _rolled_before_markers(data_dir: Path, day: dt.date) -> bool:
    """Whether ``day``'s rollups look written whole by a fleetscope from before the .rolled markers, after its
    raw samples: it has no marker, and the daily rollup of each kind of raw sample it has (a host's, a GPU's;
    the daily tier is written last of each, and kept longest), none of them older than its raw samples. A
    day cut short by a crash between two tables, or with samples newer than its rollups, is not."""
    if _rolled_format(data_dir, day) is not None:
        return False
    written = []
    for raw, tiers in COUNTED:
        if partitions.parquet_files(partitions.day_dir(data_dir, raw, day)):
            daily = partitions.day_dir(data_dir, tiers[0], day) / ROLLUP_FILE
            if not daily.exists():
                return False
            written.append(daily.stat().st_mtime)
    newest_raw = max(partitions.newest_mtime(partitions.day_dir(data_dir, t, day))
                     for sources in SOURCES.values() for t in sources)
    return bool(written) and newest_raw <= min(written)


def _has_raw(data_dir: Path, day: dt.date) -> bool:
    return any(partitions.day_dir(data_dir, table, day).is_dir() for table in SOURCES["gpu"] + SOURCES["host"])


def _can_roll_again(con, data_dir: Path, day: dt.date, unreadable: dict[str, str] | None = None) -> bool:
    """Whether a day past the raw window can be rolled up again and be whole: its raw samples are all there
    (_raw_is_whole), and so are the day before's, where its first intervals start (or that day has none to
    lose). The day before's folder alone does not say so: a late run of that day, ingested in the same pass,
    makes it again with that run's samples, whose last would then stand before the day's first intervals.
    A raw file that cannot be read counts as not whole: the day keeps its rollups (``unreadable``: day -> the
    reader's error, for the warning)."""
    before = day - dt.timedelta(days=1)
    for read in (before, day):  # an error is told under the day whose file it is
        try:
            if read == before:
                if _has_rollups(data_dir, before) and not (_has_raw(data_dir, before)
                                                           and _raw_is_whole(con, data_dir, before)):
                    return False
            elif not _raw_is_whole(con, data_dir, day):
                return False
        except duckdb.Error as e:
            reraise(e)
            if unreadable is not None:
                unreadable[read.isoformat()] = first_line(str(e))[:300]
            return False
    return True


def days_due(con, data_dir: Path, raw_cutoff: dt.date | None = None,
             late: list[str] | None = None, upgraded: list[str] | None = None,
             unreadable: dict[str, str] | None = None) -> list[dt.date]:
    """Days whose raw samples are newer than their rollups (or that have no rollup yet), and the day after
    each (its first interval's predecessor is in the day before: late data at the end of a day changes it).

    A day before ``raw_cutoff`` that has rollups, and whose raw samples retention has deleted
    (_can_roll_again, read with ``con``), is not rolled up again from a late run's samples alone, which would
    replace the whole day's rollups with that run's; the day goes on ``late`` instead, and its late samples
    are left to retention. One whose raw samples are all still there (rollups paused past raw_days) is.
    A day in the raw window whose rollups were written with another ROLLUP_FORMAT is due too (an upgrade
    adds columns); such days go on ``upgraded``. A day kept as it was because one of its raw files could not be
    read goes on ``unreadable`` (day -> the error), not on ``late``."""
    changed, outdated = set(), set()
    for sources in SOURCES.values():
        for table in sources:
            for day, folder in partitions.day_dirs(data_dir, table).items():
                if partitions.newest_mtime(folder) >= _rolled_at(data_dir, day):
                    changed.add(day)
                elif _rolled_format(data_dir, day) != ROLLUP_FORMAT:
                    outdated.add(day)
    # An outdated day is rolled up again only where the day before still has its raw samples too (or never
    # had rollups): else its first interval would lose its predecessor, and the day seconds it had counted.
    # Before the raw window, that is the day before the oldest (kept whole for this), not a late run's alone.
    one = dt.timedelta(days=1)

    def whole_before(day: dt.date) -> bool:
        before = day - one
        if not _has_rollups(data_dir, before):
            return True
        if not _has_raw(data_dir, before):
            return False
        if raw_cutoff is None or before >= raw_cutoff:
            return True
        try:
            return _raw_is_whole(con, data_dir, before)
        except duckdb.Error as e:
            reraise(e)
            return False

    # Rollups written before the markers (an upgrade from such a version): no marker makes every raw day look
    # newer than them. In the raw window, whole and newer than their samples, they are outdated ones (format
    # ""), rolled up again only where the day before is whole; else the oldest raw day lost its first
    # intervals' seconds for good, without a word (upgrade review). (Before the window, a day without a marker
    # is a late run's: retention took the marker with the raw samples; the late rule below says so.)
    unmarked = {day for day in changed
                if (raw_cutoff is None or day >= raw_cutoff) and _rolled_before_markers(data_dir, day)}
    for day in sorted(unmarked):
        if not whole_before(day):
            changed.discard(day)
            _mark_rolled(data_dir, day, "")
    outdated = {day for day in outdated - changed if whole_before(day)}
    if upgraded is not None:
        upgraded += [day.isoformat() for day in sorted(outdated | (unmarked & changed))]
    due = set()
    for day in changed | outdated:
        if (raw_cutoff is not None and day < raw_cutoff and _has_rollups(data_dir, day)
                and not _can_roll_again(con, data_dir, day, unreadable)):
            if late is not None and day in changed and day.isoformat() not in (unreadable or {}):  # its own
                late.append(day.isoformat())
            # taken as rolled up, in the format its rollups have: retention removes the late samples
            _mark_rolled(data_dir, day, _rolled_format(data_dir, day) or "")
            continue
        due.add(day)
        after = day + dt.timedelta(days=1)
        if _has_raw(data_dir, after):
            due.add(after)
    return sorted(due)


def rollup_day(con, data_dir: Path, day: dt.date, params: dict) -> dict[str, int]:
    """Write every rollup table for one UTC day; returns rows written per table."""
    start = dt.datetime.combine(day, dt.time())
    p = {**params, "day_start": start, "day_end": start + dt.timedelta(days=1)}
    both = [day - dt.timedelta(days=1), day]  # the day before holds each first interval's predecessor

    def files(table, days=both):
        return [f for d in days for f in partitions.parquet_files(partitions.day_dir(data_dir, table, d))]

    rows = {}
    _source_view(con, "gpu_src", "gpu_samples", files("gpu_samples"))
    _source_view(con, "proc_src", "gpu_processes", files("gpu_processes", [day]))
    con.execute("CREATE OR REPLACE TEMP TABLE gpu_iv AS " + sql_file("gpu_intervals.sql"),
                {k: p[k] for k in ("day_start", "day_end", "max_interval_s", "busy_pct", "held_bytes")})
    rows["gpu_hourly"] = _write_day(con, data_dir, "gpu_hourly", day, sql_file("gpu_hourly.sql"), ROLLUP_FILE)
    _source_view(con, "gpu_hourly_day", "gpu_hourly", files("gpu_hourly", [day]))
    rows["gpu_daily"] = _write_day(con, data_dir, "gpu_daily", day, sql_file("gpu_daily.sql"), ROLLUP_FILE)
    con.execute("CREATE OR REPLACE TEMP TABLE gpu_user_shares AS " + sql_file("gpu_user_shares.sql"),
                {k: p[k] for k in ("day_start", "day_end")})
    rows["user_gpu_daily"] = _write_day(con, data_dir, "user_gpu_daily", day, sql_file("user_gpu_daily.sql"),
                                        ROLLUP_FILE)
    # the days before's processes: one still running goes on with the start it had there (rolled up first)
    _source_view(con, "prev_proc", "process_gpu_daily", files("process_gpu_daily", [
        day - dt.timedelta(days=k) for k in range(PREVIOUS_DAYS, 0, -1)]))
    rows["process_gpu_daily"] = _write_day(con, data_dir, "process_gpu_daily", day, sql_file("process_gpu_daily.sql"),
                                           ROLLUP_FILE, {k: p[k] for k in ("day_start", "day_end")})

    _source_view(con, "host_src", "host_samples", files("host_samples"))
    con.execute("CREATE OR REPLACE TEMP TABLE host_iv AS " + sql_file("host_intervals.sql"),
                {k: p[k] for k in ("day_start", "day_end", "max_interval_s")})
    rows["host_hourly"] = _write_day(con, data_dir, "host_hourly", day, sql_file("host_hourly.sql"), ROLLUP_FILE)
    _source_view(con, "host_hourly_day", "host_hourly", files("host_hourly", [day]))
    rows["host_daily"] = _write_day(con, data_dir, "host_daily", day, sql_file("host_daily.sql"), ROLLUP_FILE)
    _mark_rolled(data_dir, day)
    return rows


def rollup_params(settings) -> dict:
    return {
        "max_interval_s": float(settings.get("rollup", "max_interval_s")),
        "busy_pct": float(settings.get("report", "busy_threshold_pct")),
        "held_bytes": int(settings.get("rollup", "held_mem_mib")) * 1024 * 1024,
    }


# -- retention -----------------------------------------------------------------------------------------

def _rolled_up(data_dir: Path, day: dt.date) -> bool:
    """True when every rollup of the day was written whole after the raw samples it comes from."""
    rolled_at = _rolled_at(data_dir, day)
    for sources in SOURCES.values():
        for table in sources:
            newest = partitions.newest_mtime(partitions.day_dir(data_dir, table, day))
            if newest and rolled_at < newest:
                return False
    return True


def apply_retention(data_dir: Path, settings, today: dt.date, report: RollupReport) -> None:
    raw_days = int(settings.get("rollup", "raw_days"))
    tiers = [
        # one day more than raw_days: the oldest day in the window keeps the predecessors of its first
        # intervals, which it needs to be rolled up again (late samples); 0 keeps them forever
        (RAW_SAMPLES, raw_days + 1 if raw_days > 0 else 0),
        # small: "down last year?", "which GPUs failed last year?"
        (HOURLY + ("host_status", "gpu_xid"), int(settings.get("rollup", "hourly_days"))),
        (DAILY, int(settings.get("rollup", "daily_days"))),
    ]
    for tables, days in tiers:
        if days <= 0:
            continue
        cutoff = today - dt.timedelta(days=days)
        for table in tables:
            for day, folder in partitions.day_dirs(data_dir, table).items():
                if day >= cutoff:
                    break
                if table in RAW_SAMPLES and not _rolled_up(data_dir, day):
                    continue  # never drop raw data that is not in the rollups yet
                partitions.remove_day(folder)
                report.deleted[table] = report.deleted.get(table, 0) + 1
    if raw_days > 0:  # a day's marker is needed while its raw samples are (days_due; late ones: _has_rollups)
        cutoff = today - dt.timedelta(days=raw_days)
        for marker in (Path(data_dir) / ROLLED_DIR).glob("????-??-??"):
            try:
                day = dt.date.fromisoformat(marker.name)
            except ValueError:
                continue
            if day < cutoff and not any(partitions.day_dir(data_dir, t, day).is_dir() for t in RAW_SAMPLES):
                marker.unlink(missing_ok=True)


# -- the whole pass ------------------------------------------------------------------------------------

def rollup(data_dir: Path, settings, now: dt.datetime | None = None, progress=None) -> RollupReport:
    """Recover, compact, roll up what is due, apply retention, refresh the catalog file. Idempotent."""
    data_dir = Path(data_dir)
    started = time.monotonic()
    now = now or _utcnow()
    today = now.date()
    report = RollupReport()
    report.recovered = partitions.recover(data_dir)
    con = duckdb.connect()
    try:
        compact(con, data_dir, today, report)
        params = rollup_params(settings)
        raw_days = int(settings.get("rollup", "raw_days"))
        due = days_due(con, data_dir, today - dt.timedelta(days=raw_days) if raw_days > 0 else None, report.late,
                       report.upgraded, report.unreadable)
        for i, day in enumerate(due, 1):
            if progress:
                progress(f"rollup: {day} ({i}/{len(due)})")
            rollup_day(con, data_dir, day, params)
            report.days_rolled.append(day.isoformat())
    finally:
        con.close()
    apply_retention(data_dir, settings, today, report)
    refresh_catalog_file(data_dir)
    report.seconds = time.monotonic() - started
    write_json_atomic(data_dir / STATE_FILE, {"last_rollup": now.isoformat(sep=" "), "days": report.days_rolled})
    return report


def rollup_due(data_dir: Path, settings, now: dt.datetime | None = None) -> bool:
    """True when `every_minutes` have passed since the last rollup (or there was none)."""
    now = now or _utcnow()
    try:
        state = json.loads((Path(data_dir) / STATE_FILE).read_text(encoding="utf-8"))
        last = dt.datetime.fromisoformat(state["last_rollup"])
    except (OSError, ValueError, KeyError, TypeError):
        return True
    return now - last >= dt.timedelta(minutes=int(settings.get("rollup", "every_minutes")))
