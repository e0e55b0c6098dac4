"""`fleetscope hosts`: edits keep the person's inventory intact; bad edits are refused and change nothing."""

from __future__ import annotations

import pytest

from fleetscope.hosts import HostsError, add_host, host_lines, list_hosts, remove_host

INVENTORY = """# our lab
[gpu]
gpu01.lab ansible_user=monitor  # the old one
gpu02.lab ansible_user=monitor

; cpu boxes
[cpu]
cpu01.lab

[gpu:vars]
owner=ml-team
"""


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.ini"
    path.write_text(INVENTORY)
    return path


def test_add_goes_at_the_end_of_its_group_and_keeps_everything_else(inventory):
    add_host(inventory, "gpu03.lab", "gpu", {"ansible_user": "monitor", "comment": "rack 4"})
    lines = inventory.read_text().splitlines()
    assert lines[:5] == INVENTORY.splitlines()[:4] + ["gpu03.lab ansible_user=monitor comment='rack 4'"]
    assert "\n".join(lines[5:]) + "\n" == "\n" + INVENTORY.split("\n\n", 1)[1]
    hosts = {h["host"]: h for h in list_hosts(inventory)}
    assert hosts["gpu03.lab"]["groups"] == "gpu" and hosts["gpu03.lab"]["user"] == "monitor"


def test_add_creates_a_missing_group_at_the_end(inventory):
    add_host(inventory, "big01.lab", "bigmem")
    assert inventory.read_text().endswith("owner=ml-team\n\n[bigmem]\nbig01.lab\n")


def test_remove_takes_only_the_host_lines(inventory):
    assert remove_host(inventory, "gpu01.lab") == 1
    text = inventory.read_text()
    assert "gpu01.lab" not in text and "# our lab" in text and "; cpu boxes" in text and "owner=ml-team" in text
    assert [h.name for h in host_lines(text)] == ["gpu02.lab", "cpu01.lab"]


@pytest.mark.parametrize("name, group, variables, message", [
    ("gpu01.lab", "gpu", {}, "already in"),
    ("evil;$(rm -rf /)", "gpu", {}, "not a valid host name"),
    ("ok01", "bad group", {}, "not a valid group name"),
    ("ok01", "gpu", {"bad key": "x"}, "not a valid variable name"),
])
def test_bad_adds_are_refused_and_change_nothing(inventory, name, group, variables, message):
    with pytest.raises(HostsError, match=message):
        add_host(inventory, name, group, variables)
    assert inventory.read_text() == INVENTORY


def test_removing_an_unknown_host_is_refused(inventory):
    with pytest.raises(HostsError, match="not in"):
        remove_host(inventory, "nope.lab")
    assert inventory.read_text() == INVENTORY


def test_the_cli_adds_lists_and_removes(run_fleetscope, inventory):
    add = run_fleetscope("hosts", "add", "gpu09.lab", "-i", str(inventory), "-g", "gpu", "--var", "owner=bob")
    assert add.returncode == 0 and "added to [gpu]" in add.stdout
    listing = run_fleetscope("hosts", "list", "-i", str(inventory))
    assert listing.returncode == 0 and "gpu09.lab" in listing.stdout and "(4 rows)" in listing.stdout
    again = run_fleetscope("hosts", "add", "gpu09.lab", "-i", str(inventory))
    assert again.returncode == 2 and "already in" in again.stderr
    assert run_fleetscope("hosts", "remove", "gpu09.lab", "-i", str(inventory)).returncode == 0
    assert inventory.read_text() == INVENTORY
