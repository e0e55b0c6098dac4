"""The host page's inventory after a reboot. A reboot changes no fact that makes a `hosts` row (boot_time is
left out of facts_hash: it jitters by a second on some kernels), so the page took a stale boot time from the
host's newest `hosts` row; it now takes it from the host's latest sample."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from fleetscope.warehouse import connect, ingest_pending
from reports import build_site
from tests.docfactory import document, iso_z, ok, spool_run
from tests.reports.pages import inventory

T0 = datetime(2026, 11, 25, 8, 0)
REBOOTED = T0 + timedelta(minutes=7)


def booted(host, at, boot):
    doc = document(host, at)
    doc["host"]["boot_time"] = iso_z(boot)
    return ok(host, at, doc)


def test_the_host_page_shows_the_boot_time_of_the_latest_sample_after_a_reboot(tmp_path):
    data = tmp_path / "data"
    first_boot = T0 - timedelta(days=3)
    spool_run(data, T0, [booted("n01", T0, first_boot), booted("n02", T0, first_boot)])
    later = T0 + timedelta(minutes=10)
    spool_run(data, later, [booted("n01", later, REBOOTED)])  # n01 rebooted; n02 did not answer
    assert not ingest_pending(data).rejected
    with contextlib.closing(connect(data)) as con:
        # the reboot made no inventory row: the row there says the first boot
        assert con.execute("SELECT host, count(*), max(boot_time) FROM hosts GROUP BY host ORDER BY host"
                           ).fetchall() == [("n01", 1, first_boot), ("n02", 1, first_boot)]
        site = build_site(con, tmp_path / "site", now=later + timedelta(minutes=1)).parent
    pages = {h: (site / "hosts" / f"{h}.html").read_text(encoding="utf-8") for h in ("n01", "n02")}
    assert inventory(pages["n01"])["Boot time"] == "2026-11-25 08:07 UTC"
    assert inventory(pages["n02"])["Boot time"] == "2026-11-22 08:00 UTC"
