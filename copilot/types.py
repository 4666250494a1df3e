"""Typed values that cross stage boundaries.

Times are float seconds from the start of the call. Roles are the speaker of a channel: contact-centre
recorders put the agent and the customer on separate channels; mono audio has speaker ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["agent", "customer", "unknown"]
ROLES: tuple[Role, ...] = ("agent", "customer", "unknown")

Severity = Literal["info", "minor", "major", "critical"]


@dataclass(frozen=True)
class Word:
    """One recognised token with its time span."""

    text: str
    start: float
    end: float
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    """A committed piece of one speaker's speech."""

    speaker: Role
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class Transcript:
    """A whole call (or recording) as committed segments, ordered by start time."""

    source: str
    duration: float
    segments: tuple[Segment, ...]
    timed: bool = True  # False: the text in spoken order without times (a chat log, a turns-only file)


@dataclass(frozen=True)
class Clause:
    """The place in a handbook that a guideline, rule or suggestion rests on."""

    document: str
    section: str
    quote: str
    passage_id: str = ""


@dataclass(frozen=True)
class Passage:
    """A retrievable unit of handbook text with a stable id."""

    id: str
    source: str
    section: str
    text: str


@dataclass(frozen=True)
class SearchHit:
    passage: Passage
    score: float


@dataclass(frozen=True)
class Evidence:
    """Where in the call a finding was seen."""

    start: float
    end: float
    speaker: Role
    text: str


@dataclass(frozen=True)
class Flag:
    """One deviation from the handbook, found in a single utterance or across the call."""

    rule: str
    kind: str
    severity: Severity
    message: str
    evidence: tuple[Evidence, ...]
    clause: Clause


CheckStatus = Literal["pass", "fail", "unknown"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one scorecard check over a whole call: pass, fail, or cannot tell.

    ``unknown`` (a non-empty ``unknown_reason``) means the transcript cannot decide the check: the opening or
    the end is not in it, there is no speech, no times to measure, an apology was never owed. Such a check
    neither passes nor fails the call (``passed`` is False and ``failed`` is False) and weighs nothing in the score.
    """

    id: str
    passed: bool
    evidence: tuple[Evidence, ...]
    clause: Clause
    message: str = ""
    unknown_reason: str = ""

    @property
    def status(self) -> CheckStatus:
        if self.unknown_reason:
            return "unknown"
        return "pass" if self.passed else "fail"

    @property
    def failed(self) -> bool:
        return self.status == "fail"


@dataclass(frozen=True)
class ToneLabel:
    """An emotion or tone label with the evidence it was read from."""

    label: str
    score: float
    evidence: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TentativeText:
    """Streaming: what one speaker seems to be saying right now; replaced by later events.

    An empty ``text`` clears the line (the utterance ended with nothing to commit).
    """

    speaker: Role
    start: float
    text: str


@dataclass(frozen=True)
class Committed:
    """Streaming: a finished utterance of one speaker; never revised."""

    segment: Segment


StreamEvent = TentativeText | Committed


@dataclass(frozen=True)
class ToneReading:
    """A tone or emotion label read from one segment of a call."""

    start: float
    end: float
    speaker: Role
    label: ToneLabel


@dataclass(frozen=True)
class CallReview:
    """The QA scorecard of one call: redacted segments, check results, flags, score and tone."""

    call: str
    duration: float
    segments: tuple[Segment, ...]
    checks: tuple[CheckResult, ...]
    flags: tuple[Flag, ...]
    score: float  # 0-100, weighted by the playbook (0.0 when not scored)
    tone: tuple[ToneReading, ...] = ()
    redacted: bool = True
    scored: bool = True  # False: nothing to score (no speech); JSON shows score null


@dataclass(frozen=True)
class Script:
    """A standard phrase quoted by a handbook (or added by a person), with the moment it answers."""

    id: str
    text: str
    situation: str  # the handbook's own words for the moment, e.g. 遇到用户讲方言无法听懂时
    situation_key: str  # silent_line, weak_voice, dialect, angry_caller ... ("" when unknown)
    stage: str  # opening, verification, diagnosis, hold, resolution, closing, any
    kind: Literal["script", "forbidden"] = "script"  # forbidden: a phrase the handbook says to avoid
    source: str = ""
    section: str = ""
    passage_id: str = ""
    origin: Literal["handbook", "custom"] = "handbook"
