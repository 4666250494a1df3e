"""What the agent's live side panel shows, as a pure function of one :class:`PanelState`.

No Gradio here and no I/O: :func:`render_panel` turns a pipeline update into HTML strings, one per panel
component, so the whole panel can be tested without a browser. Every text from the call goes through
``esc`` (the session has already redacted it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from copilot.qa.report.html import esc, mmss
from copilot.session.call import PanelState
from copilot.suggest.engine import Suggestion
from copilot.types import Clause, Flag, Role, Segment, TentativeText

PACE_TARGET = (180.0, 220.0)  # chars/min: the handbook's speech-rate band (playbook speech_rate check)
PACE_SCALE_MIN = 300.0  # chars/min at the right end of the gauge (widened when the agent goes faster)
PASSAGE_CHARS = 160  # characters of the guideline passage shown before it is cut with an ellipsis
TRANSCRIPT_LINES = 60  # most recent committed lines shown (the whole call stays in the review)
FLAGS_SHOWN = 20  # most recent flags shown, newest first (the list scrolls)

SPEAKER_LABEL: dict[Role, str] = {"agent": "坐席", "customer": "客户", "unknown": "说话人"}
MOOD_LABEL = {
    "angry": "生气",
    "anxious": "着急",
    "distressed": "难受",
    "calm": "平静",
    "thankful": "感谢",
    "neutral": "平静",  # labels of older stored reviews
    "satisfied": "满意",
}
SEVERITY_LABEL = {"critical": "严重", "major": "重要", "minor": "轻微", "info": "提示"}


@dataclass(frozen=True)
class Step:
    """One item of the call checklist (a playbook check the agent must do)."""

    id: str
    label: str
    conditional: bool = False  # owed only when something happens (an apology after a complaint)


@dataclass(frozen=True)
class PanelView:
    """The HTML of each live-panel component at one moment."""

    status: str
    transcript: str
    guideline: str
    suggestion: str
    flags: str
    mood: str
    pace: str
    checklist: str
    errors: str
    finished: bool
    checklist_complete: bool


def _clause_html(clause: Clause) -> str:
    where = " § ".join(x for x in (clause.document, clause.section) if x)
    quote = f'<div class="cp-quote">“{esc(clause.quote)}”</div>' if clause.quote else ""
    return f'<div class="cp-clause"><span class="cp-where">{esc(where) or "手册"}</span>{quote}</div>'


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _line_html(
    speaker: Role, start: float, text: str, *, end: float | None = None, tentative: bool = False
) -> str:
    """One transcript line; tentative text (still being recognised) is marked and shown in grey.

    Committed lines carry their audio bounds (``data-start``/``data-end``, s) so a load benchmark can match
    them to a scripted utterance without parsing the text."""
    who = SPEAKER_LABEL.get(speaker, speaker)
    grey, more = (" cp-tentative", "…") if tentative else ("", "")
    bounds = f' data-start="{start:.2f}" data-end="{end:.2f}"' if end is not None else ""
    return (
        f'<div class="cp-seg cp-{esc(speaker)}{grey}" data-speaker="{esc(speaker)}"{bounds}>'
        f'<span class="cp-time">{mmss(start)}</span> <b class="cp-who">{esc(who)}</b> '
        f'<span class="cp-text">{esc(text)}{more}</span></div>'
    )


def render_transcript(segments: Sequence[Segment], tentative: Sequence[TentativeText]) -> str:
    shown = list(segments[-TRANSCRIPT_LINES:])
    lines = [_line_html(s.speaker, s.start, s.text, end=s.end) for s in shown]
    lines += [
        _line_html(t.speaker, t.start, t.text, tentative=True)
        for t in sorted(tentative, key=lambda t: t.start)
        if t.text
    ]
    if not lines:
        return '<div class="cp-transcript cp-empty">等待通话… (waiting for speech)</div>'
    hidden = len(segments) - len(shown)
    more = f'<div class="cp-meta">… {hidden} earlier lines</div>' if hidden else ""
    return f'<div class="cp-transcript">{more}{"".join(lines)}</div>'


def render_guideline(suggestion: Suggestion | None) -> str:
    if suggestion is None or not suggestion.cites:
        return '<div class="cp-guideline cp-empty">客户说话后显示相关手册条款 (guideline appears after the customer speaks)</div>'
    top = suggestion.cites[0]
    where = " § ".join(x for x in (top.source, top.section) if x)
    return (
        f'<div class="cp-guideline" data-passage="{esc(top.id)}">'
        f'<div class="cp-where">{esc(where) or "手册"} <span class="cp-id">[{esc(top.id)}]</span></div>'
        f'<div class="cp-quote">{esc(_cut(top.text, PASSAGE_CHARS))}</div></div>'
    )


def render_suggestion(suggestion: Suggestion | None) -> str:
    if suggestion is None:
        return '<div class="cp-suggestion cp-empty">暂无建议 (no suggestion yet)</div>'
    parts = []
    if suggestion.situation:
        parts.append(f'<div class="cp-meta">场景: {esc(suggestion.situation)}</div>')
    if not suggestion.final:
        parts.append(f'<div class="cp-script"><span class="cp-tag">话术</span>{esc(suggestion.script)}</div>')
        if suggestion.streaming_text:
            parts.append(
                f'<div class="cp-say cp-streaming"><span class="cp-tag">建议</span>'
                f'{esc(suggestion.streaming_text)}<span class="cp-cursor">▌</span></div>'
            )
        else:
            parts.append(
                '<div class="cp-meta cp-streaming">AI 正在改写… (the LLM is adapting the script)</div>'
            )
        state = "streaming"
    elif suggestion.fallback:
        parts.append(f'<div class="cp-say"><span class="cp-tag">话术</span>{esc(suggestion.text)}</div>')
        if suggestion.reason:
            parts.append(f'<div class="cp-reason">script kept: {esc(suggestion.reason)}</div>')
        state = "fallback"
    else:
        parts.append(f'<div class="cp-say"><span class="cp-tag">建议</span>{esc(suggestion.text)}</div>')
        parts.append(f'<div class="cp-meta">handbook script: {esc(suggestion.script)}</div>')
        state = "rewrite"
    if suggestion.cites:
        ids = ", ".join(esc(c.id) for c in suggestion.cites)
        parts.append(f'<div class="cp-cites">cites: {ids}</div>')
    latency = suggestion.latency_ms
    measured = [
        (name, value)
        for name, value in (
            ("script", latency.script),
            ("first token", latency.first_token),
            ("done", latency.done),
        )
        if value is not None
    ]
    if measured:
        timing = " · ".join(f"{name} {value:.0f} ms" for name, value in measured)
        parts.append(f'<div class="cp-meta">{esc(timing)}</div>')
    # Exact timings as attributes too: they also tell one suggestion from the next (a load benchmark's cue).
    marks = "".join(f' data-{name.replace(" ", "-")}-ms="{value:.3f}"' for name, value in measured)
    return f'<div class="cp-suggestion" data-state="{state}"{marks}>{"".join(parts)}</div>'


def _flag_html(flag: Flag) -> str:
    first = flag.evidence[0] if flag.evidence else None
    where = ""
    if first is not None:
        who = SPEAKER_LABEL.get(first.speaker, first.speaker)
        quote = f" “{esc(first.text)}”" if first.text else ""
        where = f'<div class="cp-evidence">{mmss(first.start)} {esc(who)}{quote}</div>'
    severity = SEVERITY_LABEL.get(flag.severity, flag.severity)
    return (
        f'<div class="cp-flag cp-sev-{esc(flag.severity)}" data-rule="{esc(flag.rule)}">'
        f'<span class="cp-badge">{esc(severity)}</span> <b>{esc(flag.message)}</b>'
        f"{where}{_clause_html(flag.clause)}</div>"
    )


def render_flags(flags: Sequence[Flag]) -> str:
    if not flags:
        return '<div class="cp-flags cp-empty">暂无提醒 (no flags)</div>'
    newest = sorted(flags, key=lambda f: f.evidence[0].start if f.evidence else 0.0, reverse=True)
    more = len(newest) - FLAGS_SHOWN
    tail = f'<div class="cp-meta">… {more} earlier flags</div>' if more > 0 else ""
    return (
        f'<div class="cp-flags" data-count="{len(flags)}">'
        f"{''.join(_flag_html(f) for f in newest[:FLAGS_SHOWN])}{tail}</div>"
    )


def render_mood(state: PanelState) -> str:
    mood = state.mood
    if mood is None:
        return '<div class="cp-mood cp-empty">客户情绪: —</div>'
    label = MOOD_LABEL.get(mood.label, mood.label)
    cues = f' <span class="cp-meta">({esc("、".join(mood.evidence))})</span>' if mood.evidence else ""
    return (
        f'<div class="cp-mood cp-mood-{esc(mood.label)}" data-mood="{esc(mood.label)}">'
        f"客户情绪: <b>{esc(label)}</b> {esc(mood.label)} {mood.score:.2f}{cues}</div>"
    )


def render_pace(pace: float | None, target: tuple[float, float] = PACE_TARGET) -> str:
    low, high = target
    if pace is None:
        return (
            f'<div class="cp-pace cp-empty">语速 (speech rate): — '
            f'<span class="cp-meta">target {low:.0f}–{high:.0f} 字/分</span></div>'
        )
    scale = max(PACE_SCALE_MIN, pace * 1.1)
    verdict = "ok" if low <= pace <= high else ("fast" if pace > high else "slow")
    words = {"ok": "适中 in range", "fast": "偏快 too fast", "slow": "偏慢 too slow"}[verdict]
    band_left, band_width = 100 * low / scale, 100 * (high - low) / scale
    marker = 100 * min(pace, scale) / scale
    return (
        f'<div class="cp-pace cp-pace-{verdict}" data-pace="{pace:.0f}">'
        f"语速 <b>{pace:.0f}</b> 字/分 · {words} "
        f'<span class="cp-meta">target {low:.0f}–{high:.0f}</span>'
        f'<div class="cp-gauge"><div class="cp-band" style="left:{band_left:.1f}%;width:{band_width:.1f}%"></div>'
        f'<div class="cp-marker" style="left:{marker:.1f}%"></div></div></div>'
    )


def render_checklist(missing: Sequence[str], steps: Sequence[Step], unknown: Sequence[str] = ()) -> str:
    """``unknown``: steps the transcript cannot decide (e.g. the call started before the recording)."""
    missing_set = set(missing)
    unknown_set = set(unknown) - missing_set
    known = {s.id for s in steps}
    items = []
    for step in steps:
        if step.id in missing_set:
            state, mark = "missing", "○"
        elif step.id in unknown_set:
            state, mark = "unknown", "？"
        elif step.conditional:
            state, mark = "ok", "✓"
        else:
            state, mark = "done", "✓"
        note = ' <span class="cp-meta">(if owed)</span>' if step.conditional and state == "ok" else ""
        items.append(
            f'<li class="cp-step cp-{state}" data-step="{esc(step.id)}" data-state="{state}">'
            f"{mark} {esc(step.label)}{note}</li>"
        )
    items += [
        f'<li class="cp-step cp-missing" data-step="{esc(m)}" data-state="missing">○ {esc(m)}</li>'
        for m in missing
        if m not in known
    ]
    complete = not missing_set
    head = "全部完成 (all steps done)" if complete else f"还差 {len(missing_set)} 步 (steps still missing)"
    return (
        f'<div class="cp-checklist" data-complete="{str(complete).lower()}">'
        f'<div class="cp-head">{head}</div><ul>{"".join(items)}</ul></div>'
    )


def render_errors(errors: Sequence[str]) -> str:
    if not errors:
        return ""
    return '<div class="cp-errors">' + "".join(f"<div>⚠ {esc(e)}</div>" for e in errors) + "</div>"


def render_status(state: PanelState, source: str = "") -> str:
    phase = "通话结束 (call finished)" if state.finished else "通话中 (live)"
    where = f" · {esc(source)}" if source else ""
    return (
        f'<div class="cp-status" data-finished="{str(state.finished).lower()}">'
        f"{phase} · {mmss(state.time)}{where}</div>"
    )


def render_panel(
    state: PanelState,
    *,
    steps: Sequence[Step] = (),
    source: str = "",
    pace_target: tuple[float, float] = PACE_TARGET,
) -> PanelView:
    """Everything the live panel shows for ``state``; ``steps`` is the full checklist (done and missing)."""
    return PanelView(
        status=render_status(state, source),
        transcript=render_transcript(state.segments, state.tentative),
        guideline=render_guideline(state.suggestion),
        suggestion=render_suggestion(state.suggestion),
        flags=render_flags(state.flags),
        mood=render_mood(state),
        pace=render_pace(state.agent_pace, pace_target),
        checklist=render_checklist(state.missing_steps, steps),
        errors=render_errors(state.errors),
        finished=state.finished,
        checklist_complete=not state.missing_steps,
    )


IDLE_STATUS = (
    '<div class="cp-status cp-idle" data-finished="false" data-idle="true">'
    "没有通话 · 选择来源后开始 (no call: choose a source and press Start, or record)</div>"
)


def render_idle(steps: Sequence[Step] = (), pace_target: tuple[float, float] = PACE_TARGET) -> PanelView:
    """The panel before any call: every required step still to do."""
    state = replace(EMPTY_STATE, missing_steps=tuple(s.id for s in steps if not s.conditional))
    return replace(render_panel(state, steps=steps, pace_target=pace_target), status=IDLE_STATUS)


EMPTY_STATE = PanelState(
    time=0.0,
    segments=(),
    tentative=(),
    suggestion=None,
    flags=(),
    mood=None,
    agent_pace=None,
    missing_steps=(),
    errors=(),
    finished=False,
)
