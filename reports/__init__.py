"""The report stage: warehouse tables (SQL) -> a static, offline HTML site.

    from fleetscope.warehouse import connect
    from reports import build_site
    build_site(connect("data"), "site")          # -> Path("site/index.html")

Only SQL on the warehouse tables (``queries/*.sql``); never the raw documents.
"""

from reports.site import DEFAULT_SETTINGS, build_site

__all__ = ["DEFAULT_SETTINGS", "build_site"]
