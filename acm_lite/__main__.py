"""``python -m acm_lite``: the same as the ``acm-lite`` command."""

from acm_lite.cli.main import run

run()
