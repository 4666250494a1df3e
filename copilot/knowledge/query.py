"""The retrieval query for a moment in a call: the customer's latest turn plus a little context."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from copilot.types import Role, Segment

DEFAULT_CONTEXT_TURNS = 1  # the turn just before (usually the agent's question) disambiguates short answers
MAX_QUERY_CHARS = 200  # e5-small reads 512 tokens, but a long query drowns the latest turn
CONTEXT_SEPARATOR = " "


@dataclass(frozen=True)
class Turn:
    speaker: Role
    text: str


def turns(segments: Sequence[Segment]) -> list[Turn]:
    """Consecutive segments of one speaker joined into turns, in time order."""
    result: list[Turn] = []
    for segment in sorted(segments, key=lambda s: (s.start, s.end)):
        text = segment.text.strip()
        if not text:
            continue
        if result and result[-1].speaker == segment.speaker:
            result[-1] = Turn(segment.speaker, result[-1].text + text)
        else:
            result.append(Turn(segment.speaker, text))
    return result


def build_query(segments: Sequence[Segment], *, max_context_turns: int = DEFAULT_CONTEXT_TURNS) -> str:
    """The customer's latest turn first, then up to ``max_context_turns`` earlier turns, newest first.

    The latest turn leads because it is what the agent must answer now; when the recording is mono
    (speaker ``unknown``), the latest turn of any speaker is used. The result is cut to
    ``MAX_QUERY_CHARS`` from the end, so the latest turn always survives whole when it fits.
    """
    if max_context_turns < 0:
        raise ValueError("max_context_turns must be 0 or more")
    all_turns = turns(segments)
    if not all_turns:
        return ""
    latest = max(
        (i for i, turn in enumerate(all_turns) if turn.speaker == "customer"),
        default=len(all_turns) - 1,
    )
    parts = [all_turns[latest].text]
    parts += [turn.text for turn in reversed(all_turns[max(0, latest - max_context_turns) : latest])]
    return CONTEXT_SEPARATOR.join(parts)[:MAX_QUERY_CHARS]


@functools.lru_cache(maxsize=1)
def _t2s() -> Any:
    from opencc import OpenCC

    return OpenCC("t2s")


def normalize_query(text: str) -> str:
    """Full-width forms folded (NFKC) and Traditional characters made Simplified, as the handbooks are.

    Whisper base drifts into Traditional and typed queries mix full- and half-width forms; the knowledge
    base is Simplified, so a query in another form would miss both the lexical and the dense matches.
    """
    return str(_t2s().convert(unicodedata.normalize("NFKC", text))).strip()
