"""Bookings in the report: each host's bookings now and next, booked / booked-but-idle / unbooked GPU-hours per
user (hand-computed below), who runs without a booking, and the rules, from a real warehouse and a real
calendar (parsed by fleetscope.bookings and stored as `bookings sync` stores it)."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta

import pytest

from fleetscope.bookings import SyncReport, parse, store
from fleetscope.settings import Settings
from fleetscope.warehouse import connect, ingest_pending
from fleetscope.warehouse.rollup import rollup
from reports import build_site
from reports.sql import fetch, prepared
from tests.docfactory import GIB, document, gpu, gpu_process, ok, spool_run
from tests.reports.pages import table

T0 = datetime(2026, 11, 23, 8, 0)
RUNS = [T0 + timedelta(minutes=10 * i) for i in range(7)]  # 08:00 ... 09:00, 600 s apart (= max_interval_s)
NOW = RUNS[-1] + timedelta(minutes=2)
RULES = {"max_gpus_per_user": 2, "max_hours": 72.0}
GPU1_UTIL = [0, 0, 0, 0, 80, 0, 80]  # gpu01 GPU 1 at each run: busy at 08:40 and 09:00 only

CALENDAR = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//fleetscope tests//EN
BEGIN:VEVENT
UID:a1
DTSTART:20261123T081500Z
DTEND:20261123T084500Z
SUMMARY:@alice fine-tune
LOCATION:gpu01:0
END:VEVENT
BEGIN:VEVENT
UID:a2
DTSTART:20261123T084000Z
DTEND:20261123T091000Z
SUMMARY:@Alice eval
LOCATION:gpu01
END:VEVENT
BEGIN:VEVENT
UID:b1
DTSTART:20261123T080000Z
DTEND:20261123T083000Z
SUMMARY:@bob notebook
LOCATION:gpu01:1
END:VEVENT
BEGIN:VEVENT
UID:c1
DTSTART:20261123T093000Z
DTEND:20261123T110000Z
SUMMARY:@carol sweep
LOCATION:gpu01:1
END:VEVENT
BEGIN:VEVENT
UID:c2
DTSTART:20261125T000000Z
DTEND:20261129T040000Z
SUMMARY:@carol big run
LOCATION:gpu01
END:VEVENT
BEGIN:VEVENT
UID:d1
DTSTART:20261123T120000Z
DTEND:20261123T130000Z
SUMMARY:@dave ablation
LOCATION:gpu01:0-1
END:VEVENT
BEGIN:VEVENT
UID:d2
DTSTART:20261123T123000Z
DTEND:20261123T140000Z
SUMMARY:@dave eval
LOCATION:gpu02
END:VEVENT
BEGIN:VEVENT
UID:m1
DTSTART:20261124T060000Z
DTEND:20261124T080000Z
SUMMARY:maintenance
LOCATION:gpu01
END:VEVENT
END:VCALENDAR
"""


def _results(i: int, at: datetime) -> list:
    # gpu01 GPU 0: busy throughout, alice alone but at 08:20, where she holds 30 GiB and carol 10 GiB.
    on_gpu0 = ([gpu_process(11, "alice", "python train.py", 30 * GIB), gpu_process(12, "carol", "python eval.py",
                                                                                     10 * GIB)]
               if i == 2 else [gpu_process(11, "alice", "python train.py", 38 * GIB)])
    gpu01 = [gpu(0, util=90, mem_used_bytes=40 * GIB, processes=on_gpu0),
             gpu(1, util=GPU1_UTIL[i], mem_used_bytes=20 * GIB,
                 processes=[gpu_process(21, "bob", "jupyter-kernel", 20 * GIB)])]
    return [
        ok("gpu01", at, document("gpu01", at, gpus=gpu01)),
        ok("gpu02", at, document("gpu02", at, gpus=[gpu(0, util=0)])),  # booked by dave only, later; idle
        ok("gpu03", at, document("gpu03", at, gpus=[gpu(0, util=99, processes=[gpu_process(31, "erin")])])),
    ]


@pytest.fixture(scope="module")
def booked_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("bookings-data")
    for i, at in enumerate(RUNS):
        spool_run(data, at, _results(i, at))
    assert not ingest_pending(data).rejected
    rollup(data, Settings(), now=NOW)
    bookings, unmatched, _ = parse("lab.ics", CALENDAR, {"gpu01", "gpu02", "gpu03"}, NOW - timedelta(days=35),
                                NOW + timedelta(days=35))
    assert unmatched == 0
    store(data, SyncReport(bookings=bookings), NOW, ["lab.ics"])
    return data


@pytest.fixture(scope="module")
def booked_site(booked_data, tmp_path_factory):
    with contextlib.closing(connect(booked_data)) as con:
        return build_site(con, tmp_path_factory.mktemp("bookings-site") / "site", now=NOW, bookings=RULES).parent


def _page(site, name: str) -> str:
    return (site / name).read_text(encoding="utf-8")


def test_host_page_lists_the_bookings_now_and_next(booked_site):
    rows = table(_page(booked_site, "hosts/gpu01.html"), "bookings")
    assert [(r["When"], r["GPUs"], r["User"], r["Title"], r["Start (UTC)"], r["End (UTC)"]) for r in rows] == [
        ("now", "whole host", "Alice", "@Alice eval", "2026-11-23 08:40", "2026-11-23 09:10"),
        ("next", "1", "carol", "@carol sweep", "2026-11-23 09:30", "2026-11-23 11:00"),
        ("next", "0, 1", "dave", "@dave ablation", "2026-11-23 12:00", "2026-11-23 13:00"),
        ("next", "whole host", "", "maintenance", "2026-11-24 06:00", "2026-11-24 08:00"),
        ("next", "whole host", "carol", "@carol big run", "2026-11-25 00:00", "2026-11-29 04:00"),
    ]  # alice's a1 and bob's b1 are over
    assert [r["User"] for r in table(_page(booked_site, "hosts/gpu02.html"), "bookings")] == ["dave"]
    assert "Nobody has this host or its GPUs booked now or later." in _page(booked_site, "hosts/gpu03.html")


def test_latest_json_says_who_has_each_host_booked_now(booked_site):
    latest = json.loads(_page(booked_site, "data/latest.json"))
    booked = {h["host"]: h["booked_now"] for h in latest["hosts"]}
    assert booked == {
        "gpu01": [{"user": "Alice", "gpus": None, "start": "2026-11-23T08:40:00Z", "end": "2026-11-23T09:10:00Z",
                   "title": "@Alice eval"}],
        "gpu02": [], "gpu03": []}


def test_booked_idle_and_unbooked_hours_are_exact(booked_data):
    """Each sample stands for the 10 minutes before it (08:10 for [08:00, 08:10), ...; 08:00 for nothing).

    alice: gpu01 GPU 0 booked [08:15, 09:10) (a1 and the whole-host a2 merged; 'Alice' is alice):
           5 + 10 + 10 + 10 + 10 min, all busy; GPU 1 booked [08:40, 09:10): 08:50 (idle) + 09:00 (busy).
           Booked 65 min, of them idle 10. Active on GPU 0 for 57.5 min (at 08:20 her share is 30/40):
           unbooked [08:00, 08:15): 10 min + 0.75 x 5 min = 13.75 min.
    bob:   GPU 1 booked [08:00, 08:30): 30 min, all idle. Active at 08:40 and 09:00, unbooked: 20 min.
    carol: a quarter of GPU 0 at 08:20 and no booking then: 2.5 min unbooked; her bookings are later.
    dave's bookings are later and he ran nothing; erin ran only on gpu03, which nobody books."""
    with contextlib.closing(connect(booked_data)) as con, prepared(con):
        rows = fetch(con, "bookings_usage", {"since_7d": datetime(2026, 11, 17), "since_30d": datetime(2026, 10, 25),
                                             "busy_pct": 5.0, "max_interval_s": 600.0, "held_bytes": 1024**3})
        active = dict(con.execute('SELECT "user", sum(active_s) FROM user_gpu_daily GROUP BY ALL').fetchall())
    minutes = {r["user"]: tuple(round(r[k] * 60, 6) for k in ("booked_h_30d", "booked_idle_h_30d", "unbooked_h_30d"))
               for r in rows}
    assert minutes == {"alice": (65.0, 10.0, 13.75), "bob": (30.0, 30.0, 20.0), "carol": (0.0, 0.0, 2.5)}
    assert [r["user"] for r in rows] == ["alice", "bob", "carol"]
    assert all(r[f"{k}_7d"] == r[f"{k}_30d"] for r in rows for k in ("booked_h", "booked_idle_h", "unbooked_h"))
    # The same seconds as the rollups count: unbooked is a part of the active GPU-hours of user_gpu_daily.
    assert active == {"alice": 57.5 * 60, "bob": 20 * 60, "carol": 2.5 * 60, "erin": 60 * 60}


def test_users_page_shows_the_hours(booked_site):
    rows = {r["User"]: r for r in table(_page(booked_site, "users.html"), "bookings-usage")}
    assert set(rows) == {"alice", "bob", "carol"}
    assert (rows["alice"]["Booked GPU-h, 7 d"], rows["alice"]["Booked but idle GPU-h, 7 d"],
            rows["alice"]["Used without a booking GPU-h, 7 d"]) == ("1.08", "0.17", "0.23")
    assert (rows["bob"]["Booked GPU-h, 30 d"], rows["bob"]["Booked but idle GPU-h, 30 d"],
            rows["bob"]["Used without a booking GPU-h, 30 d"]) == ("0.50", "0.50", "0.33")
    assert rows["carol"]["Used without a booking GPU-h, 30 d"] == "0.04"


def test_problems_page_lists_who_runs_without_a_booking(booked_site):
    # At 09:00 alice's whole-host booking covers her GPU 0; bob's ended at 08:30, and alice has his GPU booked.
    # erin runs on gpu03, which no calendar books: not checked.
    (row,) = table(_page(booked_site, "problems.html"), "problems-unbooked")
    assert (row["Host"], row["GPU"], row["User"], row["Processes"], row["GPU memory"], row["Booked by"],
            row["Command"], row["At"]) == ("gpu01", "1", "bob", "1", "20.0 GiB", "Alice", "jupyter-kernel",
                                           "2 min ago")


def test_problems_page_lists_the_bookings_that_break_the_rules(booked_site):
    html = _page(booked_site, "problems.html")
    rows = table(html, "problems-booking-rules")
    # dave: gpu01's two GPUs from 12:00, and all of gpu02 (one GPU) from 12:30: three at once. alice holds two
    # at 08:40 (GPU 0 twice, by a1 and a2, counts once), carol two (all of gpu01): within the rule.
    assert [(r["User"], r["Rule broken"], r["Booked"], r["Title"], r["From (UTC)"], r["Until (UTC)"])
            for r in rows] == [
        ("dave", "3 GPUs at once, over 2", "gpu01:0,1 gpu02:0", "@dave ablation; @dave eval", "2026-11-23 12:30",
         "2026-11-23 13:00"),
        ("carol", "100 h booked, over 72.0 h", "gpu01", "@carol big run", "2026-11-25 00:00", "2026-11-29 04:00"),
    ]
    # Two rule breaks and bob: three problems on every page.
    for page in ("index.html", "users.html", "problems.html", "hosts/gpu03.html"):
        assert '<span class="count">3</span>' in _page(booked_site, page), page


def test_without_rules_nothing_breaks_them(booked_data, tmp_path):
    with contextlib.closing(connect(booked_data)) as con:
        site = build_site(con, tmp_path / "site", now=NOW).parent
    html = _page(site, "problems.html")
    assert "No rules set" in html and '<span class="count">1</span>' in html
    with pytest.raises(ValueError, match="max_gpu"), contextlib.closing(connect(booked_data)) as con:
        build_site(con, tmp_path / "site", now=NOW, bookings={"max_gpu": 1})


def test_a_lab_without_bookings_sees_no_booking_problems(fleet_data, tmp_path):
    # The shared fleet warehouse has no bookings: nobody is flagged, and the sections say why.
    with contextlib.closing(connect(fleet_data)) as con:
        site = build_site(con, tmp_path / "empty", now=NOW, bookings=RULES).parent
    problems = _page(site, "problems.html")
    assert "no calendar ([bookings] sources) books any host, so nothing is checked" in problems
    assert "No booking breaks the rules." in problems
    assert "No bookings: no calendar" in _page(site, "users.html")
    assert "No bookings: no calendar" in _page(site, "hosts/gpu01.html")
    # A connection without the bookings table at all (a catalog from before bookings) builds the same.
    with contextlib.closing(connect(fleet_data)) as con:
        con.execute("DROP VIEW bookings")
        site = build_site(con, tmp_path / "absent", now=NOW, bookings=RULES).parent
    assert "No bookings: no calendar" in _page(site, "users.html")
    assert json.loads(_page(site, "data/latest.json"))["hosts"][0]["booked_now"] == []


def test_the_report_command_passes_the_rules(booked_data, run_fleetscope, tmp_path):
    config = tmp_path / "fleetscope.toml"
    config.write_text(f"[collect]\ninventory = \"{tmp_path / 'none.ini'}\"\n[bookings]\nmax_hours = 99.0\n")
    proc = run_fleetscope("report", "--config", str(config), "--data", str(booked_data), "--out",
                          str(tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr
    rows = table(_page(tmp_path / "site", "problems.html"), "problems-booking-rules")
    assert [(r["User"], r["Rule broken"]) for r in rows] == [("carol", "100 h booked, over 99.0 h")]
