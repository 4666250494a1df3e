"""The operators rules are built from: phrase/regex matching with context exceptions, semantic
similarity, speech rate, overlap and silence. Pure functions over text and segments, no I/O."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from copilot.judgement.playbook import CueSet, SemanticSpec
from copilot.types import Role, Segment

if TYPE_CHECKING:
    import numpy as np

SECONDS_PER_MINUTE = 60.0
# What counts as a spoken character for speech rate: Han characters, letters and digits.
_SPOKEN_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fffA-Za-z0-9]")


class TextEmbedder(Protocol):
    """The part of ``copilot.knowledge.embedding.Embedder`` the semantic operator needs."""

    def embed(self, texts: Sequence[str], *, kind: Literal["query", "passage"]) -> np.ndarray: ...


@dataclass(frozen=True)
class Hit:
    """Where a cue matched in a text."""

    start: int
    end: int
    text: str


def find_cues(cues: CueSet, text: str) -> list[Hit]:
    """Every phrase/pattern hit in ``text`` that no exception match contains, in order."""
    hits: list[Hit] = []
    for phrase in cues.phrases:
        at = text.find(phrase)
        while at >= 0:
            hits.append(Hit(at, at + len(phrase), phrase))
            at = text.find(phrase, at + 1)
    for pattern in cues.patterns:
        hits.extend(Hit(m.start(), m.end(), m.group()) for m in pattern.finditer(text) if m.end() > m.start())
    if cues.exceptions and hits:
        # Exceptions are searched at every position so that overlapping contexts are all found.
        shields = [
            (m.start(), m.end())
            for pattern in cues.exceptions
            for at in range(len(text))
            if (m := pattern.match(text, at)) is not None
        ]
        hits = [h for h in hits if not any(s <= h.start and h.end <= e for s, e in shields)]
    return sorted(hits, key=lambda h: (h.start, -h.end))


def matches(cues: CueSet, text: str) -> bool:
    return bool(find_cues(cues, text))


class SemanticMatcher:
    """Cosine similarity of an utterance to violation examples (embeddings are normalised)."""

    def __init__(self, spec: SemanticSpec, embedder: TextEmbedder) -> None:
        self.spec = spec
        self._embedder = embedder
        self._examples: np.ndarray | None = None  # embedded lazily, once

    def best(self, text: str) -> tuple[float, str]:
        """The highest similarity to any example, and that example."""
        if self._examples is None:
            self._examples = self._embedder.embed(list(self.spec.examples), kind="query")
        vector = self._embedder.embed([text], kind="query")[0]
        scores = self._examples @ vector
        index = int(scores.argmax())
        return float(scores[index]), self.spec.examples[index]

    def match(self, text: str) -> tuple[float, str] | None:
        score, example = self.best(text)
        return (score, example) if score >= self.spec.threshold else None


def spoken_chars(text: str) -> int:
    return len(_SPOKEN_CHAR.findall(text))


def chars_per_minute(segments: Sequence[Segment]) -> float | None:
    """Characters per minute over the segments' own durations (None when they last no time)."""
    seconds = sum(s.duration for s in segments)
    if seconds <= 0:
        return None
    return sum(spoken_chars(s.text) for s in segments) * SECONDS_PER_MINUTE / seconds


@dataclass(frozen=True)
class Overlap:
    """``segment`` started while ``other`` (of another speaker) was still speaking."""

    segment: Segment
    other: Segment
    seconds: float


def overlaps(segment: Segment, others: Sequence[Segment], other_role: Role) -> list[Overlap]:
    """Talk-over: ``other_role`` segments that were in progress when ``segment`` began."""
    found = []
    for other in others:
        if other.speaker != other_role or other is segment:
            continue
        if other.start < segment.start < other.end:
            found.append(Overlap(segment, other, min(other.end, segment.end) - segment.start))
    return found


@dataclass(frozen=True)
class Gap:
    """Nobody speaks between ``start`` and ``end``; ``before`` ended the speech, ``after`` resumes it."""

    start: float
    end: float
    before: Segment
    after: Segment

    @property
    def seconds(self) -> float:
        return self.end - self.start


def gaps(segments: Sequence[Segment], min_seconds: float = 0.0) -> list[Gap]:
    """Silences between speech of anyone, longer than ``min_seconds`` (start of call excluded)."""
    ordered = sorted(segments, key=lambda s: s.start)
    found: list[Gap] = []
    if not ordered:
        return found
    last = ordered[0]
    for segment in ordered[1:]:
        if segment.start - last.end > min_seconds:
            found.append(Gap(last.end, segment.start, last, segment))
        if segment.end > last.end:
            last = segment
    return found


TURN_GAP_S = 1.5  # s: a speaker's pauses shorter than this (commas, breaths) stay inside one turn


def merge_turns(segments: Sequence[Segment], max_gap: float = TURN_GAP_S) -> list[Segment]:
    """Consecutive segments of one speaker joined into turns.

    Recognisers cut speech at every pause (a VAD commits at ~0.4 s of silence), so one spoken turn —
    "您好，欢迎致电…，我是小李，请问有什么可以帮您？" — can arrive as four segments. Whole-call checks are about
    turns: the greeting is the first agent *turn*, pace includes a turn's own pauses, a hold is a gap
    between turns. Another speaker starting in between always ends the turn.
    """
    turns: list[Segment] = []
    for segment in sorted(segments, key=lambda s: (s.start, s.end)):
        previous = turns[-1] if turns else None
        if (
            previous is not None
            and previous.speaker == segment.speaker
            and segment.start - previous.end <= max_gap
        ):
            turns[-1] = Segment(
                previous.speaker,
                previous.start,
                max(previous.end, segment.end),
                previous.text + segment.text,
                previous.words + segment.words,
            )
        else:
            turns.append(segment)
    return turns
