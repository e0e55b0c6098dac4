"""Make host-provided strings safe where they land: file names, JSON inside <script>, Plotly labels."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from markupsafe import Markup

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Names Windows (and SMB shares) reserve for devices, whatever the extension.
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                       *(f"lpt{i}" for i in range(1, 10))})
_JSON_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def slugify(name: str, max_len: int = 64) -> str:
    """A file-name stem for ``name`` made of [A-Za-z0-9._-] only, distinct for distinct names.

    A name that is already safe (lower case, no leading dot, not too long) is kept as is; any other gets
    a short hash of the original appended, so ``A b`` and ``a_b`` and ``a-b`` never share a file, even on
    a case-insensitive file system.
    """
    slug = _UNSAFE.sub("_", name).lower().lstrip(".")[:max_len] or "_"
    if slug.split(".")[0] in _RESERVED:  # con.html, aux.lab.html cannot be copied to Windows or SMB
        slug = "_" + slug
    if slug != name:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        slug = f"{slug}-{digest}"
    return slug


def _clean(value: Any) -> Any:
    # NaN and infinities are not JSON; Plotly reads null as a gap.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def json_for_html(value: Any) -> Markup:
    """JSON that can sit inside a <script> element: ``</script>`` or ``<!--`` in a string cannot end it."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
    except ValueError:  # a NaN or an infinity somewhere: walk the value (slower) and make them null
        text = json.dumps(_clean(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
    for raw, escaped in _JSON_ESCAPES:  # str.replace is many times faster than str.translate on long text
        text = text.replace(raw, escaped)
    return Markup(text)


def plotly_text(value: Any) -> str:
    """A host-provided string for a Plotly label: Plotly reads a little HTML (<b>, <a href>) in labels,
    and decodes entities, so escaping & < > shows the string literally."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
