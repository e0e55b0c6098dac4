"""Bookings from shared calendars (iCalendar: Teamup, Google, Outlook, a file), matched to hosts and GPUs.

The rule, documented in docs/bookings.md: an event books what its LOCATION names, or its SUMMARY when the
location names nothing. A name is an inventory host, alone (the whole host) or followed by `:` and GPU
indexes (`gpu01:0,1` or `gpu01:0-3`); several may be listed. The user is the `@name` word of the summary,
else the organizer's e-mail local part, else the attendee's. Recurring events are expanded.

A source that cannot be read or parsed is reported (per source) and the others are still used.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

TOKEN = re.compile(r"(?<![\w.-])([A-Za-z0-9][A-Za-z0-9_.-]*)(?::(\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*))?(?![\w-])")
AT_USER = re.compile(r"(?<!\w)@([A-Za-z0-9_.-]+)")
MAX_BYTES = 20 * 1024 * 1024
#: Occurrences one calendar may have in the window read (70 days): a lab's has hundreds. A 200-byte event
#: recurring every minute has 100,800, and booking 16 GPUs each, 1.6 M rows: it fails its source instead.
MAX_OCCURRENCES = 10_000
MAX_ROWS = 50_000
WEEK = dt.timedelta(days=7)
#: Seconds one calendar's events may take to expand (a recurrence rule from years back is expanded from its
#: start): past it the source fails, its previous bookings kept, and the run goes on.
PARSE_LIMIT_S = 60.0
MAX_GPU_INDEX = 255  # no host has more GPUs; "gpu01:0-99999999" would book (and store) a hundred million


class BookingSourceError(RuntimeError):
    """One calendar could not be read or parsed; ``source`` names it."""

    def __init__(self, source: str, message: str):
        super().__init__(f"{source}: {message}")
        self.source = source


class EventError(ValueError):
    """One event cannot be taken (the calendar's other events are)."""


@dataclass
class Booking:
    source: str
    uid: str
    start: dt.datetime  # UTC, naive
    end: dt.datetime
    host: str
    gpu_index: int | None  # None: the whole host
    user: str | None
    summary: str

    def row(self, fetched_at: dt.datetime) -> dict:
        return {"ts": fetched_at.isoformat(sep=" "), "source": self.source, "uid": self.uid,
                "start": self.start.isoformat(sep=" "), "end": self.end.isoformat(sep=" "), "host": self.host,
                "gpu_index": self.gpu_index, "user": self.user, "summary": self.summary}


@dataclass
class SyncReport:
    bookings: list[Booking] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one per source that failed
    failed: set[str] = field(default_factory=set)  # the sources that failed: their stored bookings are kept
    skipped: list[str] = field(default_factory=list)  # one per event that could not be taken
    unmatched: int = 0  # events naming no known host
    stored: int = 0  # rows in the bookings table after store(), kept ones included
    warnings: list[str] = field(default_factory=list)  # the bookings are stored, but something else failed


def _fetch(url: str, timeout_s: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - http(s) only
        return response.read(MAX_BYTES + 1)


def _within(work, limit_s: float, name: str):
    """``work()``'s result, or its exception, if it ends within ``limit_s``; else TimeoutError, the thread left
    to end by itself (a socket's timeout, a filesystem that answers again, a parse told to stop): the
    process does not wait for it."""
    got: list = []

    def worker() -> None:
        try:
            got.append(work())
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            got.append(e)

    thread = threading.Thread(target=worker, name=name, daemon=True)
    thread.start()
    thread.join(limit_s)
    if not got:
        raise TimeoutError(f"not done within {limit_s:g} s")
    if isinstance(got[0], BaseException):
        raise got[0]
    return got[0]


def _read_file(path: str) -> bytes:
    """A calendar file: a regular file only (a FIFO would wait for a writer for ever; opening a device may
    start something), at most MAX_BYTES + 1."""
    path = Path(path).expanduser()
    if not stat.S_ISREG(path.stat().st_mode):
        raise OSError(f"not a regular file: {path}")
    with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(f"not a regular file: {path}")
        return f.read(MAX_BYTES + 1)


def read_source(source: str, timeout_s: float = 10.0) -> bytes:
    """The bytes of a calendar: an http(s) URL (webcal://, a calendar's "subscribe" link, is https://), a
    file:// URL or a file path. The whole of it must come within ``timeout_s``: a server that sends a byte a
    second, or a file on a network filesystem that stopped answering, would otherwise hold the run (and the
    data lock) as long as it likes."""
    try:
        scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", source)
        kind = scheme.group(1).lower() if scheme else ""
        if kind and kind not in ("http", "https", "webcal", "file"):
            raise ValueError(f"{scheme.group(1)}:// is not a source fleetscope reads (http://, https://, "
                             f"webcal://, file:// or a file path)")
        if kind in ("http", "https", "webcal"):
            url = ("https" if kind == "webcal" else kind) + source[len(kind):]

            def read() -> bytes:
                return _fetch(url, timeout_s)
        else:
            path = source[len("file://"):] if kind == "file" else source

            def read() -> bytes:
                return _read_file(path)
        try:
            data = _within(read, timeout_s, f"bookings {source}")
        except TimeoutError as e:
            raise TimeoutError(f"no whole answer within {timeout_s:g} s") from e
    except Exception as e:  # noqa: BLE001 - whatever failed, it is this source's failure only
        raise BookingSourceError(source, f"cannot read: {type(e).__name__}: {e}") from e
    if len(data) > MAX_BYTES:
        raise BookingSourceError(source, f"larger than {MAX_BYTES // 2**20} MiB")
    return data


def _utc(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value
    return dt.datetime.combine(value, dt.time())  # an all-day event: midnight UTC


def _gpus(spec: str | None) -> list[int | None]:
    if not spec:
        return [None]
    out: list[int | None] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last > MAX_GPU_INDEX or first > last:
            raise EventError(f"GPU indexes {part!r}: a host's GPUs are numbered 0 to at most {MAX_GPU_INDEX}")
        out.extend(range(first, last + 1))
    return sorted(set(out), key=out.index)


def _user(event, summary: str) -> str | None:
    m = AT_USER.search(summary)
    if m:
        return m.group(1)
    for key in ("ORGANIZER", "ATTENDEE"):
        value = event.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            address = str(value).split(":", 1)[-1]
            return address.split("@", 1)[0] or None
    return None


def match(text: str, hosts: set[str]) -> list[tuple[str, int | None]]:
    """(host, gpu index or None) for every inventory host named in `text`."""
    found = []
    for m in TOKEN.finditer(text or ""):
        if m.group(1) in hosts:
            found += [(m.group(1), g) for g in _gpus(m.group(2))]
    return found


#: Set by parse on each event of the file: its number there. Its occurrences carry it (each is a copy of the
#: event): with their start, it tells occurrences apart where the UID does not (events without one).
NUMBER = "X-FLEETSCOPE-EVENT"
#: Set by parse on an event of the file whose end comes before its start: recurring_ical_events turns such an
#: event around, into a span nobody booked.
BACKWARDS = "X-FLEETSCOPE-ENDS-BEFORE-IT-STARTS"


def _mark_events(calendar) -> None:
    """Number each VEVENT of the file (a series, or one of its overrides: NUMBER), and mark those whose DTEND,
    or DTSTART + DURATION, is before their DTSTART (a typo in a calendar made by hand or by a script) with
    BACKWARDS: their end. Compared as recurring_ical_events compares them (a floating time or a date takes
    the other one's zone); the calendar's X-WR-TIMEZONE is applied first, as it applies it."""
    try:
        from recurring_ical_events.util import make_comparable
    except ImportError:  # an older recurring-ical-events: UTC for a floating time, midnight UTC for a date
        def make_comparable(times):
            return [_utc(t) for t in times]

    for number, component in enumerate(calendar.walk("VEVENT")):
        component.add(NUMBER, str(number))
        try:
            start = component.decoded("DTSTART")
            if component.get("DTEND"):
                end, said = component.decoded("DTEND"), component.get("DTEND").to_ical().decode()
            elif component.get("DURATION"):
                end = start + component.decoded("DURATION")
                said = f"DURATION {component.get('DURATION').to_ical().decode()}"
            else:
                continue
            start, end = make_comparable((start, end))
            if end < start:
                component.add(BACKWARDS, said)
        except Exception:  # noqa: BLE001, S112 - an event that cannot be read is said so where it is taken
            continue


def parse(source: str, data: bytes, hosts: set[str], start: dt.datetime,
          end: dt.datetime, stop: threading.Event | None = None) -> tuple[list[Booking], int, list[str]]:
    """Bookings of one calendar between start and end (UTC), recurring events expanded; the count of events
    naming no known host; a line per event skipped (cancelled events are left out without one)."""
    import icalendar
    import recurring_ical_events
    import x_wr_timezone

    try:
        calendar = x_wr_timezone.to_standard(icalendar.Calendar.from_ical(data))
        _mark_events(calendar)
        query = recurring_ical_events.of(calendar)
        events, seen, since = [], set(), start
        # A week at a time, so that a calendar of too many occurrences (an event that recurs every minute)
        # is refused after a week's worth, not once all of them are in memory; an event longer than a week
        # comes in each week it spans, and is taken once. ``stop``: the caller stopped waiting.
        while since < end and not (stop is not None and stop.is_set()):
            until = min(since + WEEK, end)
            for event in query.between(since, until):
                key = (str(event.get(NUMBER, "")), str(event.get("DTSTART").to_ical() if event.get("DTSTART")
                                                         else ""))
                if key in seen:
                    continue
                seen.add(key)
                events.append(event)
            if len(events) > MAX_OCCURRENCES:
                raise BookingSourceError(source, f"more than {MAX_OCCURRENCES} event occurrences between "
                                                 f"{start:%Y-%m-%d} and {end:%Y-%m-%d} (an event that recurs "
                                                 f"every minute?): left as it was")
            since = until
    except BookingSourceError:
        raise
    except Exception as e:  # noqa: BLE001 - a malformed calendar is this source's failure only
        raise BookingSourceError(source, f"not a valid iCalendar file: {type(e).__name__}: {e}") from e
    bookings, unmatched, skipped, warned = [], 0, [], set()
    for event in events:
        summary = str(event.get("SUMMARY", ""))
        if str(event.get("STATUS", "")).upper() == "CANCELLED":  # Google exports cancelled occurrences so
            continue
        try:
            targets = match(str(event.get("LOCATION", "")), hosts) or match(summary, hosts)
            if not targets:
                unmatched += 1
                continue
            if event.get(BACKWARDS):  # recurring_ical_events turned it around: a span nobody booked
                if str(event.get(NUMBER)) in warned:  # once per event of the file, not per occurrence
                    continue
                warned.add(str(event.get(NUMBER)))
                raise EventError(f"it ends ({event.get(BACKWARDS)}) before it starts")
            begin = _utc(event.decoded("DTSTART"))
            finish = _utc(event.decoded("DTEND")) if event.get("DTEND") else begin
            if finish == begin:  # no end (nor DURATION): an hour. recurring_ical_events gives every occurrence
                finish = begin + dt.timedelta(hours=1)  # a DTEND: RFC 5545's, its start, which books nothing
        except Exception as e:  # noqa: BLE001 - one event that cannot be taken costs only itself
            skipped.append(f"{source}: event {str(event.get('UID', '?'))[:80]!r} ({summary[:60]!r}) skipped: "
                           f"{e if isinstance(e, EventError) else f'{type(e).__name__}: {e}'}")
            continue
        uid = f"{event.get('UID', '')}@{begin.isoformat()}"
        user = _user(event, summary)
        bookings += [Booking(source, uid, begin, finish, h, g, user, summary[:500]) for h, g in targets]
        if len(bookings) > MAX_ROWS:
            raise BookingSourceError(source, f"more than {MAX_ROWS} bookings of hosts and GPUs between "
                                             f"{start:%Y-%m-%d} and {end:%Y-%m-%d}: left as it was")
    return bookings, unmatched, skipped


def _parse_within(source: str, data: bytes, hosts: set[str], start: dt.datetime, end: dt.datetime,
                  limit_s: float | None = None):
    """parse(), given at most ``limit_s`` (PARSE_LIMIT_S): a calendar that takes longer fails its source."""
    limit_s = PARSE_LIMIT_S if limit_s is None else limit_s
    stop = threading.Event()
    try:
        return _within(lambda: parse(source, data, hosts, start, end, stop), limit_s, f"bookings {source}")
    except TimeoutError:
        stop.set()  # it ends at the next week it would have expanded
        raise BookingSourceError(source, f"its events could not be expanded within {limit_s:g} s (a "
                                         f"recurrence too frequent, or from too long ago?): left as it was") from None


def sync(sources: list[str], hosts: set[str], now: dt.datetime, days_back: int = 35, days_ahead: int = 35,
         timeout_s: float = 10.0) -> SyncReport:
    """Read every source; a failing one adds an error and the others still count."""
    report = SyncReport()
    for source in dict.fromkeys(sources):  # a source listed twice is read (and stored) once
        try:
            bookings, unmatched, skipped = _parse_within(source, read_source(source, timeout_s), hosts,
                                                         now - dt.timedelta(days=days_back),
                                                         now + dt.timedelta(days=days_ahead))
        except BookingSourceError as e:
            report.errors.append(str(e))
            report.failed.add(e.source)
            continue
        report.bookings += bookings
        report.unmatched += unmatched
        report.skipped += skipped
    return report


def rule_breaks(con, max_gpus_per_user: int, max_hours: float, since: dt.datetime) -> list[dict]:
    """The stored bookings that break the lab's rules (0: no rule) among those ending after ``since``.

    ``con`` has the warehouse's bookings and hosts tables. The rules are checked by one SQL file,
    reports/queries/bookings_rule_breaks.sql, which the report's problems page runs too; its rows are
    returned (see the file for the columns)."""
    from reports.sql import fetch

    return fetch(con, "bookings_rule_breaks", {"since": since, "max_hours": float(max_hours),
                                               "max_gpus_per_user": int(max_gpus_per_user)})


def describe_break(row: dict, max_gpus_per_user: int, max_hours: float) -> str:
    """One rule_breaks() row as a line for the terminal."""
    user = row["user"] or "?"
    if row["rule"] == "max_hours":
        return (f"{user}: {row['targets']} booked {row['hours']:.0f} h from {row['start']:%Y-%m-%d %H:%M} "
                f"({row['summary']!r}), over {max_hours:g} h")
    return (f"{user}: {row['gpus']} GPUs booked at once at {row['start']:%Y-%m-%d %H:%M} ({row['targets']}), "
            f"over {max_gpus_per_user}")


def store(data_dir: Path, report: SyncReport, fetched_at: dt.datetime, sources: list[str]) -> int:
    """Replace the bookings table with this sync's bookings (one file, swapped in atomically).

    Sources that failed this time keep their bookings from the last sync, so a calendar that is down for a
    run does not make its bookings vanish."""
    import duckdb

    from .warehouse import connect, partitions
    from .warehouse.ingest import write_rows

    failed = report.failed
    kept: list[dict] = []
    if failed:
        con = connect(data_dir)
        try:
            cur = con.execute("SELECT * FROM bookings WHERE source IN (SELECT unnest(?))", [sorted(failed)])
            names = [d[0] for d in cur.description]
            kept = [dict(zip(names, r)) for r in cur.fetchall()]
        finally:
            con.close()
        for row in kept:
            for key in ("ts", "start", "end"):
                row[key] = row[key].isoformat(sep=" ")
    rows = kept + [b.row(fetched_at) for b in report.bookings if b.source in sources]
    day = fetched_at.date()
    final = partitions.day_dir(data_dir, "bookings", day)
    stage = partitions.staging_dir(final)
    if rows:
        con = duckdb.connect()
        try:
            write_rows(con, "bookings", rows, stage / "bookings.parquet")
        finally:
            con.close()
    partitions.swap_in(final)
    for other_day, folder in partitions.day_dirs(data_dir, "bookings").items():
        if other_day != day:
            partitions.remove_day(folder)
    return len(rows)


def sync_and_store(settings, inventory: Path, now: dt.datetime | None = None) -> tuple[SyncReport, list[str]]:
    """Read the configured sources, store the bookings; returns the report and the rule breaks of the stored
    bookings (those of sources that failed this time included) that have not ended yet."""
    from .collect import inventory_hosts
    from .warehouse.catalog import refresh_catalog_quietly

    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    sources = [source_path(settings, str(s)) for s in settings.get("bookings", "sources")]
    hosts = set(inventory_hosts(Path(inventory)))
    report = sync(sources, hosts, now, timeout_s=float(settings.get("bookings", "timeout_s")))
    report.stored = store(settings.data_dir, report, now, sources)
    # the DuckDB CLI's views (fleet.duckdb): the table's first file changes its view
    warning = refresh_catalog_quietly(settings.data_dir)
    if warning:
        report.warnings.append(warning)
    return report, stored_rule_breaks(settings, now)


def source_path(settings, source: str) -> str:
    """A source as read: a URL as it is; a relative path relative to the settings file's folder, as every
    other path in it (under cron the current folder is not the project's)."""
    return source if "://" in source else str(settings.resolve(source))


def stored_rule_breaks(settings, now: dt.datetime) -> list[str]:
    """Lines for the stored bookings that break the [bookings] rules and have not ended at ``now``."""
    from .warehouse import connect

    max_gpus = int(settings.get("bookings", "max_gpus_per_user"))
    max_hours = float(settings.get("bookings", "max_hours"))
    if max_gpus <= 0 and max_hours <= 0:
        return []
    con = connect(settings.data_dir)
    try:
        rows = rule_breaks(con, max_gpus, max_hours, since=now)
    finally:
        con.close()
    return [describe_break(row, max_gpus, max_hours) for row in rows]
