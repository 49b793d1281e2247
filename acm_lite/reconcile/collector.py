"""The cyclic garbage collector paused while any pass runs. No I/O.

A pass makes hundreds of thousands of short-lived objects (parsed documents, listed live objects)
with no reference cycles among them; the cyclic collector would rescan them again and again, which
was a third of a no-op pass over 5,500 objects. Reference counting frees them all the same; the
few cycles wait until no pass runs."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CollectorPause:
    """Counted, as passes for several clusters run in threads side by side: collection stops when
    the first pass starts and resumes when the last ends, if it was on before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._passes = 0
        self._was_on = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._passes == 0:
                self._was_on = gc.isenabled()
                gc.disable()
            self._passes += 1
        try:
            yield
        finally:
            with self._lock:
                self._passes -= 1
                if self._passes == 0 and self._was_on:
                    gc.enable()


paused = CollectorPause()  # the one pause every pass of the process shares
