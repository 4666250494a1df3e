"""How many LLM rewrites run at once across every live call, and how long a rewrite may wait for its turn.

On a 2-core machine, four calls each starting a rewrite at their customer's turn would run four generations
side by side: each one slower than running them in turn, and all of them taking the cores the calls'
transcription needs. The gate lets ``limit`` generations run; a request that cannot start within
``wait_seconds`` gives up, and its call keeps the handbook script it already shows (the reason is recorded).
A rewrite that starts late would land after the agent has already answered.

Waiting behind a cancelled generation does not count: a new customer turn cancels its call's previous
rewrite, which leaves as soon as the model finishes its current step (a long prompt's prefill can take
more than ``wait_seconds`` on a busy machine), and the new turn's rewrite must not lose its place to it.
"""

from __future__ import annotations

import threading
import time

POLL_SECONDS = 0.05  # how often a waiting request looks at its own and the holders' cancel events


class GenerationGate:
    """A counting gate shared by every session's suggester."""

    def __init__(self, limit: int, wait_seconds: float) -> None:
        if limit < 1:
            raise ValueError("a generation gate needs a limit of at least 1")
        if wait_seconds < 0:
            raise ValueError("wait_seconds cannot be negative")
        self.limit = limit
        self.wait_seconds = wait_seconds
        self._changed = threading.Condition()
        self._holders: list[threading.Event] = []  # each running generation's cancel event

    def enter(self, cancel: threading.Event | None = None) -> threading.Event | None:
        """Take a place: a ticket to hand back to :meth:`leave` when the caller may generate; ``None``
        when no place freed up within ``wait_seconds`` of waiting behind running generations, or when
        ``cancel`` was set while waiting."""
        ticket = cancel if cancel is not None else threading.Event()
        deadline = time.monotonic() + self.wait_seconds
        with self._changed:
            while True:
                if ticket.is_set():
                    return None
                if len(self._holders) < self.limit:
                    self._holders.append(ticket)
                    return ticket
                now = time.monotonic()
                if all(holder.is_set() for holder in self._holders):
                    deadline = max(deadline, now + self.wait_seconds)  # they are on their way out
                if now >= deadline:
                    return None
                self._changed.wait(min(POLL_SECONDS, deadline - now))

    def leave(self, ticket: threading.Event) -> None:
        """Give back the place :meth:`enter` gave with ``ticket``."""
        with self._changed:
            self._holders = [holder for holder in self._holders if holder is not ticket]
            self._changed.notify_all()
