"""How many LLM rewrites run at once across every live call, and how long a rewrite may wait for its turn.

On a 2-core machine, four calls each starting a rewrite at their customer's turn would run four generations
side by side: each one slower than running them in turn, and all of them taking the cores the calls'
transcription needs. The gate lets ``limit`` generations run; a request that cannot start within
``wait_seconds`` gives up, and its call keeps the handbook script it already shows (the reason is recorded).
A rewrite that starts late would land after the agent has already answered.
"""

from __future__ import annotations

import threading
import time

POLL_SECONDS = 0.05  # how often a waiting request looks at its cancel event


class GenerationGate:
    """A counting gate shared by every session's suggester."""

    def __init__(self, limit: int, wait_seconds: float) -> None:
        if limit < 1:
            raise ValueError("a generation gate needs a limit of at least 1")
        if wait_seconds < 0:
            raise ValueError("wait_seconds cannot be negative")
        self.limit = limit
        self.wait_seconds = wait_seconds
        self._slots = threading.BoundedSemaphore(limit)

    def enter(self, cancel: threading.Event | None = None) -> bool:
        """Take a place: ``True`` when the caller may generate (it must call :meth:`leave`), ``False`` when
        none freed up within ``wait_seconds`` or ``cancel`` was set while waiting."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            if cancel is not None and cancel.is_set():
                return False
            left = deadline - time.monotonic()
            if self._slots.acquire(timeout=max(0.0, min(POLL_SECONDS, left))):
                if cancel is not None and cancel.is_set():
                    self._slots.release()
                    return False
                return True
            if left <= 0:
                return False

    def leave(self) -> None:
        self._slots.release()
