"""Sphinx configuration of the wsgi_session documentation: ``tox -e docs``."""

import configparser
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # autodoc documents this checkout, whatever pip installed

_setup = configparser.ConfigParser()
_setup.read(ROOT / "setup.cfg", encoding="utf-8")

project = "wsgi_session"
author = "the wsgi_session developers"
copyright = f"2026, {author}"
release = version = _setup["metadata"]["version"]

extensions = ["sphinx.ext.autodoc", "sphinx.ext.graphviz"]
exclude_patterns = ["_build"]

# The public names are documented where __all__ lists them, as wsgi_session.<name>.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
add_module_names = False

graphviz_output_format = "svg"

html_theme = "furo"
html_title = f"wsgi_session {release}"
