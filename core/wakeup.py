"""Throttled Celery wake-ups: at most one message per process per interval.

A wake-up message only tells a worker to look at a Postgres queue table (the record of work), and
publishing one costs ~540 µs of CPU (measured), so callers that would send one per request or per
batch send one per interval instead. The beat sweepers cover a message Redis loses."""

import threading
import time


class WakeUp:
    """`due()` says whether to send a wake-up now: None (one was sent or is scheduled within the
    interval), 0.0 (send it now) or, with `trailing`, the countdown in seconds for one message at the
    end of the current interval, which covers every later call until then (no update waits longer
    than the interval)."""

    def __init__(self, *, interval: float, trailing: bool = False) -> None:
        self.interval = interval
        self.trailing = trailing
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget earlier wake-ups (tests start each case clean)."""
        self._last = float("-inf")  # when the latest message was sent, or is due
        self._pending_until = float("-inf")

    def due(self) -> float | None:
        now = time.monotonic()
        with self._lock:
            if now - self._last >= self.interval:
                self._last = now
                return 0.0
            if self.trailing and now >= self._pending_until:
                self._pending_until = self._last = self._last + self.interval
                return self._pending_until - now
            return None
