"""ansible-playbook, with Ansible's collection routing tables parsed once instead of on every run.

Every ansible-playbook run parses ansible-core's routing table for its builtin collection
(config/ansible_builtin_runtime.yml, 370 KB of YAML) and each installed collection's meta/runtime.yml it
resolves a plugin through: 0.19 s of CPU here, on every run, before the first host is contacted. Ansible's
collection loader lets a tool replace that parser, and hands it an id of the content so that it can cache
the output (ansible.utils.collection_loader._collection_meta._meta_yml_to_dict; ansible-test replaces it
too). This module does that: a table is kept, parsed, as marshal data in the folder that
$FLEETSCOPE_ROUTING_CACHE names, under a hash of its YAML and of the versions of Python, Ansible and
PyYAML, so that an upgrade is parsed afresh; a table not seen before, or a kept file that does not load,
goes to Ansible's own parser. Without the variable, or with an Ansible that has no such hook, it is plain
ansible-playbook.

ansible-runner starts it in place of ansible-playbook for every playbook fleetscope runs
(collect.playbook_args), as a file: the run needs no fleetscope importable from ansible-runner's folder.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import shutil
import sys

CACHE_ENV = "FLEETSCOPE_ROUTING_CACHE"
SUFFIX = ".marshal"


def cached_parser(parse, folder: str, salt: bytes = b""):
    """Ansible's parse(yaml, content_id) -> dict, remembered in `folder` across processes. A table is kept
    under a hash of `salt` (what else its parse depends on: install() passes Python's, Ansible's and
    PyYAML's versions) and its YAML."""

    def parse_cached(data, content_id):
        raw = data if isinstance(data, bytes) else str(data).encode("utf-8", "surrogatepass")
        name = _table_name(content_id)
        digest = hashlib.sha256(salt + b"\0" + raw).hexdigest()[:32]
        path = os.path.join(folder, f"{name}-{digest}{SUFFIX}")
        try:
            with open(path, "rb") as f:
                table = marshal.load(f)
            if isinstance(table, dict):
                return table
        except Exception:  # not kept yet, cut short, not marshal data: Ansible parses it
            pass
        table = parse(data, content_id)
        _keep(folder, name, path, table)
        return table

    return parse_cached


def _table_name(content_id) -> str:
    """A file name part for Ansible's content id, ("ansible.builtin", "runtime.yml"): the collection's name,
    in letters, digits, "." and "_" only (so "<name>-" starts no other collection's files)."""
    name = content_id[0] if isinstance(content_id, tuple) and content_id else content_id
    name = "".join(c if c.isascii() and (c.isalnum() or c in "._") else "_" for c in str(name))[:100]
    return name.strip("._") or "table"


def _keep(folder: str, name: str, path: str, table) -> None:
    """Write the parsed table (whole or not at all) and remove the collection's other files (older versions,
    a killed writer's leftovers). Best effort: a folder that cannot be written costs the next run the
    parse, nothing else."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        data = marshal.dumps(table)
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        others = [o for o in os.listdir(folder) if o.startswith(f"{name}-") and o != os.path.basename(path)]
    except (OSError, ValueError):
        others = []
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # replaced, or never written
    for other in others:
        try:
            os.unlink(os.path.join(folder, other))
        except OSError:
            pass


def _drop_own_folder() -> None:
    """Run as a file (collect.playbook_args), Python puts this file's folder, fleetscope's package, first on
    sys.path: take it off, so that no fleetscope module (settings, files, cli...) stands for a top-level one
    Ansible or a plugin imports."""
    here = os.path.dirname(os.path.realpath(__file__))
    if sys.path and os.path.realpath(sys.path[0] or os.curdir) == here:
        del sys.path[0]


def install(folder: str) -> bool:
    """Put the caching parser in place of Ansible's; False where this Ansible has no such hook."""
    try:
        from ansible.utils.collection_loader import _collection_finder
    except ImportError:
        return False
    parse = getattr(_collection_finder, "_meta_yml_to_dict", None)
    if not callable(parse):
        return False
    import yaml
    from ansible.release import __version__ as ansible_version

    salt = f"{sys.version}|{ansible_version}|{getattr(yaml, '__version__', '')}".encode("utf-8", "replace")
    _collection_finder._meta_yml_to_dict = cached_parser(parse, folder, salt)
    return True


def main() -> None:
    _drop_own_folder()
    from ansible.cli.playbook import main as playbook_main  # Ansible's own start-up checks come first

    folder = os.environ.get(CACHE_ENV)
    if folder:
        install(folder)
    # Ansible finds its own helpers beside argv[0] (the ssh connection's password prompt runs `ansible`
    # from that folder): the ansible-playbook that would have run, first on PATH (collect.runner_env puts
    # this Python's folder first).
    sys.argv[0] = shutil.which("ansible-playbook") or os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    sys.exit(playbook_main())


if __name__ == "__main__":
    main()
