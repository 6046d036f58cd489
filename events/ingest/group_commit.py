"""Group commit across the threads of one process (leader/follower, as Postgres's own WAL flush).

Requests that arrive while another request's statement is running queue up; when it finishes,
the first of them becomes the leader and writes ALL queued requests with one statement and one
commit, on its own thread's connection, then releases each waiting request with its own result.
Nothing waits for a timer: an idle process writes a lone request at once, a busy one writes
bigger groups. Every request still returns only after its rows are committed (or with the
error that kept them out).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, eq=False)
class Pending:
    """One request's part of a group: its payload in, its result (or error) out."""

    payload: Any
    size: int
    result: Any = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    # Set instead of `result` when the finished leader hands the next group to this request.
    lead: bool = False


class GroupCommit:
    """`write(items)` runs on the leader's thread with every queued Pending; it must set each
    item's `result` or `error` (an exception it raises is given to every item it was handed)."""

    def __init__(self, write: Callable[[Sequence[Pending]], None], *, max_size: int) -> None:
        self._write = write
        self._max_size = max_size
        self._lock = threading.Lock()
        self._queue: list[Pending] = []
        self._leading = False

    def submit(self, payload: Any, *, size: int) -> Any:
        item = Pending(payload=payload, size=size)
        with self._lock:
            self._queue.append(item)
            lead = not self._leading
            self._leading = True
        if not lead:
            item.done.wait()
            if not item.lead:
                return _outcome(item)
        self._lead_one_group()
        return _outcome(item)

    def _take_group(self) -> list[Pending]:
        with self._lock:
            total, cut = 0, 0
            for queued in self._queue:
                total += queued.size
                cut += 1
                if total >= self._max_size:
                    break
            group, self._queue = self._queue[:cut], self._queue[cut:]
            return group

    def _lead_one_group(self) -> None:
        group = self._take_group()
        try:
            self._write(group)
        except BaseException as exc:
            for item in group:
                if item.result is None and item.error is None:
                    item.error = exc
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit: not swallowed by the leader
        finally:
            self._hand_over(group)

    def _hand_over(self, group: list[Pending]) -> None:
        """Release the group's followers, then make the oldest still-queued request the next
        leader (or stand down when none is queued)."""
        with self._lock:
            successor = self._queue[0] if self._queue else None
            if successor is None:
                self._leading = False
        for item in group:
            item.done.set()
        if successor is not None:
            successor.lead = True
            successor.done.set()


def _outcome(item: Pending) -> Any:
    if item.error is not None:
        raise item.error
    return item.result
