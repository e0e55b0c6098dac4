"""ansible-playbook, with the YAML Ansible parses at every start kept parsed across runs.

Before it contacts the first host, every ansible-playbook run parses the same YAML again, on the critical
path of every collection, check and admin action (CPU, 2-core VM, Python 3.11, ansible-core 2.19):
- ansible-core's routing table for its builtin collection (config/ansible_builtin_runtime.yml, 370 KB) and
  each installed collection's meta/runtime.yml it resolves a plugin through: 0.19 s;
- the DOCUMENTATION of every connection, shell, become and callback plugin it loads, and their doc
  fragments, where each plugin declares its settings (34 documents: 0.11-0.17 s);
- its own settings' definitions (config/base.yml, 90 KB: 0.03-0.05 s).

This module keeps each parse in the folder that $FLEETSCOPE_YAML_CACHE names, as marshal data, under a hash
of the YAML and of the versions of Python, Ansible and PyYAML (so that an upgrade is parsed afresh):
- routing tables through the hook Ansible's collection loader has for this (its parser "may be
  monkeypatched to another implementation by some tools" and is handed an id of the content "to allow other
  implementations to cache the output"; ansible-test replaces it);
- plugin documentation through the `yaml` that Ansible's plugin loader and doc fragments call, with Ansible's
  data tags (where each value came from, and that the plugin's own text may be templated) kept too;
- the settings' definitions through the `yaml_load` that Ansible's config manager calls.
A document not seen before, one whose values or tags this module does not know, a kept file that does not
load, or an Ansible without these names gets Ansible's own parser. The folder is read only if it is this
user's, not a symlink, and writable by no one else, and so must each file, checked on the file opened: a
kept document may hold templates Ansible trusts.

With $FLEETSCOPE_PLAY_HOSTS, it also writes the hosts each play targets to that file as the play starts
(install_play_hosts), so that `fleetscope collect` need not parse the inventory a second time.

ansible-runner starts it in place of ansible-playbook for every playbook fleetscope runs
(collect.playbook_args), as a file: the run needs no fleetscope importable from ansible-runner's folder.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import marshal
import os
import shutil
import stat
import sys

CACHE_ENV = "FLEETSCOPE_YAML_CACHE"
SUFFIX = ".marshal"
#: The kept files' own format (TagCodec's nodes): part of every key, so that another fleetscope's files are
#: never read as this one's.
FORMAT = b"fleetscope-yaml-cache-1"
#: A file to write the hosts each play targets to, in the order Ansible starts them (install_play_hosts).
HOSTS_ENV = "FLEETSCOPE_PLAY_HOSTS"


class Unsupported(Exception):
    """A value, or a data tag, that this module cannot keep: the document is parsed by Ansible each run."""


def _write_whole(path: str, data: bytes) -> None:
    """`data` to `path`, readable by this user only, renamed into place: a reader sees all of it or no file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # replaced, or never written


def trusted_folder(folder: str) -> bool:
    """This user's, not a symlink, and writable by no one else: kept documents are read only from there."""
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _safe_name(name) -> str:
    """A file name part: letters, digits, "." and "_" only (so "<name>-" starts no other document's files)."""
    name = "".join(c if c.isascii() and (c.isalnum() or c in "._") else "_" for c in str(name))[:100]
    return name.strip("._") or "table"


class Kept:
    """Documents kept parsed in `folder`, each as `<name>-<hash of salt and key>.marshal`; a new version of a
    document replaces the files of its name."""

    def __init__(self, folder: str, salt: bytes = b"", replaces: str = ""):
        self.folder = folder
        self.salt = salt
        # With `replaces`, each name may have several documents (a plugin's own and its doc fragments): none
        # replaces another, and the folder replaces its siblings whose names start with `replaces` (the
        # documents of an older Ansible, Python or PyYAML) instead.
        self.replaces = replaces

    def path(self, name: str, key: bytes) -> str:
        digest = hashlib.sha256(self.salt + b"\0" + key).hexdigest()[:32]
        return os.path.join(self.folder, f"{name}-{digest}{SUFFIX}")

    def read(self, path: str):
        """The kept data, or None (not kept yet, cut short, not marshal data, or a folder or file that someone
        else owns or could have written: a kept document may hold templates Ansible trusts)."""
        if not trusted_folder(self.folder):
            return None
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())  # the file opened, not a name someone could have swapped since
                if st.st_uid != os.geteuid() or st.st_mode & 0o022 or not stat.S_ISREG(st.st_mode):
                    return None
                return marshal.loads(f.read())  # marshal.load(f) reads it piece by piece: 10 times slower
        except Exception:  # noqa: BLE001 - whatever is there, Ansible parses the document
            return None

    def keep(self, name: str, path: str, data) -> None:
        """Write `data` (whole or not at all, readable by this user only) and remove the name's other files
        (older versions, a killed writer's leftovers). Best effort: a folder that cannot be written costs the
        next run the parse, nothing else."""
        others = []
        try:
            raw = marshal.dumps(data)
            if not os.path.isdir(self.folder):
                os.makedirs(self.folder, mode=0o700, exist_ok=True)
                self._replace_siblings()
            if not trusted_folder(self.folder):
                return  # never read: nothing to write there either
            _write_whole(path, raw)
            if not self.replaces:
                own = os.path.basename(path)
                others = [o for o in os.listdir(self.folder) if o.startswith(f"{name}-") and o != own]
        except (OSError, ValueError):
            pass
        for other in others:
            try:
                os.unlink(os.path.join(self.folder, other))
            except OSError:
                pass

    def _replace_siblings(self) -> None:
        if not self.replaces:
            return
        parent, own = os.path.split(self.folder)
        for sibling in os.listdir(parent):
            if sibling.startswith(self.replaces) and sibling != own:
                shutil.rmtree(os.path.join(parent, sibling), ignore_errors=True)


def cached_parser(parse, folder: str, salt: bytes = b""):
    """Ansible's routing-table parse(yaml, content_id) -> dict, remembered in `folder` across processes,
    under a hash of `salt` (what else the parse depends on: install() passes Python's, Ansible's and PyYAML's
    versions) and the YAML."""
    kept = Kept(folder, salt)

    def parse_cached(data, content_id):
        raw = data if isinstance(data, bytes) else str(data).encode("utf-8", "surrogatepass")
        collection = content_id[0] if isinstance(content_id, tuple) and content_id else content_id
        name = _safe_name(collection)
        path = kept.path(name, raw)
        table = kept.read(path)
        if isinstance(table, dict):
            return table
        table = parse(data, content_id)
        kept.keep(name, path, table)
        return table

    return parse_cached


def cached_file_load(load, folder: str, salt: bytes = b""):
    """The config manager's yaml_load(open file) -> plain data, remembered in `folder` under a hash of `salt`
    and the file's bytes."""
    kept = Kept(folder, salt)

    def load_cached(stream):
        name = getattr(stream, "name", None)
        if not hasattr(stream, "read") or not isinstance(name, (str, bytes)):
            return load(stream)
        raw = stream.read()
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
        name = "config-" + _safe_name(os.path.basename(os.fsdecode(name)))
        path = kept.path(name, data)
        value = kept.read(path)
        if value is not None:
            return value
        value = load(raw)
        kept.keep(name, path, value)  # marshal refuses what it cannot write: nothing kept
        return value

    return load_cached


class TagCodec:
    """Ansible's tagged YAML values as plain marshal data and back. A node is (value,) untagged, or
    (kind, tags, value): kind 0 a dict of (key node, value node) pairs, 1 a list of nodes, 2 a scalar; tags a
    sorted tuple of (tag name, its fields' values). Only the tags of the types of `samples` (frozen
    dataclasses) are known.

    Decoding rebuilds what Ansible's parse built, a tagged value and a tag object for each of the thousands of
    values in a plugin's documentation. AnsibleTagHelper.tag() checks each tag list and copies it, which
    made reading a document back cost half of parsing it; where this Ansible has the internals tag() ends in
    (the tagged type's factory, handed a tags mapping), decoding calls them directly, after checking once that
    they give what tag() gives, and builds the tag objects without re-running their checks."""

    SCALARS = (str, int, float, bool, type(None))

    def __init__(self, helper, samples, datatag=None):
        self.helper = helper  # ansible.module_utils._internal._datatag.AnsibleTagHelper
        self.types = {type(t).__name__: type(t) for t in samples}
        self.fields = {name: tuple(f.name for f in dataclasses.fields(t)) for name, t in self.types.items()}
        self._tag = self._public_tag
        self._make = self._public_make
        if datatag is not None:  # ansible.module_utils._internal._datatag
            self._use_internals(datatag, samples)

    def tags(self, value) -> tuple:
        out = []
        for tag in self.helper.tags(value):
            name = type(tag).__name__
            if self.types.get(name) is not type(tag):
                raise Unsupported(name)
            fields = tuple(getattr(tag, f) for f in self.fields[name])
            if not all(isinstance(f, self.SCALARS) for f in fields):
                raise Unsupported(name)
            out.append((name, fields))
        return tuple(sorted(out))

    def encode(self, value):
        tags = self.tags(value)
        if isinstance(value, dict):
            return (0, tags, [(self.encode(k), self.encode(v)) for k, v in value.items()])
        if isinstance(value, list):
            return (1, tags, [self.encode(v) for v in value])
        base = self.helper.untag(value)
        if type(base) not in self.SCALARS:
            raise Unsupported(type(value).__name__)
        return (2, tags, base) if tags else (base,)

    def decode(self, node):
        if len(node) == 1:
            return node[0]
        kind, tags, raw = node
        if kind == 0:
            value = {self.decode(k): self.decode(v) for k, v in raw}
        elif kind == 1:
            value = [self.decode(v) for v in raw]
        else:
            value = raw
        return self._tag(value, [self._make(name, fields) for name, fields in tags]) if tags else value

    def _public_tag(self, value, tags):
        return self.helper.tag(value, tags)

    def _public_make(self, name, fields):
        return self.types[name](**dict(zip(self.fields[name], fields)))

    def _use_internals(self, datatag, samples) -> None:
        mapping = getattr(datatag, "_AnsibleTagsMapping", None)
        tagged_type = getattr(getattr(datatag, "AnsibleTaggedObject", None), "_get_tagged_type", None)
        if not callable(mapping) or not callable(tagged_type):
            return
        new, set_field = object.__new__, object.__setattr__
        types, fields = self.types, self.fields
        singletons = {}

        def make(name, values):
            if name in singletons:  # a tag without fields is one object (TrustedAsTemplate()): that one
                return singletons[name]
            tag = new(types[name])
            for field, value in zip(fields[name], values):
                set_field(tag, field, value)
            return tag

        def tag(value, tags):
            return tagged_type(type(value))._instance_factory(value, mapping((type(t), t) for t in tags))

        try:  # the same as the public way, on a sample of each kind of value and tag?
            singletons.update({name: self._public_make(name, ()) for name in types if not fields[name]})
            for sample in samples:
                name = type(sample).__name__
                values = tuple(getattr(sample, f) for f in fields[name])
                made, public = make(name, values), self._public_make(name, values)
                if made != public or hash(made) != hash(public) or (not values and made is not public):
                    return
                for value in ("text", 7, ["x"], {"k": "v"}):
                    ours, theirs = tag(value, [made]), self.helper.tag(value, [public])
                    if type(ours) is not type(theirs) or ours != theirs or self.tags(ours) != self.tags(theirs):
                        return
        except Exception:  # noqa: BLE001 - internals not as expected: the public way
            return
        self._tag, self._make = tag, make


class CachedYaml:
    """Stands for the `yaml` module in an Ansible module that parses plugin documentation: load(text,
    Loader=<loader>) is remembered in `folder` (with its data tags), all else is PyYAML's."""

    def __init__(self, yaml_module, loader, codec: TagCodec, folder: str, salt: bytes = b""):
        self._yaml = yaml_module
        self._loader = loader
        self._codec = codec
        salt += b"|" + f"{loader.__module__}.{loader.__qualname__}".encode()
        generation = hashlib.sha256(salt).hexdigest()[:16]
        self._kept = Kept(os.path.join(folder, f"docs-{generation}"), salt, replaces="docs-")

    def __getattr__(self, name):
        return getattr(self._yaml, name)

    def load(self, stream, Loader=None):  # noqa: N803 - PyYAML's name
        if Loader is not self._loader or not isinstance(stream, str):
            return self._yaml.load(stream, Loader=Loader)
        codec = self._codec
        try:
            stream_tags = codec.tags(stream)
        except Unsupported:
            return self._yaml.load(stream, Loader=Loader)
        text = codec.helper.untag(stream)
        origin = next((dict(zip(codec.fields[n], f)).get("path") for n, f in stream_tags if n == "Origin"), None)
        name = "doc-" + _safe_name(os.path.basename(str(origin or "text")))
        key = repr(stream_tags).encode("utf-8", "surrogatepass") + b"\0" + text.encode("utf-8", "surrogatepass")
        path = self._kept.path(name, key)
        node = self._kept.read(path)
        if node is not None:
            gc_was_on = gc.isenabled()
            gc.disable()
            try:
                return codec.decode(node)
            except Exception:  # noqa: BLE001 - not what encode() wrote: parse it
                pass
            finally:
                if gc_was_on:
                    gc.enable()
        value = self._yaml.load(stream, Loader=Loader)
        try:
            node = codec.encode(value)
        except Unsupported:
            return value
        self._kept.keep(name, path, node)
        return value


def _drop_own_folder() -> None:
    """Run as a file (collect.playbook_args), Python puts this file's folder, fleetscope's package, first on
    sys.path: take it off, so that no fleetscope module (settings, files, cli...) stands for a top-level one
    Ansible or a plugin imports."""
    here = os.path.dirname(os.path.realpath(__file__))
    if sys.path and os.path.realpath(sys.path[0] or os.curdir) == here:
        del sys.path[0]


def _salt() -> bytes:
    import yaml
    from ansible.release import __version__ as ansible_version

    versions = f"{sys.version}|{ansible_version}|{getattr(yaml, '__version__', '')}".encode("utf-8", "replace")
    return FORMAT + b"|" + versions


def install_config_cache(folder: str) -> bool:
    """Before Ansible reads its settings' definitions (on importing ansible.constants): keep its config
    manager's parse of them. False where this Ansible has no such name, or this Python is one Ansible's own
    start will refuse (with its own message)."""
    if sys.version_info < (3, 11):
        return False
    try:
        from ansible import _internal  # noqa: F401 - Ansible's controller state, set first as ansible.cli does
        from ansible.config import manager
    except Exception:  # noqa: BLE001 - Ansible's own start reports what is wrong
        return False
    load = getattr(manager, "yaml_load", None)
    if not callable(load):
        return False
    manager.yaml_load = cached_file_load(load, folder, _salt())
    return True


def install(folder: str) -> dict:
    """Put the caching parsers in place of Ansible's (after ansible.cli is imported); says which went in."""
    salt = _salt()
    done = {"routing": False, "docs": False}
    try:
        from ansible.utils.collection_loader import _collection_finder
    except ImportError:
        _collection_finder = None
    parse = getattr(_collection_finder, "_meta_yml_to_dict", None)
    if callable(parse):
        _collection_finder._meta_yml_to_dict = cached_parser(parse, folder, salt)
        done["routing"] = True
    try:
        from ansible._internal._datatag._tags import Origin, TrustedAsTemplate
        from ansible.module_utils._internal import _datatag
        from ansible.module_utils._internal._datatag import AnsibleTagHelper
        from ansible.parsing.yaml.loader import AnsibleLoader
        from ansible.plugins import loader as plugin_loader
        from ansible.utils import plugin_docs
        codec = TagCodec(AnsibleTagHelper, (Origin(path="/p", line_num=3, col_num=4), TrustedAsTemplate()), _datatag)
    except (ImportError, TypeError):  # another Ansible: its own parse
        return done
    for module in (plugin_loader, plugin_docs):
        yaml_module = getattr(module, "yaml", None)
        if yaml_module is not None and callable(getattr(yaml_module, "load", None)):
            module.yaml = CachedYaml(yaml_module, AnsibleLoader, codec, folder, salt)
            done["docs"] = True
    return done


def install_play_hosts(path: str) -> bool:
    """Write `{"hosts": [names]}` to `path` as each play starts: the hosts it targets (its pattern, --limit),
    in the order Ansible starts them, as Ansible's own PlaybookExecutor lists them for the play's batches,
    before the first task. The run that started Ansible needs the host list while the play runs, and had
    to parse the inventory again for it (another 0.3 s of CPU while Ansible starts, and a dynamic inventory
    run twice). Where this Ansible has no such method, `{"hosts": null}` says so at once; where the hosts
    cannot be written, or the method is no longer called, the run sees the play start without the file and
    parses the inventory itself."""
    try:
        from ansible.executor.playbook_executor import PlaybookExecutor

        batches = PlaybookExecutor._get_serialized_batches
    except (ImportError, AttributeError):
        batches = None
    if not callable(batches):
        _write_whole(path, b'{"hosts": null}')
        return False

    def serialized_batches(self, play):
        result = batches(self, play)
        try:
            _write_whole(path, json.dumps({"hosts": [host.name for batch in result for host in batch]}).encode())
        except Exception:  # noqa: BLE001 - the run parses the inventory itself, as without this
            try:
                _write_whole(path, b'{"hosts": null}')
            except OSError:
                pass  # the run falls back when the play's first event comes without the file
        return result

    PlaybookExecutor._get_serialized_batches = serialized_batches
    return True


def collect_garbage_from_first_fork() -> None:
    """No cyclic garbage collection while Ansible starts; from its first worker on, as usual.

    Ansible's start (imports, plugins, their settings, the inventory and the play) allocates hundreds of
    thousands of objects, nearly all kept to the end, and Python's collector runs through them again and again
    as they pile up: 0.12-0.14 s of an empty play's 0.8-0.9 s here. Python's documentation of gc.freeze()
    describes this for a process that forks workers, which Ansible does for every task on every host:
    gc.disable() early in the parent, gc.freeze() right before fork(). At the first fork the objects of the
    start are frozen (never scanned again, in the parent or in a worker, whose pages they then share with the
    parent for longer) and collection comes back on, in the parent and so in every worker, which inherits
    it. What the start left as garbage is frozen with it and never freed: about 1 MiB, plus about 2 KB per
    host of the inventory's parse (5 MB at 2,500 hosts). A run that never forks (--syntax-check, no host
    matched) is short and keeps collection off to its end."""
    if not gc.isenabled():
        return
    gc.disable()
    first = [True]

    def before_fork() -> None:
        if first and first.pop():
            gc.freeze()
            gc.enable()

    os.register_at_fork(before=before_fork)


#: prctl(2)'s option that has the kernel signal a process when its parent (the thread that forked it) exits.
PR_SET_PDEATHSIG = 1


def workers_end_with_ansible() -> bool:
    """Each process Ansible forks (its workers, one per host and task) gets SIGTERM when ansible-playbook dies.

    ansible-runner stops a run (SIGTERM or Ctrl-C to `fleetscope collect`, or its time limit) by killing
    ansible-playbook's process group with SIGKILL; each worker has left that group (Ansible's worker calls
    setsid), so the workers ran on without it, each up to its host's timeout, opening SSH connections after
    fleetscope had exited, while a new run could start. A worker answers SIGTERM by ending its own process
    group (its `ssh`) and exiting (Ansible's WorkerProcess._term). Linux (prctl); elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        import signal

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return False
    forked_by = [os.getpid()]

    def before() -> None:
        forked_by[0] = os.getpid()

    def in_child() -> None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0 and os.getppid() != forked_by[0]:
            os.kill(os.getpid(), signal.SIGTERM)  # the parent was gone before the prctl

    os.register_at_fork(before=before, after_in_child=in_child)
    return True


def main() -> None:
    collect_garbage_from_first_fork()
    workers_end_with_ansible()
    _drop_own_folder()
    folder = os.environ.get(CACHE_ENV)
    if folder:
        install_config_cache(folder)
    from ansible.cli.playbook import main as playbook_main  # Ansible's own start-up checks

    if folder:
        install(folder)
    hosts_file = os.environ.get(HOSTS_ENV)
    if hosts_file:
        try:
            install_play_hosts(hosts_file)
        except OSError:
            pass  # the run parses the inventory itself
    # Ansible finds its own helpers beside argv[0] (the ssh connection's password prompt runs `ansible`
    # from that folder): the ansible-playbook that would have run, first on PATH (collect.runner_env puts
    # this Python's folder first).
    sys.argv[0] = shutil.which("ansible-playbook") or os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    sys.exit(playbook_main())


if __name__ == "__main__":
    main()
