"""What the app's views share: the configuration, the engines, the database and the live-call limit.

One per app (built by :func:`copilot.ui.app.build_app`); read-only after construction except for the
lazily opened store. Per-call state never lives here: it is in each browser session's ``gr.State``.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from copilot.config import Config
from copilot.qa.store import Store
from copilot.session.engines import Services
from copilot.ui.live import LiveSlots, pace_target, playbook_steps
from copilot.ui.panel import Step

if TYPE_CHECKING:
    from copilot.session.telephony.service import TelephonyService


class AppContext:
    def __init__(self, config: Config, services: Services | None = None, store: Store | None = None) -> None:
        self.config = config
        self.services = services or Services(config)
        self.slots = LiveSlots(config.app.max_live_sessions)
        self._store = store
        self._lock = threading.Lock()
        self.telephony: TelephonyService | None = None  # live calls from the phone system ([telephony])

    @property
    def store(self) -> Store:
        """The review database (opened on first use; ``COPILOT_DB`` or ``[store] url`` says where)."""
        with self._lock:
            if self._store is None:
                self._store = Store.open(config=self.config.store)
            return self._store

    def blocked(self) -> frozenset[str]:
        """Suggestion texts trainers blocked: passed to every new session."""
        return frozenset(self.store.blocklist())

    @cached_property
    def steps(self) -> tuple[Step, ...]:
        return playbook_steps(self.services.rules)

    @cached_property
    def pace_target(self) -> tuple[float, float]:
        return pace_target(self.services.rules)

    @cached_property
    def check_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.services.rules.playbook.checks)

    def warm_up(self) -> None:
        """Load the engines a first call needs (run in a background thread at launch)."""
        services = self.services
        services.suggester.warm()  # retrieval, embeddings and the LLM's prompt cache, before the first call
        _ = services.rules, services.live_transcriber
        self.store.count_calls()
