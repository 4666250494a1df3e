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
FLAGS_SHOWN = 12  # most recent flags shown as chips, newest first (the review has them all)
FLAG_FRESH_SECONDS = 20.0  # s of call time a flag stays bright before it fades to a muted chip
CHIP_CHARS = 14  # a flag chip's text; the whole message, quote and clause are in the chip's tooltip
REASON_CHARS = 60  # characters of the customer's words shown as the suggestion's reason
PACE_MIN_SECONDS = 20.0  # s of call before the pace gauge judges (one short line says nothing of pace)

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


def _details(html: str) -> str:
    """Internal ids and timings: in the page, shown only with the view's details toggle (trainers)."""
    return f'<div class="cp-details">{html}</div>' if html else ""


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
    more = f'<div class="cp-meta">… 更早的 {hidden} 行 (earlier lines)</div>' if hidden else ""
    # The page scrolls the box to its newest line on every change (copilot/ui/app.py STICK_TO_NEWEST_JS).
    return f'<div class="cp-transcript"><div class="cp-lines">{more}{"".join(lines)}</div></div>'


def render_guideline(suggestion: Suggestion | None) -> str:
    if suggestion is None or not suggestion.cites:
        return '<div class="cp-guideline cp-empty">客户说话后显示相关手册条款 (guideline appears after the customer speaks)</div>'
    top = suggestion.cites[0]
    # The section is what an agent reads; the handbook's file name and the passage id are details.
    section = top.section or "手册"
    return (
        f'<div class="cp-guideline" data-passage="{esc(top.id)}">'
        f'<div class="cp-where">手册 · {esc(section)}</div>'
        f'<div class="cp-quote">{esc(_cut(top.text, PASSAGE_CHARS))}</div>'
        f"{_details(esc(f'{top.source} [{top.id}]'))}</div>"
    )


def _last_customer_words(segments: Sequence[Segment]) -> str:
    said = [s for s in segments if s.speaker != "agent" and s.text]
    return said[-1].text if said else ""


def _timings(suggestion: Suggestion) -> tuple[list[tuple[str, float]], str]:
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
    text = " · ".join(f"{name} {value:.0f} ms" for name, value in measured)
    return measured, text


def render_suggestion(suggestion: Suggestion | None, answers: str = "") -> str:
    """The next thing to say, large, with the customer's words it answers (``answers``) as its reason.

    While the LLM streams, the handbook script is the suggestion and the rewrite grows under it; the final
    text (rewrite or script) then takes its place. The script stays visible beside a rewrite. Ids, cited
    passages, timings and why a rewrite was not kept are details (shown with the view's toggle)."""
    if suggestion is None:
        return '<div class="cp-suggestion cp-empty">客户说话后在这里给出建议回复 (no suggestion yet)</div>'
    head = []
    if answers:
        head.append(f'<div class="cp-reason">回应客户：“{esc(_cut(answers, REASON_CHARS))}”</div>')
    if suggestion.situation:
        head.append(f'<span class="cp-chip cp-situation">{esc(suggestion.situation)}</span>')
    body = []
    if not suggestion.final:
        say = suggestion.script
        state = "streaming"
        growing = (
            f"{esc(suggestion.streaming_text)}<span class='cp-cursor'>▌</span>"
            if suggestion.streaming_text
            else "…"
        )
        body.append(f'<div class="cp-streaming"><span class="cp-tag">AI 改写中</span>{growing}</div>')
    elif suggestion.fallback:
        say, state = suggestion.text, "fallback"
    else:
        say, state = suggestion.text, "rewrite"
        if suggestion.script and suggestion.script != suggestion.text:
            body.append(
                f'<div class="cp-script"><span class="cp-tag">手册话术</span>{esc(suggestion.script)}</div>'
            )
    kind = "手册话术 script" if state != "rewrite" else "建议 suggested"
    main = (
        f'<div class="cp-say"><span class="cp-kind">{kind}</span>'
        f'<span class="cp-say-text">{esc(say)}</span></div>'
    )
    measured, timing = _timings(suggestion)
    details = []
    if suggestion.fallback and suggestion.reason:
        details.append(f"script kept: {esc(suggestion.reason)}")
    if suggestion.cites:
        details.append("cites: " + ", ".join(esc(c.id) for c in suggestion.cites))
    if suggestion.script_id:
        details.append(f"script {esc(suggestion.script_id)}")
    if timing:
        details.append(esc(timing))
    info = _details("<br>".join(details))
    # Exact timings as attributes too: they also tell one suggestion from the next (a load benchmark's cue).
    marks = "".join(f' data-{name.replace(" ", "-")}-ms="{value:.3f}"' for name, value in measured)
    return (
        f'<div class="cp-suggestion" data-state="{state}"{marks}>'
        f'<div class="cp-head-row">{"".join(head)}</div>{main}{"".join(body)}{info}</div>'
    )


def _flag_time(flag: Flag) -> float:
    return flag.evidence[0].start if flag.evidence else 0.0


def _flag_html(flag: Flag, now: float | None = None) -> str:
    """A flag as a short chip: bright while new, muted later; its quote and clause in the tooltip."""
    first = flag.evidence[0] if flag.evidence else None
    tip = [flag.message]
    if first is not None:
        who = SPEAKER_LABEL.get(first.speaker, first.speaker)
        tip.append(
            f"{mmss(first.start)} {who}：“{first.text}”" if first.text else f"{mmss(first.start)} {who}"
        )
    clause = flag.clause
    where = " § ".join(x for x in (clause.document, clause.section) if x)
    if where or clause.quote:
        tip.append(f"手册 {where}：{clause.quote}".strip())
    fresh = now is None or now - _flag_time(flag) <= FLAG_FRESH_SECONDS
    severity = SEVERITY_LABEL.get(flag.severity, flag.severity)
    quote = f'<span class="cp-quote cp-details">{esc(clause.quote)}</span>' if clause.quote else ""
    return (
        f'<span class="cp-flag cp-chip cp-sev-{esc(flag.severity)}{" cp-fresh" if fresh else " cp-old"}" '
        f'data-rule="{esc(flag.rule)}" title="{esc(chr(10).join(tip))}">'
        f'<span class="cp-badge">{esc(severity)}</span> {esc(_cut(flag.message, CHIP_CHARS))}{quote}</span>'
    )


def render_flags(flags: Sequence[Flag], now: float | None = None) -> str:
    if not flags:
        return '<div class="cp-flags cp-empty">暂无提醒 (no flags)</div>'
    newest = sorted(flags, key=_flag_time, reverse=True)
    more = len(newest) - FLAGS_SHOWN
    tail = f'<span class="cp-meta">… 另有 {more} 条</span>' if more > 0 else ""
    return (
        f'<div class="cp-flags" data-count="{len(flags)}">'
        f"{''.join(_flag_html(f, now) for f in newest[:FLAGS_SHOWN])}{tail}</div>"
    )


def render_mood(state: PanelState) -> str:
    mood = state.mood
    if mood is None:
        return '<div class="cp-mood cp-empty">客户情绪 —</div>'
    label = MOOD_LABEL.get(mood.label, mood.label)
    cues = _details(f"{esc(mood.label)} {mood.score:.2f} {esc('、'.join(mood.evidence))}")
    return (
        f'<div class="cp-mood cp-mood-{esc(mood.label)}" data-mood="{esc(mood.label)}">'
        f"客户情绪 <b>{esc(label)}</b>{cues}</div>"
    )


def render_pace(
    pace: float | None, target: tuple[float, float] = PACE_TARGET, *, call_seconds: float | None = None
) -> str:
    """The agent's speech rate against the handbook band. Not judged before ``PACE_MIN_SECONDS`` of call
    (``call_seconds``): over a line or two the rate says nothing and the gauge was red most of a call."""
    low, high = target
    early = call_seconds is not None and call_seconds < PACE_MIN_SECONDS
    if pace is None or early:
        return (
            f'<div class="cp-pace cp-empty">语速 — <span class="cp-meta">目标 {low:.0f}–{high:.0f} 字/分'
            f"</span></div>"
        )
    scale = max(PACE_SCALE_MIN, pace * 1.1)
    verdict = "ok" if low <= pace <= high else ("fast" if pace > high else "slow")
    words = {"ok": "适中", "fast": "偏快", "slow": "偏慢"}[verdict]
    band_left, band_width = 100 * low / scale, 100 * (high - low) / scale
    marker = 100 * min(pace, scale) / scale
    return (
        f'<div class="cp-pace cp-pace-{verdict}" data-pace="{pace:.0f}">'
        f"语速 <b>{pace:.0f}</b> 字/分 {words} "
        f'<span class="cp-meta">目标 {low:.0f}–{high:.0f}</span>'
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


def render_status(state: PanelState, source: str = "", *, rate: float | None = None) -> str:
    """Phase and call time; ``rate``: how fast the replay really runs (x real time), said when it lags."""
    if state.finished:
        phase = "通话结束"
    elif not state.segments and not state.tentative and state.time == 0:
        phase = "正在接入通话… (starting)"
    else:
        phase = "通话中"
    pace = f" · 实际 {rate:.1f}×" if rate is not None else ""
    where = _details(esc(source)) if source else ""
    return (
        f'<div class="cp-status" data-finished="{str(state.finished).lower()}">'
        f"<b>{phase}</b> · {mmss(state.time)}{pace}{where}</div>"
    )


def render_panel(
    state: PanelState,
    *,
    steps: Sequence[Step] = (),
    source: str = "",
    pace_target: tuple[float, float] = PACE_TARGET,
    rate: float | None = None,
) -> PanelView:
    """Everything the live panel shows for ``state``; ``steps`` is the full checklist (done and missing)."""
    return PanelView(
        status=render_status(state, source, rate=rate),
        transcript=render_transcript(state.segments, state.tentative),
        guideline=render_guideline(state.suggestion),
        suggestion=render_suggestion(state.suggestion, _last_customer_words(state.segments)),
        flags=render_flags(state.flags, state.time),
        mood=render_mood(state),
        pace=render_pace(state.agent_pace, pace_target, call_seconds=state.time),
        checklist=render_checklist(state.missing_steps, steps),
        errors=render_errors(state.errors),
        finished=state.finished,
        checklist_complete=not state.missing_steps,
    )


IDLE_STATUS = (
    '<div class="cp-status cp-idle" data-finished="false" data-idle="true">'
    "<b>没有通话</b> · 选择来源后按“开始” (no call: choose a source and press Start)</div>"
)


def render_loading(done: int, total: int, current: str) -> str:
    """The status while the app loads its models: a call can start, its first line waits for them."""
    percent = 100 * done / total if total else 100.0
    return (
        f'<div class="cp-status cp-loading" data-finished="false" data-idle="true" data-loading="true">'
        f"<b>正在加载模型… {done}/{total}</b> {esc(current)} (loading models)"
        f'<div class="cp-progress"><div style="width:{percent:.0f}%"></div></div></div>'
    )


def render_idle(
    steps: Sequence[Step] = (), pace_target: tuple[float, float] = PACE_TARGET, *, status: str = IDLE_STATUS
) -> PanelView:
    """The panel before any call: every required step still to do."""
    state = replace(EMPTY_STATE, missing_steps=tuple(s.id for s in steps if not s.conditional))
    return replace(render_panel(state, steps=steps, pace_target=pace_target), status=status)


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
