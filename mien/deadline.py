"""When long work must stop: a deadline that the work checks between units (images, stages,
tiles, batches of faces), so that work nobody waits for any more does not run on.

Code that holds a deadline passes it on explicitly (`Pipeline(deadline=)`); code below it that
takes no such argument (a detector's tile loop) calls `check_deadline()`, which reads the
deadline made current by `Deadline.current()` on this thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar

from mien.errors import DeadlineExceeded

_current: ContextVar[Deadline | None] = ContextVar("mien_deadline", default=None)


class Deadline:
    """`seconds` from now (None: never), or earlier when `cancel()` is called from any thread
    (the caller gave up). `check()` raises DeadlineExceeded once either has happened; a unit of
    work that has begun runs to its end, so work stops at most one unit late."""

    def __init__(self, seconds: float | None = None):
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def remaining(self) -> float:
        """Seconds left (inf without a deadline, 0 once cancelled or passed)."""
        if self.cancelled:
            return 0.0
        return float("inf") if self.at is None else max(self.at - time.monotonic(), 0.0)

    def check(self, before: str = "the next step") -> None:
        if self.cancelled:
            raise DeadlineExceeded(f"stopped before {before}: the caller gave up")
        if self.at is not None and time.monotonic() >= self.at:
            raise DeadlineExceeded(f"stopped before {before}: the {self.seconds:g} s allowed "
                                   "had passed")

    @contextlib.contextmanager
    def current(self) -> Iterator[Deadline]:
        """This deadline is what `check_deadline` checks, on this thread, within the block."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)


def check_deadline(before: str = "the next step") -> None:
    """Raise DeadlineExceeded if the current deadline (`Deadline.current`) has passed or was
    cancelled; nothing without one."""
    deadline = _current.get()
    if deadline is not None:
        deadline.check(before)
