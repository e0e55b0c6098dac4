"""The report's settings and their defaults: the [report] section of fleetscope.toml (docs/settings.md).

Plain data with no imports, so the controller's settings loader can take the section from here instead of
keeping a second copy.
"""

from typing import Any, Dict

#: Every setting ``build_site`` understands, with its default (docs/settings.md, section [report]).
DEFAULT_SETTINGS: Dict[str, Any] = {
    # How far back the host timelines and the host x time heat-map reach, counted back from the newest data
    # in the warehouse (not from the wall clock, so a warehouse that stopped receiving data still shows its
    # last week).
    "timeline_hours": 168,
    # A GPU counts as busy when its utilization (NVML's ~15 s mean, else its current reading) is above this.
    "busy_threshold_pct": 5.0,
    # At most this many points per timeline series: longer windows are averaged into time buckets.
    "max_points": 600,
    # Time columns of the fleet GPU heat-map.
    "heatmap_columns": 96,
    # Status periods (runs of the same status) shown per host page.
    "status_history": 50,
    # Site title, shown on every page.
    "title": "fleetscope",
    # Ansible inventory variables shown as extra columns of the hosts table (values: build_site's
    # inventory_vars, which the CLI reads from collect.inventory).
    "host_columns": [],
    # A host whose newest data is this much older than the fleet's newest is listed as stale on every page.
    "stale_minutes": 30,
    # How far back the problems page looks for failed runs, heat and throttling.
    "problem_hours": 24,
    # A GPU at or above this temperature (degrees C) is hot.
    "hot_gpu_c": 85.0,
    # Throttle reasons that are a problem (a GPU at its power cap or idle clocks down by design).
    "throttle_reasons": ["hw_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown", "sw_thermal_slowdown"],
    # A GPU idle but holding memory for at least this long is listed on the problems page.
    "idle_held_minutes": 60,
    # A host clock off the controller's by more than this many seconds is a problem.
    "clock_skew_s": 5.0,
    # A host whose fullest file system is at least this full (%) is a problem.
    "disk_full_pct": 90.0,
    # Memory that makes an idle GPU idle-held (MiB): rollup.held_mem_mib, passed in by the CLI.
    "held_mem_mib": 1024,
    # The longest time one sample stands for (s): rollup.max_interval_s, passed in by the CLI (the users page's
    # bookings hours count time from the raw samples as the rollups do).
    "max_interval_s": 600,
    # Days the hourly rollups are kept (0: forever): rollup.hourly_days, passed in by the CLI. Where it is
    # shorter than a range that reads them (30 d, the week x hour map's year), the range's caption says so.
    "hourly_days": 365,
}

