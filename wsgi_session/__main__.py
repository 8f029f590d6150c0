"""``python -m wsgi_session``: the command line, as ``wsgi-session``."""

import sys

from .cli import main

sys.exit(main())
