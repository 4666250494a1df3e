"""The trainers' view, library side: evaluation suites, a call replayed turn by turn, ratings and blocks.

A replayed call shows, at each customer turn, what the copilot suggested next to what the agent really
said (:func:`copilot.evaluation.turn_by_turn.replay_call`: the live panel's session run offline).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.config import Config
from copilot.errors import CopilotError
from copilot.evaluation import EvalOutcome, Metric, SuiteOptions, suites
from copilot.evaluation.harness import (
    DEFAULT_FLOORS,
    DIFF_EPSILON,
    Floor,
    finite_value,
    load_floors,
    record_suite_run,
)
from copilot.evaluation.turn_by_turn import ReplayTurn, replay_call
from copilot.qa import calls as pipeline
from copilot.qa.report.html import esc, mmss
from copilot.qa.store import EvalRun, Rating, provenance
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
    raw_suggestion: str = ""  # the text as the suggester produced it: what a block must match
    reply_findings: tuple[str, ...] = ()  # rules the agent's real reply broke
    suggestion_findings: tuple[str, ...] = ()  # rules the suggestion broke (the guard should make this empty)
    rewritten: bool = False  # the LLM's rewrite was kept (else the handbook script)

    @property
    def compliance(self) -> str:
        """The rule findings on the real reply and the suggestion in one line ("ok" when none)."""
        findings = [f"agent reply breaks: {', '.join(self.reply_findings)}"] if self.reply_findings else []
        if self.suggestion_findings:
            findings.append(f"suggestion breaks: {', '.join(self.suggestion_findings)}")
        return "; ".join(findings) if findings else ("ok" if self.actual else "—")

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

NONE = "—"  # no floor, no earlier run, not measured
BREACH_TEXT = {"not measured": "not measured", "below": "below floor", "above": "above its maximum"}
METRIC_HEADERS = ["metric", "value", "floor", "pass / below floor", "change from last run"]
COMPARE_HEADERS = ["metric", "run A", "run B", "difference (B − A)"]
HISTORY_HEADERS = ["run", "suite", "when", "configuration", "note"]


def suite_names() -> list[str]:
    return sorted(suites())


def suite_floors(path: Path = DEFAULT_FLOORS) -> list[Floor]:
    """The CI floors of ``eval/floors.toml`` (as ``copilot eval --check-floors`` reads them); none when the
    file is missing or broken (the app still shows the values)."""
    try:
        return load_floors(path)
    except CopilotError:
        return []


def floor_text(floor: Floor | None) -> str:
    if floor is None:
        return NONE
    bounds = []
    if floor.minimum is not None:
        bounds.append(f"≥ {floor.minimum:g}")
    if floor.maximum is not None:
        bounds.append(f"≤ {floor.maximum:g}")
    return ", ".join(bounds)


def suite_description(name: str | None, floors: Sequence[Floor] | None = None) -> str:
    """What the suite measures and on what data (its registered help), how it runs, and its floors."""
    if not name:
        return ""
    found = suites().get(name)
    if found is None:
        raise UiError(f"no evaluation suite called {name!r}; known: {', '.join(suite_names())}")
    floors = suite_floors() if floors is None else floors
    own = [f for f in floors if f.suite == name]
    runs = "" if found.default else " Not part of a bare `copilot eval`: it runs only when named."
    bounds = (
        "Floors (eval/floors.toml): " + "; ".join(f"{f.key} {floor_text(f)}" for f in own) + "."
        if own
        else "No floors in eval/floors.toml."
    )
    return (
        f'<div class="cp-suite-about" data-suite="{esc(name)}"><b>{esc(name)}</b>: {esc(found.help)}.'
        f"{esc(runs)}<br>{esc(bounds)} Run suite runs it in full here (as <code>copilot eval {esc(name)}</code>"
        ", minutes for the larger suites).</div>"
    )


def run_suite(name: str, config: Config) -> EvalOutcome:
    """Run one registered suite with its default options (as ``copilot eval NAME`` does)."""
    found = suites().get(name)
    if found is None:
        raise UiError(f"no evaluation suite called {name!r}; known: {', '.join(suite_names())}")
    return found.run(SuiteOptions(), config)


def suite_metrics(ctx: AppContext, name: str, outcome: EvalOutcome) -> list[Metric]:
    """The suite's metric rows (what ``copilot eval`` tabulates and stores), values rounded as it does."""
    from copilot.evaluation.adapters import LEGACY_METRICS

    suite = suites()[name]
    extract = suite.metrics or LEGACY_METRICS.get(name)
    rows = extract(outcome.data, ctx.config) if extract else []
    return [Metric(m.key, m.label, finite_value(m.value), m.better, m.unit, m.n) for m in rows]


def configuration(run: EvalRun) -> tuple[str, bool]:
    """What makes two stored runs comparable: the configuration's hash, and a --quick run (smaller sets)
    apart from a full one (the CLI notes ``LABEL quick``, the app ``app``)."""
    return run.config_hash, run.note.endswith("quick")


def previous_run(ctx: AppContext, suite: str, config_hash: str, *, quick: bool = False) -> EvalRun | None:
    """The newest stored run of ``suite`` with this configuration (None: this is its first run)."""
    same = [r for r in ctx.store.eval_runs(suite) if configuration(r) == (config_hash, quick)]
    return same[-1] if same else None


def number(value: Any) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return NONE if value is None else str(value)
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


def change_text(before: Any, after: Any, better: str | None = None) -> str:
    """``after - before`` signed, with better / worse when the metric's direction is known."""
    if not isinstance(before, int | float) or not isinstance(after, int | float):
        return NONE
    diff = float(after) - float(before)
    if abs(diff) <= DIFF_EPSILON:
        return "same"
    text = ("+" if diff > 0 else "−") + number(abs(diff))
    if better in ("higher", "lower"):
        text += " better" if (diff > 0) == (better == "higher") else " worse"
    return text


def floor_verdict(value: float | None, floor: Floor | None) -> str:
    """As ``copilot eval --check-floors`` judges it: below a minimum or above a maximum fails."""
    if floor is None:
        return NONE
    breach = floor.breach(value)
    return "✓ pass" if breach is None else f"✗ {BREACH_TEXT[breach]}"


def metric_rows(
    suite: str,
    metrics: Sequence[Metric],
    floors: Sequence[Floor],
    previous: Mapping[str, Any] | None = None,
) -> list[list[object]]:
    """metric · value · floor · pass/below floor · change from the previous run (``previous``: its stored
    metrics; None for a first run)."""
    by_key = {f.key: f for f in floors if f.suite == suite}
    rows: list[list[object]] = []
    for m in metrics:
        floor = by_key.get(m.key)
        before = previous.get(m.key) if previous is not None else None
        rows.append(
            [
                m.label,
                number(m.value),
                floor_text(floor),
                floor_verdict(m.value, floor),
                change_text(before, m.value, m.better),
            ]
        )
    return rows


def run_label(run: EvalRun) -> str:
    when = run.created_at.strftime("%Y-%m-%d %H:%M") if run.created_at else "?"
    return f"#{run.id} · {when} · {run.note or 'run'} · config {run.config_hash[:8] or '?'}"


def stored_run_choices(ctx: AppContext, suite: str | None) -> list[tuple[str, int]]:
    """The stored runs of ``suite``, newest first, as (label, run id) for a dropdown."""
    if not suite:
        return []
    return [(run_label(r), r.id) for r in reversed(ctx.store.eval_runs(suite))]


def _direction(key: str, floors: Sequence[Floor], suite: str) -> str | None:
    floor = next((f for f in floors if f.suite == suite and f.key == key), None)
    if floor is not None:
        return "lower" if floor.maximum is not None and floor.minimum is None else "higher"
    if key.endswith("_ms") or key.startswith("cer"):
        return "lower"
    return None


def compare_rows(a: EvalRun, b: EvalRun, floors: Sequence[Floor] = ()) -> list[list[object]]:
    """metric · run A · run B · difference (B − A), over the metrics of either run (A's order first)."""
    if a.suite != b.suite:
        raise UiError(f"compare runs of one suite: #{a.id} is {a.suite}, #{b.id} is {b.suite}")
    keys = list(a.metrics) + [k for k in b.metrics if k not in a.metrics]
    return [
        [
            key,
            number(a.metrics.get(key)),
            number(b.metrics.get(key)),
            change_text(a.metrics.get(key), b.metrics.get(key), _direction(key, floors, a.suite)),
        ]
        for key in keys
    ]


def compare_stored(ctx: AppContext, a: int | None, b: int | None) -> list[list[object]]:
    if a is None or b is None:
        return []
    runs = {r.id: r for r in ctx.store.eval_runs(limit=1_000_000)}
    missing = [str(i) for i in (a, b) if i not in runs]
    if missing:
        raise UiError(f"no stored run #{', #'.join(missing)}")
    return compare_rows(runs[a], runs[b], suite_floors())


def run_and_record(ctx: AppContext, name: str) -> tuple[EvalOutcome, list[list[object]], int]:
    """Run the suite, store it as ``copilot eval`` does (its metric rows, not its raw data), and its table
    against the floors and its previous run of this configuration."""
    outcome = run_suite(name, ctx.config)
    metrics = suite_metrics(ctx, name, outcome)
    before = previous_run(ctx, name, provenance(ctx.config).config_hash)
    run_id = record_suite_run(ctx.store, name, metrics, ctx.config, "app")
    rows = metric_rows(name, metrics, suite_floors(), before.metrics if before else None)
    return outcome, rows, run_id


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


RATING_VALUES = ("good", "bad")


def require_rating(rating: str | None) -> str:
    """There is no default rating: without good or bad nothing is stored."""
    if rating not in RATING_VALUES:
        raise UiError("请先选择评价：好 或 差 (choose good or bad first; nothing was saved)")
    return rating


def rate(ctx: AppContext, text: str, rating: str | None, comment: str = "", rater: str = "") -> int:
    """Store a rating (good or bad; see :func:`require_rating`)."""
    rating = require_rating(rating)
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


BLOCK_HEADERS = ["blocked suggestion", "reason", "when"]


def unblock(ctx: AppContext, text: str | None) -> None:
    """Take a text off the block list: later suggestions may use it again."""
    if not text:
        raise UiError("choose a blocked suggestion in the list first")
    if not ctx.store.unblock(text):
        raise UiError("that suggestion is not blocked (any more)")


def blocklist_rows(ctx: AppContext) -> list[list[object]]:
    return [
        [text, reason or NONE, when.strftime("%Y-%m-%d %H:%M") if when else ""]
        for text, reason, when in ctx.store.blocks()
    ]


def eval_history_rows(ctx: AppContext, limit: int = 30) -> list[list[object]]:
    runs = ctx.store.eval_runs(limit=1_000_000)[-limit:]
    return [
        [
            r.id,
            r.suite,
            r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "",
            r.config_hash[:8],
            r.note,
        ]
        for r in reversed(runs)
    ]
