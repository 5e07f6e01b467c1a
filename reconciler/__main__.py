"""`python -m reconciler` is `cnm`."""

from reconciler.cli import run

run()
