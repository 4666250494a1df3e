"""The calls in progress (and the last ones that ended), by agent extension.

The service adds a call when its first INVITE / start message is accepted and marks it ended once its review
is stored; the agent's Live view asks :meth:`CallRegistry.current` for its extension on every refresh, so it
attaches to a new call within one refresh. Thread-safe: the service's loop writes, the app's threads read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from copilot.session.call import CallSession

KEEP_ENDED = 64  # ended calls remembered (their panel can still be shown)


@dataclass(frozen=True)
class LiveEntry:
    call_id: str
    extension: str
    source: str  # "siprec" or "media-stream"
    session: CallSession
    started: float  # time.time()
    ended: float | None = None
    stored_id: int | None = None  # the review's id in the store, once saved


class CallRegistry:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._calls: dict[str, LiveEntry] = {}
        self._changed = threading.Condition()

    def add(self, call_id: str, extension: str, source: str, session: CallSession) -> LiveEntry:
        entry = LiveEntry(call_id, extension, source, session, self._clock())
        with self._changed:
            self._calls[call_id] = entry
            self._forget_old()
            self._changed.notify_all()
        return entry

    def ended(self, call_id: str, stored_id: int | None = None) -> None:
        with self._changed:
            entry = self._calls.get(call_id)
            if entry is not None:
                self._calls[call_id] = replace(entry, ended=self._clock(), stored_id=stored_id)
            self._changed.notify_all()

    def _forget_old(self) -> None:
        ended = sorted((e for e in self._calls.values() if e.ended is not None), key=lambda e: e.ended or 0)
        for entry in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self._calls[entry.call_id]

    def get(self, call_id: str) -> LiveEntry | None:
        with self._changed:
            return self._calls.get(call_id)

    def active(self) -> tuple[LiveEntry, ...]:
        with self._changed:
            return tuple(e for e in self._calls.values() if e.ended is None)

    def current(self, extension: str) -> LiveEntry | None:
        """The extension's call in progress, else its latest ended one (None for an unknown extension)."""
        key = extension.strip()
        if not key:
            return None
        with self._changed:
            mine = [(n, e) for n, e in enumerate(self._calls.values()) if e.extension == key]
        if not mine:
            return None
        # In progress first, then the latest started (ties: the latest added).
        return max(mine, key=lambda item: (item[1].ended is None, item[1].started, item[0]))[1]

    def wait_for(
        self, predicate: Callable[[CallRegistry], LiveEntry | None], timeout: float
    ) -> LiveEntry | None:
        """Block until ``predicate`` finds an entry (tests, the CLI), at most ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (found := predicate(self)) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._changed.wait(remaining):
                    return predicate(self)
        return found
