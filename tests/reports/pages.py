"""Read the generated pages back: tables as rows of {header: cell text}, the page's figure data."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, List, Optional

SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]*)\"")
PAGE_DATA = re.compile(r'<script type="application/json" id="page-data">(.*?)</script>', re.S)


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: List[List[List[str]]] = []
        self.classes: List[List[str]] = []
        self._cell: Optional[List[str]] = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
            self.classes.append((dict(attrs).get("class") or "").split())
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def tables(html: str) -> List[List[Dict[str, str]]]:
    """Every table with a header row, as a list of {header: cell text} per body row."""
    out = []
    for rows in _parse(html).tables:
        if rows:
            head, body = rows[0], rows[1:]
            out.append([dict(zip(head, row)) for row in body])
    return out


def table(html: str, css_class: str) -> List[Dict[str, str]]:
    """The rows of the one table with class ``css_class``, as {header: cell text}."""
    parser = _parse(html)
    found = [rows for rows, classes in zip(parser.tables, parser.classes) if css_class in classes]
    assert len(found) == 1, f"{len(found)} tables of class {css_class}"
    head, body = found[0][0], found[0][1:]
    return [dict(zip(head, row)) for row in body]


def has_table(html: str, css_class: str) -> bool:
    return any(css_class in classes for classes in _parse(html).classes)


def inventory(html: str) -> Dict[str, str]:
    """The host page's inventory table as {label: value}."""
    parser = _parse(html)
    (rows,) = [rows for rows, classes in zip(parser.tables, parser.classes) if "inventory" in classes]
    return {label: value for label, value in rows}


def hosts_table(index: Path) -> Dict[str, Dict[str, str]]:
    return {row["Host"]: row for row in table(index.read_text(encoding="utf-8"), "hosts")}


def page_data(html: str) -> Dict[str, Any]:
    """The figures of a page (and its shared x values), as the page's script reads them."""
    found = PAGE_DATA.findall(html)
    assert len(found) <= 1
    return json.loads(found[0]) if found else {"x": {}, "figures": []}


def figure(html: str, fig_id: str) -> Dict[str, Any]:
    (fig,) = [f for f in page_data(html)["figures"] if f["id"] == f"figure-{fig_id}"]
    return fig


def html_files(site: Path) -> List[Path]:
    return sorted(site.rglob("*.html"))
