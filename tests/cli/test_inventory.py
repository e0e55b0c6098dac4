"""Inventory variables for the report's host columns: read by Ansible's parser, shown by `fleetscope report`."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from fleetscope import cli
from fleetscope.inventory import InventoryError, host_vars, read_hosts
from fleetscope.warehouse import ingest_pending
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

    # --inventory picks another inventory; one named there that is not found is a typo: exit 2, and the
    # site is left as it was (it was rendered again without the columns, and exit 0).
    proc = run_fleetscope("report", "--config", str(cfg), "--data", str(data), "--out", str(site),
                          "--inventory", str(tmp_path / "gone.ini"))
    assert proc.returncode == 2 and "inventory not found" in proc.stderr and "nothing was rendered" in proc.stderr
    assert hosts_table(site / "index.html")["gpu01"]["owner"] == "alice"
    # The settings' inventory, gone: it costs the columns, not the report.
    cfg.write_text('[collect]\ninventory = "gone.ini"\n[report]\nhost_columns = ["owner", "room"]\n')
    proc = run_fleetscope("report", "--config", str(cfg), "--data", str(data), "--out", str(site))
    assert proc.returncode == 0, proc.stderr
    assert "warning: report.host_columns left empty: inventory not found" in proc.stderr
    assert hosts_table(site / "index.html")["gpu01"]["owner"] == ""


GROUPED = """\
[gpu]
gpu01 ansible_host=10.0.0.1
gpu02
[cpu]
cpu01 ansible_host="{{ inventory_hostname }}.lab"
[rack7:children]
gpu
"""


def test_every_host_has_an_address_and_its_groups(tmp_path):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("lone01\n" + GROUPED)  # a host above every group header: Ansible's "ungrouped"
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "gpu02.yml").write_text("ansible_host: 10.0.0.2\nowner: bob\n")
    hosts = read_hosts(inventory, ["owner"])
    assert {h: (info["address"], info["groups"], info["vars"]) for h, info in hosts.items()} == {
        "gpu01": ("10.0.0.1", ["gpu", "rack7"], {}),  # a parent group counts; all and ungrouped do not
        "gpu02": ("10.0.0.2", ["gpu", "rack7"], {"owner": "bob"}),
        "cpu01": ("cpu01.lab", ["cpu"], {}),  # templated, as Ansible connects to it (it was shown as written)
        "lone01": ("lone01", [], {}),  # in no group of its own: none shown, not Ansible's "ungrouped"
    }
    assert read_hosts(inventory) == {h: {**info, "vars": {}} for h, info in hosts.items()}
    with pytest.raises(InventoryError, match="inventory not found"):
        read_hosts(tmp_path / "nope.ini")


def test_templates_left_as_written_when_the_budget_runs_out_are_said(tmp_path, monkeypatch):
    """Leftover: when the templating budget ran out (thousands of templated hosts), the rest showed as written
    without a word."""
    from fleetscope import inventory as inv

    path = tmp_path / "inventory.ini"
    path.write_text("[gpu]\n" + "".join(f'gpu{i:02} n={i} ansible_host="10.0.0.{{{{ n }}}}" owner="x{{{{ n }}}}"\n'
                                         for i in range(3)))
    said = []
    hosts = read_hosts(path, ["owner"], warn=said.append)
    assert [h["address"] for h in hosts.values()] == ["10.0.0.0", "10.0.0.1", "10.0.0.2"] and said == []
    monkeypatch.setattr(inv, "TEMPLATE_BUDGET_S", 0)
    hosts = read_hosts(path, ["owner"], warn=said.append)
    assert hosts["gpu01"]["address"] == "10.0.0.{{ n }}" and hosts["gpu01"]["vars"] == {"owner": "x{{ n }}"}
    assert len(said) == 1 and "6 templated values are shown as written" in said[0] and str(path) in said[0]


def test_report_command_passes_every_hosts_address_and_groups(tmp_path, capsys):
    data, site = tmp_path / "data", tmp_path / "site"
    at = datetime(2026, 11, 23, 9, 0)
    f.spool_run(data, at, [f.ok(h, at, f.document(h, at)) for h in ("gpu01", "cpu01", "gone01")])
    assert not ingest_pending(data).rejected
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(GROUPED.replace("{{ inventory_hostname }}.lab", "cpu01.lab"))
    cfg = tmp_path / "fleetscope.toml"
    cfg.write_text("")  # no host_columns: the inventory is read all the same
    argv = ["report", "--config", str(cfg), "--data", str(data), "--out", str(site)]
    assert cli.main([*argv, "--inventory", str(inventory)]) == 0
    assert "warning" not in capsys.readouterr().err
    rows = hosts_table(site / "index.html")
    assert {h: (r["Address"], r["Groups"]) for h, r in rows.items()} == {
        "cpu01": ("cpu01.lab", "cpu"), "gpu01": ("10.0.0.1", "gpu, rack7"), "gone01": ("gone01", "")}
    assert 'data-group="rack7"' in (site / "index.html").read_text(encoding="utf-8")
    # The settings' inventory, not found: names, no groups, a warning, and the report all the same.
    cfg.write_text(f'[collect]\ninventory = "{tmp_path / "gone.ini"}"\n')
    assert cli.main(argv) == 0
    assert "warning: no inventory groups and addresses: inventory not found" in capsys.readouterr().err
    assert hosts_table(site / "index.html")["gpu01"]["Groups"] == ""


def test_an_inventory_with_bytes_that_are_not_utf8_or_bidi_controls_still_renders(run_fleetscope, tmp_path):
    """Ansible reads such bytes as lone surrogates, which no page can be written with: the report failed
    with a traceback on every run. They, and bidirectional controls (one left open reverses the text after
    it), show as U+FFFD."""
    data, site = tmp_path / "data", tmp_path / "site"
    at = datetime(2026, 11, 23, 9, 0)
    f.spool_run(data, at, [f.ok("gpu01", at, f.document("gpu01", at))])
    assert run_fleetscope("ingest", "--data", str(data)).returncode == 0
    # "café" in Latin-1 (one byte, 0xe9, that is no UTF-8), and U+202E (right-to-left override) in UTF-8
    (tmp_path / "inventory.ini").write_bytes(b'[gpu]\ngpu01 owner="caf\xe9" room="B' + "\u202e".encode() + b'2"\n')
    cfg = tmp_path / "fleetscope.toml"
    cfg.write_text('[collect]\ninventory = "inventory.ini"\n[report]\nhost_columns = ["owner", "room"]\n')
    assert read_hosts(tmp_path / "inventory.ini", ["owner", "room"])["gpu01"]["vars"] == {
        "owner": "caf\ufffd", "room": "B\ufffd2"}
    proc = run_fleetscope("report", "--config", str(cfg), "--data", str(data), "--out", str(site))
    assert proc.returncode == 0, proc.stderr
    row = hosts_table(site / "index.html")["gpu01"]
    assert (row["owner"], row["room"]) == ("caf\ufffd", "B\ufffd2")


def test_a_plugin_file_in_a_symlinked_subfolder_is_found_and_link_loops_end(tmp_path):
    """Leftover: a plugin file inside a symlinked subfolder of an inventory folder was not looked for, while
    Ansible follows the link (its groups were then lost to the report). A link back up is read once."""
    from fleetscope.inventory import _names_a_plugin

    shared, inventory = tmp_path / "shared", tmp_path / "inv"
    shared.mkdir()
    (shared / "groups.yml").write_text("plugin: ansible.builtin.constructed\n")
    (inventory / "sub").mkdir(parents=True)
    (inventory / "hosts.ini").write_text("[gpu]\nnode1\n")
    (inventory / "sub" / "loop").symlink_to(inventory)  # a loop, read before "shared"
    (inventory / "sub" / "a.yml").write_text("all: {}\n")  # read once, not once per turn of the loop
    assert not _names_a_plugin(inventory)
    (inventory / "sub" / "shared").symlink_to(shared)
    assert _names_a_plugin(inventory, most=3)  # the loop's turns would fill the 3 files read before it
