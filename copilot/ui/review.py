"""The QA view's library side: review uploaded calls into the store, and render what it holds.

Reviewing uses the same functions as ``copilot review`` (:func:`copilot.qa.review.review_file`, the store's
``save_review``) and the report module's pages and exports, so the app shows what a batch would write.
Everything rendered comes from the database, where text is already redacted.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from copilot.errors import CopilotError
from copilot.judgement.operators import gaps
from copilot.qa.archive import enforce_retention, save_review
from copilot.qa.batch import AUDIO_SUFFIXES, SIDECAR_MARK
from copilot.qa.calls import load_call
from copilot.qa.metadata import load_metadata
from copilot.qa.report import call_json, render_call_html, report_stem, to_csv, to_json
from copilot.qa.report.html import esc, mmss
from copilot.qa.review import TRANSCRIPT_SUFFIXES, ReviewOptions, review_call
from copilot.qa.store import CallSummary, ReviewFilter, StoredCall, content_hash, provenance
from copilot.transcription.audio import SAMPLE_RATE, read_all
from copilot.types import CheckResult, Clause, Evidence
from copilot.ui.context import AppContext
from copilot.ui.panel import MOOD_LABEL

CLIP_PAD = 0.5  # s of audio played before and after a piece of evidence
INT16_MAX = 32767
EVIDENCE_HEADERS = ["call", "item", "result", "time", "speaker", "quote", "clause"]
LISTING_HEADERS = ["id", "call", "agent", "score", "failed checks", "duration", "reviewed"]
SPEAKER = {"agent": "坐席 agent", "customer": "客户 customer", "unknown": "unknown"}

Progress = Callable[[int, int, str], None]  # (done, total, what is being reviewed)


@dataclass(frozen=True)
class ReviewedCall:
    """One reviewed upload as this browser session knows it."""

    call_id: int
    name: str  # the uploaded file's name
    audio: str | None  # path of the uploaded recording (for evidence clips), None for transcripts
    stored: StoredCall
    reused: bool = False  # the same content was reviewed before with this configuration


@dataclass(frozen=True)
class EvidenceRow:
    """One clickable line of evidence: which call, and where in it."""

    call_index: int
    item: str
    result: str
    start: float
    end: float
    speaker: str
    quote: str
    clause: str
    moment: bool = True  # False: no place in the call (no times, or a check failed for what is absent)

    def cells(self, name: str) -> list[str]:
        return [
            name,
            self.item,
            self.result,
            mmss(self.start) if self.moment else "—",
            SPEAKER.get(self.speaker, self.speaker),
            self.quote,
            self.clause,
        ]


@dataclass(frozen=True)
class BatchResult:
    calls: tuple[ReviewedCall, ...]
    errors: tuple[str, ...]  # "file: reason" for each upload that could not be reviewed


def is_call_file(path: Path) -> bool:
    suffix = path.suffix.lower()
    return SIDECAR_MARK not in path.name and (suffix in TRANSCRIPT_SUFFIXES or suffix in AUDIO_SUFFIXES)


def progress_text(done: int, total: int, name: str) -> str:
    """What the progress bar says while file ``done + 1`` of ``total`` is reviewed (and when all are)."""
    return f"正在审核 reviewing {done + 1}/{total} {name}" if done < total else f"完成 done {total}/{total}"


def review_uploads(
    paths: Sequence[str | Path],
    ctx: AppContext,
    *,
    agent: str = "",
    progress: Progress | None = None,
) -> BatchResult:
    """Review each upload (JSON transcript or recording) into the store; one bad file never stops the rest."""
    config = ctx.config
    prov = provenance(config)
    names = load_metadata(None)
    store = ctx.store
    enforce_retention(store, config.privacy)
    calls: list[ReviewedCall] = []
    errors: list[str] = []
    files = [Path(p) for p in paths]
    first_with: dict[str, str] = {}  # content hash -> the name of the batch's file reviewed with it
    for done, path in enumerate(files):
        if progress is not None:
            progress(done, len(files), path.name)
        if not is_call_file(path):
            errors.append(f"{path.name}: not a call (upload .json transcripts or recordings: .wav, .mp3 …)")
            continue
        is_audio = path.suffix.lower() not in TRANSCRIPT_SUFFIXES
        try:
            digest = content_hash(path)
            if digest in first_with:
                # The same call twice in one batch (dropped twice, or a copy under another name): one scorecard,
                # found before any store work, as the CLI batch does (copilot.qa.batch skips "same content").
                errors.append(f"{path.name}: the same call as {first_with[digest]} in this batch; shown once")
                continue
            existing = store.call_id(digest, prov.config_hash)
            if existing is None:
                transcript = load_call(path, ctx.services)
                if is_audio:  # a recording's transcript is named by its (temporary) path: keep the file name
                    transcript = dataclasses.replace(transcript, source=path.name)
                review = review_call(
                    transcript,
                    engine=ctx.services.rules,
                    options=ReviewOptions(
                        redact=config.privacy.redact, redact_kinds=config.privacy.redact_kinds
                    ),
                )
                meta = names.for_file(path)
                if agent:
                    meta = dataclasses.replace(meta, agent=agent)
                saved = save_review(
                    store,
                    review,
                    path=path,
                    name=path.name,
                    content_hash=digest,
                    provenance=prov,
                    privacy=config.privacy,
                    meta=meta,
                )
                call_id = saved.call_id
            else:
                call_id = existing
            stored = store.load_call(call_id)
        except CopilotError as e:
            errors.append(f"{path.name}: {e}")
            continue
        except OSError as e:
            errors.append(f"{path.name}: cannot read the file: {e.strerror or e}")
            continue
        calls.append(
            ReviewedCall(call_id, path.name, str(path) if is_audio else None, stored, existing is not None)
        )
        first_with[digest] = path.name
    if progress is not None:
        progress(len(files), len(files), "done")
    return BatchResult(tuple(calls), tuple(errors))


def open_stored(ctx: AppContext, call_id: int) -> ReviewedCall:
    """An earlier review from the database (no audio: recordings are not kept unless configured)."""
    stored = ctx.store.load_call(call_id)
    return ReviewedCall(call_id, stored.summary.name, None, stored, reused=True)


def search_reviews(
    ctx: AppContext, *, agent: str = "", text: str = "", failed_check: str = ""
) -> list[CallSummary]:
    return ctx.store.search(
        ReviewFilter(agent=agent.strip(), text=text.strip(), failed_check=failed_check.strip(), limit=200)
    )


def listing_rows(calls: Sequence[CallSummary]) -> list[list[object]]:
    return [
        [
            c.id,
            c.name,
            c.meta.agent or "—",
            round(c.score, 1),
            ", ".join(c.failed_checks) or "—",
            mmss(c.duration),
            c.created_at.strftime("%Y-%m-%d %H:%M"),
        ]
        for c in calls
    ]


# --- what the page shows -------------------------------------------------------------------------


def _clause_text(clause: Clause) -> str:
    """Section and quote; the handbook's storage name (``000_ff7c64d990aeaed9.txt``) says nothing to a
    reviewer and is left out."""
    where = clause.section or "手册"
    return f"{where}: “{clause.quote}”" if clause.quote else where


CHECK_NAMES = {  # what a reviewer reads; the playbook's id stays beside it, small
    "greeting": "开场问候",
    "recap": "复述确认",
    "hold": "等待告知",
    "apology": "道歉安抚",
    "closing": "结束语",
    "outcome": "问题解决",
    "forbidden": "禁用语",
    "speech_rate": "语速",
    "interruption": "抢话",
    "silence": "冷场",
}
STATUS_TEXT = {"pass": "✓ 通过 pass", "fail": "✗ 未通过 fail", "unknown": "？ 无法判断 cannot tell"}
NO_EVIDENCE = Evidence(0.0, 0.0, "unknown", "")  # a failed check with nothing to point at (what is absent)


def is_timed(call: ReviewedCall) -> bool:
    """Whether the call's transcript has times: a text in the turns shape has every segment at 0 (the store
    keeps segments, not the transcript's ``timed``; this is the rule the transcript reader applies)."""
    return any(s.segment.end > 0 for s in call.stored.segments)


@dataclass(frozen=True)
class _Found:
    """One finding of a call (a failed check's piece of evidence, or a flag's first), in evidence-row order."""

    # ("check" | "flag", position in the call's checks or flags, number of the piece of evidence)
    source: tuple[str, int, int]
    item: str
    result: str  # "fail" for checks, the severity for flags
    label: str  # what a reviewer reads: the check's name, the flag's message
    evidence: Evidence
    clause: Clause
    moment: bool  # has a place on the call's time axis


def _findings(call: ReviewedCall) -> list[_Found]:
    timed = is_timed(call)
    found: list[_Found] = []
    for i, check in enumerate(call.stored.checks):
        if not check.failed:
            continue
        for k, e in enumerate(check.evidence or (NO_EVIDENCE,)):
            found.append(
                _Found(
                    ("check", i, k),
                    f"check {check.id}",
                    "fail",
                    CHECK_NAMES.get(check.id, check.id),
                    e,
                    check.clause,
                    timed and bool(check.evidence),
                )
            )
    for j, flag in enumerate(call.stored.flags):
        for k, e in enumerate(flag.evidence[:1]):
            found.append(
                _Found(
                    ("flag", j, k),
                    f"flag {flag.rule}:{flag.kind}",
                    flag.severity,
                    flag.message,
                    e,
                    flag.clause,
                    timed,
                )
            )
    return found


def first_rows(calls: Sequence[ReviewedCall]) -> list[int]:
    """For each call, the index of its first row in :func:`evidence_rows` (its findings are numbered from it)."""
    firsts: list[int] = []
    count = 0
    for call in calls:
        firsts.append(count)
        count += len(_findings(call))
    return firsts


def _finding_attrs(index: int, title: str = "") -> str:
    """What makes an element a finding one can click (or focus and press Enter) to play its moment."""
    tip = f' title="{esc(title)}"' if title else ""
    return f'data-finding="{index}" role="button" tabindex="0"{tip}'


def _evidence_html(
    evidence: Sequence[Evidence], *, timed: bool = True, findings: Sequence[int] | None = None
) -> str:
    """Quotes with their time and speaker; with ``findings`` (their evidence-row numbers) each one is a
    clickable finding that plays its moment."""
    if not evidence:
        return '<span class="cp-meta">—</span>'
    parts = []
    for n, e in enumerate(evidence):
        when = f"{mmss(e.start)} " if timed else ""
        text = f'<span class="cp-meta">{when}{esc(SPEAKER.get(e.speaker, e.speaker))}</span> “{esc(e.text)}”'
        if findings is not None and n < len(findings):
            title = f"播放这一刻 play {mmss(e.start)}–{mmss(e.end)}" if timed else "选中 select"
            text = f'<span class="cp-finding" {_finding_attrs(findings[n], title)}>{text}</span>'
        parts.append(text)
    return "<br>".join(parts)


def _unknown_html(reason: str) -> str:
    return f'<span class="cp-unknown-reason">无法判断：{esc(reason)}</span>'


def _check_name(check_id: str) -> str:
    name = CHECK_NAMES.get(check_id)
    return (
        f'<b>{esc(name)}</b> <span class="cp-meta">{esc(check_id)}</span>'
        if name
        else f"<b>{esc(check_id)}</b>"
    )


def scorecard_html(call: ReviewedCall, first: int = 0) -> str:
    """One call's page: header, timeline, checks and flags. ``first`` is the evidence-row number of the call's
    first finding (:func:`first_rows`), so that clicking a finding selects that row."""
    s = call.stored.summary
    checks = call.stored.checks
    timed = is_timed(call)
    numbers: dict[tuple[str, int], list[int]] = {}
    for n, f in enumerate(_findings(call), start=first):
        numbers.setdefault(f.source[:2], []).append(n)
    passed = sum(c.passed for c in checks)

    def evidence_cell(i: int, c: CheckResult) -> str:
        if c.status == "unknown":
            return _unknown_html(c.unknown_reason)
        if c.failed and not c.evidence and ("check", i) in numbers:  # failed for what is absent
            title = "选中 select (no moment in the call)"
            return (
                f'<span class="cp-finding cp-meta" {_finding_attrs(numbers["check", i][0], title)}>—</span>'
            )
        return _evidence_html(c.evidence, timed=timed, findings=numbers.get(("check", i)))

    rows = "".join(
        f'<tr class="cp-check cp-{c.status}" data-check="{esc(c.id)}" '
        f'data-passed="{str(c.passed).lower()}" data-status="{c.status}"><td>{_check_name(c.id)}</td>'
        f"<td>{STATUS_TEXT[c.status]}</td><td>{esc(c.message)}</td>"
        f"<td>{evidence_cell(i, c)}</td><td>{esc(_clause_text(c.clause))}</td></tr>"
        for i, c in enumerate(checks)
    )
    flags = "".join(
        f'<li class="cp-flag cp-sev-{esc(f.severity)}" data-rule="{esc(f.rule)}">'
        f"<b>{esc(f.message)}</b> {_evidence_html(f.evidence[:1], timed=timed, findings=numbers.get(('flag', j)))} "
        f'<span class="cp-meta">{esc(_clause_text(f.clause))}</span></li>'
        for j, f in enumerate(call.stored.flags)
    )
    note = " · loaded from the database (same content reviewed before)" if call.reused else ""
    agent = f" · agent {esc(s.meta.agent)}" if s.meta.agent else ""
    return (
        f'<div class="cp-scorecard" data-call="{esc(call.name)}">'
        f'<h3>{esc(call.name)} <span class="cp-score">{s.score:.0f}/100</span></h3>'
        f'<div class="cp-meta">{passed}/{len(checks)} checks passed · {len(call.stored.flags)} flags · '
        f"{mmss(s.duration) if timed else '—'}{agent}{note}</div>"
        + timeline_html(call, first)
        + "<table><thead><tr><th>检查项 check</th><th>结果 result</th><th>原因 why</th><th>证据 evidence</th>"
        "<th>手册条款 clause</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        + (
            f"<details open><summary>Flags ({len(call.stored.flags)})</summary><ul>{flags}</ul></details>"
            if flags
            else ""
        )
        + "</div>"
    )


def scorecards_html(calls: Sequence[ReviewedCall]) -> str:
    """Every call's page, its findings numbered as :func:`evidence_rows` numbers them."""
    return "".join(scorecard_html(c, first) for c, first in zip(calls, first_rows(calls), strict=True))


# --- the timeline --------------------------------------------------------------------------------

TL_WIDTH = 480.0  # viewBox units; the SVG is drawn at 100% of its box, so at 480 px one unit is one pixel
TL_LEFT = 34.0  # room for the lane names
TL_RIGHT = 8.0
TL_TOP = 6.0
TL_LANE_STEP = 22.0  # from one lane's top to the next
TL_LANE_HEIGHT = 16.0
TL_MOOD_HEIGHT = 4.0  # the customer's mood: a coloured strip under each customer bar
TL_FINDING_ROW = 13.0
TL_FINDING_MIN_WIDTH = 6.0  # a short moment still gets a mark one can click
TL_MAX_FINDING_ROWS = 4
GAP_MARK_S = 3.0  # s: a pause this long is drawn (as a hold when the agent announced it, else as silence)
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)  # s between axis labels
MAX_TICKS = 6
LANE_NAMES = {"agent": "坐席", "customer": "客户", "unknown": "未分"}  # unknown: a mono recording's speech
LANE_COLOURS = {"agent": "#3b6fd8", "customer": "#e08a00", "unknown": "#757575"}
MOOD_COLOURS = {
    "angry": "#b3261e",
    "distressed": "#b3261e",
    "anxious": "#f2b233",
    "calm": "#9e9e9e",
    "neutral": "#9e9e9e",
    "satisfied": "#2e7d32",
    "thankful": "#2e7d32",
}
FINDING_COLOURS = {"fail": "#b3261e", "critical": "#7f0000", "major": "#b3261e", "minor": "#e08a00"}
GAP_STYLE = {"hold": ("等待", "#90caf9"), "silence": ("静音", "#bdbdbd")}


def _f(value: float) -> str:
    return f"{value:.1f}"


def _holds(call: ReviewedCall) -> list[tuple[float, float]]:
    """The pauses the hold check found announced: its evidence holds the agent's announcement and the pause."""
    spans: list[tuple[float, float]] = []
    for check in call.stored.checks:
        if check.id != "hold":
            continue
        agent_ends = [e.end for e in check.evidence if e.speaker == "agent"]
        spans += [
            (e.start, e.end)
            for e in check.evidence
            if e.speaker == "unknown" and any(abs(end - e.start) < 0.05 for end in agent_ends)
        ]
    return spans


def _pauses(call: ReviewedCall) -> list[tuple[str, float, float]]:
    """("hold" | "silence", start, end) for every pause of at least :data:`GAP_MARK_S`."""
    holds = _holds(call)
    return [
        (
            "hold" if any(abs(a - g.start) < 0.05 and abs(b - g.end) < 0.05 for a, b in holds) else "silence",
            g.start,
            g.end,
        )
        for g in gaps([s.segment for s in call.stored.segments], GAP_MARK_S)
    ]


def _moments(found: Sequence[tuple[int, _Found]]) -> list[tuple[float, float, list[tuple[int, _Found]]]]:
    """Findings at the same moment share one mark (a quote broke several rules): (start, end, findings)."""
    by_moment: dict[tuple[float, float], list[tuple[int, _Found]]] = {}
    for n, f in found:
        by_moment.setdefault((round(f.evidence.start, 2), round(f.evidence.end, 2)), []).append((n, f))
    return [(a, b, items) for (a, b), items in sorted(by_moment.items())]


def _tick_step(duration: float) -> int:
    return next((s for s in TICK_STEPS if duration / s <= MAX_TICKS), TICK_STEPS[-1])


def timeline_svg(call: ReviewedCall, first: int = 0) -> str:
    """Who spoke when (two lanes), pauses, the customer's mood and the findings over the call's time axis.

    Inline SVG sized by its viewBox (readable at 480 px). Each finding mark carries ``data-finding`` (its
    evidence-row number) so a click plays that moment. Empty for a call without times.
    """
    if not is_timed(call):
        return ""
    segments = call.stored.segments
    roles = ["agent", "customer"] + (
        ["unknown"] if any(s.segment.speaker == "unknown" for s in segments) else []
    )
    lanes = {role: TL_TOP + i * TL_LANE_STEP for i, role in enumerate(roles)}
    lanes_bottom = lanes[roles[-1]] + TL_LANE_HEIGHT
    findings_top = TL_TOP + len(roles) * TL_LANE_STEP + 6
    duration = max([call.stored.summary.duration, *(s.segment.end for s in call.stored.segments)])
    span = TL_WIDTH - TL_LEFT - TL_RIGHT

    def x(t: float) -> float:
        return TL_LEFT + max(0.0, min(t, duration)) / duration * span

    parts: list[str] = []
    for role, top in lanes.items():
        parts.append(
            f'<text x="2" y="{_f(top + 12)}" font-size="12" fill="#333">{LANE_NAMES[role]}</text>'
            f'<rect x="{_f(TL_LEFT)}" y="{_f(top)}" width="{_f(span)}" height="{_f(TL_LANE_HEIGHT)}" '
            'fill="#f5f5f5"/>'
        )
    for kind, start, end in _pauses(call):
        name, colour = GAP_STYLE[kind]
        parts.append(
            f'<g class="cp-tl-pause" data-kind="{kind}" data-start="{start:.2f}" data-end="{end:.2f}">'
            f'<rect x="{_f(x(start))}" y="{_f(TL_TOP)}" width="{_f(x(end) - x(start))}" '
            f'height="{_f(lanes_bottom - TL_TOP)}" fill="{colour}" '
            f'fill-opacity="0.45"><title>{name} {mmss(start)}–{mmss(end)} ({end - start:.0f} 秒)</title></rect>'
            + (
                f'<text x="{_f((x(start) + x(end)) / 2)}" y="{_f(lanes["customer"] - 3)}" font-size="10" '
                f'text-anchor="middle" fill="#333">{name}</text>'
                if x(end) - x(start) >= 22
                else ""
            )
            + "</g>"
        )
    for s in segments:
        seg = s.segment
        top = lanes[seg.speaker]
        tip = f"{mmss(seg.start)}–{mmss(seg.end)} {LANE_NAMES[seg.speaker]}：{seg.text}"
        parts.append(
            f'<rect class="cp-tl-seg" data-speaker="{seg.speaker}" data-start="{seg.start:.2f}" '
            f'data-end="{seg.end:.2f}" x="{_f(x(seg.start))}" y="{_f(top)}" '
            f'width="{_f(max(1.0, x(seg.end) - x(seg.start)))}" height="{_f(TL_LANE_HEIGHT)}" '
            f'fill="{LANE_COLOURS[seg.speaker]}" fill-opacity="0.8"><title>{esc(tip)}</title></rect>'
        )
        if seg.speaker == "customer" and s.mood:
            label = MOOD_LABEL.get(s.mood, s.mood)
            parts.append(
                f'<rect class="cp-tl-mood" data-mood="{esc(s.mood)}" x="{_f(x(seg.start))}" '
                f'y="{_f(top + TL_LANE_HEIGHT + 1)}" width="{_f(max(1.0, x(seg.end) - x(seg.start)))}" '
                f'height="{_f(TL_MOOD_HEIGHT)}" fill="{MOOD_COLOURS.get(s.mood, "#9e9e9e")}">'
                f"<title>客户情绪 {esc(label)} ({esc(s.mood)}) {mmss(seg.start)}</title></rect>"
            )
    found = [(n, f) for n, f in enumerate(_findings(call), start=first) if f.moment]
    row_ends: list[float] = []
    marks: list[str] = []
    for start, end, items in _moments(found):
        left = x(start)
        width = max(TL_FINDING_MIN_WIDTH, x(end) - left)
        row = next((r for r, last in enumerate(row_ends) if left >= last + 1), len(row_ends))
        row = min(row, TL_MAX_FINDING_ROWS - 1)
        if row == len(row_ends):
            row_ends.append(left + width)
        else:
            row_ends[row] = max(row_ends[row], left + width)
        worst = (
            "fail" if any(f.result in ("fail", "major", "critical") for _, f in items) else items[0][1].result
        )
        colour = FINDING_COLOURS.get(worst, "#777")
        top = findings_top + row * TL_FINDING_ROW
        tip = f"{mmss(start)}–{mmss(end)} 点击播放 click to play\n" + "\n".join(
            f"· {f.label}：“{f.evidence.text}”" for _, f in items
        )
        numbers = " ".join(str(n) for n, _ in items)
        marks.append(
            f'<g class="cp-tl-finding" {_finding_attrs(items[0][0])} data-findings="{numbers}" '
            f'data-start="{start:.2f}" data-end="{end:.2f}" style="cursor:pointer">'
            f"<title>{esc(tip)}</title>"
            f'<line x1="{_f(left)}" x2="{_f(left)}" y1="{_f(TL_TOP)}" y2="{_f(top)}" '
            f'stroke="{colour}" stroke-width="1" stroke-dasharray="2 2"/>'
            f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(width)}" height="{_f(TL_FINDING_ROW - 3)}" rx="2" '
            f'fill="{colour}"/>'
            + (
                f'<text x="{_f(left + 2)}" y="{_f(top + 8.5)}" font-size="9" fill="#fff">{len(items)}</text>'
                if len(items) > 1 and width >= 10
                else ""
            )
            + "</g>"
        )
    rows = max(1, len(row_ends))
    axis = findings_top + rows * TL_FINDING_ROW + 2
    parts.append(
        f'<text x="2" y="{_f(findings_top + 9)}" font-size="12" fill="#333">发现</text>'
        f'<line x1="{_f(TL_LEFT)}" x2="{_f(TL_LEFT + span)}" y1="{_f(axis)}" y2="{_f(axis)}" stroke="#888"/>'
    )
    step = _tick_step(duration)
    for k in range(int(duration // step) + 1):
        t = k * step
        anchor = "start" if k == 0 else "end" if x(t) > TL_WIDTH - 20 else "middle"
        parts.append(
            f'<line x1="{_f(x(t))}" x2="{_f(x(t))}" y1="{_f(axis)}" y2="{_f(axis + 3)}" stroke="#888"/>'
            f'<text class="cp-tl-tick" x="{_f(x(t))}" y="{_f(axis + 13)}" font-size="11" fill="#555" '
            f'text-anchor="{anchor}">{mmss(t)}</text>'
        )
    height = axis + 16
    return (
        f'<svg class="cp-tl" viewBox="0 0 {TL_WIDTH:.0f} {height:.0f}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="group" aria-label="通话时间轴 call timeline" '
        f'data-duration="{duration:.2f}" style="width:100%;height:auto;max-width:960px;display:block">'
        + "".join(parts)
        + "".join(marks)
        + "</svg>"
    )


def timeline_html(call: ReviewedCall, first: int = 0) -> str:
    """The timeline with its legend and the checks it cannot place; a plain note for a call without times."""
    unknown = "".join(
        f'<li class="cp-tl-unknown" data-check="{esc(c.id)}">{esc(CHECK_NAMES.get(c.id, c.id))}：'
        f"{_unknown_html(c.unknown_reason)}</li>"
        for c in call.stored.checks
        if c.status == "unknown"
    )
    unknown_list = f'<ul class="cp-tl-unknowns">{unknown}</ul>' if unknown else ""
    if not is_timed(call):
        what = (
            "这通电话的转写没有时间信息（只有说话顺序），不画时间轴；发现见下表。"
            " No times in this transcript: no timeline."
            if call.stored.segments
            else "这通电话没有语音，不画时间轴。 Nothing was said: no timeline."
        )
        return f'<div class="cp-timeline" data-timed="false"><p class="cp-tl-note">{what}</p>{unknown_list}</div>'
    keys = (
        (LANE_COLOURS["agent"], "坐席 agent"),
        (LANE_COLOURS["customer"], "客户 customer"),
        (GAP_STYLE["hold"][1], "等待 hold"),
        (GAP_STYLE["silence"][1], "静音 silence"),
        (FINDING_COLOURS["fail"], "发现 finding（点击播放 click to play）"),
        (MOOD_COLOURS["angry"], "客户生气 angry"),
        (MOOD_COLOURS["anxious"], "着急 anxious"),
        (MOOD_COLOURS["calm"], "平静 calm"),
        (MOOD_COLOURS["thankful"], "满意/感谢 satisfied"),
    )
    legend = (
        '<div class="cp-meta cp-tl-legend">'
        + " · ".join(
            f'<span style="white-space:nowrap"><span style="color:{colour}">■</span> {name}</span>'
            for colour, name in keys
        )
        + "</div>"
    )
    return (
        f'<div class="cp-timeline" data-timed="true">{timeline_svg(call, first)}{legend}{unknown_list}</div>'
    )


def transcript_html(call: ReviewedCall) -> str:
    timed = is_timed(call)
    rows = "".join(
        f'<tr class="cp-{esc(x.segment.speaker)}"><td>{mmss(x.segment.start) if timed else "—"}</td>'
        f"<td>{esc(SPEAKER.get(x.segment.speaker, x.segment.speaker))}</td><td>{esc(x.segment.text)}</td>"
        f"<td>{esc(x.mood)}</td></tr>"
        for x in call.stored.segments
    )
    return (
        f'<div class="cp-review-transcript"><h4>{esc(call.name)} · transcript (redacted)</h4>'
        f"<table><thead><tr><th>time</th><th>speaker</th><th>text</th><th>mood</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def evidence_rows(calls: Sequence[ReviewedCall]) -> list[EvidenceRow]:
    """Failed checks and flags with their evidence, one row per piece of evidence (a failed check with none
    gets one row without a moment). The scorecards and timelines number their findings in this order."""
    return [
        EvidenceRow(
            index,
            f.item,
            f.result,
            f.evidence.start,
            f.evidence.end,
            f.evidence.speaker,
            f.evidence.text,
            _clause_text(f.clause),
            f.moment,
        )
        for index, call in enumerate(calls)
        for f in _findings(call)
    ]


def clip(path: str | Path, start: float, end: float, pad: float = CLIP_PAD) -> tuple[int, np.ndarray]:
    """The recording from ``start - pad`` to ``end + pad`` as (rate, int16 samples[, channels])."""
    audio, _duration = read_all(path)
    lo = max(0, int((start - pad) * SAMPLE_RATE))
    hi = min(audio.shape[1], int((max(end, start) + pad) * SAMPLE_RATE))
    piece = np.clip(audio[:, lo:hi], -1.0, 1.0)
    samples = (piece.T * INT16_MAX).astype(np.int16)
    return SAMPLE_RATE, samples[:, 0] if samples.shape[1] == 1 else samples


def write_downloads(calls: Sequence[ReviewedCall], folder: Path | None = None) -> list[str]:
    """Per-call HTML and JSON reports, plus CSV and JSON exports of the batch."""
    out = folder or Path(tempfile.mkdtemp(prefix="copilot-review-"))
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    links: dict[int, str] = {}
    for call in calls:
        stem = report_stem(call.stored.summary.name, call.stored.summary.content_hash)
        html_file = out / f"{stem}.html"
        html_file.write_text(render_call_html(call.stored), encoding="utf-8")
        json_file = out / f"{stem}.json"
        json_file.write_text(
            json.dumps(call_json(call.stored), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        links[call.call_id] = html_file.name
        files += [str(html_file), str(json_file)]
    summaries = [c.stored.summary for c in calls]
    if summaries:
        (out / "reviews.csv").write_text(to_csv(summaries, links), encoding="utf-8")
        (out / "reviews.json").write_text(to_json(summaries, links), encoding="utf-8")
        files += [str(out / "reviews.csv"), str(out / "reviews.json")]
    return files
