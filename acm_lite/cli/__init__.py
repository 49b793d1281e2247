"""The command line: each command's flags, its wiring to the packages that do the work, and how
its results are shown (text, JSON or YAML; ``report`` for people). Two steps only commands need
live here too: the offline run per target cluster of ``vet`` and ``hydrate`` (``percluster``) and
the writing of hydrate's output directory (``hydrate``)."""

from __future__ import annotations

import argparse
from typing import TypeAlias

# What ``main`` hands each command module's ``register``: the subcommands its parsers join.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
