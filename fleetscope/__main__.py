"""`python -m fleetscope` is the `fleetscope` command."""

from .cli import run

run()
