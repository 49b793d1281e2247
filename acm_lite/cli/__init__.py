"""The command line: argument parsing and rendering only; the work happens in the packages below."""

from __future__ import annotations

import argparse
from typing import TypeAlias

# What ``main`` hands each command module's ``register``: the subcommands its parsers join.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
