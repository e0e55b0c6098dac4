"""Build the static report site from the warehouse tables.

Python orchestrates: run the queries in ``queries/``, shape the rows a little (group per host, name
files), build Plotly figures as dicts, and hand everything to the Jinja2 templates, which only lay out.
The site is built in a temporary directory beside ``out_dir`` and swapped in, so a browser never sees a
half-written site.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

import jinja2

from reports import figures
from reports.safe import json_for_html, slugify
from reports.sql import fetch

PACKAGE = Path(__file__).parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"

#: Every setting ``build_site`` understands, with its default.
DEFAULT_SETTINGS: Dict[str, Any] = {
    # How far back the timelines reach, counted back from the newest data in the warehouse (not from the
    # wall clock, so a warehouse that stopped receiving data still shows its last week).
    "timeline_hours": 168,
    # A GPU counts as busy when utilization_gpu_pct is above this.
    "busy_threshold_pct": 5.0,
    # At most this many points per timeline series: longer windows are averaged into time buckets.
    "max_points": 600,
    # Time columns of the fleet GPU heat-map.
    "heatmap_columns": 96,
    # Status rows shown per host page.
    "status_history": 50,
    # Site title, shown on every page.
    "title": "fleetscope",
}

#: Keys of the [report] settings section that are not about rendering (the caller uses them).
IGNORED_SETTINGS = frozenset({"out_dir"})

KNOWN_STATUSES = ("ok", "unreachable", "failed", "timeout")


def build_site(con, out_dir, *, now: Optional[datetime] = None,
               settings: Optional[Mapping[str, Any]] = None) -> Path:
    """Write the report for the warehouse behind ``con`` into ``out_dir``; return the index.html path.

    ``con`` is an open DuckDB connection where the warehouse tables (or views) exist. ``out_dir`` is
    replaced as a whole. ``now`` (default: the wall clock) is the generation time printed on every page,
    UTC; a naive datetime is taken as UTC. ``settings`` overrides keys of ``DEFAULT_SETTINGS`` (the
    [report] section of fleetscope.toml can be passed as is: its ``out_dir`` is ignored here).
    """
    cfg = _settings(settings)
    generated = _utc_naive(now if now is not None else datetime.now(timezone.utc))
    out_dir = Path(out_dir)
    model = _gather(con, cfg, generated)
    env = _environment(generated)
    with _staging(out_dir) as stage:
        _render(env, model, cfg, generated, stage)
    return out_dir / "index.html"


# -- data ------------------------------------------------------------------------------------------------

def _gather(con, cfg: Mapping[str, Any], generated: datetime) -> Dict[str, Any]:
    """Run every query; rows grouped per host where the pages need them."""
    fresh = fetch(con, "data_freshness")[0]
    end = fresh["latest_data_at"] or generated
    window_s = float(cfg["timeline_hours"]) * 3600.0
    since = end - timedelta(seconds=window_s)
    bucket_s = max(60.0, window_s / max(1, int(cfg["max_points"])))
    heat_bucket_s = max(bucket_s, window_s / max(1, int(cfg["heatmap_columns"])))
    busy = float(cfg["busy_threshold_pct"])

    hosts = fetch(con, "hosts_overview", {"busy_pct": busy})
    used: set = set()
    for h in hosts:
        slug = slugify(h["host"])
        while slug in used:  # a hash collision, in theory: keep every page its own file
            slug += "_"
        used.add(slug)
        h["file"] = f"{slug}.html"
        h["up"] = h["status"] == "ok"
        h["status"] = h["status"] or "unknown"
        h["mem_used_frac"] = (h["mem_used_bytes"] / h["mem_total_bytes"]
                              if h["mem_used_bytes"] is not None and h["mem_total_bytes"] else None)

    up = [h for h in hosts if h["up"]]
    summary = {
        "hosts_up": len(up),
        "hosts_total": len(hosts),
        "gpus_busy": sum(h["gpus_busy"] for h in up),
        "gpus_total": sum(h["gpus_total"] for h in up),
        "users": sorted({u for h in up for u in h["users"]}),
        "latest_run_at": fresh["latest_run_at"],
    }
    return {
        "hosts": hosts,
        "summary": summary,
        "since": since,
        "end": end,
        "fleet_timeline": fetch(con, "fleet_timeline",
                                {"since": since, "bucket_s": bucket_s, "busy_pct": busy}),
        "heatmap": fetch(con, "fleet_gpu_heatmap", {"since": since, "bucket_s": heat_bucket_s}),
        "host_timeline": _group(fetch(con, "host_timeline", {"since": since, "bucket_s": bucket_s})),
        "gpu_timeline": _group(fetch(con, "gpu_timeline", {"since": since, "bucket_s": bucket_s})),
        "processes": _group(fetch(con, "gpu_processes_last")),
        "inventory": {r["host"]: r for r in fetch(con, "host_inventory")},
        "status": _group(fetch(con, "host_status_recent", {"limit": int(cfg["status_history"])})),
    }


def _group(rows: List[Dict[str, Any]], key: str = "host") -> Dict[Any, List[Dict[str, Any]]]:
    grouped: Dict[Any, List[Dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


# -- pages -----------------------------------------------------------------------------------------------

def _render(env: jinja2.Environment, model: Dict[str, Any], cfg: Mapping[str, Any], generated: datetime,
            stage: Path) -> None:
    common = {"title": cfg["title"], "generated": generated, "busy_pct": cfg["busy_threshold_pct"],
              "since": model["since"], "end": model["end"], "timeline_hours": cfg["timeline_hours"]}
    _copy_plotly_js(stage / "plotly.min.js")
    for name in ("style.css", "sort.js"):
        shutil.copyfile(STATIC / name, stage / name)

    index_figures = [figures.fleet_timeline(model["fleet_timeline"])]
    heatmap = figures.gpu_heatmap(model["heatmap"])
    if heatmap is not None:
        index_figures.append(heatmap)
    _write(stage / "index.html", env.get_template("index.html").render(
        common, root="", hosts=model["hosts"], summary=model["summary"],
        figures=index_figures if model["fleet_timeline"] else []))

    host_template = env.get_template("host.html")
    (stage / "hosts").mkdir()
    for h in model["hosts"]:
        name = h["host"]
        figs = figures.host_figures(model["host_timeline"].get(name, []), model["gpu_timeline"].get(name, []))
        has_data = name in model["host_timeline"]
        _write(stage / "hosts" / h["file"], host_template.render(
            common, root="../", host=h, inventory=model["inventory"].get(name),
            processes=model["processes"].get(name, []), status_rows=model["status"].get(name, []),
            figures=figs if has_data else []))


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


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


def _environment(generated: datetime) -> jinja2.Environment:
    env = jinja2.Environment(
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
        script_json=json_for_html,
    )
    env.globals["status_class"] = _status_class
    return env


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
    if s < 90:
        return f"{s:.0f} s ago"
    if s < 90 * 60:
        return f"{s / 60:.0f} min ago"
    if s < 36 * 3600:
        return f"{s / 3600:.1f} h ago"
    return f"{s / 86400:.1f} d ago"


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


@contextlib.contextmanager
def _staging(out_dir: Path) -> Iterator[Path]:
    """A fresh directory beside ``out_dir``; on success it replaces ``out_dir`` by two renames."""
    out_dir = out_dir.absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} exists and is not a directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
    try:
        yield stage
        os.chmod(stage, 0o755)  # mkdtemp makes it private; a web server has to read the site
        _swap(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


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
