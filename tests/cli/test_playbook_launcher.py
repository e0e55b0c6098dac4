"""fleetscope's ansible-playbook: Ansible's collection routing tables parsed once, kept across runs."""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import ansible
import ansible_runner
import pytest
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
    assert env[CACHE_ENV] == str(private / "yaml-cache")
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
    assert list((private / "yaml-cache").glob(f"ansible.builtin-*{SUFFIX}"))
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


# --- plugin documentation and Ansible's settings' definitions -------------------------------------------


def _documentation(module):
    """A plugin's DOCUMENTATION as Ansible's plugin loader hands it to PyYAML (plugins/loader.py)."""
    from ansible._internal._datatag import _tags

    return _tags.Origin(path=module.__file__).tag(_tags.TrustedAsTemplate().tag(module.DOCUMENTATION))


def _codec(internals=True):
    from ansible._internal._datatag._tags import Origin, TrustedAsTemplate
    from ansible.module_utils._internal import _datatag

    samples = (Origin(path="/p", line_num=3, col_num=4), TrustedAsTemplate())
    return playbook_launcher.TagCodec(_datatag.AnsibleTagHelper, samples, _datatag if internals else None)


def _same(a, b, where="") -> None:
    """The same value, of the same type, with the same data tags, all the way down."""
    from ansible.module_utils._internal._datatag import AnsibleTagHelper

    assert type(a) is type(b), where
    assert AnsibleTagHelper.tags(a) == AnsibleTagHelper.tags(b), where
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            _same(ka, kb, f"{where}/{ka}")
            _same(va, vb, f"{where}/{ka}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


class CountingYaml:
    """PyYAML, counting the documents it parses."""

    def __init__(self):
        import yaml

        self.yaml = yaml
        self.loads = 0
        self.SafeLoader = yaml.SafeLoader

    def load(self, stream, Loader=None):  # noqa: N803
        self.loads += 1
        return self.yaml.load(stream, Loader=Loader)


def test_a_plugins_documentation_comes_back_with_every_value_and_data_tag_as_ansible_parsed_it(tmp_path):
    from ansible.parsing.yaml.loader import AnsibleLoader
    from ansible.plugins.connection import ssh

    counting = CountingYaml()
    first = playbook_launcher.CachedYaml(counting, AnsibleLoader, _codec(), str(tmp_path), b"salt")
    parsed = first.load(_documentation(ssh), Loader=AnsibleLoader)
    again = playbook_launcher.CachedYaml(counting, AnsibleLoader, _codec(), str(tmp_path), b"salt")  # next run
    kept = again.load(_documentation(ssh), Loader=AnsibleLoader)
    assert counting.loads == 1
    _same(kept, parsed)
    _same(kept, counting.yaml.load(_documentation(ssh), Loader=AnsibleLoader))
    # the plugin's own text stays trusted as a template, and says where in the plugin it came from
    from ansible._internal._datatag._tags import Origin, TrustedAsTemplate

    default = kept["options"]["control_path_dir"]["default"]
    assert default == "~/.ansible/cp" and TrustedAsTemplate.is_tagged_on(default)
    assert Origin.get_tag(default).path == ssh.__file__ and Origin.get_tag(default).line_num


def test_decoding_through_ansibles_internals_gives_what_its_public_tagging_gives():
    from ansible._internal._datatag._tags import TrustedAsTemplate
    from ansible.parsing.yaml.loader import AnsibleLoader
    from ansible.plugins.callback import default

    fast, public = _codec(internals=True), _codec(internals=False)
    assert fast._tag != fast._public_tag  # this Ansible's internals passed the check: the fast way is in use
    value = CountingYaml().load(_documentation(default), Loader=AnsibleLoader)
    node = public.encode(value)
    assert fast.encode(value) == node
    decoded = fast.decode(node)
    _same(decoded, value)
    _same(public.decode(node), value)
    description = decoded["description"][0]
    assert TrustedAsTemplate.get_tag(description) is TrustedAsTemplate()  # the one instance, as Ansible's


def test_a_document_with_a_tag_it_does_not_know_is_parsed_each_time_and_not_kept(tmp_path):
    from ansible._internal._datatag import _tags
    from ansible.module_utils._internal._datatag import AnsibleTagHelper
    from ansible.parsing.yaml.loader import AnsibleLoader

    counting = CountingYaml()
    cached = playbook_launcher.CachedYaml(counting, AnsibleLoader, _codec(), str(tmp_path))
    unknown = _tags.SourceWasEncrypted()
    text = AnsibleTagHelper.tag("a: 1\n", [_tags.Origin(path="/x.py"), unknown])
    for _ in range(2):
        assert cached.load(text, Loader=AnsibleLoader) == {"a": 1}
    assert counting.loads == 2 and not list(tmp_path.rglob(f"*{SUFFIX}"))
    # another loader, or a stream, goes straight to PyYAML
    assert cached.load("b: 2\n", Loader=counting.SafeLoader) == {"b": 2}
    assert counting.loads == 3 and not list(tmp_path.rglob(f"*{SUFFIX}"))


def test_kept_documents_in_a_folder_others_could_write_are_not_read(tmp_path):
    from ansible.parsing.yaml.loader import AnsibleLoader
    from ansible.plugins.connection import local

    counting = CountingYaml()
    cached = playbook_launcher.CachedYaml(counting, AnsibleLoader, _codec(), str(tmp_path / "cache"))
    cached.load(_documentation(local), Loader=AnsibleLoader)
    (folder,) = (tmp_path / "cache").iterdir()
    assert folder.name.startswith("docs-") and folder.stat().st_mode & 0o777 == 0o700
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in folder.iterdir())
    folder.chmod(0o777)
    _same(cached.load(_documentation(local), Loader=AnsibleLoader),
          counting.yaml.load(_documentation(local), Loader=AnsibleLoader))
    assert counting.loads == 2  # parsed again, not read
    folder.chmod(0o700)
    cached.load(_documentation(local), Loader=AnsibleLoader)
    assert counting.loads == 2
    (kept,) = folder.iterdir()
    kept.chmod(0o666)  # a file others could have written, in a folder that is fine
    cached.load(_documentation(local), Loader=AnsibleLoader)
    assert counting.loads == 3


def test_another_ansible_python_or_pyyaml_gets_its_own_documents_and_the_old_ones_go(tmp_path):
    from ansible.parsing.yaml.loader import AnsibleLoader
    from ansible.plugins.connection import local

    counting = CountingYaml()
    for salt in (b"3.11|2.19.14|6.0.3", b"3.11|2.19.15|6.0.3"):
        playbook_launcher.CachedYaml(counting, AnsibleLoader, _codec(), str(tmp_path), salt).load(
            _documentation(local), Loader=AnsibleLoader)
    assert counting.loads == 2
    (folder,) = tmp_path.iterdir()  # the first version's folder went when the second's was made
    assert len(list(folder.iterdir())) == 1


def test_ansibles_settings_definitions_are_read_back_as_its_config_manager_parsed_them(tmp_path):
    from ansible.module_utils.common.yaml import yaml_load

    base = Path(ansible.__file__).parent / "config" / "base.yml"
    calls = []

    def load(stream):
        calls.append(stream)
        return yaml_load(stream)

    for _ in range(2):  # the second as the next run would
        with open(base, "rb") as f:
            assert playbook_launcher.cached_file_load(load, str(tmp_path), b"salt")(f) == yaml_load(base.read_bytes())
    assert len(calls) == 1
    (kept,) = tmp_path.iterdir()
    assert kept.name.startswith("config-base.yml-")


PROBE = '''
DOCUMENTATION = """
name: probe
short_description: the local connection, with a setting whose default is a template
description: [A test plugin.]
extends_documentation_fragment: [connection_pipelining]
options:
  where:
    description: A templated default.
    default: '{{ ANSIBLE_HOME ~ "/probe" }}'
"""
from ansible.plugins.connection.local import Connection as Local


class Connection(Local):
    transport = 'probe'
'''


def _config_play(tmp_path: Path, cache: Path | None):
    """A play that asks Ansible for settings whose defaults are templates, one from its own definitions
    (base.yml), one from a connection plugin's documentation, then runs a command over that plugin."""
    play = tmp_path / "play.yml"
    (tmp_path / "connection_plugins").mkdir(exist_ok=True)
    (tmp_path / "connection_plugins" / "probe.py").write_text(PROBE)
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  connection: probe\n  tasks:\n"
        "    - ansible.builtin.debug:\n"
        "        msg: \"probe={{ lookup('ansible.builtin.config', 'where', plugin_type='connection',"
        " plugin_name='probe') }} tmp={{ lookup('ansible.builtin.config', 'DEFAULT_LOCAL_TMP') }}\"\n"
        "    - ansible.builtin.command: echo over-probe\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.pop(CACHE_ENV, None)
    env["ANSIBLE_HOME"] = str(tmp_path / "home")
    if cache is not None:
        env[CACHE_ENV] = str(cache)
    return subprocess.run(
        [sys.executable, playbook_launcher.__file__, "-i", "localhost,", "-v", str(play),
         "-e", f"ansible_python_interpreter={sys.executable}"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_settings_with_templated_defaults_resolve_alike_parsed_or_read_back(tmp_path):
    home = tmp_path / "home"
    expected = f"probe={home / 'probe'} tmp={home / 'tmp'}"
    plain = _config_play(tmp_path, None)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert expected in plain.stdout and "over-probe" in plain.stdout
    cache = tmp_path / "cache"
    for _ in range(2):  # kept, then read back
        run = _config_play(tmp_path, cache)
        assert run.returncode == 0, run.stdout + run.stderr
        assert expected in run.stdout and "over-probe" in run.stdout
    assert list(cache.glob(f"config-base.yml-*{SUFFIX}"))
    (docs,) = cache.glob("docs-*")
    assert len(list(docs.glob(f"doc-probe.py-*{SUFFIX}"))) == 2  # its own and its fragment's: both kept
    assert list(docs.glob(f"doc-ssh.py-*{SUFFIX}"))
    before = {p: p.stat().st_mtime_ns for p in cache.rglob(f"*{SUFFIX}")}
    run = _config_play(tmp_path, cache)
    assert run.returncode == 0 and expected in run.stdout
    assert {p: p.stat().st_mtime_ns for p in cache.rglob(f"*{SUFFIX}")} == before  # read, none written


def test_garbage_collection_waits_for_the_first_fork_then_the_start_is_frozen():
    code = (
        "import gc, os, sys\n"
        f"sys.path.insert(0, {str(Path(playbook_launcher.__file__).parent)!r})\n"
        "import playbook_launcher as pl\n"
        "pl.collect_garbage_from_first_fork()\n"
        "assert not gc.isenabled()\n"
        "junk = [[i] for i in range(50000)]\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if gc.isenabled() and gc.get_freeze_count() > 50000 else 3)\n"
        "assert os.waitpid(pid, 0)[1] == 0, 'worker'\n"
        "assert gc.isenabled() and gc.get_freeze_count() > 50000\n"
        "frozen = gc.get_freeze_count()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "assert gc.get_freeze_count() == frozen  # later forks freeze nothing more\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "ok\n", out.stderr


# --- the play's hosts, from Ansible to `collect` --------------------------------------------------------


def test_ansible_writes_the_hosts_the_play_targets_in_its_order_as_the_play_starts(tmp_path):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[lab]\nzeta\nalpha\nmid\n[other]\nbeta\n[all:vars]\nansible_connection=local\n"
                         f"ansible_python_interpreter={sys.executable}\n")
    play = tmp_path / "play.yml"
    play.write_text("- hosts: lab\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.debug: {msg: \"{{ lookup('file', hosts_file) }}\"}\n")
    hosts_file = tmp_path / "hosts.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env[playbook_launcher.HOSTS_ENV] = str(hosts_file)
    env["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / "tmp")
    run = subprocess.run(
        [sys.executable, playbook_launcher.__file__, "-i", str(inventory), "--limit", "all:!alpha",
         "-e", f"hosts_file={hosts_file}", str(play)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(hosts_file.read_text()) == {"hosts": ["zeta", "mid"]}
    assert run.stdout.count('"msg": "{\\"hosts\\": [\\"zeta\\", \\"mid\\"]}"') == 2  # there before the first task


def _later(path: Path, text: str, delay: float) -> threading.Thread:
    def write():  # whole, as the launcher writes it
        time.sleep(delay)
        path.with_name("tmp").write_text(text)
        os.replace(path.with_name("tmp"), path)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_collect_waits_for_the_hosts_ansible_writes_and_does_not_parse_the_inventory(tmp_path):
    path = tmp_path / "hosts.json"
    writer = _later(path, '{"hosts": ["b", "a"]}', 0.2)

    def parse():
        raise AssertionError("parsed the inventory")

    assert collect.play_hosts(path, threading.Event(), threading.Event(), parse) == ["b", "a"]
    writer.join()


@pytest.mark.parametrize("content", [None, '{"hosts": null}', "not json", '{"hosts": [1, 2]}', '["a"]'])
def test_collect_parses_the_inventory_itself_when_ansible_ends_or_cannot_say(tmp_path, content):
    path = tmp_path / "hosts.json"
    ended = threading.Event()
    if content is None:  # Ansible ended before the play (an error): no file
        ended.set()
    else:
        path.write_text(content)
    assert collect.play_hosts(path, threading.Event(), ended, lambda: ["parsed"]) == ["parsed"]


def test_collect_parses_the_inventory_at_once_when_the_play_starts_without_the_hosts(tmp_path):
    """The launcher writes the file before the play's first event: a play that started without it (the
    write failed, or another Ansible no longer lists batches that way) is not waited for."""
    started = threading.Event()
    started.set()
    began = time.monotonic()
    assert collect.play_hosts(tmp_path / "never.json", started, threading.Event(), lambda: ["parsed"]) == [
        "parsed"]
    assert time.monotonic() - began < 10  # at once, not after the 60 s patience


def test_collect_stops_waiting_for_the_hosts_after_its_patience(tmp_path):
    started = time.monotonic()
    assert collect.play_hosts(tmp_path / "never.json", threading.Event(), threading.Event(), lambda: ["parsed"],
                              patience=0.3) == ["parsed"]
    assert 0.3 <= time.monotonic() - started < 5
