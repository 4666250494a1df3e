"""Review a finished call: the one library function behind ``copilot review``, the app's upload tab and
the evaluation harness.

The input is a :class:`Transcript`; audio is a thin layer above (:func:`review_file` takes a
``transcribe`` callable for audio paths, so the transcription layer stays outside this module).
Checks run on the raw text; everything the review returns is redacted unless told otherwise.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.errors import AudioError
from copilot.judgement import RuleEngine, default_engine
from copilot.judgement.engine import has_speech
from copilot.judgement.playbook import PhrasesParams, SequenceParams
from copilot.judgement.tone import agent_tone, customer_moods
from copilot.transcription.redact import (
    ALL_KINDS,
    call_redactor,
    name_redactor,
    redact_segments,
    text_redactor,
)
from copilot.transcription.transcript_files import read_transcript
from copilot.types import CallReview, CheckResult, Clause, Evidence, Flag, ToneReading, Transcript

TRANSCRIPT_SUFFIXES = (".json",)
TIME_DECIMALS = 2  # seconds in JSON output

Transcribe = Callable[[Path], Transcript]


@dataclass(frozen=True)
class ReviewOptions:
    redact: bool = True  # mask personal data ([privacy] redact_kinds) in everything returned
    redact_kinds: tuple[str, ...] = tuple(sorted(ALL_KINDS))
    tone: bool = True  # read customer emotion and agent tone for each segment


def _clean_evidence(evidence: tuple[Evidence, ...], clean: Callable[[str], str]) -> tuple[Evidence, ...]:
    return tuple(dataclasses.replace(e, text=clean(e.text)) for e in evidence)


def _tone(transcript: Transcript) -> tuple[ToneReading, ...]:
    readings: list[ToneReading] = []
    moods = customer_moods(transcript.segments)  # each line read with the customer's earlier lines
    for i, segment in enumerate(transcript.segments):
        if segment.speaker == "customer":
            label = moods[i]
            labels = [label] if label.label != "calm" else []
        elif segment.speaker == "agent":
            labels = agent_tone(segment.text)
        else:
            labels = []
        readings.extend(ToneReading(segment.start, segment.end, segment.speaker, lab) for lab in labels)
    return tuple(readings)


def review_call(
    transcript: Transcript, *, engine: RuleEngine | None = None, options: ReviewOptions = ReviewOptions()
) -> CallReview:
    """Scorecard, real-time flags (replayed) and tone of one call."""
    engine = engine or default_engine()
    checks = engine.check_call(transcript)
    # The offline flags are what an agent said: the live "apology still owed" reminders are the apology
    # check's finding (with the same evidence), not a line the agent said wrong.
    sequence = {c.id for c in engine.playbook.checks if isinstance(c.params, SequenceParams)}
    phrases = {c.id for c in engine.playbook.checks if isinstance(c.params, PhrasesParams)}
    flags = [f for f in engine.call_flags(transcript) if f.rule not in sequence]
    scored = has_speech(transcript.segments)
    score = engine.score(checks, [f for f in flags if f.rule in phrases]) if scored else 0.0
    tone = _tone(transcript) if options.tone else ()
    # The segments are redacted as the whole call (a number read over two segments is found); a quote of
    # a segment in the evidence gets that segment's redacted text.
    segments = (
        redact_segments(transcript.segments, options.redact_kinds)
        if options.redact
        else tuple(dataclasses.replace(s, words=()) for s in transcript.segments)
    )
    clean = call_redactor(transcript.segments, segments, text_redactor(options.redact, options.redact_kinds))
    return CallReview(
        call=name_redactor(options.redact, options.redact_kinds)(transcript.source),
        duration=transcript.duration,
        segments=segments,
        checks=tuple(dataclasses.replace(c, evidence=_clean_evidence(c.evidence, clean)) for c in checks),
        flags=tuple(dataclasses.replace(f, evidence=_clean_evidence(f.evidence, clean)) for f in flags),
        score=score,
        tone=tuple(
            dataclasses.replace(
                t, label=dataclasses.replace(t.label, evidence=tuple(map(clean, t.label.evidence)))
            )
            for t in tone
        ),
        redacted=options.redact,
        scored=scored,
    )


def review_file(
    path: str | os.PathLike[str],
    *,
    engine: RuleEngine | None = None,
    options: ReviewOptions = ReviewOptions(),
    transcribe: Transcribe | None = None,
) -> CallReview:
    """Review a JSON transcript, or an audio file through ``transcribe`` (the transcription layer)."""
    file = Path(path)
    if file.suffix.lower() in TRANSCRIPT_SUFFIXES:
        transcript = read_transcript(file)
    elif transcribe is None:
        raise AudioError(f"{file}: reviewing audio needs the transcription layer; pass a JSON transcript")
    else:
        transcript = transcribe(file)
    return review_call(transcript, engine=engine, options=options)


# --- JSON shape --------------------------------------------------------------------------------------


def _t(seconds: float) -> float:
    return round(seconds, TIME_DECIMALS)


def evidence_dict(evidence: Evidence) -> dict[str, Any]:
    return {
        "start": _t(evidence.start),
        "end": _t(evidence.end),
        "speaker": evidence.speaker,
        "text": evidence.text,
    }


def clause_dict(clause: Clause) -> dict[str, Any]:
    out = {"document": clause.document, "section": clause.section, "quote": clause.quote}
    if clause.passage_id:
        out["passage_id"] = clause.passage_id
    return out


def flag_dict(flag: Flag) -> dict[str, Any]:
    return {
        "rule": flag.rule,
        "kind": flag.kind,
        "severity": flag.severity,
        "message": flag.message,
        "evidence": [evidence_dict(e) for e in flag.evidence],
        "clause": clause_dict(flag.clause),
    }


def check_dict(check: CheckResult) -> dict[str, Any]:
    """``status`` is pass / fail / unknown; an unknown check has ``passed`` null and says why in ``reason``."""
    out = {
        "id": check.id,
        "status": check.status,
        "passed": None if check.status == "unknown" else check.passed,
        "evidence": [evidence_dict(e) for e in check.evidence],
        "clause": clause_dict(check.clause),
        "message": check.message,
    }
    if check.unknown_reason:
        out["reason"] = check.unknown_reason
    return out


def review_dict(review: CallReview) -> dict[str, Any]:
    """``{call, duration, segments, checks, flags, score, tone}`` for JSON output (score null: not scored)."""
    return {
        "call": review.call,
        "duration": _t(review.duration),
        "segments": [
            {"speaker": s.speaker, "start": _t(s.start), "end": _t(s.end), "text": s.text}
            for s in review.segments
        ],
        "checks": [check_dict(c) for c in review.checks],
        "flags": [flag_dict(f) for f in review.flags],
        "score": review.score if review.scored else None,
        "tone": [
            {
                "start": _t(t.start),
                "end": _t(t.end),
                "speaker": t.speaker,
                "label": t.label.label,
                "score": round(t.label.score, 2),
                "evidence": list(t.label.evidence),
            }
            for t in review.tone
        ],
        "redacted": review.redacted,
    }
