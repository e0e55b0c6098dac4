"""fleetscope: agentless GPU and host fleet collection, warehouse and report (the controller side)."""

__version__ = "0.1.0"


def command() -> None:
    """The `fleetscope` command (console script and `python -m fleetscope`): cli.run(), with a Ctrl-C during
    its imports, before cli can take it, an interrupt (exit 130) rather than a traceback."""
    try:
        from .cli import run
    except KeyboardInterrupt:
        import sys

        sys.stderr.write("fleetscope: interrupted\n")
        raise SystemExit(130) from None
    run()
