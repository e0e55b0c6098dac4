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


def test_a_groups_children_and_vars_are_no_host_lines(inventory):
    """[x:children] lists groups and [x:vars] variables, not hosts: a host named as a child group ("gpu") is
    not in the inventory until added, and adding or removing it leaves those sections as they are."""
    text = INVENTORY + "\n[all_gpu:children]\ngpu\n"
    inventory.write_text(text)
    assert [h.name for h in host_lines(text)] == ["gpu01.lab", "gpu02.lab", "cpu01.lab"]
    with pytest.raises(HostsError, match="gpu is not in"):
        remove_host(inventory, "gpu")
    assert inventory.read_text() == text
    add_host(inventory, "gpu", "cpu")
    edited = inventory.read_text()
    assert edited.endswith("owner=ml-team\n\n[all_gpu:children]\ngpu\n") and "[cpu]\ncpu01.lab\ngpu\n" in edited
    assert remove_host(inventory, "gpu") == 1
    assert inventory.read_text() == text


def test_a_host_in_two_groups_is_removed_from_both(run_fleetscope, inventory):
    """A host listed under two groups is one host to Ansible: remove takes every line of it (else it would
    still be collected through the other group), and says how many lines went."""
    inventory.write_text(INVENTORY.replace("[cpu]\ncpu01.lab\n", "[cpu]\ncpu01.lab\ngpu02.lab\n"))
    removed = run_fleetscope("hosts", "remove", "gpu02.lab", "-i", str(inventory))
    assert removed.returncode == 0 and "removed gpu02.lab" in removed.stdout and "(2 lines)" in removed.stdout, (
        removed.stdout + removed.stderr)
    assert inventory.read_text() == INVENTORY.replace("gpu02.lab ansible_user=monitor\n", "")
    assert "gpu02.lab" not in {h["host"] for h in list_hosts(inventory)}


def test_the_cli_adds_lists_and_removes(run_fleetscope, inventory):
    add = run_fleetscope("hosts", "add", "gpu09.lab", "-i", str(inventory), "-g", "gpu", "--var", "owner=bob")
    assert add.returncode == 0 and "added to [gpu]" in add.stdout
    listing = run_fleetscope("hosts", "list", "-i", str(inventory))
    assert listing.returncode == 0 and "gpu09.lab" in listing.stdout and "(4 rows)" in listing.stdout
    again = run_fleetscope("hosts", "add", "gpu09.lab", "-i", str(inventory))
    assert again.returncode == 2 and "already in" in again.stderr
    assert run_fleetscope("hosts", "remove", "gpu09.lab", "-i", str(inventory)).returncode == 0
    assert inventory.read_text() == INVENTORY


def test_options_may_come_before_the_host_name_and_before_the_action(run_fleetscope, inventory):
    """`hosts add -i X -g gpu NAME`, the order most people type, was refused ("unrecognized arguments: NAME"):
    the name was taken as absent at the first option."""
    add = run_fleetscope("hosts", "add", "-i", str(inventory), "-g", "gpu", "--var", "owner=bob", "gpu09.lab")
    assert add.returncode == 0 and "added to [gpu]" in add.stdout, add.stdout + add.stderr
    other = run_fleetscope("hosts", "-i", str(inventory), "add", "--var", "ansible_host=10.0.0.9", "gpu10.lab")
    assert other.returncode == 0 and "added to [ungrouped]" in other.stdout, other.stdout + other.stderr
    assert {h["host"]: h["address"] for h in list_hosts(inventory)}["gpu10.lab"] == "10.0.0.9"
    for name in ("gpu09.lab", "gpu10.lab"):
        removed = run_fleetscope("hosts", "remove", "-i", str(inventory), name)
        assert removed.returncode == 0, removed.stdout + removed.stderr
    missing = run_fleetscope("hosts", "add", "-i", str(inventory), "-g", "gpu")
    assert missing.returncode == 2 and "required: name" in missing.stderr and "Traceback" not in missing.stderr
    assert sorted(h["host"] for h in list_hosts(inventory)) == ["cpu01.lab", "gpu01.lab", "gpu02.lab"]


def test_an_edit_keeps_the_files_mode_its_link_and_its_line_endings(tmp_path):
    """The edit replaced the file: a 0644 inventory became 0600 (unreadable to the user cron runs as), a
    symlink became a plain file (the target left as it was), CRLF became LF."""
    import os

    real = tmp_path / "shared" / "hosts.ini"
    real.parent.mkdir()
    real.write_bytes(INVENTORY.replace("\n", "\r\n").encode())
    real.chmod(0o644)
    link = tmp_path / "inventory.ini"
    link.symlink_to(real)
    add_host(link, "gpu03.lab", "gpu")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.stat().st_mode & 0o777 == 0o644
    text = real.read_bytes().decode()
    assert "gpu03.lab\r\n" in text and text.count("\r\n") == text.count("\n")
    remove_host(link, "gpu01.lab")
    assert real.stat().st_mode & 0o777 == 0o644 and "gpu01.lab" not in real.read_text()


def test_edits_that_cannot_be_made_as_asked_are_refused(tmp_path, inventory):
    """A name that is a section header, a YAML inventory, a file this user may not write, a missing file to
    remove from: each refused, saying why, the file as it was."""
    import os

    with pytest.raises(HostsError, match="not a valid host name"):
        add_host(inventory, "[gpu]", "gpu")
    yaml = tmp_path / "hosts.yml"
    yaml.write_text("all:\n  hosts:\n    gpu01: {}\n")
    with pytest.raises(HostsError, match="only an INI inventory file can be edited"):
        add_host(yaml, "gpu02", "gpu")
    with pytest.raises(HostsError, match="inventory not found"):
        remove_host(tmp_path / "nosuch.ini", "gpu01.lab")
    if os.geteuid() != 0:  # root may write any file
        inventory.chmod(0o444)
        with pytest.raises(HostsError, match="not writable"):
            add_host(inventory, "gpu03.lab", "gpu")
    assert inventory.read_text() == INVENTORY


def test_two_adds_at_once_both_land(tmp_path, inventory):
    """Each add reads, changes and writes the whole file: six at once kept one host."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from fleetscope.hosts import add_host; "
            "add_host(Path(sys.argv[1]), sys.argv[2], 'gpu')")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(inventory), f"race{i}.lab"]) for i in range(6)]
    assert [p.wait(60) for p in procs] == [0] * 6
    assert {f"race{i}.lab" for i in range(6)} <= {h.name for h in host_lines(inventory.read_text())}


def test_another_users_inventory_keeps_its_owner(tmp_path, monkeypatch):
    """A file of another user, edited through its group: a new file renamed over it would be this user's
    (the owner cannot be given away), and the owner locked out of their inventory. It is rewritten in
    place: the same file, owner and mode. Root gives the new file the old owner."""
    import os

    from fleetscope import hosts

    inventory = tmp_path / "inventory.ini"
    inventory.write_text(INVENTORY)
    if os.geteuid() == 0:
        os.chown(inventory, 12345, 12345)
        inventory.chmod(0o660)
        add_host(inventory, "gpu03.lab", "gpu")  # as root
        st = inventory.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (12345, 12345, 0o660)
    before = inventory.stat()
    monkeypatch.setattr(hosts.os, "geteuid", lambda: 4321)  # neither root nor the owner
    add_host(inventory, "gpu04.lab", "gpu")
    after = inventory.stat()
    assert (after.st_ino, after.st_uid, after.st_gid, after.st_mode) == (
        before.st_ino, before.st_uid, before.st_gid, before.st_mode)
    assert "gpu04.lab" in inventory.read_text() and "# our lab" in inventory.read_text()


def test_a_host_may_be_added_to_a_second_group_without_variables(inventory):
    """Walkthrough: `hosts add gpu01.lab -g cpu` was refused as "already in", though Ansible takes a host in
    several groups. Without --var it is added; with one, or to a group it is in, it is refused."""
    assert add_host(inventory, "gpu01.lab", "cpu") == "gpu01.lab"
    hosts = {h["host"]: h for h in list_hosts(inventory)}
    assert hosts["gpu01.lab"]["groups"] == "cpu,gpu" and hosts["gpu01.lab"]["user"] == "monitor"
    edited = inventory.read_text()
    with pytest.raises(HostsError, match=r"already in \[gpu\], \[cpu\]"):
        add_host(inventory, "gpu01.lab", "cpu")
    with pytest.raises(HostsError, match=r"add it without --var"):
        add_host(inventory, "gpu01.lab", "bigmem", {"ansible_user": "root"})
    assert inventory.read_text() == edited


def test_removing_a_groups_last_host_removes_its_empty_header(inventory):
    """Walkthrough: removing the only host of [cpu] left "[cpu]" with nothing under it. A group with a comment
    left in it keeps its header; [gpu:vars] stays."""
    assert remove_host(inventory, "cpu01.lab") == 1
    assert inventory.read_text() == INVENTORY.replace("[cpu]\ncpu01.lab\n", "")  # the comment is the person's
    inventory.write_text(INVENTORY.replace("[cpu]\n", "[cpu]\n# cpu02 comes back in May\n"))
    remove_host(inventory, "cpu01.lab")
    assert "[cpu]\n# cpu02 comes back in May\n" in inventory.read_text()
    remove_host(inventory, "gpu01.lab")
    remove_host(inventory, "gpu02.lab")
    # [gpu] stays: Ansible refuses [gpu:vars] of a group not declared (as a child of another group too)
    assert inventory.read_text() == "# our lab\n[gpu]\n\n; cpu boxes\n[cpu]\n# cpu02 comes back in May\n\n" \
                                    "[gpu:vars]\nowner=ml-team\n"
    inventory.write_text("[a]\nh1\n\n[b]\nh2\n\n[c]\nh3\n\n[all_b:children]\nb\n")
    for host in ("h1", "h2", "h3"):
        remove_host(inventory, host)
    assert inventory.read_text() == "[b]\n\n[all_b:children]\nb\n"  # [a] and [c] went, [b] is a child


def test_an_inventory_that_does_not_parse_before_the_edit_is_named_not_the_edit(run_fleetscope, tmp_path):
    """Walkthrough: on an inventory already broken, `hosts remove` blamed "the edited inventory" and named a
    temporary file. It now says the file does not parse as it is, and changes nothing."""
    broken = tmp_path / "lab.ini"
    text = "[gpu\nnode1\n[cpu]\nnode2\n"
    broken.write_text(text)
    proc = run_fleetscope("hosts", "remove", "node2", "-i", str(broken))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{broken} does not parse as it is, before this edit" in proc.stderr and "fix it by hand" in proc.stderr
    assert "tmp" not in proc.stderr.replace(str(tmp_path), "") and broken.read_text() == text
