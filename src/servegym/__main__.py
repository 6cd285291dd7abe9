"""``python -m servegym`` runs the CLI."""

import sys

from servegym.cli import main

sys.exit(main())
