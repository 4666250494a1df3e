"""The trainer's view of a real call: at each customer turn, what the copilot would have suggested next to
what the agent actually said, with their similarity and whether each complies with the rules.

It replays the transcript through the same :class:`~copilot.session.call.CallSession` the live panel uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from copilot.knowledge.embedding import Embedder
from copilot.session.call import CallSession, SessionEngines, SessionOptions
from copilot.suggest.engine import Suggestion
from copilot.suggest.guard import overlap
from copilot.types import Segment, Transcript


@dataclass(frozen=True)
class ReplayTurn:
    customer: Segment
    suggestion: Suggestion
    actual: str  # what the agent said next (all agent segments until the next customer turn), "" if nothing
    similarity: float  # suggestion vs actual reply, 0..1
    suggestion_flags: tuple[str, ...]  # rules the suggestion breaks (should be empty: the guard checks)
    actual_flags: tuple[str, ...]  # rules the agent's real reply broke


def actual_reply(customer: Segment, segments: Sequence[Segment]) -> str:
    after = [s for s in segments if s.start >= customer.start and s is not customer]
    reply = []
    for segment in sorted(after, key=lambda s: s.start):
        if segment.speaker == "agent":
            reply.append(segment.text)
        elif reply:
            break
    return "".join(reply)


def similarity(a: str, b: str, embedder: Embedder | None) -> float:
    if not a or not b:
        return 0.0
    if embedder is None:
        return round(overlap(a, [b]), 3)
    vectors = embedder.embed([a, b], kind="query")
    return round(float(np.clip(vectors[0] @ vectors[1], 0.0, 1.0)), 3)


def replay_call(
    transcript: Transcript,
    engines: SessionEngines,
    *,
    embedder: Embedder | None = None,
    use_llm: bool = True,
    blocked: frozenset[str] = frozenset(),
) -> list[ReplayTurn]:
    session = CallSession(engines, SessionOptions(background=False, use_llm=use_llm, blocked=blocked))
    for segment in transcript.segments:
        session.add_segment(segment)
    session.finish()
    suggester = engines.suggester
    turns = []
    for record in session.records:
        actual = actual_reply(record.customer, transcript.segments)
        actual_flags: tuple[str, ...] = ()
        if actual:
            reply = Segment("agent", record.customer.end, record.customer.end, actual)
            actual_flags = tuple(sorted({f.rule for f in engines.rules.check_utterance(reply)}))
        turns.append(
            ReplayTurn(
                customer=record.customer,
                suggestion=record.suggestion,
                actual=actual,
                similarity=similarity(record.suggestion.text, actual, embedder),
                suggestion_flags=tuple(suggester.rule_violations(record.suggestion.text)),
                actual_flags=actual_flags,
            )
        )
    return turns
