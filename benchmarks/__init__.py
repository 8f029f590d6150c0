"""Benchmarks of wsgi_session against its peers: ``python -m benchmarks``."""

from pathlib import Path

#: The repository root: the working directory and import path of every process a run starts.
ROOT = Path(__file__).resolve().parent.parent
