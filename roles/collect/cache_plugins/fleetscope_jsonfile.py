# Ansible's jsonfile fact cache for fleetscope's runs (collect, hosts check): the same files, except that a
# host's name that cannot be a file name is hashed, and a damaged file is a missing one.
from __future__ import annotations

import hashlib
import os
import re

from ansible.errors import AnsibleError
from ansible.plugins.cache.jsonfile import CacheModule as JsonFileCache
from ansible.utils.display import Display

DOCUMENTATION = """
    name: fleetscope_jsonfile
    short_description: Ansible's jsonfile cache, for any host name, and a damaged file read as missing
    description:
      - The facts of each host in a JSON file, as ansible.builtin.jsonfile keeps them (the same file names),
        which fleetscope keeps between runs to remember each host's discovered interpreter for a day.
      - A host name that is no file name (a "/", a leading ".", longer than 200 bytes) is stored under a hash
        of it, where jsonfile failed every host of the play on it ("File name too long").
      - A file that does not load (a run killed while writing it, a full disk) is removed and read as missing
        (the host's interpreter is discovered again), where jsonfile failed every host of the play.
    options:
      _uri:
        required: True
        description: Path in which the cache plugin will save the JSON files
        env:
          - name: ANSIBLE_CACHE_PLUGIN_CONNECTION
        ini:
          - key: fact_caching_connection
            section: defaults
        type: path
      _prefix:
        description: User defined prefix to use when creating the JSON files
        env:
          - name: ANSIBLE_CACHE_PLUGIN_PREFIX
        ini:
          - key: fact_caching_prefix
            section: defaults
      _timeout:
        default: 86400
        description: Expiration timeout for the cache plugin data
        env:
          - name: ANSIBLE_CACHE_PLUGIN_TIMEOUT
        ini:
          - key: fact_caching_timeout
            section: defaults
        type: integer
"""

display = Display()

#: The longest file name kept as it is (255 bytes is the usual limit, with room for the prefix).
LONGEST = 200
#: Ansible's own prefix of a key (the schema of the cached data: "s1_"), kept in a hashed name.
_SCHEMA = re.compile(r"s\d+_")


def file_key(key: str, prefix: str = "") -> str:
    """The name a key's file gets: the key, unless that is no file name, then its schema prefix and a hash."""
    name = f"{prefix}{key}"
    if "/" not in name and "\0" not in name and not name.startswith(".") and \
            len(name.encode("utf-8", "surrogatepass")) <= LONGEST:
        return key
    schema = _SCHEMA.match(key)
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{schema.group(0) if schema else ''}~{digest}"


class CacheModule(JsonFileCache):
    def _get_cache_file_name(self, key: str) -> str:
        return super()._get_cache_file_name(file_key(key, self.get_option("_prefix") or ""))

    def get(self, key):
        try:
            return super().get(key)
        except AnsibleError as e:  # jsonfile removed a damaged file, or could not read it: as if missing
            display.warning(f"fleetscope_jsonfile: {e}; the host's facts are gathered again")
            try:
                os.unlink(self._get_cache_file_name(key))
            except OSError:
                pass
            raise KeyError(key) from None
