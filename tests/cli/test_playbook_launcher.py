"""fleetscope's ansible-playbook: Ansible's collection routing tables parsed once, kept across runs."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path

import ansible
import ansible_runner
from ansible.utils.collection_loader._collection_meta import _meta_yml_to_dict

from fleetscope import collect, playbook_launcher
from fleetscope.playbook_launcher import CACHE_ENV, SUFFIX, cached_parser

BUILTIN = Path(ansible.__file__).parent / "config" / "ansible_builtin_runtime.yml"


class Counting:
    def __init__(self):
        self.calls = 0

    def __call__(self, data, content_id):
        self.calls += 1
        return {"plugin_routing": {"modules": {"old": {"redirect": data.decode()}}}}


def test_a_table_is_parsed_once_then_read_back_by_the_next_process(tmp_path):
    parse = Counting()
    first = cached_parser(parse, str(tmp_path))(b"ns.one", ("ns.coll", "runtime.yml"))
    again = cached_parser(parse, str(tmp_path))(b"ns.one", ("ns.coll", "runtime.yml"))  # as a new process
    assert parse.calls == 1
    assert again == first == {"plugin_routing": {"modules": {"old": {"redirect": "ns.one"}}}}
    assert again is not first  # each run gets its own copy to change


def test_changed_yaml_is_parsed_again_and_replaces_only_its_collections_table(tmp_path):
    parse = Counting()
    cached_parser(parse, str(tmp_path))(b"ns.one", ("ns.coll", "runtime.yml"))
    cached_parser(parse, str(tmp_path))(b"other", ("ns.other", "runtime.yml"))
    upgraded = cached_parser(parse, str(tmp_path))(b"ns.two", ("ns.coll", "runtime.yml"))
    assert parse.calls == 3
    assert upgraded["plugin_routing"]["modules"]["old"]["redirect"] == "ns.two"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[0].startswith("ns.coll-") and names[1].startswith("ns.other-")
    assert cached_parser(parse, str(tmp_path))(b"ns.two", ("ns.coll", "runtime.yml")) == upgraded
    assert parse.calls == 3


def test_a_kept_table_cut_short_or_not_a_table_is_parsed_again(tmp_path):
    parse = Counting()
    cached_parser(parse, str(tmp_path))(b"ns.one", ("ns.coll", "runtime.yml"))
    (kept,) = tmp_path.iterdir()
    kept.write_bytes(kept.read_bytes()[:7])
    assert cached_parser(parse, str(tmp_path))(b"ns.one", ("ns.coll", "runtime.yml"))["plugin_routing"]
    assert parse.calls == 2
    kept.write_bytes(marshal.dumps(["a list"]))
    assert cached_parser(parse, str(tmp_path))(b"ns.one", ("ns.coll", "runtime.yml"))["plugin_routing"]
    assert parse.calls == 3
    assert isinstance(marshal.loads(kept.read_bytes()), dict)  # and written whole again


def test_another_python_ansible_or_pyyaml_parses_afresh_and_leftovers_go(tmp_path):
    parse = Counting()
    cached_parser(parse, str(tmp_path), b"3.11|2.19.14|6.0.3")(b"ns.one", ("ns.coll", "runtime.yml"))
    (tmp_path / "ns.coll-0123.marshal.4242.tmp").write_bytes(b"a killed writer's")
    cached_parser(parse, str(tmp_path), b"3.11|2.19.15|6.0.3")(b"ns.one", ("ns.coll", "runtime.yml"))
    assert parse.calls == 2
    (kept,) = tmp_path.iterdir()
    assert kept.name.startswith("ns.coll-") and kept.name.endswith(SUFFIX)
    assert cached_parser(parse, str(tmp_path), b"3.11|2.19.15|6.0.3")(b"ns.one", ("ns.coll", "runtime.yml"))
    assert parse.calls == 2


def test_a_folder_that_cannot_be_written_costs_only_the_parse(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    parse = Counting()
    for _ in range(2):
        assert cached_parser(parse, str(blocker))(b"x", ("ns.coll", "runtime.yml"))["plugin_routing"]
    assert parse.calls == 2


def test_the_kept_file_stays_in_its_folder_whatever_the_content_id(tmp_path):
    folder = tmp_path / "cache"
    for content_id in [("../../etc/x", "runtime.yml"), ("", "runtime.yml"), "/abs", None, ("é\x00/..",)]:
        cached_parser(Counting(), str(folder))(b"x", content_id)
    assert not [p for p in tmp_path.iterdir() if p != folder]
    assert all(p.parent == folder and p.name.endswith(SUFFIX) for p in folder.iterdir())


def _playbook(tmp_path: Path, cache: Path | None):
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.set_fact: {answer: 42}\n"
        "    - ansible.builtin.assert: {that: answer == 42}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.pop(CACHE_ENV, None)
    if cache is not None:
        env[CACHE_ENV] = str(cache)
    env["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / "tmp")
    return subprocess.run(
        [sys.executable, playbook_launcher.__file__, "-i", "localhost,", "-c", "local", str(play)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_real_ansible_playbook_keeps_the_builtin_routing_as_ansible_parses_it(tmp_path):
    cache = tmp_path / "cache"
    run = _playbook(tmp_path, cache)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok=2" in run.stdout
    (kept,) = cache.glob(f"ansible.builtin-*{SUFFIX}")
    assert marshal.loads(kept.read_bytes()) == _meta_yml_to_dict(BUILTIN.read_bytes(), ("ansible.builtin", "x"))
    before = kept.stat()
    run = _playbook(tmp_path, cache)
    assert run.returncode == 0, run.stdout + run.stderr
    after = kept.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # read, not written again


def test_without_the_variable_it_is_plain_ansible_playbook(tmp_path):
    run = _playbook(tmp_path, None)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok=2" in run.stdout
    assert not list(tmp_path.rglob(f"*{SUFFIX}"))


def test_fleetscope_runs_its_playbooks_through_the_launcher_with_this_python(tmp_path):
    """What collect, hosts check and the admin actions give ansible-runner, run as ansible-runner runs it."""
    private, env = collect.runner_env(tmp_path, None, 10)
    assert env[CACHE_ENV] == str(private / "routing-cache")
    play = tmp_path / "play with space.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    events = []
    runner = ansible_runner.run(private_data_dir=str(private), **collect.playbook_args(play), quiet=True,
                                inventory=str(inventory), envvars=env, timeout=120, event_handler=events.append)
    assert runner.rc == 0, runner.stdout.read()
    assert runner.config.command[:3] == [sys.executable, playbook_launcher.__file__, str(play)]
    assert [e["event_data"]["res"]["ping"] for e in events if e["event"] == "runner_on_ok"] == ["pong"]
    assert list((private / "routing-cache").glob(f"ansible.builtin-*{SUFFIX}"))
    # its arguments went straight to ansible-runner: none left in the folder other runs share
    assert not (private / "env").exists()


def test_run_as_a_file_it_takes_fleetscopes_package_off_the_import_path(monkeypatch, tmp_path):
    here = str(Path(playbook_launcher.__file__).parent)
    monkeypatch.setattr(sys, "path", [here, "/elsewhere"])
    playbook_launcher._drop_own_folder()
    assert sys.path == ["/elsewhere"]
    # run with -m, the first entry is the working folder: kept
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", here])
    playbook_launcher._drop_own_folder()
    assert sys.path == ["", here]


def test_ansible_sees_the_ansible_playbook_beside_this_python_as_its_program(tmp_path):
    """Ansible finds helpers in argv[0]'s folder (the ssh connection's password prompt runs `ansible` there)."""
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    out = subprocess.run([sys.executable, playbook_launcher.__file__, "--version"], capture_output=True,
                         text=True, timeout=60, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (location,) = [line.split("=", 1)[1].strip() for line in out.stdout.splitlines()
                   if line.strip().startswith("executable location")]
    assert location == str(Path(sys.executable).parent / "ansible-playbook")
    assert (Path(location).parent / "ansible").is_file()
