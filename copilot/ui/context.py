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
from copilot.session.engines import Services, release_memory
from copilot.ui.access import parse_users
from copilot.ui.live import LiveSlots, pace_target, playbook_steps
from copilot.ui.panel import Step

if TYPE_CHECKING:
    from copilot.session.telephony.service import TelephonyService


# What the launch warm-up loads, in order, with what the page says meanwhile.
WARM_STEPS = (
    ("rules", "规则 rules"),
    ("asr", "语音识别 speech recognition"),
    ("text", "隐私词典 privacy dictionary"),
    ("store", "数据库 database"),
    ("suggester", "检索与 AI 建议 retrieval + LLM"),
)


def warm_text() -> None:
    """What the panel's first lines need besides the recogniser: the name dictionary of redaction (a second
    or more of pure Python that would otherwise stall the first line)."""
    from copilot.transcription import redact

    redact.warm()


class AppContext:
    def __init__(self, config: Config, services: Services | None = None, store: Store | None = None) -> None:
        self.config = config
        self.services = services or Services(config)
        self.slots = LiveSlots(config.app.max_live_sessions)
        self._store = store
        self._lock = threading.Lock()
        self.telephony: TelephonyService | None = None  # live calls from the phone system ([telephony])
        self.users = parse_users(config.app)  # no users: no sign-in, every view open
        self._warmed = 0  # warm-up steps done
        self._warming = ""

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

    def readiness(self) -> tuple[int, int, str]:
        """Warm-up progress: (steps done, steps, what loads now). Ready when done == steps."""
        with self._lock:
            return self._warmed, len(WARM_STEPS), self._warming

    def warm_up(self) -> None:
        """Load the engines a first call needs (run in a background thread at launch), in the order a call
        needs them: the rules, the speech recogniser, the name dictionary and the database
        first, so a call started while the LLM still loads already shows its lines; the suggester
        (retrieval, embeddings, the LLM's prompt cache) last."""
        services = self.services
        loaders = {
            "rules": lambda: services.rules,
            "asr": lambda: services.live_transcriber,
            "text": warm_text,
            # lambdas: ``services.suggester.warm`` written bare would load the LLM while building this table,
            # before the recogniser (a call started at launch waited ~14 s for its first line)
            "suggester": lambda: services.suggester.warm(),
            "store": lambda: self.store.count_calls(),
        }
        for step, label in WARM_STEPS:
            with self._lock:
                self._warming = label
            loaders[step]()
            with self._lock:
                self._warmed += 1
        release_memory()
