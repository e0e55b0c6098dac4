"""Documents a real fleet can send that the shared fixture fleet does not: GPUs whose UUID NVML could not read,
an index no GPU has, text with bidirectional controls in lists, a host's first run. Spooled, ingested and
rendered for real; each case was a wrong or failed report before it was handled."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta

from fleetscope.settings import Settings
from fleetscope.warehouse import connect, ingest_pending
from fleetscope.warehouse.rollup import rollup
from reports import build_site
from tests.docfactory import document, gpu, gpu_process, ok, spool_run
from tests.reports.conftest import NOW, RUNS
from tests.reports.pages import figure, page_data

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: left open, it reverses the text after it on the page


def _site(tmp_path, runs):
    """Spool ``runs`` ([(at, [result, ...]), ...]), ingest them, roll up and build the site."""
    data = tmp_path / "data"
    for at, results in runs:
        spool_run(data, at, results)
    report = ingest_pending(data)
    rollup(data, Settings(), now=NOW)
    with contextlib.closing(connect(data)) as con:
        site = build_site(con, tmp_path / "site", now=NOW).parent
    return data, site, report


def test_gpus_without_a_uuid_keep_their_own_users_and_hours(tmp_path):
    """NVML could not read either GPU's UUID: each is still a GPU of its own (gpu_uuid "index:N"), with its own
    users on the host page and in latest.json, and its own GPU-hours: not each other's, and not none."""
    runs = []
    for at in RUNS:
        gpus = [gpu(0, util=90, processes=[gpu_process(10, "alice")]),
                gpu(1, util=80, processes=[gpu_process(11, "bob")])]
        for g in gpus:
            g["uuid"] = None
        runs.append((at, [ok("gpu01", at, document("gpu01", at, gpus=gpus))]))
    data, site, report = _site(tmp_path, runs)
    assert not report.rejected
    latest = json.loads((site / "data" / "latest.json").read_text(encoding="utf-8"))
    (host,) = latest["hosts"]
    assert [(g["index"], g["users"]) for g in host["gpus"]] == [(0, ["alice"]), (1, ["bob"])], host["gpus"]
    with contextlib.closing(connect(data)) as con:
        assert con.execute("SELECT DISTINCT gpu_uuid FROM gpu_samples ORDER BY 1").fetchall() == [
            ("index:0",), ("index:1",)]
        hours = dict(con.execute(
            'SELECT "user", round(sum(active_s)) FROM user_gpu_daily GROUP BY ALL').fetchall())
    assert hours == {"alice": 600, "bob": 600}  # two 300 s intervals each, on one GPU each
    users = json.loads((site / "data" / "latest.json").read_text(encoding="utf-8"))["summary"]["users"]
    assert users == ["alice", "bob"]


def test_an_index_no_gpu_has_is_refused_and_the_others_are_reported(tmp_path):
    """An index of 2**31 - 1 made a 2-billion-column heat map: the report ran out of memory for the whole
    fleet. The document is refused (its host failed, with the reason); the other host is reported."""
    at = RUNS[0]
    bad = document("bad01", at, gpus=[gpu(2**31 - 1, util=50)])
    good = document("gpu01", at, gpus=[gpu(0, util=50), gpu(3, util=20)])  # index 1 and 2 gone (failed GPUs)
    data, site, report = _site(tmp_path, [(at, [ok("bad01", at, bad), ok("gpu01", at, good)])])
    assert len(report.rejected) == 1 and "gpus.devices[0].index" in report.rejected[0], report.rejected
    assert "must be <= 1023" in report.rejected[0]
    heat = figure((site / "index.html").read_text(encoding="utf-8"), "gpus-now")
    (trace,) = heat["data"]
    assert trace["x"] == ["0", "3"] and trace["y"] == ["gpu01"] and trace["z"] == [[50.0, 20.0]]


def test_bidirectional_controls_in_lists_and_error_messages_are_replaced(tmp_path):
    """The warehouse cleans every host-provided string it stores: these were joined from lists without it."""
    at = RUNS[0]
    g = gpu(0, util=50)
    g["throttle_reasons"] = [f"hw{RLO}slowdown"]
    doc = document("gpu01", at, gpus=[g], errors=[{"subsystem": f"disks{RLO}", "type": "OSError",
                                                    "message": f"stalled{RLO}", "traceback": None}])
    doc["host"]["gpu_models"] = [f"H100{RLO}", "x" * 10_000]
    data, site, report = _site(tmp_path, [(at, [ok("gpu01", at, doc)])])
    assert not report.rejected
    with contextlib.closing(connect(data)) as con:
        (message,) = con.execute("SELECT message FROM host_status").fetchone()
        (throttle,) = con.execute("SELECT throttle_reasons FROM gpu_samples").fetchone()
        (models,) = con.execute("SELECT gpu_models FROM hosts").fetchone()
    assert message == "disks\ufffd: OSError: stalled\ufffd"
    assert throttle == "hw\ufffdslowdown"
    assert models.startswith("H100\ufffd,xxx") and len(models) == 4096
    for page in site.rglob("*.html"):
        assert RLO not in page.read_text(encoding="utf-8"), page


def test_a_hosts_first_run_charts_span_an_hour_not_a_millisecond(tmp_path):
    """One sample: the host page's timelines, and the fleet page's heat map over time, get a readable axis."""
    at = RUNS[0]
    _, site, _ = _site(tmp_path, [(at, [ok("gpu01", at, document("gpu01", at, gpus=[gpu(0, util=50)]))])])
    host_figures = page_data((site / "hosts" / "gpu01.html").read_text(encoding="utf-8"))["figures"]
    assert len(host_figures) == 7
    (x,) = page_data((site / "hosts" / "gpu01.html").read_text(encoding="utf-8"))["x"]["t"]
    for fig in host_figures:
        start, end = (datetime.fromisoformat(t) for t in fig["layout"]["xaxis"]["range"])
        assert end - start == timedelta(hours=1) and start < datetime.fromisoformat(x) < end, fig["layout"]
    heat = figure((site / "index.html").read_text(encoding="utf-8"), "heatmap")
    assert len(heat["data"][0]["x"]) == 1 and heat["layout"]["xaxis"]["type"] == "category"  # one column, drawn
