"""`python -m fleetscope` is the `fleetscope` command."""

from . import command

command()
