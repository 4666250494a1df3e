"""The trainers' view, library side: evaluation suites, a call replayed turn by turn, ratings and blocks.

A replayed call shows, at each customer turn, what the copilot suggested next to what the agent really
said. When the lead's :mod:`copilot.replay` (``replay_call(transcript, services)``) is present it is used;
until then the same comparison is built here from a :class:`~copilot.session.CallSession` run offline
(``background=False``), which is the code path the live panel uses.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.config import Config
from copilot.errors import CopilotError
from copilot.evaluation import EvalOutcome, suites
from copilot.redact import redact
from copilot.report.html import esc, mmss
from copilot.review import TRANSCRIPT_SUFFIXES
from copilot.session import CallSession, SessionOptions
from copilot.store import EvalRun, Rating
from copilot.store.fingerprint import provenance
from copilot.transcript_io import read_transcript
from copilot.transcription import transcribe_file
from copilot.types import Segment, Transcript
from copilot.ui.context import AppContext

TURN_HEADERS = ["#", "time", "customer said", "copilot suggested", "agent said", "similarity", "compliance"]


class UiError(CopilotError):
    """Something the user asked for cannot be done (shown as a message, exit code unused)."""


@dataclass(frozen=True)
class TurnView:
    """One customer turn of a replayed call, side by side."""

    index: int
    time: float
    customer: str
    suggestion: str  # what the copilot suggested (already guarded; blocked texts never appear)
    script: str
    fallback_reason: str
    cites: tuple[str, ...]
    actual: str  # what the agent really said next ("" when the customer spoke last)
    similarity: float | None  # 0-1 between suggestion and the real reply
    compliance: str  # rule findings on the real reply ("ok" when none)

    def cells(self) -> list[object]:
        return [
            self.index,
            mmss(self.time),
            self.customer,
            self.suggestion,
            self.actual or "—",
            "—" if self.similarity is None else round(self.similarity, 2),
            self.compliance,
        ]


# --- evaluation suites -----------------------------------------------------------------------------


def suite_names() -> list[str]:
    return sorted(suites())


def run_suite(name: str, config: Config) -> EvalOutcome:
    """Run one registered suite with its default options (as ``copilot eval NAME`` does)."""
    found = suites().get(name)
    if found is None:
        raise UiError(f"no evaluation suite called {name!r}; known: {', '.join(suite_names())}")
    parser = argparse.ArgumentParser(prog=f"copilot eval {name}", add_help=False)
    if found.add_arguments is not None:
        found.add_arguments(parser)
    args = parser.parse_args([])
    return found.run(args, config)


def record_run(ctx: AppContext, name: str, outcome: EvalOutcome) -> int:
    prov = provenance(ctx.config)
    return ctx.store.record_eval_run(
        EvalRun(
            suite=name,
            metrics=outcome.data,
            config_hash=prov.config_hash,
            model_versions=dict(prov.model_versions),
            note="app",
        )
    )


def flat_metrics(data: Any, prefix: str = "") -> list[list[object]]:
    """Nested measurement JSON as (metric, value) rows, numbers rounded for reading."""
    rows: list[list[object]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            rows += flat_metrics(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list):
        if all(not isinstance(x, dict | list) for x in data):
            rows.append([prefix, ", ".join(map(str, data[:20])) + (" …" if len(data) > 20 else "")])
        else:
            for i, value in enumerate(data[:50]):
                rows += flat_metrics(value, f"{prefix}[{i}]")
    else:
        rows.append([prefix, round(data, 4) if isinstance(data, float) else data])
    return rows


# --- replaying a call --------------------------------------------------------------------------------


def load_call(path: str | Path, ctx: AppContext) -> Transcript:
    """A JSON transcript as is, or a recording through the transcription layer."""
    file = Path(path)
    if file.suffix.lower() in TRANSCRIPT_SUFFIXES:
        return read_transcript(file)
    return transcribe_file(file, ctx.config.asr, ctx.services.transcriber)


def _similarity(ctx: AppContext, a: str, b: str) -> float | None:
    if not a or not b:
        return None
    if ctx.config.retrieval.mode != "bm25":
        vectors = ctx.services.embedder.embed([a, b], kind="query")
        return float(max(0.0, min(1.0, float(vectors[0] @ vectors[1]))))
    return difflib.SequenceMatcher(None, a, b).ratio()


def _next_agent_reply(segments: Sequence[Segment], customer: Segment) -> Segment | None:
    """The agent's first segment after the customer's turn began, before the customer speaks again."""
    for segment in segments:
        if segment.start <= customer.start or segment is customer:
            continue
        if segment.speaker == "agent":
            return segment
        if segment.speaker == "customer" and segment.start >= customer.end:
            return None
    return None


def compare_turns(
    transcript: Transcript, ctx: AppContext, *, use_llm: bool = True, blocked: frozenset[str] = frozenset()
) -> list[TurnView]:
    """At each customer turn: the copilot's suggestion next to the agent's real reply."""
    library = _library_replay()
    if library is not None:
        return [_from_library(i, turn) for i, turn in enumerate(library(transcript, ctx.services), start=1)]
    session = CallSession(
        ctx.services,
        SessionOptions(redact=ctx.config.privacy.redact, use_llm=use_llm, background=False, blocked=blocked),
    )
    segments = sorted(transcript.segments, key=lambda s: (s.start, s.end))
    history: list[Segment] = []
    for segment in segments:
        session.add_segment(segment)
        history.append(segment)
    session.finish()
    clean = redact if ctx.config.privacy.redact else (lambda text: text)
    engine = ctx.services.rules
    views: list[TurnView] = []
    for index, record in enumerate(session.records, start=1):
        reply = _next_agent_reply(segments, record.customer)
        findings: list[str] = []
        if reply is not None:
            before = [s for s in segments if s.start < reply.start]
            findings = sorted({f"{f.rule}: {f.message}" for f in engine.check_utterance(reply, before)})
        suggestion = record.suggestion
        views.append(
            TurnView(
                index=index,
                time=record.customer.start,
                customer=clean(record.customer.text),
                suggestion=clean(suggestion.text),
                script=clean(suggestion.script),
                fallback_reason=suggestion.reason if suggestion.fallback else "",
                cites=tuple(c.id for c in suggestion.cites),
                actual=clean(reply.text) if reply is not None else "",
                similarity=_similarity(ctx, suggestion.text, reply.text) if reply is not None else None,
                compliance="; ".join(findings) if findings else ("ok" if reply is not None else "—"),
            )
        )
    return views


def _library_replay() -> Any:
    try:
        module = importlib.import_module("copilot.replay")
    except ImportError:
        return None
    return getattr(module, "replay_call", None)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(getattr(value, "text", value))


def _from_library(index: int, turn: Any) -> TurnView:
    """Adapt a :mod:`copilot.replay` turn (its field names may differ slightly) to the view."""
    customer = getattr(turn, "customer", None)
    suggestion = getattr(turn, "suggestion", None)
    actual = (
        getattr(turn, "actual", None) or getattr(turn, "agent", None) or getattr(turn, "actual_reply", None)
    )
    similarity = getattr(turn, "similarity", None)
    compliance = getattr(turn, "compliance", "")
    if not isinstance(compliance, str):
        compliance = "; ".join(map(str, compliance)) if compliance else "ok"
    return TurnView(
        index=index,
        time=float(getattr(customer, "start", 0.0) or 0.0),
        customer=_text(customer),
        suggestion=_text(suggestion),
        script=str(getattr(suggestion, "script", "") or ""),
        fallback_reason=str(getattr(suggestion, "reason", "") or "")
        if getattr(suggestion, "fallback", False)
        else "",
        cites=tuple(getattr(c, "id", str(c)) for c in getattr(suggestion, "cites", ()) or ()),
        actual=_text(actual),
        similarity=float(similarity) if isinstance(similarity, int | float) else None,
        compliance=compliance or "ok",
    )


def turn_detail_html(turn: TurnView) -> str:
    reason = (
        f'<div class="cp-reason">script kept: {esc(turn.fallback_reason)}</div>'
        if turn.fallback_reason
        else ""
    )
    cites = f'<div class="cp-cites">cites: {esc(", ".join(turn.cites))}</div>' if turn.cites else ""
    return (
        f'<div class="cp-turn" data-turn="{turn.index}">'
        f'<div><span class="cp-tag">客户</span>{esc(turn.customer)}</div>'
        f'<div class="cp-say"><span class="cp-tag">建议</span>{esc(turn.suggestion)}</div>{reason}{cites}'
        f'<div><span class="cp-tag">坐席</span>{esc(turn.actual or "—")}</div></div>'
    )


# --- ratings and blocks --------------------------------------------------------------------------------


def rate(ctx: AppContext, text: str, rating: str, comment: str = "", rater: str = "") -> int:
    if not text:
        raise UiError("choose a suggestion to rate first")
    return ctx.store.add_rating(
        Rating(suggestion_text=text, rating=rating, comment=comment.strip(), rater=rater)
    )


def block(ctx: AppContext, text: str, reason: str = "") -> None:
    if not text:
        raise UiError("choose a suggestion to block first")
    ctx.store.block(text, reason.strip())


def ratings_rows(ctx: AppContext, limit: int = 50) -> list[list[object]]:
    return [
        [
            r.id,
            r.rating,
            r.suggestion_text,
            r.comment,
            r.rater or "—",
            r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "",
        ]
        for r in ctx.store.ratings(limit)
    ]


def blocklist_rows(ctx: AppContext) -> list[list[object]]:
    return [[text] for text in ctx.store.blocklist()]


def eval_history_rows(ctx: AppContext, limit: int = 30) -> list[list[object]]:
    runs = ctx.store.eval_runs(limit=1000)[-limit:]
    return [
        [r.id, r.suite, r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "", r.note]
        for r in reversed(runs)
    ]
