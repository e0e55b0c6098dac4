"""The settings file: defaults, the shipped example, the docs and strict errors stay in step."""

from __future__ import annotations

import re

import pytest
import tomllib

from fleetscope.settings import DEFAULTS, PROJECT_DIR, SettingsError, load


def test_the_example_file_lists_every_key_with_its_default():
    with open(PROJECT_DIR / "fleetscope.toml.example", "rb") as fh:
        assert tomllib.load(fh) == DEFAULTS


def test_the_docs_describe_every_key():
    text = (PROJECT_DIR / "docs" / "settings.md").read_text()
    for section, keys in DEFAULTS.items():
        assert f"`[{section}]`" in text
        for key, default in keys.items():
            row = re.search(rf"^\| `{key}` \| `([^`]*)` \|", text, re.M)
            assert row, f"{section}.{key} is not documented"
            assert tomllib.loads(f"v = {row.group(1)}")["v"] == default, f"{section}.{key}: wrong default"


def test_values_from_the_file_override_and_paths_are_relative_to_it(tmp_path, monkeypatch):
    monkeypatch.delenv("FLEETSCOPE_DATA", raising=False)
    monkeypatch.delenv("FLEETSCOPE_OUT", raising=False)
    cfg = tmp_path / "fleetscope.toml"
    cfg.write_text('[collect]\nforks = 7\n[storage]\ndata_dir = "store"\n[report]\nbusy_threshold_pct = 10\n')
    settings = load(cfg)
    assert settings.get("collect", "forks") == 7
    assert settings.get("report", "busy_threshold_pct") == 10
    assert settings.data_dir == tmp_path / "store"
    monkeypatch.setenv("FLEETSCOPE_DATA", str(tmp_path / "elsewhere"))
    assert load(cfg).data_dir == tmp_path / "elsewhere"
    monkeypatch.setenv("FLEETSCOPE_OUT", str(tmp_path / "www"))
    assert load(cfg).out_dir == tmp_path / "www"


@pytest.mark.parametrize("body, message", [
    ("[collect]\nforkz = 3\n", "unknown key collect.forkz"),
    ("[colect]\n", "unknown section [colect]"),
    ("[collect]\nforks = '3'\n", "collect.forks must be int"),
    ("[storage]\nkeep_spool = 1\n", "storage.keep_spool must be bool"),
    # Python's bool is an int: without its own check, true would be read as 1 fork and 1 s of time limit
    ("[collect]\nforks = true\n", "collect.forks must be int, got True"),
    ("[collect]\nhost_timeout_s = false\n", "collect.host_timeout_s must be int, got False"),
    ("[collect\n", "not valid TOML"),
    # numbers out of range: found on reading, not as every host failing or unreachable
    ("[collect]\nhost_timeout_s = -5\n", "collect.host_timeout_s must be >= 1, got -5"),
    ("[collect]\nconnect_timeout_s = 0\n", "collect.connect_timeout_s must be >= 1, got 0"),
    ("[collect]\nforks = 0\n", "collect.forks must be >= 1, got 0"),
    ("[rollup]\nraw_days = -1\n", "rollup.raw_days must be >= 0, got -1"),
    ("[report]\ndisk_full_pct = 120.0\n", "report.disk_full_pct must be between 0 and 100, got 120.0"),
    ("[bookings]\nsources = [1, 2]\n", "bookings.sources must be a list of str, got [1, 2]"),
])
def test_mistakes_are_named(tmp_path, body, message):
    cfg = tmp_path / "fleetscope.toml"
    cfg.write_text(body)
    with pytest.raises(SettingsError, match=re.escape(message)):
        load(cfg)


def test_a_settings_file_that_cannot_be_read_is_a_settings_error(tmp_path):
    cfg = tmp_path / "fleetscope.toml"
    cfg.write_bytes(b"\xff\xfe[collect]\n")
    with pytest.raises(SettingsError, match="not UTF-8 text"):
        load(cfg)
    with pytest.raises(SettingsError, match=f"cannot read the settings file {re.escape(str(tmp_path))}"):
        load(tmp_path)  # a folder


def test_every_default_is_within_its_own_bounds(tmp_path):
    """The example file holds every default: reading it back checks them against the bounds too."""
    cfg = tmp_path / "fleetscope.toml"
    cfg.write_text((PROJECT_DIR / "fleetscope.toml.example").read_text())
    load(cfg)


def test_the_playbook_never_asks_for_root_and_host_keys_stay_checked():
    import configparser

    import yaml

    for path in [PROJECT_DIR / "playbooks" / "collect.yml", PROJECT_DIR / "playbooks" / "check.yml",
                 *(PROJECT_DIR / "roles").rglob("*.yml")]:
        data = yaml.safe_load(path.read_text()) or {}
        if path.parent.name == "playbooks":  # become turned off, whatever the inventory says; nothing else
            for play in data:
                assert play.get("vars", {}).get("ansible_become") is False, path
                play["vars"].pop("ansible_become")
        assert "become" not in yaml.safe_dump(data), path
    cfg = configparser.ConfigParser()
    cfg.read(PROJECT_DIR / "ansible.cfg")
    assert cfg.getboolean("defaults", "host_key_checking") is True
    assert "BatchMode=yes" in cfg.get("ssh_connection", "ssh_args")


def test_host_key_checking_reaches_ansible_runner_as_ansible_cfg_says(tmp_path, monkeypatch):
    """ansible-runner would set ANSIBLE_HOST_KEY_CHECKING=False; fleetscope passes ansible.cfg's value on,
    read as Ansible reads the file (a `;` comment may end the line), and the user's environment wins."""
    from fleetscope import collect

    monkeypatch.delenv("ANSIBLE_HOST_KEY_CHECKING", raising=False)
    assert collect.runner_env(tmp_path, None, 10)[1]["ANSIBLE_HOST_KEY_CHECKING"] == "True"  # the shipped file
    cfg = tmp_path / "ansible.cfg"
    monkeypatch.setattr(collect, "ANSIBLE_CFG", cfg)
    cfg.write_text("[defaults]\nhost_key_checking = no ; a lab of throwaway VMs\n")
    assert collect.runner_env(tmp_path, None, 10)[1]["ANSIBLE_HOST_KEY_CHECKING"] == "no"
    cfg.write_text("[defaults]\nforks = 5\n")
    assert collect.runner_env(tmp_path, None, 10)[1]["ANSIBLE_HOST_KEY_CHECKING"] == "True"  # Ansible's default
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")
    assert collect.runner_env(tmp_path, None, 10)[1]["ANSIBLE_HOST_KEY_CHECKING"] == "False"
