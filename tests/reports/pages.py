"""Read the generated pages back: the sortable tables as rows of {header: cell text}."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional

SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]*)\"")


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: List[List[List[str]]] = []
        self._cell: Optional[List[str]] = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
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


def tables(html: str) -> List[List[Dict[str, str]]]:
    """Every table with a header row, as a list of {header: cell text} per body row."""
    parser = _Tables()
    parser.feed(html)
    out = []
    for rows in parser.tables:
        if rows:
            head, body = rows[0], rows[1:]
            out.append([dict(zip(head, row)) for row in body])
    return out


def hosts_table(index: Path) -> Dict[str, Dict[str, str]]:
    return {row["Host"]: row for row in tables(index.read_text(encoding="utf-8"))[0]}


def html_files(site: Path) -> List[Path]:
    return sorted(site.rglob("*.html"))
