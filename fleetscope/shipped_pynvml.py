"""The pynvml the collector ships to GPU hosts: nvidia-ml-py's own, with two imports made light.

Every collection on a GPU host imports pynvml, and nvidia-ml-py's pynvml imports two modules it does not
need there: ``ctypes.util`` (for ``find_library``, which it never calls on Linux) pulls in shutil,
subprocess, re and enum; ``string`` (for ``string.capwords``, once, when it makes its error classes) pulls
in re. Together they were 12-20 ms of the 30-50 ms that importing pynvml cost (an H200 host, and this
VM; docs/benchmarks.md), in every collection on a GPU host. ``lighten`` replaces each of those two import lines,
matched whole, with a stand-in of the same behaviour: ``find_library`` imports ``ctypes.util`` when called,
``string.capwords`` is CPython's own one-line definition. A line it does not find (another nvidia-ml-py)
is left alone: that pynvml then runs as it is, only slower; tests/collectors/test_shipped_pynvml.py fails
so that the replacements are brought up to date.
"""

from __future__ import annotations

#: line of nvidia-ml-py's pynvml.py -> what the shipped copy has instead (same names, same behaviour)
REPLACEMENTS = {
    "from ctypes.util import find_library\n": (
        "def find_library(name):  # fleetscope: ctypes.util imports shutil, subprocess and re; only on a call\n"
        "    from ctypes.util import find_library as find\n"
        "    return find(name)\n"
    ),
    "import string\n": (
        "class string:  # fleetscope: the string module imports re, for capwords alone (CPython's definition)\n"
        "    @staticmethod\n"
        "    def capwords(s, sep=None):\n"
        "        return (sep or ' ').join(map(str.capitalize, s.split(sep)))\n"
    ),
}


def lighten(source: str) -> tuple[str, list[str]]:
    """(pynvml's source with each line of REPLACEMENTS replaced, the lines that were not found)."""
    lines = source.splitlines(keepends=True)
    missing = []
    for line, replacement in REPLACEMENTS.items():
        if line in lines:
            lines[lines.index(line)] = replacement
        else:
            missing.append(line.strip())
    return "".join(lines), missing
