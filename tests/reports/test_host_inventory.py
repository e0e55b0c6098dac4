"""The host page's inventory after a reboot. A reboot changes no fact that makes a `hosts` row (boot_time is
left out of facts_hash: it jitters by a second on some kernels), so the page took a stale boot time from the
host's newest `hosts` row; it now takes it from the host's latest sample."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from fleetscope.warehouse import connect, ingest_pending
from reports import build_site
from tests.docfactory import GIB, document, iso_z, ok, spool_run
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


def test_a_host_gone_from_the_inventory_is_retired_not_down(tmp_path):
    """A host removed from the inventory stayed in the report as unreachable (its last status) for as long
    as the warehouse keeps its statuses (a year): '1 / 2 hosts up', '1 stale', a problem. Now it is retired:
    listed, with its page, but counted nowhere. Without an inventory to compare with, nothing changes."""
    import json

    from tests.docfactory import gpu, unreachable
    from tests.reports.pages import hosts_table

    data = tmp_path / "data"
    old = document("old01", T0 - timedelta(minutes=10), gpus=[gpu(0)])  # its last answer: a full disk, ECC errors
    old["disks"]["filesystems"][0].update(used_bytes=499 * GIB, free_bytes=GIB)
    old["gpus"]["devices"][0]["ecc_volatile_uncorrected"] = 3
    spool_run(data, T0 - timedelta(minutes=10), [ok("old01", T0 - timedelta(minutes=10), old)])
    spool_run(data, T0, [booted("n01", T0, T0 - timedelta(days=1)), unreachable("old01", T0)])
    for k in range(1, 7):  # old01 is no longer collected: it was taken out of the inventory
        at = T0 + timedelta(minutes=10 * k)
        spool_run(data, at, [booted("n01", at, T0 - timedelta(days=1))])
    assert not ingest_pending(data).rejected
    now = T0 + timedelta(minutes=61)
    with contextlib.closing(connect(data)) as con:
        with_inventory = build_site(con, tmp_path / "with", now=now,
                                    inventory_hosts={"n01": {"address": "10.0.0.1", "groups": ["lab"]}}).parent
        without = build_site(con, tmp_path / "without", now=now).parent
    index = (with_inventory / "index.html").read_text(encoding="utf-8")
    assert "1</b> / 1 hosts up" in index and "stale</a>" not in index
    assert "1 retired (no longer in the inventory, not counted)" in index
    assert hosts_table(with_inventory / "index.html")["old01"]["Status"] == "retired"
    assert (with_inventory / "hosts" / "old01.html").exists()  # its history stays reachable
    assert "old01" not in (with_inventory / "problems.html").read_text(encoding="utf-8")  # nor its disk or ECC
    latest = json.loads((with_inventory / "data" / "latest.json").read_text())
    assert latest["summary"]["hosts_total"] == 1 and latest["summary"]["hosts_up"] == 1
    assert {h["host"]: h["retired"] for h in latest["hosts"]} == {"n01": False, "old01": True}
    # without an inventory, the report cannot tell: old01 is a host that is down, as before
    index = (without / "index.html").read_text(encoding="utf-8")
    assert "1</b> / 2 hosts up" in index and "retired" not in index
    problems = (without / "problems.html").read_text(encoding="utf-8")
    assert "old01" in problems and problems.count("old01") >= 3  # down, its disk, its ECC errors


def test_a_host_missing_from_the_inventory_but_still_answering_is_not_retired(tmp_path):
    """Retired takes both: gone from the inventory and not seen lately. A host the report's inventory does
    not list but that answered the latest run (an inventory of another folder, a host just taken out and
    still being collected) is current: counted as up, its problems shown, until it goes stale."""
    import json

    data = tmp_path / "data"
    spool_run(data, T0, [booted("n01", T0, T0 - timedelta(days=1)), booted("new01", T0, T0 - timedelta(days=1))])
    assert not ingest_pending(data).rejected
    with contextlib.closing(connect(data)) as con:
        site = build_site(con, tmp_path / "site", now=T0 + timedelta(minutes=5),
                          inventory_hosts={"n01": {"address": "10.0.0.1", "groups": ["lab"]}}).parent
    latest = json.loads((site / "data" / "latest.json").read_text())
    assert {h["host"]: h["retired"] for h in latest["hosts"]} == {"n01": False, "new01": False}
    assert latest["summary"]["hosts_total"] == 2 and latest["summary"]["hosts_up"] == 2
    assert "retired" not in (site / "index.html").read_text(encoding="utf-8")

