"""Inventory variables for the report's host columns: read by Ansible's parser, shown by `fleetscope report`."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from fleetscope.inventory import InventoryError, host_vars
from tests import docfactory as f
from tests.reports.pages import hosts_table

INVENTORY = """\
[gpu]
gpu01 owner=alice room="B 2.14" comment="<b>new</b>"
gpu02 ansible_user=monitor

[cpu]
cpu01 owner=carol

[gpu:vars]
room=A1
"""


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.ini"
    path.write_text(INVENTORY)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("owner: it-team\nrack: 7\n")
    return path


def test_host_line_over_group_vars_over_group_vars_files(inventory):
    assert host_vars(inventory, ["owner", "room", "comment", "rack"]) == {
        "gpu01": {"owner": "alice", "room": "B 2.14", "comment": "<b>new</b>", "rack": 7},
        "gpu02": {"owner": "it-team", "room": "A1", "rack": 7},
        "cpu01": {"owner": "carol", "rack": 7},
    }


def test_values_are_plain_python(inventory):
    values = host_vars(inventory, ["rack", "group_names"])["gpu01"]
    assert type(values["rack"]) is int
    assert values["group_names"] == "gpu"


def test_no_columns_reads_nothing_and_a_missing_inventory_is_named(tmp_path):
    assert host_vars(tmp_path / "nope.ini", []) == {}
    with pytest.raises(InventoryError, match="inventory not found"):
        host_vars(tmp_path / "nope.ini", ["owner"])


def test_report_shows_the_columns_chosen_in_the_settings(run_fleetscope, inventory, tmp_path):
    data, site = tmp_path / "data", tmp_path / "site"
    at = datetime(2026, 11, 23, 9, 0)
    f.spool_run(data, at, [f.ok(h, at, f.document(h, at)) for h in ("gpu01", "cpu01")])
    assert run_fleetscope("ingest", "--data", str(data)).returncode == 0
    cfg = tmp_path / "fleetscope.toml"
    cfg.write_text('[collect]\ninventory = "inventory.ini"\n[report]\nhost_columns = ["owner", "room"]\n')
    proc = run_fleetscope("report", "--config", str(cfg), "--data", str(data), "--out", str(site))
    assert proc.returncode == 0, proc.stderr
    rows = hosts_table(site / "index.html")
    assert [(rows[h]["owner"], rows[h]["room"]) for h in ("cpu01", "gpu01")] == [("carol", ""), ("alice", "B 2.14")]
    latest = json.loads((site / "data" / "latest.json").read_text())
    assert {h["host"]: h["vars"] for h in latest["hosts"]}["gpu01"] == {"owner": "alice", "room": "B 2.14"}

    # --inventory picks another inventory; one that cannot be read costs the columns, not the report.
    proc = run_fleetscope("report", "--config", str(cfg), "--data", str(data), "--out", str(site),
                          "--inventory", str(tmp_path / "gone.ini"))
    assert proc.returncode == 0, proc.stderr
    assert "warning: report.host_columns left empty: inventory not found" in proc.stderr
    assert hosts_table(site / "index.html")["gpu01"]["owner"] == ""
