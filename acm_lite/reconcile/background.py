"""One call run on a thread of its own while the caller goes on with other work. No I/O."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Background:
    """One call on a thread of its own; ``wait`` returns when it is done and raises what it
    raised."""

    def __init__(self, call: Callable[[], None]):
        self._error: BaseException | None = None

        def run() -> None:
            try:
                call()
            except BaseException as e:  # handed to the waiting thread
                self._error = e

        self._thread = threading.Thread(target=run, name="acm-lite-background", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error
