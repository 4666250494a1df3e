"""One call, live or replayed: the only module that wires the stages together.

Streaming events come in (from the microphone, a replayed recording, or a transcript); the session keeps
the call state, runs the agent's real-time rules on each committed agent segment, starts a suggestion on each
committed customer segment (cancelling the one in flight), and exposes a frozen :class:`PanelState` that the
app, the CLI and the evaluation harness render. Offline use is the same code with ``background=False``.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from copilot.errors import CopilotError
from copilot.judgement.engine import RuleEngine
from copilot.judgement.operators import chars_per_minute
from copilot.judgement.tone import latest_mood
from copilot.qa.review import ReviewOptions, review_call
from copilot.suggest.engine import Suggester, Suggestion, SuggestOptions
from copilot.transcription.redact import redact, redact_segments
from copilot.types import (
    CallReview,
    CheckResult,
    Committed,
    Evidence,
    Flag,
    Role,
    Segment,
    StreamEvent,
    TentativeText,
    ToneLabel,
    Transcript,
)

log = logging.getLogger(__name__)

PACE_WINDOW = 60.0  # s of recent agent speech behind the live pace gauge
LIVE_CALL_CHECKS = ("hold", "silence")  # whole-call checks whose failures are shown as they happen
SUGGEST_ON: tuple[Role, ...] = ("customer", "unknown")  # mono audio: any turn may be the customer's


class SessionEngines(Protocol):
    """What a session needs; :class:`copilot.session.engines.Services` provides it (fakes in tests)."""

    @property
    def suggester(self) -> Suggester: ...

    @property
    def rules(self) -> RuleEngine: ...


@dataclass(frozen=True)
class SessionOptions:
    redact: bool = True  # mask PII in everything the panel shows
    suggest: bool = True
    use_llm: bool = True
    background: bool = True  # live: suggestions stream in a thread; offline: computed inline
    blocked: frozenset[str] = field(default_factory=frozenset)  # suggestion texts trainers blocked


@dataclass(frozen=True)
class SuggestionRecord:
    """What the copilot suggested after one customer turn (kept for replay and rating)."""

    customer: Segment
    suggestion: Suggestion


@dataclass(frozen=True)
class PanelState:
    """Everything the agent's side panel shows at one moment. Texts are already redacted."""

    time: float  # s of call audio processed
    segments: tuple[Segment, ...]
    tentative: tuple[TentativeText, ...]
    suggestion: Suggestion | None
    flags: tuple[Flag, ...]
    mood: ToneLabel | None
    agent_pace: float | None  # chars/min over the last PACE_WINDOW s of agent speech
    missing_steps: tuple[str, ...]
    errors: tuple[str, ...]
    finished: bool


class CallSession:
    """The state of one call. Not shared between users: the app keeps one per browser session."""

    def __init__(
        self,
        engines: SessionEngines,
        options: SessionOptions = SessionOptions(),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engines = engines
        self.options = options
        self._clock = clock
        self._lock = threading.Lock()
        self._segments: list[Segment] = []
        self._tentative: dict[Role, TentativeText] = {}
        self._flags: list[Flag] = []
        self._flag_keys: set[tuple[str, float]] = set()
        self._suggestion: Suggestion | None = None
        self._records: list[SuggestionRecord] = []
        self._stop: threading.Event | None = None
        self._workers: list[threading.Thread] = []  # every suggestion thread: cancelled ones still finish
        self._errors: list[str] = []
        self._time = 0.0
        self._finished = False

    # -- input ---------------------------------------------------------------------------------------
    def handle(self, event: StreamEvent) -> None:
        if isinstance(event, TentativeText):
            with self._lock:
                if event.text:
                    self._tentative[event.speaker] = event
                else:
                    self._tentative.pop(event.speaker, None)
                self._time = max(self._time, event.start)
        elif isinstance(event, Committed):
            self.add_segment(event.segment)

    def add_segment(self, segment: Segment) -> None:
        """A committed utterance: rules for the agent, a suggestion for the customer."""
        with self._lock:
            history = tuple(self._segments)
            self._segments.append(segment)
            self._segments.sort(key=lambda s: (s.start, s.end))
            self._tentative.pop(segment.speaker, None)
            self._time = max(self._time, segment.end)
        if segment.speaker == "agent":
            self._check_agent(segment, history)
        self._check_call_so_far()
        if self.options.suggest and segment.speaker in SUGGEST_ON:
            self._start_suggestion(segment)

    def advance(self, audio_time: float) -> None:
        """The audio clock moved on (no speech): lets dead air be noticed while it happens."""
        with self._lock:
            self._time = max(self._time, audio_time)

    def finish(self) -> None:
        """End of the call: wait for every suggestion in flight, then mark the session finished."""
        for worker in list(self._workers):
            worker.join()
        with self._lock:
            self._finished = True

    def close(self) -> None:
        """Abandon the call (a new call starts): cancel any generation in flight."""
        if self._stop is not None:
            self._stop.set()
        with self._lock:
            self._finished = True

    # -- rules -----------------------------------------------------------------------------------------
    def _add_flags(self, flags: Sequence[Flag]) -> None:
        with self._lock:
            for flag in flags:
                key = (flag.rule + ":" + flag.kind, flag.evidence[0].start if flag.evidence else -1.0)
                if key not in self._flag_keys:
                    self._flag_keys.add(key)
                    self._flags.append(flag)

    def _check_agent(self, segment: Segment, history: Sequence[Segment]) -> None:
        flags = self.engines.rules.check_utterance(segment, history)
        if not any(s.speaker == "agent" for s in history):
            # The very first agent turn must greet: say so now, not at the end of the call.
            greeting = [c for c in self.engines.rules.check_call(self._transcript()) if c.id == "greeting"]
            flags = [*flags, *(_as_flag(c) for c in greeting if c.failed)]
        self._add_flags(flags)

    def _check_call_so_far(self) -> None:
        results = self.engines.rules.check_call(self._transcript())
        self._add_flags([_as_flag(c) for c in results if c.id in LIVE_CALL_CHECKS and c.failed])

    # -- suggestions -----------------------------------------------------------------------------------
    def _start_suggestion(self, customer: Segment) -> None:
        if self._stop is not None:
            self._stop.set()  # a new customer turn makes the previous suggestion obsolete
        stop = threading.Event()
        self._stop = stop
        segments = self.segments
        turn_ended = self._clock()
        options = SuggestOptions(use_llm=self.options.use_llm, blocked=self.options.blocked)

        def work() -> None:
            last: Suggestion | None = None
            try:
                for item in self.engines.suggester.suggest(
                    segments, options=options, stop=stop, turn_ended=turn_ended
                ):
                    last = item
                    with self._lock:
                        if self._stop is stop:
                            self._suggestion = item
            except CopilotError as e:  # a failed suggestion never stops the transcript
                with self._lock:
                    self._errors.append(f"suggestion failed: {e}")
            except Exception as e:
                log.exception("suggestion failed")
                with self._lock:
                    self._errors.append(f"suggestion failed: {type(e).__name__}: {e}")
            if last is not None:
                with self._lock:
                    # In turn order: a cancelled worker may finish after the one that superseded it.
                    bisect.insort(
                        self._records,
                        SuggestionRecord(customer, last),
                        key=lambda record: (record.customer.start, record.customer.end),
                    )

        if self.options.background:
            # A cancelled worker finishes on its own within a token: recorded, never shown on the panel.
            worker = threading.Thread(target=work, name="suggest", daemon=True)
            self._workers = [w for w in self._workers if w.is_alive()] + [worker]
            worker.start()
        else:
            work()

    # -- output ----------------------------------------------------------------------------------------
    @property
    def segments(self) -> tuple[Segment, ...]:
        with self._lock:
            return tuple(self._segments)

    @property
    def records(self) -> tuple[SuggestionRecord, ...]:
        with self._lock:
            return tuple(self._records)

    def _transcript(self) -> Transcript:
        segments = self.segments
        return Transcript(
            source="live", duration=max([self._time, *(s.end for s in segments)]), segments=segments
        )

    def transcript(self, source: str = "live") -> Transcript:
        return dataclasses.replace(self._transcript(), source=source)

    def review(self, source: str = "live") -> CallReview:
        return review_call(
            self.transcript(source),
            engine=self.engines.rules,
            options=ReviewOptions(redact=self.options.redact),
        )

    def state(self) -> PanelState:
        clean: Callable[[str], str] = redact if self.options.redact else (lambda text: text)
        with self._lock:
            segments = tuple(self._segments)
            tentative = tuple(self._tentative.values())
            flags = tuple(self._flags)
            suggestion = self._suggestion
            errors = tuple(self._errors)
            now, finished = self._time, self._finished
        # read as the checks and the suggester read it: with the customer's earlier lines
        mood = latest_mood([s.text for s in segments if s.speaker == "customer"])
        recent_agent = [s for s in segments if s.speaker == "agent" and s.end >= now - PACE_WINDOW]
        return PanelState(
            time=now,
            # the whole call so far: a number read over two lines is masked in both
            segments=redact_segments(segments)
            if self.options.redact
            else tuple(dataclasses.replace(s, words=()) for s in segments),
            tentative=tuple(dataclasses.replace(t, text=clean(t.text)) for t in tentative),
            suggestion=_clean_suggestion(suggestion, clean) if suggestion else None,
            flags=tuple(
                dataclasses.replace(
                    f, evidence=tuple(dataclasses.replace(e, text=clean(e.text)) for e in f.evidence)
                )
                for f in flags
            ),
            mood=dataclasses.replace(mood, evidence=tuple(map(clean, mood.evidence))) if mood else None,
            agent_pace=chars_per_minute(recent_agent),
            missing_steps=tuple(self.engines.rules.missing_steps(segments)),
            errors=errors,
            finished=finished,
        )


def _as_flag(check: CheckResult) -> Flag:
    evidence = check.evidence or (Evidence(0.0, 0.0, "agent", ""),)
    return Flag(
        rule=check.id,
        kind=check.id,
        severity="major",
        message=check.message or f"{check.id} check failed",
        evidence=evidence,
        clause=check.clause,
    )


def _clean_suggestion(suggestion: Suggestion, clean: Callable[[str], str]) -> Suggestion:
    return dataclasses.replace(
        suggestion,
        script=clean(suggestion.script),
        text=clean(suggestion.text),
        streaming_text=clean(suggestion.streaming_text),
    )
