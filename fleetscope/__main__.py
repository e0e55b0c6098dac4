"""`python -m fleetscope` is the `fleetscope` command."""

import sys

from .cli import main

sys.exit(main())
