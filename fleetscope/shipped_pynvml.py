"""The pynvml the collector ships to GPU hosts: nvidia-ml-py's own, with two imports made light and the
functions and classes nobody uses left out.

Every collection on a GPU host imports pynvml, and nvidia-ml-py's pynvml imports four modules it does not
need there: ``ctypes.util`` (for ``find_library``, which it never calls on Linux) pulls in shutil,
subprocess, re and enum; ``string`` (for ``string.capwords``, once, when it makes its error classes) pulls
in re. Together they were 12-20 ms of the 30-50 ms that importing pynvml cost (an H200 host, and this
VM; docs/benchmarks.md), in every collection on a GPU host. ``functools`` (for ``wraps``, on two
decorators) pulls in collections, keyword, operator and reprlib, and ``threading`` (for one ``Lock``) its
own module: 7-8 ms more of the 17 ms the pruned pynvml's import still cost over a bare interpreter (this
VM, 2026-11-28), where nothing else of a collection imports them. ``lighten`` replaces each of those import
lines, matched whole, with a stand-in of the same behaviour: ``find_library`` imports ``ctypes.util`` when
called, ``string.capwords`` is CPython's own one-line definition, ``wraps`` copies what functools' does
(name, qualified name, module, docstring, ``__dict__`` and ``__wrapped__``), ``threading.Lock`` is
``_thread.allocate_lock``, as in the threading module. A line it does not find (another nvidia-ml-py)
is left alone: that pynvml then runs as it is, only slower; tests/collectors/test_shipped_pynvml.py fails
so that the replacements are brought up to date.

``prune`` then keeps, of pynvml's 600-odd functions and classes, those the shipped modules name (the
collector and the admin module: ``used_names``) and what those need in turn, about 90: importing pynvml
defines every ctypes structure it has, 10-12 ms of CPU on every collection of a GPU host that no NVML call
needs (docs/benchmarks.md).
"""

from __future__ import annotations

import ast
import re
from typing import Iterable

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
    "from functools import wraps\n": (
        "def wraps(wrapped):  # fleetscope: functools imports collections and more, for wraps alone; what it does\n"
        "    def decorate(wrapper):\n"
        "        for name in ('__module__', '__name__', '__qualname__', '__doc__'):\n"
        "            try:\n"
        "                setattr(wrapper, name, getattr(wrapped, name))\n"
        "            except AttributeError:\n"
        "                pass\n"
        "        wrapper.__dict__.update(getattr(wrapped, '__dict__', {}))\n"
        "        wrapper.__wrapped__ = wrapped\n"
        "        return wrapper\n"
        "    return decorate\n"
    ),
    "import threading\n": (
        "class threading:  # fleetscope: for one Lock, the threading module (threading.Lock is this function)\n"
        "    from _thread import allocate_lock as Lock\n"
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


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _names(node: ast.AST) -> set[str]:
    """The identifiers in ``node``: names, attributes, and the words of string literals (the collector calls
    NVML by name: ``reader.read("nvmlDeviceGetName", handle)``)."""
    names: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            names.add(n.id)
        elif isinstance(n, ast.Attribute):
            names.add(n.attr)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            names.update(_WORD.findall(n.value))
    return names


def used_names(sources: Iterable[str]) -> set[str]:
    """Every identifier in ``sources``, the modules that use the shipped pynvml: more than they use, never less."""
    return set().union(*(_names(ast.parse(source)) for source in sources))


def prune(source: str, used: set[str]) -> str:
    """pynvml's ``source`` with only the functions and classes that ``used`` names, and those that they and
    the module's top-level code name in turn. pynvml finds no function or class by a name it computes (its
    error classes it makes at import, from the NVML_ERROR_ constants), so following names is enough. Every
    other top-level statement (constants, the library loader's state) is kept as it is, in its order; a
    name defined twice keeps both definitions, so the later one still wins."""
    lines = source.split("\n")  # as ast counts lines (splitlines would also break at \f, \x1c, \u2028...)
    body = ast.parse(source).body
    defined: dict[str, list[int]] = {}
    for i, node in enumerate(body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.setdefault(node.name, []).append(i)
    keep = set(range(len(body))) - {i for at in defined.values() for i in at}
    todo = [n for n in set(used).union(*(_names(body[i]) for i in keep)) if n in defined]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            for i in defined[name]:
                keep.add(i)
                todo.extend(n for n in _names(body[i]) if n in defined and n not in seen)
    kept: set[int] = set()  # line numbers: a line holding two statements (``a = 1; b = 2``) comes once
    for i in keep:
        node = body[i]
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        kept.update(range(first, node.end_lineno + 1))
    return "\n".join(lines[n - 1] for n in sorted(kept)) + "\n"
