"""Plotly figures as plain dicts (data + layout), so the report never imports plotly.graph_objects.

A figure spec is ``{"id": ..., "data": [...], "layout": {...}}``, or, for a figure with a range switch,
``{"id": ..., "ranges": [{"label": "24 h", "data": ..., "layout": ...}, ...], "selected": 0}``: the page
draws the selected range and the buttons swap in another (``static/report.js``). A trace may carry
``"xs": key`` instead of ``"x"``: its x values are the page's shared array ``key`` (a host page's GPUs all
share one time axis, written once instead of once per trace).

Every host-provided string (host, user, GPU name) goes through ``plotly_text``: Plotly reads a little HTML in
labels and hover text.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from reports.safe import plotly_text

Figure = Dict[str, Any]

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
GIB = 1024**3


def x_time(ts: Optional[datetime]) -> Optional[str]:
    """A UTC timestamp as Plotly reads it: a naive date string, drawn as is (no local-time shift)."""
    if ts is None:
        return None
    return ts.strftime("%Y-%m-%d %H:%M" if ts.second == 0 and ts.microsecond == 0 else "%Y-%m-%d %H:%M:%S")


def _layout(title: str, y_title: str, *, y_max: Optional[float] = None, height: int = 300) -> Dict[str, Any]:
    yaxis: Dict[str, Any] = {"title": {"text": y_title}, "rangemode": "tozero", "automargin": True}
    if y_max is not None:
        yaxis["range"] = [0, y_max]
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "height": height,
        "margin": {"l": 55, "r": 15, "t": 40, "b": 40},
        # the zone in the hover, not as an axis title: the legend below the axis, wrapped on a phone, sat on it
        "xaxis": {"type": "date", "hoverformat": "%Y-%m-%d %H:%M UTC", "automargin": True},
        "yaxis": yaxis,
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
    }


#: Plotly's tick labels (12 px): about this many pixels per character, and the plot's width on a laptop.
LABEL_PX, PLOT_PX = 7, 900
#: Chromium draws no canvas over 32,767 px: a heat map's rows get thinner rather than pass it.
MAX_FIGURE_PX = 30_000


def _category_layout(title: str, height: int, columns: Sequence[str] = (), x_title: str = "") -> Dict[str, Any]:
    """A heat map's layout; a tall one has its x axis (``columns``, titled ``x_title``) on top, in view."""
    layout = _layout(title, "", height=height)
    layout["xaxis"] = {"type": "category", "automargin": True}
    if x_title:
        layout["xaxis"]["title"] = {"text": x_title}
    longest = max((min(len(str(c)), MAX_LABEL) for c in columns), default=1)
    rotated = len(columns) * (LABEL_PX * longest + 10) > PLOT_PX  # Plotly turns crowded labels upright
    _axis_on_top(layout, LABEL_PX * longest if rotated else 16)
    layout["yaxis"] = {"type": "category", "automargin": True, "autorange": "reversed"}
    layout["hovermode"] = "closest"
    return layout


def _axis_on_top(layout: Dict[str, Any], labels_px: int) -> None:
    """Over 500 px high, a figure's x axis goes on top, where it is in view; its labels are ``labels_px`` high.
    Plotly grows the top margin for the labels or for the title, not for both: the labels printed over the
    title (review at 100 hosts). The title then goes at the very top, with the labels' room below it."""
    if layout["height"] <= 500:
        layout["xaxis"]["side"] = "bottom"
        return
    layout["xaxis"]["side"] = "top"
    layout["margin"]["b"] = 10  # no axis below
    layout["title"].update(yref="container", y=1, yanchor="top", pad={"t": 8})
    layout["margin"]["t"] = 56 + labels_px + (22 if layout["xaxis"].get("title") else 0)


def _row_px(rows: int, most: int) -> int:
    """A heat map's row height: ``most`` px, thinner where ``rows`` of them would pass MAX_FIGURE_PX (not
    under 3 px; the page boxes a tall figure)."""
    return min(most, max(3, MAX_FIGURE_PX // max(1, rows)))


def _fit_rows(layout: Dict[str, Any], rows: int, row_px: int) -> None:
    """A heat map's height, so that each of its ``rows`` is ``row_px`` high whatever its margins (the room an
    axis on top takes made rows thinner than planned); the side of the axis stays as chosen."""
    if layout["xaxis"].get("side") == "top":
        layout["height"] = max(220, layout["margin"]["t"] + layout["margin"]["b"] + row_px * rows)


#: The longest axis label a heat map shows whole; a longer one keeps its start and end around "…".
MAX_LABEL = 24


def _short_ticks(axis: Dict[str, Any], names: Sequence[str], hosts: bool = True) -> None:
    """Where a name on a heat map's category ``axis`` is longer than MAX_LABEL, shorten what the axis shows:
    a 90-character host name took most of a chart's width (review in Chromium). The categories stay the whole
    names (two hosts alike in their first characters stay two rows), and so does the hover text. ``hosts``:
    a long FQDN shows its host part (not for user names: alexandra.papadopoulou is not alexandra)."""
    if all(len(str(n)) <= MAX_LABEL for n in names):
        return
    half = (MAX_LABEL - 1) // 2

    def short(name: str) -> str:
        if len(name) <= MAX_LABEL:
            return name
        if hosts:
            name = name.split(".", 1)[0] or name  # a long FQDN: its host part first, where names differ
        return name if len(name) <= MAX_LABEL else f"{name[:half]}…{name[-half:]}"

    shown = [short(str(n)) for n in names]
    taken = {s: shown.count(s) for s in shown}
    shown = [s if taken[s] == 1 else str(n) for s, n in zip(shown, names)]  # alike when short: whole
    axis.update(tickmode="array", tickvals=[plotly_text(n) for n in names], ticktext=[plotly_text(s) for s in shown])


def _empty(layout: Dict[str, Any], text: str) -> Dict[str, Any]:
    layout["annotations"] = [{"text": text, "showarrow": False, "xref": "paper", "yref": "paper",
                              "x": 0.5, "y": 0.5, "font": {"size": 13, "color": "#667085"}}]
    layout["xaxis"]["visible"] = False
    layout["yaxis"]["visible"] = False
    return layout


def line(name: str, rows: Iterable[Dict[str, Any]], y: str, **extra: Any) -> Dict[str, Any]:
    """One line trace over rows with a ``ts`` column; ``name`` is shown as text, never as HTML."""
    rows = list(rows)
    trace = {
        "type": "scatter",
        "mode": "lines+markers" if len(rows) < 3 else "lines",
        "name": plotly_text(name),
        "x": [x_time(r["ts"]) for r in rows],
        "y": [r[y] for r in rows],
    }
    trace.update(extra)
    return trace


def timeline(title: str, y_title: str, traces: List[Dict[str, Any]], *,
             y_max: Optional[float] = None) -> Figure:
    layout = _layout(title, y_title, y_max=y_max)
    if len(traces) <= 1:
        layout["showlegend"] = False
    return {"data": traces, "layout": layout}


# -- the fleet page ---------------------------------------------------------------------------------------

#: Either side of a range's only point (a fleet's first run): an axis of an hour rather than of a millisecond.
SINGLE_POINT_SPAN = timedelta(minutes=30)


def fleet_range(title: str, rows: Sequence[Dict[str, Any]], empty_text: str,
                xs: str, has_gpus: bool = True) -> Tuple[List[Optional[str]], Figure]:
    """Fleet utilization and memory over one range: GPU utilization, GPU memory, CPU use and host memory in %
    (left axis), the mean number of busy GPUs (right axis). The traces share the x values (returned first)
    as the page's array ``xs``."""
    def trace(name: str, column: str, **extra: Any) -> Dict[str, Any]:
        t = {"type": "scatter", "mode": "lines+markers" if len(rows) < 3 else "lines", "name": name, "xs": xs,
             "y": [None if r[column] is None else round(r[column], 2) for r in rows]}
        t.update(extra)
        return t

    traces = [
        trace("GPU utilization", "gpu_util_pct"),
        trace("GPU memory used", "gpu_mem_pct"),
        trace("CPU use", "cpu_pct"),
        trace("host memory used", "mem_pct"),
        trace("GPUs busy", "gpus_busy", yaxis="y2", line={"dash": "dot"}),
    ]
    layout = _layout(title, "%", y_max=100, height=340)
    # GPUs busy on the right, scaled so that the top of the chart is every GPU: the two axes line up.
    gpus = max((r["gpus"] or 0 for r in rows), default=0) or 1
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10**9) if s >= gpus / 5)
    layout["yaxis2"] = {"title": {"text": "GPUs busy"}, "overlaying": "y", "side": "right",
                        "range": [0, gpus], "dtick": step, "showgrid": False}
    layout["margin"]["r"] = 55
    if not rows:
        layout = _empty(layout, empty_text)
        layout.pop("yaxis2")
        traces = []
    else:
        _one_point_span(layout, {r["ts"] for r in rows})
        if not has_gpus:  # a fleet without GPUs (not a range without GPU samples): no GPU lines, no GPUs axis
            traces = [t for t in traces if t["name"] in ("CPU use", "host memory used")]
            layout.pop("yaxis2")
            layout["margin"]["r"] = 15  # as _layout has it
    return [x_time(r["ts"]) for r in rows], {"data": traces, "layout": layout}


def _one_point_span(layout: Dict[str, Any], times: Iterable[datetime]) -> None:
    """Where a time axis has one point (a fleet's or a host's first run), an hour around it: Plotly would
    span a millisecond."""
    times = set(times)
    if len(times) == 1:
        (ts,) = times
        layout["xaxis"]["range"] = [x_time(ts - SINGLE_POINT_SPAN), x_time(ts + SINGLE_POINT_SPAN)]


def ranges(fig_id: str, entries: Sequence[Tuple[str, Figure]], selected: int = 0) -> Figure:
    """A figure with a range switch: one (label, figure) per range."""
    return {"id": fig_id, "selected": selected,
            "ranges": [{"label": label, "data": f["data"], "layout": f["layout"]} for label, f in entries]}


#: Past WRAP_HOSTS hosts the map of GPUs now puts several hosts on a row, in name order, a free column between
#: them: a row per host made it 18 px a host, 18,000 px at 1,000 hosts (review). About WRAP_ROWS rows, at most
#: WRAP_COLUMNS cells a row.
WRAP_HOSTS, WRAP_ROWS, WRAP_COLUMNS = 40, 25, 100
#: A GPU without a utilization (MIG mode, or no index) on the map of GPUs now.
UNKNOWN_GREY = "#b8bcc4"


def hosts_per_row(hosts: int, columns: int) -> int:
    """How many hosts of ``columns`` GPUs each a row of the map of GPUs now holds."""
    if hosts <= WRAP_HOSTS:
        return 1
    return max(1, min(WRAP_COLUMNS // (columns + 1), math.ceil(hosts / WRAP_ROWS)))


def gpu_now_heatmap(gpus: Sequence[Dict[str, Any]], files: Mapping[str, str]) -> Optional[Figure]:
    """Hosts x GPU index, colour = utilization at the host's latest run; hover: memory, users and the GPU's
    class (busy, in use with no utilization, idle but held, free: ``busy``, ``unmeasured`` and ``held`` as
    site.py sets them; in maintenance or not). A
    click on a cell opens the host's page (``links``: one page per row; when a row holds several hosts
    (``hosts_per_row``, each row then named by its first host), a list per row, a page per ``span`` columns,
    the last of them free). None without GPUs."""
    if not gpus:
        return None
    hosts = sorted({g["host"] for g in gpus})
    # a column per index some host has (not every number up to the largest: one document's index does not
    # size the chart)
    indices = sorted({g["gpu_index"] for g in gpus if g["gpu_index"] is not None}) or [0]
    per = hosts_per_row(len(hosts), len(indices))
    span = len(indices) + (1 if per > 1 else 0)  # a host's columns, with the free one after it
    width = per * span - (1 if per > 1 else 0)
    place = {h: divmod(i, per) for i, h in enumerate(hosts)}  # host -> (row, place in the row)
    rows = math.ceil(len(hosts) / per)
    column = {index: k for k, index in enumerate(indices)}
    z: List[List[Optional[float]]] = [[None] * width for _ in range(rows)]
    text: List[List[str]] = [[""] * width for _ in range(rows)]
    for g in gpus:
        if g["gpu_index"] is None:
            continue
        (i, b), j = place[g["host"]], g["gpu_index"]
        k = b * span + column[j]
        z[i][k] = g["util_pct"]
        mem = (f"{g['mem_used_bytes'] / GIB:.1f} / {g['mem_total_bytes'] / GIB:.0f} GiB"
               if g["mem_used_bytes"] is not None and g["mem_total_bytes"] else "memory unknown")
        util = "utilization unknown" if g["util_pct"] is None else f"{g['util_pct']:.0f} %"
        # processes whose owner /proc hid (or that ended) have no user: "owner unknown", not "no processes"
        users = (", ".join(g["users"]) if g["users"] else
                 "processes, owner unknown" if g.get("process_count") else "no processes")
        # site.py's classes: busy; in use with no utilization at all (MIG mode); idle but holding memory or a
        # process; else free; and whether it is in maintenance
        state = ("busy" if g["busy"] else "in use" if g["unmeasured"] else "idle, held" if g.get("held")
                 else "free") + (", maintenance" if g.get("maintenance") else "")
        text[i][k] = "<br>".join(plotly_text(s) for s in (
            f"{g['host']} · GPU {j}", f"{util} ({state})", mem, users))
    for h, (i, b) in place.items():  # a host whose GPUs gave no index has no cell: its first says who it is
        if not any(text[i][b * span:b * span + len(indices)]):
            text[i][b * span] = plotly_text(f"{h} · its GPUs gave no index")
    names = hosts[::per]  # each row's first host
    if per == 1:
        x = [str(j) for j in indices]
        layout = _category_layout("GPU utilization now, by host and GPU", max(220, 80 + 18 * rows), x, "GPU")
        links: List[Any] = [files.get(h) for h in hosts]
    else:
        x = [f"{b}:{j}" for b in range(per) for j in [*indices, ""]][:width]
        layout = _category_layout(f"GPU utilization now: {per} hosts a row, each host's GPUs side by side",
                                  max(220, 80 + 18 * rows))
        layout["xaxis"].update(showticklabels=False, showgrid=False, ticks="")
        if layout["xaxis"]["side"] == "top":
            layout["margin"]["t"] -= 16  # no labels
        links = [[files.get(h) for h in hosts[i:i + per]] for i in range(0, len(hosts), per)]  # report.js: / span
    _fit_rows(layout, rows, 18)
    _short_ticks(layout["yaxis"], names)
    y = [plotly_text(h) for h in names]
    cell = {"type": "heatmap", "x": x, "y": y, "text": text, "xgap": 2, "ygap": 2, "hoverongaps": False,
            "hovertemplate": "%{text}<extra></extra>"}  # no hover where there is no GPU (a free column)
    data = [{**cell, "z": z, "zmin": 0, "zmax": 100, "colorscale": "Viridis", "colorbar": {"title": {"text": "%"}}}]
    # a GPU without a utilization (MIG mode) in grey, with its hover: as a gap it looked like no GPU at all
    grey = [[0 if text[i][k] and z[i][k] is None else None for k in range(width)] for i in range(rows)]
    if any(v is not None for r in grey for v in r):
        grey_text = [[t if v is not None else "" for t, v in zip(tr, gr)] for tr, gr in zip(text, grey)]
        data.append({**cell, "z": grey, "text": grey_text, "zmin": 0, "zmax": 1, "showscale": False,
                     "name": "utilization unknown", "colorscale": [[0, UNKNOWN_GREY], [1, UNKNOWN_GREY]]})
    return {
        "data": data,
        "layout": layout,
        "links": links,
        "per_row": per,
        "span": span,
        # a row of several hosts keeps cells of 6 px on a narrow screen: its box scrolls sideways there
        "min_width": 90 + 6 * width if per > 1 else 0,
    }


def gpu_heatmap(rows: Sequence[Dict[str, Any]]) -> Optional[Figure]:
    """Hosts x time buckets, colour = mean GPU utilization of the host's GPUs. None without GPU data."""
    if not rows:
        return None
    buckets = sorted({r["bucket"] for r in rows})
    column = {b: i for i, b in enumerate(buckets)}
    hosts: Dict[str, List[Optional[float]]] = {}
    for r in rows:
        hosts.setdefault(r["host"], [None] * len(buckets))[column[r["bucket"]]] = r["gpu_util_pct"]
    names = sorted(hosts)
    row_px = _row_px(len(names), 18)
    layout = _layout("GPU utilization by host over time", "", height=max(220, 80 + row_px * len(names)))
    layout["yaxis"] = {"automargin": True, "type": "category", "autorange": "reversed"}
    _short_ticks(layout["yaxis"], names)
    layout["hovermode"] = "closest"
    if len(buckets) == 1:  # one column: on a time axis Plotly would draw it a millisecond wide
        layout["xaxis"]["type"] = "category"
    _axis_on_top(layout, 64)  # dates: two lines, the date above the time
    _fit_rows(layout, len(names), row_px)
    return {
        "data": [{
            "type": "heatmap",
            "x": [x_time(b) for b in buckets],
            "y": [plotly_text(h) for h in names],
            "z": [hosts[h] for h in names],
            "zmin": 0,
            "zmax": 100,
            "colorscale": "Viridis",
            "colorbar": {"title": {"text": "%"}},
            "hovertemplate": "%{y}<br>%{x}<br>%{z:.0f} %<extra></extra>",
        }],
        "layout": layout,
    }


# -- host pages -------------------------------------------------------------------------------------------

def _aligned(rows: Sequence[Dict[str, Any]], column: str, index: Mapping[datetime, int], size: int) -> List[Any]:
    y: List[Any] = [None] * size
    for r in rows:
        y[index[r["ts"]]] = r[column]
    return y


def host_figures(host_rows: Sequence[Dict[str, Any]], gpu_rows: Sequence[Dict[str, Any]],
                 gap_s: Optional[float] = None) -> Tuple[List[Optional[str]], List[Figure]]:
    """The figures of one host page, over one shared time axis (returned first, as x values): per-GPU
    utilization, memory, temperature, power and SM clock (one trace per GPU), then CPU use and memory.
    Where two points are more than ``gap_s`` apart (the host down, or not collected), the lines break there,
    rather than draw a straight line across hours without a sample."""
    data = sorted({r["ts"] for r in host_rows} | {r["ts"] for r in gpu_rows})
    times = []
    for i, t in enumerate(data):
        if gap_s and i and (t - data[i - 1]).total_seconds() > gap_s:
            times.append(data[i - 1] + (t - data[i - 1]) / 2)  # a time without data: a break in every line
        times.append(t)
    index = {t: i for i, t in enumerate(times)}
    n = len(times)
    # markers where a point may stand alone (few points, or one between two gaps): a line needs two
    dots = len(data) < 3 or n > len(data)

    def trace(name: str, rows: Sequence[Dict[str, Any]], column: str, **extra: Any) -> Dict[str, Any]:
        t = {"type": "scatter", "mode": "lines+markers" if dots else "lines", "name": plotly_text(name), "xs": "t",
             "y": _aligned(rows, column, index, n)}
        if dots and len(data) >= 3:
            t["marker"] = {"size": 4}
        t.update(extra)
        return t

    by_gpu: Dict[Any, List[Dict[str, Any]]] = {}
    for r in gpu_rows:
        by_gpu.setdefault(r["gpu_index"], []).append(r)
    gpus = sorted(by_gpu.items(), key=lambda item: (item[0] is None, item[0] or 0))
    figures = []
    if gpus:
        for title, column, unit, y_max in (
            ("GPU utilization", "util_pct", "%", 100),
            ("GPU memory used", "mem_used_gib", "GiB", None),
            ("GPU temperature", "temperature_c", "°C", None),
            ("GPU power", "power_w", "W", None),
            ("GPU SM clock", "clock_sm_mhz", "MHz", None),
        ):
            figures.append(timeline(title, unit, [trace(f"GPU {i}", rows, column) for i, rows in gpus],
                                    y_max=y_max))
    figures += [
        timeline("CPU use", "%", [trace("CPU use", host_rows, "cpu_pct")], y_max=100),
        timeline("Memory used", "GiB", [
            trace("used", host_rows, "mem_used_gib"),
            trace("total", host_rows, "mem_total_gib", line={"dash": "dot"}),
        ]),
    ]
    for figure in figures:
        _one_point_span(figure["layout"], times)
        if all(v is None for t in figure["data"] for v in t["y"]):  # a blank box says why
            cpu = figure["data"][0]["name"] == "CPU use"
            _empty(figure["layout"], ("CPU use is measured between two samples: it needs two in this range."
                                      if cpu and host_rows else "No values in this range."))
            figure["data"] = []
    return [x_time(t) for t in times], figures


# -- the users page ---------------------------------------------------------------------------------------

def user_bars(title: str, rows: Sequence[Dict[str, Any]], suffix: str, top: int = 30) -> Figure:
    """Horizontal stacked bars per user: GPU-hours active, idle-held and, where there are any, held with the
    utilization unknown (MIG mode), over one range (``suffix``: 7d...)."""
    active, held, unmeasured = f"active_h_{suffix}", f"held_h_{suffix}", f"unmeasured_h_{suffix}"

    def hours(r):
        return (r[active] or 0) + (r[held] or 0) + (r.get(unmeasured) or 0)

    used = [r for r in rows if hours(r) > 0]
    used.sort(key=lambda r: -hours(r))
    used = used[:top]
    users = [plotly_text(r["user"]) for r in used]
    layout = _layout(title, "", height=max(220, 90 + 20 * len(used)))
    layout["xaxis"] = {"title": {"text": "GPU-hours"}, "automargin": True, "rangemode": "tozero"}
    layout["yaxis"] = {"type": "category", "automargin": True, "autorange": "reversed"}
    layout["barmode"] = "stack"
    layout["hovermode"] = "y unified"
    layout["legend"] = {"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"}
    if not used:
        return {"data": [], "layout": _empty(layout, "No GPU use by any user in this range.")}
    data = [
        {"type": "bar", "orientation": "h", "name": "active", "y": users,
         "x": [round(r[active] or 0, 2) for r in used], "marker": {"color": "#2f5fb3"}},
        {"type": "bar", "orientation": "h", "name": "idle, held", "y": users,
         "x": [round(r[held] or 0, 2) for r in used], "marker": {"color": "#e8a33d"}},
    ]
    if any(r.get(unmeasured) for r in used):
        data.append({"type": "bar", "orientation": "h", "name": "held, utilization unknown (MIG)", "y": users,
                     "x": [round(r.get(unmeasured) or 0, 2) for r in used], "marker": {"color": "#9a9a9a"}})
    return {"data": data, "layout": layout}


def user_host_heatmap(title: str, rows: Sequence[Dict[str, Any]], suffix: str, top: int = 30) -> Figure:
    """The ``top`` users x hosts, colour = GPU-hours (active + idle-held + held with the utilization unknown)
    over one range; hover gives the active part (``customdata``: active hours, so a cell costs two numbers,
    not a sentence). Past WRAP_HOSTS hosts in ``rows`` (any range: every range the same way) the hosts are
    the rows and the users the columns: across, 1,000 hosts were a pixel each (review)."""
    active, held, unmeasured = f"active_h_{suffix}", f"held_h_{suffix}", f"unmeasured_h_{suffix}"
    cells = {(r["user"], r["host"]): (r[active] or 0, (r[held] or 0) + (r.get(unmeasured) or 0)) for r in rows
             if (r[active] or 0) + (r[held] or 0) + (r.get(unmeasured) or 0) > 0}
    totals: Dict[str, float] = {}
    for (user, _), (a, h) in cells.items():
        totals[user] = totals.get(user, 0) + a + h
    users = sorted(totals, key=lambda u: (-totals[u], u))[:top]
    shown = set(users)
    hosts = sorted({host for user, host in cells if user in shown})
    down = len({r["host"] for r in rows}) > WRAP_HOSTS  # hosts down the side, users across
    if down:
        row_px = _row_px(len(hosts), 16)
        layout = _category_layout(title, max(220, 110 + row_px * len(hosts)), users)
        _fit_rows(layout, len(hosts), row_px)
        _short_ticks(layout["xaxis"], users, hosts=False)
        _short_ticks(layout["yaxis"], hosts)
    else:
        layout = _category_layout(title, max(220, 110 + 16 * len(users)), hosts)
        _fit_rows(layout, len(users), 16)
        _short_ticks(layout["xaxis"], hosts)
        _short_ticks(layout["yaxis"], users, hosts=False)
    if not cells:
        return {"data": [], "layout": _empty(layout, "No GPU use by any user in this range.")}
    z, active_h = [], []
    for user in users:
        # two decimals, as the users table shows GPU-hours: 0.25 h is not 0.2 on one and 0.25 on the other
        z.append([round(sum(cells[(user, h)]), 2) if (user, h) in cells else None for h in hosts])
        active_h.append([round(cells[(user, h)][0], 2) if (user, h) in cells else None for h in hosts])
    x, y, who = [plotly_text(h) for h in hosts], [plotly_text(u) for u in users], "%{y} on %{x}"
    if down:
        x, y, who = y, x, "%{x} on %{y}"
        z, active_h = [list(c) for c in zip(*z)], [list(c) for c in zip(*active_h)]
    return {"data": [{
        "type": "heatmap", "x": x, "y": y,
        "z": z, "customdata": active_h, "colorscale": [[0, "#e8eef9"], [1, "#1d3f8f"]], "zmin": 0,
        "xgap": 1, "ygap": 1, "colorbar": {"title": {"text": "GPU-h"}},
        "hovertemplate": who + "<br>%{z:.2f} GPU-hours, %{customdata:.2f} of them active<extra></extra>",
    }], "layout": layout}


def week_hour_heatmap(rows: Sequence[Dict[str, Any]], since: datetime) -> Optional[Figure]:
    """Day of week x hour of day (UTC), colour = share of GPU time active. None without hourly rollups."""
    if not rows:
        return None
    z: List[List[Optional[float]]] = [[None] * 24 for _ in DAYS]
    text: List[List[str]] = [[""] * 24 for _ in DAYS]
    for r in rows:
        d, h = int(r["dow"]) - 1, int(r["hour"])
        z[d][h] = None if r["active_pct"] is None else round(r["active_pct"], 1)
        util = "" if r["util_pct"] is None else f"<br>mean utilization {r['util_pct']:.0f} %"
        text[d][h] = (f"{DAYS[d]} {h:02d}:00–{h:02d}:59 UTC<br>active {z[d][h] or 0:.0f} % of GPU time"
                      f"{util}<br>over {r['days']} day(s)")
    since = max(since, min(r["first_ts"] for r in rows))  # the data's start, where it is later than the range's
    layout = _category_layout(f"Fleet GPU use by day and hour (UTC), since {since:%Y-%m-%d}", 300, (),
                              "hour of day (UTC)")
    return {"data": [{
        "type": "heatmap", "x": [f"{h:02d}" for h in range(24)], "y": list(DAYS), "z": z, "text": text,
        "zmin": 0, "zmax": 100, "colorscale": "Viridis", "xgap": 1, "ygap": 1,
        "colorbar": {"title": {"text": "% active"}}, "hovertemplate": "%{text}<extra></extra>",
    }], "layout": layout}
