"""The daemon's memory allocator. CPython's own allocator for small objects gives memory back to
the system only when a whole 1 MiB arena is empty, and the objects a daemon keeps between passes
are scattered over the arenas its largest pass filled: it would stay about as large as that
pass. The system allocator (glibc's malloc, with ``malloc_trim`` after each pass) hands back
every free page instead. CPython picks its allocator at start, from ``PYTHONMALLOC``: ``serve``
started as a command (not called from Python) starts itself again with it set, in the same
process (exec), unless ``PYTHONMALLOC`` is set already (``PYTHONMALLOC=pymalloc`` keeps CPython's)."""

from __future__ import annotations

import os
import platform
import sys

ENV = "PYTHONMALLOC"
_entry = False  # set by the console-script entry: this process is the command itself


def started_as_command() -> None:
    global _entry  # noqa: PLW0603 - one fact about the process
    _entry = True


def use_system_allocator() -> None:
    """Exec this command again with the system allocator, when that is possible and wanted;
    returns only when it is not (another platform, set already, or not started as a command)."""
    if not _entry or os.environ.get(ENV) or not sys.platform.startswith("linux"):
        return
    if platform.libc_ver()[0] != "glibc":  # malloc_trim is glibc's
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(
        sys.executable, [sys.executable, "-m", "acm_lite", *sys.argv[1:]], {**os.environ, ENV: "malloc"}
    )
