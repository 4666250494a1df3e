"""The judgement: script and tone checks built from the handbooks' own clauses, and customer mood.

May import: ``copilot.config``, ``copilot.errors``, ``copilot.types`` (and an embedder, passed in).

``RuleEngine`` applies a :class:`Playbook` (``knowledge/playbook.yaml``): real-time flags per committed
agent segment (:meth:`RuleEngine.check_utterance`), the whole-call scorecard
(:meth:`RuleEngine.check_call`, :meth:`RuleEngine.score`) and the steps still missing during a call
(:meth:`RuleEngine.missing_steps`). The module-level functions use the default playbook.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from copilot.judgement.engine import RuleEngine
from copilot.judgement.playbook import Playbook, PlaybookError, load_playbook
from copilot.types import CheckResult, Flag, Segment, Transcript

__all__ = [
    "Playbook",
    "PlaybookError",
    "RuleEngine",
    "check_call",
    "check_utterance",
    "default_engine",
    "load_playbook",
    "missing_steps",
]


@lru_cache(maxsize=1)
def default_engine() -> RuleEngine:
    """An engine over the default playbook, without embeddings (read-only, safe to share)."""
    return RuleEngine(load_playbook())


def check_utterance(segment: Segment | str, history: Sequence[Segment] = ()) -> list[Flag]:
    """Real-time flags for one agent utterance (a bare string is an agent line without timing)."""
    if isinstance(segment, str):
        segment = Segment(speaker="agent", start=0.0, end=0.0, text=segment)
    return default_engine().check_utterance(segment, history)


def check_call(transcript: Transcript) -> list[CheckResult]:
    return default_engine().check_call(transcript)


def missing_steps(segments_so_far: Sequence[Segment]) -> list[str]:
    return default_engine().missing_steps(segments_so_far)
