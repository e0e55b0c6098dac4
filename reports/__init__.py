"""The report stage: warehouse tables (SQL) -> a static, offline HTML site.

    from fleetscope.warehouse import connect
    from reports import build_site
    build_site(connect("data"), "site")          # -> Path("site/index.html")

Only SQL on the warehouse tables (``queries/*.sql``); never the raw documents.
"""

from reports.defaults import DEFAULT_SETTINGS

__all__ = ["DEFAULT_SETTINGS", "build_site"]


def __getattr__(name):
    # build_site pulls in jinja2 and the figures; the settings loader only needs DEFAULT_SETTINGS.
    if name == "build_site":
        from reports.site import build_site

        return build_site
    raise AttributeError(name)
