"""Regenerate the report screenshots in docs/ (README and report.md show them).

    .venv/bin/python docs/screenshots.py

A synthetic fleet (benchmarks/fleetgen.py: 12 hosts x 8 GPUs, 8 days), its rollups, a few bookings and one
maintenance action, rendered by reports.build_site and photographed in Debian's chromium (headless).
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHOTS = {"report-fleet.png": "index.html", "report-host.png": "hosts/gpu003.html"}


def build(work: Path) -> Path:
    from benchmarks import fleetgen
    from fleetscope import admin, bookings
    from fleetscope.settings import Settings
    from fleetscope.warehouse import connect
    from fleetscope.warehouse.rollup import rollup
    from reports import build_site

    data = work / "data"
    gen = fleetgen.generate(data, hosts=12, gpus=8, days=8, interval_s=300, seed=3, workers=1)
    now = gen.end + dt.timedelta(minutes=2)
    rollup(data, Settings(), now=now)
    hour = now.replace(minute=0, second=0, microsecond=0)
    calendar = [  # (host, GPUs (None: the whole host), user, from hours, to hours) around now
        ("gpu003", [2, 3, 4, 5], "grace", -30, 20), ("gpu003", [1], "bob", 4, 8), ("gpu007", [None], "alice", 24, 96),
    ]
    sync = bookings.SyncReport(bookings=[
        bookings.Booking("screenshots.ics", f"event{i}", hour + dt.timedelta(hours=a), hour + dt.timedelta(hours=b),
                         host, gpu, user, f"@{user} {'fine-tuning' if user == 'grace' else 'experiments'}")
        for i, (host, gpus, user, a, b) in enumerate(calendar) for gpu in gpus])
    bookings.store(data, sync, now, ["screenshots.ics"])
    args = {"action": "maintenance", "state": "on", "gpu": 6}
    admin.record(data, admin.AdminResult("gpu003", "maintenance", admin.describe("maintenance", args), "ok", True,
                                         "set compute mode prohibited on GPU 6", False), args,
                 now=now - dt.timedelta(hours=3))
    hosts = {f"gpu{i:03d}": {"address": f"10.0.{1 + (i - 1) // 6}.{i}",
                             "groups": ["gpu", "room-a" if i <= 6 else "room-b"]} for i in range(1, 13)}
    con = connect(data)
    try:
        return build_site(con, work / "site", now=now, inventory_hosts=hosts,
                          bookings={"max_gpus_per_user": 4, "max_hours": 72})
    finally:
        con.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        index = build(Path(tmp))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1100, "height": 1350})
            # the pages as seen when built: at the browser's own clock the synthetic fleet's runs are old, and the
            # pages would say so (the data-age banner)
            built = re.search(r'<span class="generated">generated ([0-9: -]+) UTC', index.read_text(encoding="utf-8"))
            page.clock.set_fixed_time(dt.datetime.fromisoformat(built.group(1)).replace(tzinfo=dt.timezone.utc))
            for name, path in SHOTS.items():
                page.goto((index.parent / path).as_uri())
                page.wait_for_timeout(1500)  # Plotly draws after load
                page.screenshot(path=str(ROOT / "docs" / name))
                print(f"docs/{name}")
            browser.close()


if __name__ == "__main__":
    main()
