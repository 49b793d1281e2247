"""Exit codes, shared by every command so scripts can tell outcomes apart."""

from __future__ import annotations

from enum import IntEnum

from acm_lite.errors import AcmError, Category


class ExitStatus(IntEnum):
    SUCCESS = 0
    FAILURE = 1  # the job ran and found problems (blocking errors, failed objects, a diff)
    USAGE = 2  # the command line was wrong
    UNAVAILABLE = 3  # something outside acm-lite failed; retrying may help (Git, API server, build)
    INTERNAL = 70  # a bug in acm-lite
    INTERRUPTED = 130  # Ctrl-C or SIGTERM


def for_error(error: AcmError) -> ExitStatus:
    """Permanent errors are the input's fault; transient and waiting ones are the world's."""
    if error.category is Category.PERMANENT:
        return ExitStatus.FAILURE
    return ExitStatus.UNAVAILABLE
