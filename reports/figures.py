"""Plotly figures as plain dicts (data + layout), so the report never imports plotly.graph_objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Sequence

from reports.safe import plotly_text

Figure = Dict[str, Any]

_TS_FORMAT = "%Y-%m-%d %H:%M:%S"


def x_time(ts: Optional[datetime]) -> Optional[str]:
    """A UTC timestamp as Plotly reads it: a naive date string, drawn as is (no local-time shift)."""
    return ts.strftime(_TS_FORMAT) if ts is not None else None


def _layout(title: str, y_title: str, *, y_max: Optional[float] = None, height: int = 300) -> Dict[str, Any]:
    yaxis: Dict[str, Any] = {"title": {"text": y_title}, "rangemode": "tozero", "automargin": True}
    if y_max is not None:
        yaxis["range"] = [0, y_max]
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "height": height,
        "margin": {"l": 55, "r": 15, "t": 40, "b": 40},
        "xaxis": {"type": "date", "title": {"text": "UTC"}, "automargin": True},
        "yaxis": yaxis,
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
    }


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


def fleet_timeline(rows: Sequence[Dict[str, Any]]) -> Figure:
    """Mean GPU utilization and mean CPU use per run (left axis, %), GPUs busy (right axis, count)."""
    traces = [
        line("GPU utilization (mean)", rows, "gpu_util_pct"),
        line("CPU use (mean)", rows, "cpu_pct"),
        line("GPUs busy", rows, "gpus_busy", yaxis="y2", line={"dash": "dot"}),
    ]
    layout = _layout("Fleet utilization", "%", y_max=100)
    layout["yaxis2"] = {"title": {"text": "GPUs busy"}, "overlaying": "y", "side": "right",
                        "rangemode": "tozero", "showgrid": False}
    layout["margin"]["r"] = 55
    return {"data": traces, "layout": layout}


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
    layout = _layout("GPU utilization by host", "", height=max(220, 60 + 22 * len(names)))
    layout["yaxis"] = {"automargin": True, "type": "category"}
    layout["hovermode"] = "closest"
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


def host_figures(host_rows: Sequence[Dict[str, Any]], gpu_rows: Sequence[Dict[str, Any]]) -> List[Figure]:
    """The figures of one host page: CPU, memory, then per-GPU utilization, memory, temperature, power."""
    figures = [
        timeline("CPU use", "%", [line("CPU use", host_rows, "cpu_pct")], y_max=100),
        timeline("Memory used", "GiB", [
            line("used", host_rows, "mem_used_gib"),
            line("total", host_rows, "mem_total_gib", line={"dash": "dot"}),
        ]),
    ]
    if not gpu_rows:
        return figures
    by_gpu: Dict[int, List[Dict[str, Any]]] = {}
    for r in gpu_rows:
        by_gpu.setdefault(r["gpu_index"], []).append(r)
    gpus = sorted(by_gpu.items(), key=lambda item: (item[0] is None, item[0] or 0))
    for title, column, unit, y_max in (
        ("GPU utilization", "util_pct", "%", 100),
        ("GPU memory used", "mem_used_gib", "GiB", None),
        ("GPU temperature", "temperature_c", "°C", None),
        ("GPU power", "power_w", "W", None),
    ):
        traces = [line(f"GPU {index}", rows, column) for index, rows in gpus]
        figures.append(timeline(title, unit, traces, y_max=y_max))
    return figures
