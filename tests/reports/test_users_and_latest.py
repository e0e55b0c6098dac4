"""The users page, data/latest.json and the inventory columns, on the shared three-host warehouse."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

import pytest

from fleetscope.warehouse import connect
from reports import build_site
from tests.reports.conftest import NOW
from tests.reports.pages import figure, hosts_table, inventory, table


def test_users_page_says_who_holds_gpus_now(fleet_site):
    html = (fleet_site / "users.html").read_text(encoding="utf-8")
    rows = {r["User"]: r for r in table(html, "users-now")}
    assert set(rows) == {"alice", "bob"}
    assert (rows["alice"]["GPUs"], rows["alice"]["of them idle"], rows["alice"]["GPU memory"]) == ("1", "0", "38.0 GiB")
    assert (rows["bob"]["GPUs"], rows["bob"]["of them idle"], rows["bob"]["Hosts"]) == ("1", "1", "gpu01")
    assert rows["bob"]["Data as of"] == "2 min ago"
    assert 'href="hosts/gpu01.html"' in html


def test_users_page_has_gpu_hours_and_energy_per_window(fleet_site):
    html = (fleet_site / "users.html").read_text(encoding="utf-8")
    rows = {r["User"]: r for r in table(html, "users")}
    alice, bob = rows["alice"], rows["bob"]
    for window in ("7 d", "30 d", "1 y"):
        assert alice[f"Active GPU-h, {window}"] == "0.17"  # 600 s active
        assert bob[f"Idle-held GPU-h, {window}"] == "0.08"  # 300 s held
    assert alice["kWh, 30 d"] == "0.07" and bob["kWh, 1 y"] == "0.01"  # 400 W x 600 s; 70 W x 300 s
    assert alice["Hosts, 30 d"] == "1" and alice["Last day"] == "2026-11-23"


def test_users_page_lists_the_gpu_processes_with_the_most_gpu_hours(fleet_site):
    html = (fleet_site / "users.html").read_text(encoding="utf-8")
    rows = table(html, "top-processes")
    assert [(r["User"], r["Host"], r["PID"], r["Command"]) for r in rows] == [
        ("alice", "gpu01", "4242", "python train.py --epochs 10"), ("bob", "gpu01", "777", "jupyter-kernel")]
    alice, bob = rows
    assert (alice["GPU-h, 30 d"], alice["GPU-h, 1 y"], alice["GPUs"], alice["kWh, 1 y"]) == (
        "0.17", "0.17", "1", "0.07")
    assert bob["GPU-h, 30 d"] == "0.08" and bob["of them idle-held"] == "0.08"  # 300 s held, at the last run
    assert alice["Started"] == "2026-11-23 08:00" and alice["Last seen"] == "2026-11-23 09:10"
    assert bob["Started"] == "≤ 2026-11-23 09:10"  # a collector that did not send it: first seen on a GPU


def test_host_page_lists_what_ran_on_its_gpus(fleet_site):
    rows = table((fleet_site / "hosts" / "gpu01.html").read_text(encoding="utf-8"), "host-top-processes")
    assert [(r["User"], r["PID"], r["Command"], r["GPUs"], r["GPU-h, 30 d"], r["of them idle-held"]) for r in rows] == [
        ("alice", "4242", "python train.py --epochs 10", "0", "0.17", "0.00"),
        ("bob", "777", "jupyter-kernel", "1", "0.08", "0.08")]
    assert rows[0]["Started"] == "2026-11-23 08:00"
    cpu_page = (fleet_site / "hosts" / "cpu01.html").read_text(encoding="utf-8")
    assert "No GPU process in the daily rollups of the last 30 days" in cpu_page


def test_users_figures_switch_between_ranges(fleet_site):
    html = (fleet_site / "users.html").read_text(encoding="utf-8")
    bars = figure(html, "user-hours")
    assert [r["label"] for r in bars["ranges"]] == ["7 d", "30 d", "1 y"] and bars["selected"] == 1
    active, held = bars["ranges"][1]["data"]
    assert active["y"] == ["alice", "bob"] and active["x"] == [0.17, 0.0] and held["x"] == [0.0, 0.08]
    heat = figure(html, "user-hosts")
    (trace,) = heat["ranges"][2]["data"]
    # GPU-hours to two decimals, as in the users table (0.17 h active, 0.08 h held)
    assert trace["x"] == ["gpu01"] and trace["y"] == ["alice", "bob"] and trace["z"] == [[0.17], [0.08]]
    assert trace["customdata"] == [[0.17], [0.0]]  # active hours: the hover text splits the total
    week_fig = figure(html, "week-hour")
    assert week_fig["layout"]["title"]["text"].endswith("since 2026-11-23")  # the data's first day, not a year back
    (week,) = week_fig["data"]
    assert week["y"][0] == "Mon" and week["x"][9] == "09"
    # 2026-11-23 is a Monday: GPU 0 active for 600 s, GPU 1 held for 600 s, of 1200 GPU-seconds counted.
    assert week["z"][0][9] == 50.0 and week["z"][0][10] is None


def test_latest_json_is_the_fleet_now(fleet_site):
    latest = json.loads((fleet_site / "data" / "latest.json").read_text(encoding="utf-8"))
    assert latest["generated_at"] == "2026-11-23T09:12:00Z"
    # gpu01's GPU 1, idle and held by bob, is in maintenance: not idle (offered as free) in the summary
    assert latest["summary"] == {"hosts_up": 2, "hosts_total": 3, "gpus_busy": 1, "gpus_idle": 0, "gpus_held": 0,
                                 "gpus_unmeasured": 0, "gpus_maintenance": 1, "gpus_total": 2,
                                 "users": ["alice", "bob"], "unknown_owners": False}
    hosts = {h["host"]: h for h in latest["hosts"]}
    assert (hosts["lost01"]["status"], hosts["lost01"]["last_seen"], hosts["lost01"]["gpus"]) == \
        ("unreachable", None, [])
    assert hosts["lost01"]["stale"] is True
    gpu01 = hosts["gpu01"]
    assert (gpu01["status"], gpu01["last_seen"], gpu01["cpu_pct"]) == ("ok", "2026-11-23T09:10:00Z", 50.0)
    g0, g1 = gpu01["gpus"]
    assert (g0["index"], g0["util_pct"], g0["busy"], g0["users"]) == (0, 92.0, True, ["alice"])
    assert g0["processes"] == [{"pid": 4242, "user": "alice", "command": "python train.py --epochs 10",
                                "gpu_mem_bytes": 38 * 1024**3, "started_at": "2026-11-23T08:00:00Z"}]
    assert (g1["busy"], g1["idle_held"], g1["mem_used_bytes"], g1["users"]) == (False, True, 2 * 1024**3, ["bob"])


def test_inventory_variables_become_columns(fleet_data, tmp_path):
    variables = {"gpu01": {"owner": "<b>ml-team</b>", "rack": 12}, "cpu01": {"rack": 3}}
    with contextlib.closing(connect(fleet_data)) as con:
        index = build_site(con, tmp_path / "site", now=NOW, settings={"host_columns": ["owner", "rack"]},
                           inventory_vars=variables)
    rows = hosts_table(index)
    assert [(rows[h]["owner"], rows[h]["rack"]) for h in ("cpu01", "gpu01", "lost01")] == [
        ("", "3"), ("<b>ml-team</b>", "12"), ("", "")]
    html = index.read_text(encoding="utf-8")
    assert "&lt;b&gt;ml-team&lt;/b&gt;" in html and "<b>ml-team" not in html
    assert '<th data-type="num" class="var">rack</th>' in html  # numbers sort as numbers
    host = (index.parent / "hosts" / "gpu01.html").read_text(encoding="utf-8")
    assert inventory(host)["owner"] == "<b>ml-team</b>" and inventory(host)["rack"] == "12"
    latest = json.loads((index.parent / "data" / "latest.json").read_text(encoding="utf-8"))
    assert {h["host"]: h["vars"] for h in latest["hosts"]}["gpu01"] == {"owner": "<b>ml-team</b>", "rack": 12}


@pytest.mark.parametrize("page", ["index.html", "users.html", "problems.html", "hosts/gpu01.html"])
def test_every_page_says_when_it_was_generated_and_how_fresh_the_data_is(fleet_site, page):
    html = (fleet_site / page).read_text(encoding="utf-8")
    assert "Generated 2026-11-23 09:12:00 UTC." in html
    assert "Newest data 2026-11-23 09:10 UTC (2 min ago)." in html
    assert "2 of 3 hosts fresh" in html and "lost01</a> (never)" in html


def test_each_window_counts_whole_days_back_from_the_newest_data_that_day_included(fleet_data, tmp_path):
    """7 d: the newest data's day and the 6 before it; 30 d: and the 29 before; 1 y: and the 364 before. carol
    has a different number of hours on the last day in and the first day out of each window."""
    import shutil

    import duckdb

    from fleetscope.warehouse.ingest import write_table

    data = tmp_path / "data"
    shutil.copytree(fleet_data, data)
    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    hours = {6: 1, 7: 2, 29: 4, 30: 8, 364: 16, 365: 32}  # days back: hours active
    rows = [{"ts": str(day - timedelta(days=back)), "user": "carol", "host": "gpu01", "gpu_uuid": "GPU-0",
             "gpu_index": 0, "samples": 12, "active_s": h * 3600.0, "idle_held_s": 0.0, "unmeasured_s": 0.0,
             "gpu_mem_byte_s": 0.0, "gpu_mem_max_bytes": 0, "energy_j": 0.0} for back, h in hours.items()]
    with contextlib.closing(duckdb.connect()) as con:
        write_table(con, data, "user_gpu_daily", "test-windows", rows)
    with contextlib.closing(connect(data)) as con:
        index = build_site(con, tmp_path / "site", now=NOW)
    carol = {r["User"]: r for r in table((index.parent / "users.html").read_text(encoding="utf-8"), "users")}["carol"]
    assert [carol[f"Active GPU-h, {w}"] for w in ("7 d", "30 d", "1 y")] == ["1.00", "7.00", "31.0"]
