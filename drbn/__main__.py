"""``python -m drbn``: the one command line of drbn.cli; introduced in notebooks/00_setup_check."""
import sys

from .cli import main

sys.exit(main())
