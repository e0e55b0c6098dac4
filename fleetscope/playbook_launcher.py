"""ansible-playbook, with Ansible's collection routing tables parsed once instead of on every run.

Every ansible-playbook run parses ansible-core's routing table for its builtin collection
(config/ansible_builtin_runtime.yml, 370 KB of YAML) and each installed collection's meta/runtime.yml it
resolves a plugin through: 0.19 s of CPU here, before the first host is contacted, on every collection.
Ansible's collection loader lets a tool replace that parser, and hands it an id of the content so that it
can cache the output (ansible.utils.collection_loader._collection_meta._meta_yml_to_dict; ansible-test
replaces it too). This module does that: a table is kept, parsed, as marshal data in the folder that
$FLEETSCOPE_ROUTING_CACHE names, under a hash of its YAML, so an upgraded Ansible or collection is parsed
afresh; a table not seen before, or a kept file that does not load, goes to Ansible's own parser.
Without the variable, or with an Ansible that has no such hook, it is plain ansible-playbook.

ansible-runner starts it in place of ansible-playbook for every playbook fleetscope runs (collect.playbook_args),
as a file: the run needs no fleetscope importable from ansible-runner's folder.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys

CACHE_ENV = "FLEETSCOPE_ROUTING_CACHE"
SUFFIX = f".py{sys.version_info[0]}{sys.version_info[1]}.marshal"  # marshal's format is Python's own


def cached_parser(parse, folder: str):
    """Ansible's parse(yaml, content_id) -> dict, remembered in `folder` across processes."""

    def parse_cached(data, content_id):
        raw = data if isinstance(data, bytes) else str(data).encode("utf-8", "surrogatepass")
        name = _table_name(content_id)
        path = os.path.join(folder, f"{name}-{hashlib.sha256(raw).hexdigest()[:32]}{SUFFIX}")
        try:
            with open(path, "rb") as f:
                table = marshal.load(f)
            if isinstance(table, dict):
                return table
        except (OSError, EOFError, ValueError, TypeError):
            pass  # not kept yet, or cut short: parse it
        table = parse(data, content_id)
        _keep(folder, name, path, table)
        return table

    return parse_cached


def _table_name(content_id) -> str:
    """A file name part for Ansible's content id, ("ansible.builtin", "runtime.yml"): the collection's name."""
    name = content_id[0] if isinstance(content_id, tuple) and content_id else content_id
    name = "".join(c if c.isascii() and (c.isalnum() or c in "._") else "_" for c in str(name))[:100]
    return name.strip("._") or "table"


def _keep(folder: str, name: str, path: str, table) -> None:
    """Write the parsed table (whole or not at all) and drop this collection's older ones. Best effort: a
    folder that cannot be written costs the next run the parse, nothing else."""
    try:
        data = marshal.dumps(table)
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        for other in os.listdir(folder):
            if other.startswith(f"{name}-") and other.endswith(SUFFIX) and other != os.path.basename(path):
                os.unlink(os.path.join(folder, other))
    except (OSError, ValueError):
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
    _collection_finder._meta_yml_to_dict = cached_parser(parse, folder)
    return True


def main() -> None:
    _drop_own_folder()
    from ansible.cli.playbook import main as playbook_main  # Ansible's own start-up checks come first

    folder = os.environ.get(CACHE_ENV)
    if folder:
        install(folder)
    sys.argv[0] = "ansible-playbook"
    sys.exit(playbook_main())


if __name__ == "__main__":
    main()
