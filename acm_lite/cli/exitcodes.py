"""Exit codes, shared by every command so scripts can tell outcomes apart."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from acm_lite.errors import AcmError, Category, Problem


class ExitStatus(IntEnum):
    SUCCESS = 0
    FAILURE = 1  # the job ran and found problems (blocking errors, failed objects, a diff)
    USAGE = 2  # the command line was wrong
    UNAVAILABLE = 3  # something outside acm-lite failed; retrying may help (Git, API server, build)
    INTERNAL = 70  # a bug in acm-lite
    INTERRUPTED = 130  # Ctrl-C or SIGTERM
    PIPE_CLOSED = 141  # stdout's reader went away (`| head`): 128 + SIGPIPE, as coreutils report


def for_error(error: AcmError) -> ExitStatus:
    """Permanent errors are the input's fault; transient and waiting ones are the world's."""
    if error.category is Category.PERMANENT:
        return ExitStatus.FAILURE
    return ExitStatus.UNAVAILABLE


def for_problems(problems: Iterable[Problem]) -> ExitStatus:
    """The outcome of a job that collected its problems: 0 without blocking ones; 3 when every
    blocking problem is the world's (the source or the API server out of reach, not one object
    failing); 1 otherwise, as the job ran and found problems."""
    blocking = [p for p in problems if p.blocking]
    if not blocking:
        return ExitStatus.SUCCESS
    if all(p.code.category is not Category.PERMANENT and not p.obj for p in blocking):
        return ExitStatus.UNAVAILABLE
    return ExitStatus.FAILURE
