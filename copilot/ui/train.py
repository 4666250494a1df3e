"""The trainers' view, library side: evaluation suites, a call replayed turn by turn, ratings and blocks.

A replayed call shows, at each customer turn, what the copilot suggested next to what the agent really
said (:func:`copilot.evaluation.turn_by_turn.replay_call`: the live panel's session run offline).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.config import Config
from copilot.errors import CopilotError
from copilot.evaluation import EvalOutcome, SuiteOptions, suites
from copilot.evaluation.turn_by_turn import ReplayTurn, replay_call
from copilot.qa import calls as pipeline
from copilot.qa.report.html import esc, mmss
from copilot.qa.store import Rating
from copilot.transcription.redact import text_redactor
from copilot.types import Transcript
from copilot.ui.context import AppContext

# The columns a trainer judges by: what the agent's real reply broke, and where the suggestion came from.
# (An embedding similarity between suggestion and reply scored every turn 0.87-0.93 and told nothing.)
TURN_HEADERS = [
    "#",
    "时间 time",
    "客户 customer said",
    "建议 copilot suggested",
    "坐席 agent said",
    "坐席回复 agent's reply",
    "建议来源 suggestion",
]


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
    compliance: str  # rule findings on the real reply and the suggestion ("ok" when none)
    raw_suggestion: str = ""  # the text as the suggester produced it: what a block must match
    reply_findings: tuple[str, ...] = ()  # rules the agent's real reply broke
    suggestion_findings: tuple[str, ...] = ()  # rules the suggestion broke (the guard should make this empty)
    rewritten: bool = False  # the LLM's rewrite was kept (else the handbook script)

    def cells(self) -> list[object]:
        return [
            self.index,
            mmss(self.time),
            self.customer,
            self.suggestion,
            self.actual or "—",
            self.reply_verdict(),
            self.source(),
        ]

    def reply_verdict(self) -> str:
        if not self.actual:
            return "—"
        return "✗ " + ", ".join(self.reply_findings) if self.reply_findings else "✓ 无违规 no rule broken"

    def source(self) -> str:
        where = "AI 改写 rewrite" if self.rewritten else "手册话术 script"
        if self.fallback_reason:
            where += f"（{self.fallback_reason}）"
        if self.suggestion_findings:
            where += " ✗ " + ", ".join(self.suggestion_findings)
        return where


# --- evaluation suites -----------------------------------------------------------------------------


def suite_names() -> list[str]:
    return sorted(suites())


def run_suite(name: str, config: Config) -> EvalOutcome:
    """Run one registered suite with its default options (as ``copilot eval NAME`` does)."""
    found = suites().get(name)
    if found is None:
        raise UiError(f"no evaluation suite called {name!r}; known: {', '.join(suite_names())}")
    return found.run(SuiteOptions(), config)


def record_run(ctx: AppContext, name: str, outcome: EvalOutcome) -> int:
    """Store the run as ``copilot eval`` does: the suite's metric rows, not its raw data."""
    from copilot.evaluation.adapters import LEGACY_METRICS
    from copilot.evaluation.harness import record_suite_run

    suite = suites()[name]
    extract = suite.metrics or LEGACY_METRICS.get(name)
    metrics = extract(outcome.data, ctx.config) if extract else []
    return record_suite_run(ctx.store, name, metrics, ctx.config, "app")


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
    return pipeline.load_call(path, ctx.services)


def compare_turns(
    transcript: Transcript, ctx: AppContext, *, use_llm: bool = True, blocked: frozenset[str] = frozenset()
) -> list[TurnView]:
    """At each customer turn: the copilot's suggestion next to the agent's real reply
    (:func:`copilot.evaluation.turn_by_turn.replay_call`, the live panel's session run offline), redacted for display."""
    embedder = ctx.services.embedder if ctx.config.retrieval.mode != "bm25" else None
    turns = replay_call(transcript, ctx.services, embedder=embedder, use_llm=use_llm, blocked=blocked)
    clean = text_redactor(ctx.config.privacy.redact, ctx.config.privacy.redact_kinds)
    return [_view(index, turn, clean) for index, turn in enumerate(turns, start=1)]


def _view(index: int, turn: ReplayTurn, clean: Callable[[str], str]) -> TurnView:
    suggestion = turn.suggestion
    findings = [f"agent reply breaks: {', '.join(turn.actual_flags)}"] if turn.actual_flags else []
    if turn.suggestion_flags:
        findings.append(f"suggestion breaks: {', '.join(turn.suggestion_flags)}")
    return TurnView(
        index=index,
        time=turn.customer.start,
        customer=clean(turn.customer.text),
        suggestion=clean(suggestion.text),
        script=clean(suggestion.script),
        fallback_reason=suggestion.reason if suggestion.fallback else "",
        cites=tuple(c.id for c in suggestion.cites),
        actual=clean(turn.actual),
        similarity=turn.similarity if turn.actual else None,
        compliance="; ".join(findings) if findings else ("ok" if turn.actual else "—"),
        raw_suggestion=suggestion.text,
        reply_findings=tuple(turn.actual_flags),
        suggestion_findings=tuple(turn.suggestion_flags),
        rewritten=not suggestion.fallback,
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
