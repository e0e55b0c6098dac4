"""Build the static report site from the warehouse tables.

Python orchestrates: run the queries in ``queries/``, shape the rows a little (group per host, name
files), build Plotly figures as dicts, and hand everything to the Jinja2 templates, which only lay out.
The site is built in a temporary directory beside ``out_dir`` and swapped in, so a browser never sees a
half-written site.

Pages: ``index.html`` (the fleet), ``hosts/<host>.html`` (one per host), ``users.html``, ``problems.html``,
plus ``data/latest.json`` (the fleet now, for other tools). ``plotly.min.js``, ``report.js`` and
``style.css`` are written once beside them, and ``.fleetscope-site``: the mark that lets the next build
replace the folder (a folder without it, unless empty or an older site, is never replaced).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib.util
import json
import math
import os
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import jinja2
import markupsafe

from reports import figures, xids
from reports.defaults import DEFAULT_SETTINGS
from reports.safe import json_for_html, slugify
from reports.sql import fetch, load, prepared

PACKAGE = Path(__file__).parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"
STATIC_FILES = ("style.css", "report.js")
#: Written into every site: the folder is fleetscope's, and the next build may replace it as a whole.
MARKER = ".fleetscope-site"
MARKER_TEXT = ("This folder is a report site written by fleetscope; the next `fleetscope report` replaces it "
               "as a whole.\n")
#: What a site written before the marker holds: these always, and nothing but SITE_ENTRIES (docs/report.md).
OLD_SITE_FILES = ("index.html", "plotly.min.js", "style.css")
SITE_ENTRIES = frozenset({*OLD_SITE_FILES, *STATIC_FILES, "sort.js", "users.html", "problems.html", "hosts", "data",
                          MARKER})  # sort.js: the first versions' script
#: What a warehouse folder holds (fleetscope.warehouse.catalog.CATALOG_FILE, fleetscope.spool): never a site.
DATA_FILE, DATA_SPOOL = "fleet.duckdb", "spool"

#: Keys of the [report] settings section that are not about rendering (the caller uses them: user_groups is the
#: file the CLI reads build_site's ``user_groups`` from).
IGNORED_SETTINGS = frozenset({"out_dir", "user_groups"})
#: The users page's group of the users a ``user_groups`` mapping does not name.
NO_GROUP = "(no group)"

#: The users page lists the GPU processes with the most GPU-hours: this many over 30 days, and over a year.
TOP_PROCESSES = 30
#: A host page lists this many of its GPU processes with the most GPU-hours over 30 days.
HOST_TOP_PROCESSES = 10
#: What users_now.sql calls the owner of a GPU process that has none (hidden by /proc, or gone).
UNKNOWN_USER = "(unknown)"
KNOWN_STATUSES = ("ok", "unreachable", "failed", "timeout", "stale")
#: The fleet page's ranges: label, query, seconds back, the tier's own resolution (s), what the tier is.
FLEET_RANGES = (
    ("24 h", "fleet_timeline", 86400, 60, "raw samples"),
    ("7 d", "fleet_hourly", 7 * 86400, 3600, "hourly rollups"),
    ("30 d", "fleet_hourly", 30 * 86400, 3600, "hourly rollups"),
    ("1 y", "fleet_daily", 365 * 86400, 86400, "daily rollups"),
)
USER_RANGES = (("7 d", "7d"), ("30 d", "30d"), ("1 y", "1y"))
#: How far back the problems page looks for the start of an idle-held stretch (raw samples are kept 30 days).
HELD_LOOKBACK = timedelta(days=30)
#: A host with fewer GPUs than at any of its samples this far back is listed on the problems page.
GPUS_LOOKBACK = timedelta(days=30)
STALE_LISTED = 10  # stale hosts named in the page footer; the rest are counted
#: Bookings rules ([bookings] section; 0: no rule) and the section's other keys, which are the caller's.
BOOKING_RULES = {"max_gpus_per_user": 0, "max_hours": 0.0}
BOOKING_SOURCE_KEYS = frozenset({"sources", "timeout_s"})
NEXT_BOOKINGS = 10  # upcoming bookings listed per host page, after the current ones


def build_site(con, out_dir, *, now: Optional[datetime] = None, settings: Optional[Mapping[str, Any]] = None,
               inventory_vars: Optional[Mapping[str, Mapping[str, Any]]] = None,
               inventory_hosts: Optional[Mapping[str, Mapping[str, Any]]] = None,
               bookings: Optional[Mapping[str, Any]] = None,
               user_groups: Optional[Mapping[str, str]] = None) -> Path:
    """Write the report for the warehouse behind ``con`` into ``out_dir``; return the index.html path.

    ``con`` is an open DuckDB connection where the warehouse tables (or views) exist. ``out_dir`` is
    replaced as a whole. ``now`` (default: the wall clock) is the generation time printed on every page,
    UTC; a naive datetime is taken as UTC. ``settings`` overrides keys of ``DEFAULT_SETTINGS`` (the
    [report] section of fleetscope.toml can be passed as is: its ``out_dir`` is ignored here).
    ``inventory_vars`` maps host -> {variable: value} from the Ansible inventory; the variables named in
    ``settings["host_columns"]`` become columns of the hosts table and rows of each host's inventory.
    ``inventory_hosts`` maps host -> {"address": ..., "groups": [...], "vars": {...}} from the inventory
    (fleetscope.inventory.read_hosts): the hosts table's address and groups, and its group filter; its
    ``vars`` stand for ``inventory_vars`` when that is not given. Without it (or for a host it lacks) the
    address is the host's name and it is in no group.
    ``bookings`` is the [bookings] section of fleetscope.toml (as is): its rules ``max_gpus_per_user`` and
    ``max_hours`` (0 or absent: no rule) are checked on the problems page (docs/bookings.md).
    ``user_groups`` maps user -> group (lab, project, PI: fleetscope.user_groups reads it from the file
    report.user_groups names): the users page then has GPU-hours per group and each user's group, users it
    does not name being in NO_GROUP. Without it (None) the page has no groups.

    An existing ``out_dir`` is replaced only if it is empty or a site fleetscope wrote (``.fleetscope-site``
    in it, or the files of a site written before that marker and nothing else); a folder that holds a
    warehouse (``fleet.duckdb``, ``spool/``) or is inside one never is. Otherwise ``NotASiteFolder`` (an
    OSError) is raised before anything is written.
    """
    cfg = _settings(settings)
    generated = _utc_naive(now if now is not None else datetime.now(timezone.utc))
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)  # before the queries: a refused folder costs nothing
    if inventory_vars is None and inventory_hosts:
        inventory_vars = {host: info.get("vars") or {} for host, info in inventory_hosts.items()}
    with prepared(con):
        model = _gather(con, cfg, generated, inventory_vars or {}, inventory_hosts or {})
        model["bookings"] = _bookings(con, cfg, _booking_rules(bookings), generated, model)
    model["groups_usage"] = _group_usage(model["users"], user_groups)
    for proc in model["top_processes"] if user_groups is not None else ():
        proc["group"] = user_groups.get(proc["user"]) or NO_GROUP
    env = _environment(generated)
    with _Timelines(con, model["timeline_params"]) as timelines, _staging(out_dir) as stage:
        _render(env, model, cfg, generated, stage, timelines)
    return out_dir / "index.html"


class _Timelines:
    """Each host's rows of the host_timeline and gpu_timeline queries, read as its page is written: each query
    runs once, on a cursor of its own, and its rows (in host order) are taken host by host. (The whole
    fleet's, as Python rows, were 3.7 GB of the report's 3.85 GB at 1,000 hosts x 8 GPUs.) Pages written in
    another order than the queries' only keep more rows waiting."""

    NAMES = ("host_timeline", "gpu_timeline")

    def __init__(self, con, params: Mapping[str, Any]):
        self.con, self.params, self.streams = con, params, {}

    def __enter__(self) -> _Timelines:
        for name in self.NAMES:
            self.streams[name] = _HostRows(self.con.cursor(), load(name), self.params)
        return self

    def __exit__(self, *exc: Any) -> None:
        for stream in self.streams.values():
            stream.close()

    def rows(self, name: str, host: str) -> List[Dict[str, Any]]:
        """``host``'s rows of query ``name``, in its order; [] for a host it has none of."""
        return self.streams[name].take(host)


class _HostRows:
    """The rows of a query ordered by host (its first column), taken host by host (take), read CHUNK rows at
    a time."""

    CHUNK = 20_000

    def __init__(self, cur, sql: str, params: Mapping[str, Any]):
        self.cur = cur
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute(sql, dict(params))
        self.columns = [d[0] for d in cur.description]
        self.ahead: Dict[str, List[Dict[str, Any]]] = {}  # read, not taken yet
        self.last: Optional[str] = None  # the host of the last row read: more of its rows may follow
        self.done = False

    def take(self, host: str) -> List[Dict[str, Any]]:
        # read until past host: DuckDB orders text as Python compares it (by code point), so a host with no
        # rows reads no further than the next host's first chunk
        while not self.done and (self.last is None or self.last <= host):
            chunk = self.cur.fetchmany(self.CHUNK)
            if not chunk:
                self.done = True
                break
            for row in chunk:
                self.ahead.setdefault(row[0], []).append(dict(zip(self.columns, row)))
            self.last = chunk[-1][0]
        return self.ahead.pop(host, [])

    def close(self) -> None:
        self.cur.close()


# -- data ------------------------------------------------------------------------------------------------

def _bucket(window_s: float, max_points: int, unit_s: int) -> int:
    """Bucket seconds for a window: at most max_points buckets, a whole number of ``unit_s``."""
    return unit_s * max(1, math.ceil(window_s / max(1, max_points) / unit_s))


def _gather(con, cfg: Mapping[str, Any], generated: datetime, inventory_vars: Mapping[str, Mapping[str, Any]],
            inventory_hosts: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Dict[str, Any]:
    """Run every query; rows grouped per host where the pages need them."""
    fresh = fetch(con, "data_freshness")[0]
    end = fresh["latest_data_at"] or generated
    max_points = int(cfg["max_points"])
    window_s = float(cfg["timeline_hours"]) * 3600.0
    since = end - timedelta(seconds=window_s)
    bucket_s = _bucket(window_s, max_points, 60)
    heat_bucket_s = max(bucket_s, _bucket(window_s, int(cfg["heatmap_columns"]), 60))
    busy = float(cfg["busy_threshold_pct"])
    day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    user_windows = {"since_7d": day - timedelta(days=6), "since_30d": day - timedelta(days=29),
                    "since_1y": day - timedelta(days=364)}

    hosts = fetch(con, "hosts_overview", {"busy_pct": busy})
    availability = {r["host"]: r for r in fetch(con, "host_availability", {"end": end})}
    for h in hosts:
        h["availability"] = availability.get(h["host"])
    columns = [str(c) for c in cfg["host_columns"]]
    stale_before = end - timedelta(minutes=float(cfg["stale_minutes"]))
    used: set = set()
    for h in hosts:
        slug = slugify(h["host"])
        while slug in used:  # a hash collision, in theory: keep every page its own file
            slug += "_"
        used.add(slug)
        h["file"] = f"{slug}.html"
        h["stale"] = h["last_seen"] is None or h["last_seen"] < stale_before
        # up: answered its latest run, and that run is not stale: a host the fleet's runs no longer reach
        # (left out by --limit, or by an inventory the report does not have) is not "up" on old data
        h["up"] = h["status"] == "ok" and not h["stale"]
        h["status"] = h["status"] or "unknown"
        h["mem_used_frac"] = (h["mem_used_bytes"] / h["mem_total_bytes"]
                              if h["mem_used_bytes"] is not None and h["mem_total_bytes"] else None)
        own = inventory_vars.get(h["host"]) or {}
        h["vars"] = {c: own.get(c) for c in columns}
        _inventory_host(h, (inventory_hosts or {}).get(h["host"]) or {})
        # Retired: gone from the inventory (when the report has one) and not seen lately. It keeps its row and
        # page, but no longer counts as a host that is down, stale or a problem (its history stays a year).
        h["retired"] = bool(inventory_hosts) and h["host"] not in inventory_hosts and h["stale"]
    files = {h["host"]: h["file"] for h in hosts}
    current = [h for h in hosts if not h["retired"]]
    retired = {h["host"] for h in hosts if h["retired"]}

    now_hosts = sorted(h["host"] for h in current if h["up"])  # whose latest state is the fleet's "now"
    is_now = set(now_hosts)
    gpus = fetch(con, "gpu_latest")
    mig = _group(fetch(con, "mig_latest"))
    held_bytes = int(cfg["held_mem_mib"]) * 1024 * 1024
    for g in gpus:
        g["host_up"] = g["host"] in is_now
        in_use = (g["process_count"] or 0) > 0 or (g["mem_used_bytes"] or 0) > held_bytes
        util = g["util"] = g["util_pct"]  # NVML's ~15 s mean where the GPU gives it, as the rollups take it
        g["busy"] = util is not None and util > busy
        # no utilization at all (MIG mode): in use, busy or not unknown; neither idle-held nor idle (as the
        # rollups, which take the average first: a GPU either gives both or neither, save a failed call)
        g["unmeasured"] = util is None and in_use
        g["held"] = util is not None and not g["busy"] and in_use
    up_gpus = [g for g in gpus if g["host_up"]]
    users_now = fetch(con, "users_now", {"busy_pct": busy, "hosts": now_hosts})
    up = [h for h in current if h["up"]]
    stale = sorted((h for h in current if h["stale"]), key=lambda h: h["last_seen"] or datetime.min)  # never first
    summary = {
        "hosts_up": len(up),
        "hosts_total": len(current),
        "retired": sorted(retired),
        "gpus_total": len(up_gpus),
        "gpus_busy": sum(g["busy"] for g in up_gpus),
        # a GPU in maintenance is not offered as idle (free) in the summary: counted apart, unless it is busy or
        # in use all the same
        "gpus_held": sum(g["held"] and not g["maintenance"] for g in up_gpus),
        "gpus_unmeasured": sum(g["unmeasured"] for g in up_gpus),
        "gpus_maintenance": sum(bool(g["maintenance"]) and not (g["busy"] or g["unmeasured"]) for g in up_gpus),
        "users": [u["user"] for u in users_now],
        "latest_run_at": fresh["latest_run_at"],
        "latest_data_at": fresh["latest_data_at"],
        "stale": stale,
        "stale_minutes": cfg["stale_minutes"],
    }
    summary["gpus_idle"] = (summary["gpus_total"] - summary["gpus_busy"] - summary["gpus_unmeasured"]
                            - summary["gpus_maintenance"])

    problem_since = end - timedelta(hours=float(cfg["problem_hours"]))
    user_host = fetch(con, "user_host_usage", user_windows)
    return {
        "hosts": hosts,
        "files": files,
        "columns": columns,
        "numeric_columns": {c for c in columns if _numeric(h["vars"][c] for h in hosts)},
        "summary": summary,
        "since": since,
        "end": end,
        "gpus": gpus,
        "mig": mig,
        "fleet_ranges": _fleet_ranges(con, end, max_points, busy, float(cfg["max_interval_s"]),
                                      int(cfg["hourly_days"])),
        "heatmap": fetch(con, "fleet_gpu_heatmap", {"since": since, "bucket_s": heat_bucket_s}),
        "timeline_params": {"since": since, "bucket_s": bucket_s},  # host_timeline, gpu_timeline: _Timelines
        # host charts break their lines where points are further apart than two buckets or two collection
        # intervals (a sample stands for up to max_interval_s): the host was down, or not collected
        "gap_s": 2 * max(bucket_s, float(cfg["max_interval_s"])),
        "bucket_s": bucket_s,
        "processes": _group(fetch(con, "gpu_processes_last")),
        "host_processes": _group(fetch(con, "host_processes_last")),
        "process_users": _group(fetch(con, "host_process_users")),
        "groups": sorted({g for h in hosts for g in h["groups"]}),
        "inventory": {r["host"]: r for r in fetch(con, "host_inventory")},
        "status": _group(fetch(con, "host_status_periods", {"limit": int(cfg["status_history"])})),
        "users": fetch(con, "user_usage", user_windows),
        "top_processes": fetch(con, "process_usage", {"since_30d": user_windows["since_30d"],
                                                      "since_1y": user_windows["since_1y"], "top": TOP_PROCESSES}),
        "host_top_processes": _group(fetch(con, "host_process_usage", {"since_30d": user_windows["since_30d"],
                                                                       "top": HOST_TOP_PROCESSES})),
        "user_host": user_host,
        "host_users": _group(user_host),
        "users_now": users_now,
        "user_windows": user_windows,
        "week_hour_since": end - timedelta(days=365),
        "hourly_days": int(cfg["hourly_days"]),
        "week_hour": fetch(con, "fleet_week_hour", {"since": end - timedelta(days=365)}),
        "problems": _problems(con, cfg, end, problem_since, busy, held_bytes, retired, now_hosts,
                              {h["host"] for h in stale}),
        "problem_since": problem_since,
        "now_hosts": now_hosts,
    }


def _inventory_host(h: Dict[str, Any], own: Mapping[str, Any]) -> None:
    """The inventory's address and groups of host row ``h``; its maintenance as one text for the pages."""
    h["address"] = str(own.get("address") or h["host"])
    h["groups"] = sorted({str(g) for g in own.get("groups") or ()} - {"all", "ungrouped"})
    if h["maint_all"]:
        h["maint_scope"] = "all GPUs"
    elif h["maint_gpus"]:
        h["maint_scope"] = ("GPU " if len(h["maint_gpus"]) == 1 else "GPUs ") + ", ".join(map(str, h["maint_gpus"]))
    else:
        h["maint_scope"] = None


def _fleet_ranges(con, end: datetime, max_points: int, busy: float, max_interval_s: float,
                  hourly_days: int = 0) -> List[tuple]:
    """(label, tier, bucket seconds, rows) per range of the fleet chart, each from its tier; the tier says how
    long it is kept where that is shorter than the range (rollup.hourly_days under 30)."""
    out = []
    for label, query, back_s, unit_s, tier in FLEET_RANGES:
        if query == "fleet_hourly" and 0 < hourly_days * 86400 < back_s:
            tier = f"{tier}, kept {hourly_days} d: rollup.hourly_days"
        bucket_s = _bucket(back_s, max_points, unit_s)
        start = end - timedelta(seconds=back_s)
        if unit_s > 60:  # rollup rows start on the hour or day: take whole buckets
            start = datetime.fromtimestamp(start.replace(tzinfo=timezone.utc).timestamp() // unit_s * unit_s,
                                           tz=timezone.utc).replace(tzinfo=None)
        params = {"since": start, "bucket_s": bucket_s}
        if query == "fleet_timeline":
            params.update(busy_pct=busy, max_interval_s=max_interval_s)
        out.append((label, tier, bucket_s, fetch(con, query, params)))
    return out


def _problems(con, cfg: Mapping[str, Any], end: datetime, since: datetime, busy: float,
              held_bytes: int, retired: frozenset | set = frozenset(),
              now_hosts: Sequence[str] = (),
              stale: frozenset | set = frozenset()) -> Dict[str, List[Dict[str, Any]]]:
    """The rows of each section of the problems page; the thresholds come from the settings. A retired host
    (gone from the inventory, and stale) has no problem left to act on: none of its rows is listed."""
    sections = {
        "hosts": [{**p, "stale": p["host"] in stale}
                  for p in fetch(con, "problems_hosts", {"since": since, "stale": sorted(stale)})],
        "gpu_heat": fetch(con, "problems_gpu_heat", {
            "since": since, "hot_c": float(cfg["hot_gpu_c"]), "reasons": [str(r) for r in cfg["throttle_reasons"]]}),
        "gpus_missing": fetch(con, "problems_gpus_missing", {"since": end - GPUS_LOOKBACK}),
        # the GPU's own errors first, an application's faults after (xids.APPLICATION), each the latest first
        "xid": sorted(({**x, "meaning": xids.MEANINGS.get(x["xid"], ""), "application": x["xid"] in xids.APPLICATION}
                       for x in fetch(con, "problems_xid", {"since": since})),
                      key=lambda x: (x["application"], -x["last_at"].timestamp() if x["last_at"] else 0)),
        "ecc": fetch(con, "problems_ecc", {"since": since}),
        "idle_held": fetch(con, "problems_idle_held", {
            "since": end - HELD_LOOKBACK, "busy_pct": busy, "held_bytes": held_bytes, "hosts": list(now_hosts),
            "min_held_s": float(cfg["idle_held_minutes"]) * 60.0, "max_interval_s": float(cfg["max_interval_s"])}),
        "clock": fetch(con, "problems_clock", {"max_skew_s": float(cfg["clock_skew_s"])}),
        "disk": fetch(con, "problems_disk", {"full_pct": float(cfg["disk_full_pct"])}),
        "oom": fetch(con, "problems_oom", {"since": since}),
        "hidden_processes": fetch(con, "problems_hidden_processes"),
    }
    return {name: [p for p in rows if p["host"] not in retired] for name, rows in sections.items()}


def _booking_rules(bookings: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The rules of the [bookings] section; its keys about reading the calendars are the caller's."""
    unknown = set(bookings or {}) - set(BOOKING_RULES) - BOOKING_SOURCE_KEYS
    if unknown:
        raise ValueError(f"unknown bookings settings: {', '.join(sorted(unknown))}")
    given = {**BOOKING_RULES, **(bookings or {})}
    return {"max_gpus_per_user": int(given["max_gpus_per_user"]), "max_hours": float(given["max_hours"])}


def _bookings(con, cfg: Mapping[str, Any], rules: Mapping[str, Any], generated: datetime,
              model: Dict[str, Any]) -> Dict[str, Any]:
    """Bookings now and next per host, booked against used hours per user, and the two problems sections
    (running without a booking, rules broken), which go into ``model["problems"]``. A warehouse without a
    bookings table, or with an empty one (a lab that does not book), gets empty sections."""
    found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'bookings'").fetchone()
    used = bool(found[0]) and con.execute("SELECT count(*) FROM (SELECT 1 FROM bookings LIMIT 1)").fetchone()[0] > 0
    hosts: Dict[Any, List[Dict[str, Any]]] = {}
    usage: List[Dict[str, Any]] = []
    unbooked: List[Dict[str, Any]] = []
    breaks: List[Dict[str, Any]] = []
    if used:
        windows = model["user_windows"]
        hosts = _group(fetch(con, "bookings_hosts", {"now": generated, "next_limit": NEXT_BOOKINGS}))
        usage = fetch(con, "bookings_usage", {
            "since_7d": windows["since_7d"], "since_30d": windows["since_30d"],
            "busy_pct": float(cfg["busy_threshold_pct"]), "max_interval_s": float(cfg["max_interval_s"]),
            "held_bytes": int(cfg["held_mem_mib"]) * 1024 * 1024})
        unbooked = fetch(con, "problems_unbooked", {"hosts": model["now_hosts"]})
        breaks = fetch(con, "bookings_rule_breaks", {"since": model["problem_since"], **rules})
    model["problems"]["unbooked"] = unbooked
    model["problems"]["booking_rules"] = breaks
    return {"used": used, "hosts": hosts, "usage": usage, "rules": rules, "now": generated,
            "next_limit": NEXT_BOOKINGS}


def _group_usage(users: List[Dict[str, Any]],
                 user_groups: Optional[Mapping[str, str]]) -> Optional[List[Dict[str, Any]]]:
    """GPU-hours per group: the rows of user_usage summed over each group's users (a window where none of them
    has any stays None, as a user's does), with the number of users; each user row gets its "group". Ordered
    as the users are. None without ``user_groups``: the page then has no group table and no Group column."""
    if user_groups is None:
        return None
    keys = [f"{what}_{w}" for _, w in USER_RANGES for what in ("active_h", "held_h", "unmeasured_h", "kwh")]
    groups: Dict[str, Dict[str, Any]] = {}
    for u in users:
        u["group"] = user_groups.get(u["user"]) or NO_GROUP
        g = groups.setdefault(u["group"], {"group": u["group"], "users": 0, **dict.fromkeys(keys)})
        g["users"] += 1
        for key in keys:
            if u[key] is not None:
                g[key] = (g[key] or 0.0) + u[key]

    def hours(g: Mapping[str, Any], w: str) -> float:
        return sum(g[f"{what}_{w}"] or 0.0 for what in ("active_h", "held_h", "unmeasured_h"))

    return sorted(groups.values(), key=lambda g: (-hours(g, "30d"), -hours(g, "1y"), g["group"]))


def _numeric(values) -> bool:
    seen = False
    for v in values:
        if v is None or v == "":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        seen = True
    return seen


def _group(rows: List[Dict[str, Any]], key: str = "host") -> Dict[Any, List[Dict[str, Any]]]:
    grouped: Dict[Any, List[Dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


# -- pages -----------------------------------------------------------------------------------------------

def _render(env: jinja2.Environment, model: Dict[str, Any], cfg: Mapping[str, Any], generated: datetime,
            stage: Path, timelines: _Timelines) -> None:
    # an application's own GPU faults (Xid 13, 31, 43, 45) are listed, not counted: they are its user's to mend
    counted = _counted_problems(model["problems"])
    problem_count = sum(len(rows) for rows in counted.values())
    common = {"title": cfg["title"], "generated": generated, "busy_pct": cfg["busy_threshold_pct"],
              "since": model["since"], "end": model["end"], "timeline_hours": cfg["timeline_hours"],
              "summary": model["summary"], "problem_count": problem_count, "files": model["files"]}
    _copy_plotly_js(stage / "plotly.min.js")
    for name in STATIC_FILES:
        shutil.copyfile(STATIC / name, stage / name)

    fleet_x: Dict[str, List[Optional[str]]] = {}
    fleet_figs = _fleet_figures(model, cfg, fleet_x)
    _page(env, stage / "index.html", "index.html", common, fleet_figs, root="", page="fleet", shared_x=fleet_x,
          hosts=model["hosts"], columns=model["columns"], numeric_columns=model["numeric_columns"],
          groups=model["groups"])
    _page(env, stage / "users.html", "users.html", common, _user_figures(model), root="", page="users",
          users=model["users"], groups_usage=model["groups_usage"], no_group=NO_GROUP,
          users_now=model["users_now"], windows=model["user_windows"],
          top_processes=model["top_processes"], top_count=TOP_PROCESSES,
          bookings=model["bookings"], any_gpus=bool(model["gpus"]), hourly_days=model["hourly_days"])
    _page(env, stage / "problems.html", "problems.html", common, {}, root="", page="problems",
          problems=model["problems"], problem_since=model["problem_since"], cfg=cfg, bookings=model["bookings"],
          gpus_lookback_days=GPUS_LOOKBACK.days)

    gpus = _group(model["gpus"])
    (stage / "hosts").mkdir()
    for h in model["hosts"]:
        name = h["host"]
        host_rows, gpu_rows = timelines.rows("host_timeline", name), timelines.rows("gpu_timeline", name)
        x, figs = figures.host_figures(host_rows, gpu_rows, gap_s=model["gap_s"])
        has_data = bool(host_rows or gpu_rows)
        host_gpus = gpus.get(name, [])
        _page(env, stage / "hosts" / h["file"], "host.html", common,
              {f"host-{i}": f for i, f in enumerate(figs)} if has_data else {}, root="../", page="host",
              shared_x={"t": x} if has_data else {}, every=_fmt_every(model["bucket_s"]),
              host=h, inventory=model["inventory"].get(name), gpus=host_gpus,
              mig=any(g["mig_mode"] for g in host_gpus), mig_instances=model["mig"].get(name, []),
              processes=model["processes"].get(name, []), status_rows=model["status"].get(name, []),
              host_processes=model["host_processes"].get(name, []),
              process_users=model["process_users"].get(name, []),
              host_users=model["host_users"].get(name, []), windows=model["user_windows"],
              host_top_processes=model["host_top_processes"].get(name, []), host_top_count=HOST_TOP_PROCESSES,
              host_bookings=model["bookings"]["hosts"].get(name, []), bookings=model["bookings"])

    (stage / "data").mkdir()
    (stage / "data" / "latest.json").write_text(
        json.dumps(_latest(model, cfg, generated, counted, problem_count), separators=(",", ":"),
                   ensure_ascii=False, allow_nan=False) + "\n",
        encoding="utf-8")


def _page(env: jinja2.Environment, path: Path, template: str, common: Mapping[str, Any],
          figs: Mapping[str, Optional[figures.Figure]], *, root: str, shared_x: Optional[Mapping] = None,
          **context: Any) -> None:
    """Render one page; ``figs`` are its figures by slot id (None: no figure for that slot)."""
    figs = {k: {**f, "id": f"figure-{k}"} for k, f in figs.items() if f is not None}
    page_data = {"x": dict(shared_x or {}), "figures": list(figs.values())} if figs else None
    text = env.get_template(template).render(common, root=root, figs=figs, page_data=page_data, **context)
    path.write_text(text, encoding="utf-8")


def _fleet_figures(model: Dict[str, Any], cfg: Mapping[str, Any],
                   shared_x: Dict[str, List[Optional[str]]]) -> Dict[str, Optional[figures.Figure]]:
    """The fleet page's figures; the x values their traces share go into ``shared_x``."""
    if not model["hosts"]:
        return {}
    entries = []
    for i, (label, tier, bucket_s, rows) in enumerate(model["fleet_ranges"]):
        title = f"Fleet · last {label} ({tier}, per {_fmt_every(bucket_s)})"
        empty = f"No {tier} in the last {label}." + (
            " Rollups are written by `fleetscope rollup` (and by collect, hourly)." if tier != "raw samples" else "")
        shared_x[f"r{i}"], fig = figures.fleet_range(title, rows, empty, f"r{i}", has_gpus=bool(model["gpus"]))
        entries.append((label, fig))
    up = [g for g in model["gpus"] if g["host_up"]]
    any_data = any(rows for *_, rows in model["fleet_ranges"])
    return {
        "gpus-now": figures.gpu_now_heatmap(up, {h: f"hosts/{f}" for h, f in model["files"].items()}),
        "fleet": figures.ranges("fleet", entries) if any_data else None,
        "heatmap": figures.gpu_heatmap(model["heatmap"]),
    }


def _user_figures(model: Dict[str, Any]) -> Dict[str, Optional[figures.Figure]]:
    if not model["users"] and not model["week_hour"]:
        return {}
    bars = [(label, figures.user_bars(f"GPU-hours per user · last {label}", model["users"], key))
            for label, key in USER_RANGES]
    heat = [(label, figures.user_host_heatmap(f"GPU-hours per user and host · last {label}", model["user_host"],
                                              key)) for label, key in USER_RANGES]
    return {
        "user-hours": figures.ranges("user-hours", bars, selected=1),
        "user-hosts": figures.ranges("user-hosts", heat, selected=1),
        "week-hour": figures.week_hour_heatmap(model["week_hour"], model["week_hour_since"]),
    }


def _counted_problems(problems: Mapping[str, List[Dict[str, Any]]]) -> Dict[str, List[Dict[str, Any]]]:
    """The problems page's rows that count, by section: an application's own Xid faults are listed, not counted."""
    return {kind: [r for r in rows if not (kind == "xid" and r["application"])] for kind, rows in problems.items()}


def _latest(model: Dict[str, Any], cfg: Mapping[str, Any], generated: datetime,
            counted: Mapping[str, List[Dict[str, Any]]], problem_count: int) -> Dict[str, Any]:
    """data/latest.json: the fleet now, for other tools. Times ISO 8601 UTC; bytes, %, W, degrees C. ``counted``:
    the problems page's rows that count, by section (_counted_problems), ``problem_count`` how many."""
    gpus = _group(model["gpus"])
    host_problems: Dict[str, set] = {}
    for kind, rows in counted.items():
        for row in rows:
            if row.get("host"):
                host_problems.setdefault(row["host"], set()).add(kind)
    processes: Dict[Any, List[Dict[str, Any]]] = {}
    for host, rows in model["processes"].items():
        for p in rows:
            processes.setdefault((host, p["gpu_index"]), []).append(
                {"pid": p["pid"], "user": p["user"], "command": p["command"], "gpu_mem_bytes": p["gpu_mem_bytes"],
                 "started_at": _iso(p["started_at"])})
    summary = model["summary"]
    return {
        "generated_at": _iso(generated),
        "latest_run_at": _iso(summary["latest_run_at"]),
        "busy_threshold_pct": float(cfg["busy_threshold_pct"]),
        "summary": {k: summary[k] for k in ("hosts_up", "hosts_total", "gpus_busy", "gpus_idle", "gpus_held",
                                            "gpus_unmeasured", "gpus_maintenance", "gpus_total")} | {
            # the named users; the page's "(unknown)" (an owner /proc hid, or gone) is a flag, not a user
            "users": [u for u in summary["users"] if u != UNKNOWN_USER],
            "unknown_owners": UNKNOWN_USER in summary["users"]},
        # the problems page's sections and how many of their rows count (its header's count), for an alerting tool
        "problems": {"count": problem_count,
                     "by_section": {kind: len(rows) for kind, rows in counted.items()}},
        "hosts": [{
            "host": h["host"],
            "status": h["status"],
            "message": h["message"] or None,
            "status_at": _iso(h["status_ts"]),
            "last_seen": _iso(h["last_seen"]),
            "stale": h["stale"],
            "retired": h["retired"],
            "sample_at": _iso(h["sample_ts"]),
            "cpu_pct": _round(h["cpu_pct"]),
            "cpu_logical": h["cpu_logical"],
            "busy_cpus": _round(h["busy_cpus"], 2),
            "load1": h["load1"],
            "mem_used_bytes": h["mem_used_bytes"],
            "mem_total_bytes": h["mem_total_bytes"],
            "processes_hidden": h["procs_hidden"],
            "vars": {k: _plain(v) for k, v in h["vars"].items()},
            "address": h["address"],
            "groups": h["groups"],
            "maintenance": None if not h["maint_scope"] else {
                "gpus": "all" if h["maint_all"] else h["maint_gpus"], "since": _iso(h["maint_ts"]),
                "by": h["maint_by"]},
            "booked_now": _booked_now(model["bookings"]["hosts"].get(h["host"], [])),
            "problems": sorted(host_problems.get(h["host"], ())),  # the problems page's sections that list it
            "gpus": [{
                "index": g["gpu_index"], "uuid": g["gpu_uuid"], "name": g["name"],
                "util_pct": g["util_pct"], "busy": g["busy"], "idle_held": g["held"],
                "unmeasured": g["unmeasured"],
                "mem_used_bytes": g["mem_used_bytes"], "mem_total_bytes": g["mem_total_bytes"],
                "temperature_c": g["temperature_c"], "power_w": g["power_w"], "mig_mode": g["mig_mode"],
                "users": g["users"], "processes": processes.get((h["host"], g["gpu_index"]), []),
                "maintenance": g["maintenance"],
            } for g in gpus.get(h["host"], [])],
        } for h in model["hosts"]],
    }


def _booked_now(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """A host's bookings at the generation time: who, which GPUs (null: the whole host), until when."""
    return [{"user": b["user"], "gpus": b["gpus"], "start": _iso(b["start"]), "end": _iso(b["end"]),
             "title": b["summary"]} for b in rows if b["now"]]


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _round(value: Optional[float], digits: int = 1) -> Optional[float]:
    return None if value is None else round(value, digits)


def _iso(value: Optional[datetime]) -> Optional[str]:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _copy_plotly_js(dest: Path) -> None:
    """plotly.js from the installed plotly package, without importing plotly (slow) when possible."""
    spec = importlib.util.find_spec("plotly")
    for location in (spec.submodule_search_locations or []) if spec else []:
        source = Path(location) / "package_data" / "plotly.min.js"
        if source.is_file():
            shutil.copyfile(source, dest)
            return
    from plotly.offline import get_plotlyjs  # noqa: PLC0415 - the slow path, only when the file moved

    dest.write_text(get_plotlyjs(), encoding="utf-8")


class _Environment(jinja2.Environment):
    """Jinja's ``row.user`` tries ``getattr(row, "user")`` first and, on a dict, pays for an AttributeError before
    ``row["user"]``: 630,000 times for 1,000 host pages. A plain dict's key that is no dict attribute (``items``,
    ``get``...) is looked up first here: the same result as Jinja's order, without the exception."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


_DICT_ATTRIBUTES = frozenset(dir(dict))


def _environment(generated: datetime) -> jinja2.Environment:
    env = _Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        ts=_fmt_ts,
        ago=lambda value: _fmt_ago(value, generated),
        epoch=_epoch,
        bytes=_fmt_bytes,
        num=_fmt_num,
        qty=_fmt_qty,
        duration=_fmt_duration,
        cputime=_fmt_cputime,
        sortkey=_sort_key,
        script_json=json_for_html,
    )
    env.globals.update(status_class=_status_class, num_cell=_num_cell)
    return env


def _num_cell(value: Any, text: Any = None) -> markupsafe.Markup:
    """A table's number cell: ``<td class="num" data-sort="{value | sortkey}">{text, else value}</td>``. A
    function rather than a macro: 9 against 12 us a cell (a host page has ~150); Markup.format took 20."""
    shown = text if text is not None else (value if value is not None else "")
    key, shown = markupsafe.escape(_sort_key(value)), markupsafe.escape(shown)
    return markupsafe.Markup(f'<td class="num" data-sort="{key}">{shown}</td>')


# -- formatting (presentation only; the numbers come from SQL) --------------------------------------------

def _status_class(status: Optional[str]) -> str:
    return status if status in KNOWN_STATUSES else "other"


def _fmt_ts(value: Optional[datetime], seconds: bool = False) -> str:
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _fmt_ago(value: Optional[datetime], generated: datetime) -> str:
    if value is None:
        return "never"
    s = (generated - value).total_seconds()
    if s < -120:  # both times are the controller's clock: only a clock stepped back gets here
        return "in the future"
    if s < 5:
        return "just now"
    return _fmt_duration(s) + " ago"


def _fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    s = float(seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 36 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def _fmt_cputime(seconds: Optional[float]) -> str:
    """CPU time as ps prints it: [days-]hours:minutes:seconds (0:01:05, 3-02:00:00)."""
    if seconds is None:
        return ""
    days, rest = divmod(int(round(float(seconds))), 86400)
    hours, rest = divmod(rest, 3600)
    clock = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}-{hours:02d}:{rest // 60:02d}:{rest % 60:02d}" if days else clock


def _fmt_every(seconds: int) -> str:
    """A bucket size: "3 min", "hour", "2 hours", "day"."""
    for unit, name in ((86400, "day"), (3600, "hour")):
        if seconds % unit == 0:
            n = seconds // unit
            return name if n == 1 else f"{n} {name}s"
    return f"{seconds / 60:g} min"


def _epoch(value: Optional[datetime]) -> str:
    return "" if value is None else f"{value.replace(tzinfo=timezone.utc).timestamp():.0f}"


def _fmt_bytes(value: Optional[float]) -> str:
    if value is None:
        return ""
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""  # not reached


def _fmt_num(value: Optional[float], digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _fmt_qty(value: Optional[float]) -> str:
    """A quantity with the digits that matter: 1234, 56.7, 0.89 (hours, kWh)."""
    if value is None:
        return ""
    a = abs(value)
    return f"{value:.0f}" if a >= 100 else f"{value:.1f}" if a >= 10 else f"{value:.2f}"


def _sort_key(value: Any) -> str:
    """A data-sort attribute: numbers raw, times as epoch seconds, None empty (sorts last)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _epoch(value)
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


# -- settings, time, files -------------------------------------------------------------------------------

def _settings(settings: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    unknown = set(settings or {}) - set(DEFAULT_SETTINGS) - IGNORED_SETTINGS
    if unknown:
        raise ValueError(f"unknown report settings: {', '.join(sorted(unknown))}")
    return {**DEFAULT_SETTINGS, **{k: v for k, v in (settings or {}).items() if k not in IGNORED_SETTINGS}}


def _utc_naive(value: datetime) -> datetime:
    """UTC without tzinfo, like the warehouse's TIMESTAMP columns (binding an aware datetime would make
    DuckDB compare as TIMESTAMPTZ in the session's time zone)."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=0)


class NotASiteFolder(FileExistsError):
    """``out_dir`` exists and is not fleetscope's to replace; ``filename`` is the folder, ``strerror`` why."""

    def __init__(self, folder: Path, why: str) -> None:
        super().__init__(errno.EEXIST, why, str(folder))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _check_out_dir(out_dir: Path) -> None:
    """Raise NotASiteFolder unless ``out_dir`` is absent, empty or a site fleetscope wrote, and outside any
    warehouse folder. It only reads."""
    out_dir = out_dir.absolute()
    for parent in out_dir.resolve().parents:
        if os.path.isfile(parent / DATA_FILE):  # os.path: an unreadable parent is no warehouse, no error
            raise NotASiteFolder(out_dir, f"it is inside fleetscope's data folder {parent} (it holds {DATA_FILE}); "
                                          "the report's folder must be outside the data folder")
    if not out_dir.is_dir():
        return  # absent (created by the swap), or not a folder (_staging says so)
    with os.scandir(out_dir) as it:
        entries = {e.name: e for e in it}
    if not entries:
        return
    if DATA_FILE in entries or DATA_SPOOL in entries:
        raise NotASiteFolder(out_dir, f"it looks like fleetscope's data folder (it holds {DATA_FILE} or "
                                      f"{DATA_SPOOL}/), never replaced by a report; choose another folder")
    if MARKER not in entries and not _old_site(entries):
        raise NotASiteFolder(out_dir, f"it is not empty and is not a site fleetscope wrote (no {MARKER} file in "
                                      "it), so it is left as it is; choose a new or empty folder")
    for root, dirs, files in os.walk(out_dir):  # a site's own folders never hold a warehouse
        if DATA_FILE in files or DATA_SPOOL in dirs:
            raise NotASiteFolder(out_dir, f"it holds fleetscope's data ({Path(root) / DATA_FILE} or "
                                          f"{Path(root) / DATA_SPOOL}/), never replaced by a report; "
                                          "choose another folder")


def _old_site(entries: Mapping[str, os.DirEntry]) -> bool:
    """A site written before the marker: index.html, plotly.min.js, style.css and hosts/ (every version wrote
    them), nothing but the site's own files at the top, only .html files in hosts/ and .json in data/."""
    if not set(entries) <= SITE_ENTRIES or "hosts" not in entries:
        return False
    if not all(name in entries and entries[name].is_file(follow_symlinks=False) for name in OLD_SITE_FILES):
        return False
    for name in set(entries) - {"hosts", "data"}:
        if not entries[name].is_file(follow_symlinks=False):
            return False
    for folder, suffix in (("hosts", ".html"), ("data", ".json")):
        if folder not in entries:
            continue
        if not entries[folder].is_dir(follow_symlinks=False):
            return False
        with os.scandir(entries[folder].path) as it:
            if not all(e.name.endswith(suffix) and e.is_file(follow_symlinks=False) for e in it):
                return False
    return True


@contextlib.contextmanager
def _staging(out_dir: Path) -> Iterator[Path]:
    """A fresh directory beside ``out_dir``; on success it replaces ``out_dir`` by two renames.

    ``out_dir`` is checked (``_check_out_dir``) before anything is written and again, under the lock,
    before the swap. One build at a time per site (an flock on ``.<name>.lock`` beside it: cron's build and
    one by hand take turns). Holding it, the staging folders a killed build left behind are removed."""
    out_dir = out_dir.absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} exists and is not a directory")
    _check_out_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(out_dir.parent / f".{out_dir.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies, even by kill -9
        for kind in ("new", "old"):
            for leftover in out_dir.parent.glob(f".{out_dir.name}.{kind}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
        try:
            (stage / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
            yield stage
            os.chmod(stage, 0o755)  # mkdtemp makes it private; a web server has to read the site
            _check_out_dir(out_dir)  # what is there now (changed during the build?) is what the swap removes
            _swap(stage, out_dir)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    finally:
        os.close(lock)


def _swap(stage: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        os.rename(stage, out_dir)
        return
    # rename(2) may replace an empty directory: mkdtemp reserves a unique name for the old site.
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    os.rename(out_dir, old)
    try:
        os.rename(stage, out_dir)
    except BaseException:
        os.rename(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
