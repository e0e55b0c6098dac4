"""Inventories as admins keep them, beyond the shipped INI file: vault-encrypted variables, templated
addresses, inventory plugins named in full, a YAML file without a suffix, their own ansible.cfg, an
ansible_become meant for other playbooks. Each through the `fleetscope` command, in a process of its own:
Ansible is set up once per process (its settings, its vault secrets)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT

VAULT_PASSWORD = "correct horse battery staple"
ANSIBLE_VAULT = str(Path(sys.executable).parent / "ansible-vault")


def local(name: str, extra: str = "") -> str:
    """A YAML host entry reached through Ansible's local connection (no sshd needed)."""
    return (f"        {name}:\n          ansible_connection: local\n"
            f"          ansible_python_interpreter: \"{{{{ ansible_playbook_python }}}}\"\n{extra}")


@pytest.fixture
def vaulted(tmp_path):
    """An inventory folder whose group_vars/all/vault.yml is encrypted, and the password file."""
    password = tmp_path / "vault-password"
    password.write_text(VAULT_PASSWORD + "\n")
    inventory = tmp_path / "inv"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text("all:\n  children:\n    gpu:\n      hosts:\n" + local("node1")
                                         + local("node2"))
    secret = inventory / "group_vars" / "all" / "vault.yml"
    secret.write_text("vault_room: basement\n")
    subprocess.run([ANSIBLE_VAULT, "encrypt", "--vault-password-file", str(password), str(secret)], check=True,
                   capture_output=True, cwd=PROJECT)
    assert secret.read_text().startswith("$ANSIBLE_VAULT")
    (inventory / "group_vars" / "all" / "main.yml").write_text("room: \"{{ vault_room }}\"\n")
    return inventory, password


def test_vault_encrypted_group_vars_are_read_with_the_password_and_named_without_it(run_fleetscope, vaulted,
                                                                                   tmp_path):
    """Real-setups review: fleetscope's own reading of the inventory loaded no vault secrets. `hosts list` died
    with a traceback, the report lost every address and group, and a collect without the password stored every
    host as failed, with nothing saying what to do."""
    inventory, password = vaulted
    env = {"ANSIBLE_VAULT_PASSWORD_FILE": str(password)}
    listed = run_fleetscope("hosts", "list", "-i", str(inventory), env=env)
    assert listed.returncode == 0 and "node1 | gpu" in listed.stdout, listed.stdout + listed.stderr
    config = tmp_path / "fleetscope.toml"
    config.write_text('[report]\nhost_columns = ["room"]\n')
    data = tmp_path / "data"
    ok = run_fleetscope("collect", "--config", str(config), "-i", str(inventory), "--data", str(data), env=env)
    assert ok.returncode == 0 and "2 hosts: 2 ok" in ok.stdout, ok.stdout + ok.stderr
    assert "warning" not in ok.stderr, ok.stderr
    site = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert site.count("basement") >= 2  # the decrypted room of each host, as its column

    without = run_fleetscope("hosts", "list", "-i", str(inventory))
    assert without.returncode == 2 and "Traceback" not in without.stderr, without.stderr
    assert "no vault secrets found" in without.stderr and "ANSIBLE_VAULT_PASSWORD_FILE" in without.stderr
    runs_before = sorted((data / "runs").rglob("*.parquet"))
    failed = run_fleetscope("collect", "--config", str(config), "-i", str(inventory), "--data", str(data))
    assert failed.returncode == 3, failed.stdout + failed.stderr  # Ansible could not run: nothing collected
    assert "Ansible stopped before any of the 2 host(s) answered" in failed.stderr
    assert "ANSIBLE_VAULT_PASSWORD_FILE" in failed.stderr
    assert sorted((data / "runs").rglob("*.parquet")) == runs_before  # no run of failed hosts was stored
    check = run_fleetscope("hosts", "check", "-i", str(inventory), "--data", str(data))
    assert check.returncode == 1 and "timeout" not in check.stdout, check.stdout  # not "no answer in time"
    assert check.stdout.count("no vault secrets found") == 2 and "ANSIBLE_VAULT_PASSWORD_FILE" in check.stdout


def test_an_inline_vault_value_never_fails_the_report(run_fleetscope, tmp_path):
    """Real-setups review: an inline !vault value shown as a report column failed the whole report
    (ReferenceError, exit 6), with or without the password. With it, the value is shown; without it, the
    column says it is encrypted and the report is built."""
    password = tmp_path / "vault-password"
    password.write_text(VAULT_PASSWORD + "\n")
    encrypted = subprocess.run([ANSIBLE_VAULT, "encrypt_string", "--vault-password-file", str(password), "alice",
                                "--name", "owner"], check=True, capture_output=True, text=True, cwd=PROJECT).stdout
    owner = "".join(f"          {line}\n" for line in encrypted.strip().splitlines())
    address = subprocess.run([ANSIBLE_VAULT, "encrypt_string", "--vault-password-file", str(password), "localhost",
                              "--name", "ansible_host"], check=True, capture_output=True, text=True, cwd=PROJECT)
    owner += "".join(f"          {line}\n" for line in address.stdout.strip().splitlines())  # review: 2.19
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  children:\n    gpu:\n      hosts:\n" + local("node1", owner))
    config = tmp_path / "fleetscope.toml"
    config.write_text('[report]\nhost_columns = ["owner"]\n')
    data = tmp_path / "data"
    env = {"ANSIBLE_VAULT_PASSWORD_FILE": str(password)}
    ok = run_fleetscope("collect", "--config", str(config), "-i", str(inventory), "--data", str(data), env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ">alice<" in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    report = run_fleetscope("report", "--config", str(config), "-i", str(inventory), "--data", str(data))
    assert report.returncode == 0 and "Traceback" not in report.stderr, report.stderr
    assert "warning" not in report.stderr, report.stderr  # the other hosts' groups and columns are all there
    page = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "(vault-encrypted)" in page and "alice" not in page


def test_templated_addresses_and_plugins_named_in_full_read_as_ansible_reads_them(run_fleetscope, tmp_path):
    """Real-setups review: an ansible_host built from a template showed as its template, and a `constructed`
    inventory named as ansible.builtin.constructed lost its groups (the collections' loader was not set up),
    so `hosts check --limit` on such a group found no host while `collect --limit` collected them."""
    inventory = tmp_path / "inv"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "a.ini").write_text("[gpu]\nnode1 n=7 rack=r1\nnode2 n=8 rack=r2\n")
    (inventory / "group_vars" / "gpu.yml").write_text("ansible_host: \"10.0.0.{{ n }}\"\n")
    (inventory / "z.constructed.yml").write_text(
        "plugin: ansible.builtin.constructed\nstrict: false\nkeyed_groups:\n  - key: rack\n    prefix: rack\n")
    (inventory / "host_vars").mkdir()  # a folder that sorts before the plugin's file, and is large (review)
    for i in range(1001):
        (inventory / "host_vars" / f"other{i:04}.yml").write_text("x: 1\n")
    marker = tmp_path / "ran"  # a lookup is shown as written, never run by a report or a listing
    (inventory / "a.ini").write_text(f"[gpu]\nnode1 n=7 rack=r1\nnode2 n=8 rack=r2 "
                                     f"ansible_user=\"{{{{ lookup('pipe', 'touch {marker}') }}}}\"\n"
                                     "node3 ansible_host=\"{{ hostvars['node1'].ansible_host }}\"\n"
                                     # second review: a lookup in a variable the template names ran all the same
                                     f"node4 ansible_host=\"{{{{ addr }}}}\" "
                                     f"addr=\"{{{{ lookup ('pipe', 'touch {marker}2') }}}}\"\n")
    listed = run_fleetscope("hosts", "list", "-i", str(inventory))
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")] for line in listed.stdout.splitlines()}
    assert rows["node1"][1:3] == ["gpu,rack_r1", "10.0.0.7"] and rows["node2"][1:3] == ["gpu,rack_r2", "10.0.0.8"]
    assert "Error loading plugin" not in listed.stderr, listed.stderr
    assert rows["node2"][4].startswith("{{ lookup('pipe'") and not marker.exists()
    assert rows["node3"][2] == "10.0.0.7"  # through hostvars, as a play resolves it
    assert rows["node4"][2] == "{{ addr }}" and not Path(f"{marker}2").exists()


def test_a_yaml_inventory_without_a_suffix_is_not_edited_as_ini(run_fleetscope, tmp_path):
    """Real-setups review: `hosts add` on a YAML file named `hosts` printed Ansible's INI warnings and blamed
    "the edited inventory"; `remove` said a host that is there was not. Both refuse it as not INI."""
    inventory = tmp_path / "hosts"
    text = "all:\n  hosts:\n    gpu01:\n      ansible_host: 10.0.0.1\n"
    inventory.write_text(text)
    script = tmp_path / "dynamic"
    script.write_text("#!/bin/sh\necho '{}'\n")
    script.chmod(0o755)
    toml = tmp_path / "inv.toml"  # second review: add appended an INI group to it, which Ansible then refused
    toml.write_text("[gpu.hosts]\ngpu01 = {}\n")
    for args in (("add", "gpu02"), ("remove", "gpu01")):
        for path in (inventory, script, toml):
            proc = run_fleetscope("hosts", *args, "-i", str(path))
            assert proc.returncode == 2 and "only an INI inventory file can be edited" in proc.stderr, proc.stderr
    assert inventory.read_text() == text
    ini = tmp_path / "lab"
    ini.write_text("gpu01:2222 comment='rack: top'\n[gpu]\n")
    assert run_fleetscope("hosts", "add", "gpu02", "-g", "gpu", "-i", str(ini)).returncode == 0  # INI, no suffix
    assert ini.read_text() == "gpu01:2222 comment='rack: top'\n[gpu]\ngpu02\n"
    # review: INI files the first heuristic refused: a comment holding ": " on the first line, an execute bit
    commented = tmp_path / "lab2"
    commented.write_text("[gpu]   # GPU nodes: rack 7\ngpu01  # owner: alice\n")
    commented.chmod(0o755)  # copied from a share: Ansible reads it as INI all the same
    assert run_fleetscope("hosts", "add", "gpu02", "-g", "gpu", "-i", str(commented)).returncode == 0
    assert commented.read_text().endswith("gpu01  # owner: alice\ngpu02\n")


def test_a_users_ansible_config_is_named_as_not_read(run_fleetscope, tmp_path):
    """Real-setups review: a user's ANSIBLE_CONFIG was silently not read (fleetscope runs Ansible with its own
    ansible.cfg, whose settings collecting relies on); the commands that run Ansible now say so."""
    theirs = tmp_path / "ansible.cfg"
    theirs.write_text("[defaults]\nremote_user = monitor\n")
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n" + local("node1")[4:])
    proc = run_fleetscope("collect", "-i", str(inventory), "--data", str(tmp_path / "data"), "--no-report",
                          env={"ANSIBLE_CONFIG": str(theirs)})
    assert proc.returncode == 0 and "1 host: 1 ok" in proc.stdout, proc.stdout + proc.stderr
    assert f"warning: ANSIBLE_CONFIG={theirs} is not read" in proc.stderr
    report = run_fleetscope("report", "-i", str(inventory), "--data", str(tmp_path / "data"),
                            env={"ANSIBLE_CONFIG": str(theirs)})  # it reads the inventory with fleetscope's too
    assert report.returncode == 0 and f"warning: ANSIBLE_CONFIG={theirs} is not read" in report.stderr
    same = run_fleetscope("hosts", "list", "-i", str(inventory), env={"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")})
    assert same.returncode == 0 and "warning" not in same.stderr, same.stderr
