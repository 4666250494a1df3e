"""Typed values going into and coming out of the review store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from copilot.qa.metadata import CallMetadata
from copilot.types import CheckResult, Flag, Segment


class ReviewLike(Protocol):
    """What the store needs of a review (``copilot.qa.review``'s result has these attributes).

    Optional extras are read when present: ``moods`` (one label per segment, "" = unknown),
    ``suggestions`` (objects with ``text`` and optionally ``at``, ``context``, ``source``, ``model``)
    and ``summary`` (a string).
    """

    @property
    def call(self) -> str: ...
    @property
    def duration(self) -> float: ...
    @property
    def segments(self) -> Sequence[Segment]: ...
    @property
    def checks(self) -> Sequence[CheckResult]: ...
    @property
    def flags(self) -> Sequence[Flag]: ...
    @property
    def score(self) -> float: ...


@dataclass(frozen=True)
class Provenance:
    """What a review ran with: the configuration (and its hash) and the model versions."""

    config_hash: str
    config: Mapping[str, Any]
    model_versions: Mapping[str, str]


@dataclass(frozen=True)
class StoredSegment:
    segment: Segment  # text already redacted
    mood: str = ""  # customer mood label, "" = unknown


NO_SPEECH = "no speech"  # the outcome of a call with nothing said: stored, not scored


@dataclass(frozen=True)
class CallSummary:
    """One row of a review listing."""

    id: int
    name: str
    file: str
    content_hash: str
    config_hash: str
    duration: float  # seconds
    score: float
    meta: CallMetadata
    created_at: datetime
    failed_checks: tuple[str, ...] = ()
    outcome: str = ""  # "" = reviewed and scored; NO_SPEECH = nothing was said, not scored

    @property
    def scored(self) -> bool:
        return not self.outcome


@dataclass(frozen=True)
class StoredCall:
    """A whole stored review, as reports show it."""

    summary: CallSummary
    model_versions: Mapping[str, str]
    config: Mapping[str, Any]
    segments: tuple[StoredSegment, ...]
    checks: tuple[CheckResult, ...]
    flags: tuple[Flag, ...]
    summary_text: str = ""


@dataclass(frozen=True)
class ReviewFilter:
    """Search over stored reviews; every field narrows, defaults match everything."""

    agent: str = ""
    team: str = ""
    min_score: float | None = None
    max_score: float | None = None
    failed_check: str = ""  # check id that must have failed
    text: str = ""  # literal substring of the (redacted) transcript, ASCII case ignored
    content_hashes: tuple[str, ...] = ()  # restrict to these calls (e.g. one batch)
    queue: str = ""
    # Call date range, inclusive; a call without a known date is matched by the day it was reviewed (UTC).
    since: date | None = None
    until: date | None = None
    reviewed_before: datetime | None = None  # stored before this instant (retention)
    limit: int = 1000
    offset: int = 0


@dataclass(frozen=True)
class SaveOutcome:
    call_id: int
    replaced: bool  # an earlier review of the same content and configuration was replaced


@dataclass(frozen=True)
class Rating:
    suggestion_text: str
    rating: str  # good / bad
    comment: str = ""
    rater: str = ""
    suggestion_id: int | None = None
    id: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True)
class EvalRun:
    suite: str
    metrics: Mapping[str, Any]
    config_hash: str = ""
    model_versions: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    id: int = 0
    created_at: datetime | None = None
