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
from copilot.qa.archive import enforce_retention, save_review
from copilot.qa.batch import AUDIO_SUFFIXES, SIDECAR_MARK
from copilot.qa.calls import load_call
from copilot.qa.metadata import load_metadata
from copilot.qa.report import call_json, render_call_html, report_stem, to_csv, to_json
from copilot.qa.report.html import esc, mmss
from copilot.qa.review import TRANSCRIPT_SUFFIXES, ReviewOptions, review_call
from copilot.qa.store import CallSummary, ReviewFilter, StoredCall, content_hash, provenance
from copilot.transcription.audio import SAMPLE_RATE, read_all
from copilot.types import Clause, Evidence
from copilot.ui.context import AppContext

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

    def cells(self, name: str) -> list[str]:
        return [
            name,
            self.item,
            self.result,
            mmss(self.start),
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
    for done, path in enumerate(files):
        if progress is not None:
            progress(done, len(files), path.name)
        if not is_call_file(path):
            errors.append(f"{path.name}: not a call (upload .json transcripts or recordings: .wav, .mp3 …)")
            continue
        is_audio = path.suffix.lower() not in TRANSCRIPT_SUFFIXES
        try:
            digest = content_hash(path)
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


def _evidence_html(evidence: Sequence[Evidence]) -> str:
    if not evidence:
        return '<span class="cp-meta">—</span>'
    return "<br>".join(
        f'<span class="cp-meta">{mmss(e.start)} {esc(SPEAKER.get(e.speaker, e.speaker))}</span> “{esc(e.text)}”'
        for e in evidence
    )


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


def _check_name(check_id: str) -> str:
    name = CHECK_NAMES.get(check_id)
    return (
        f'<b>{esc(name)}</b> <span class="cp-meta">{esc(check_id)}</span>'
        if name
        else f"<b>{esc(check_id)}</b>"
    )


def scorecard_html(call: ReviewedCall) -> str:
    s = call.stored.summary
    checks = call.stored.checks
    passed = sum(c.passed for c in checks)
    rows = "".join(
        f'<tr class="cp-check cp-{c.status}" data-check="{esc(c.id)}" '
        f'data-passed="{str(c.passed).lower()}" data-status="{c.status}"><td>{_check_name(c.id)}</td>'
        f"<td>{STATUS_TEXT[c.status]}</td><td>{esc(c.message)}</td>"
        f"<td>{_evidence_html(c.evidence)}</td><td>{esc(_clause_text(c.clause))}</td></tr>"
        for c in checks
    )
    flags = "".join(
        f'<li class="cp-flag cp-sev-{esc(f.severity)}" data-rule="{esc(f.rule)}">'
        f"<b>{esc(f.message)}</b> {_evidence_html(f.evidence[:1])} "
        f'<span class="cp-meta">{esc(_clause_text(f.clause))}</span></li>'
        for f in call.stored.flags
    )
    note = " · loaded from the database (same content reviewed before)" if call.reused else ""
    agent = f" · agent {esc(s.meta.agent)}" if s.meta.agent else ""
    return (
        f'<div class="cp-scorecard" data-call="{esc(call.name)}">'
        f'<h3>{esc(call.name)} <span class="cp-score">{s.score:.0f}/100</span></h3>'
        f'<div class="cp-meta">{passed}/{len(checks)} checks passed · {len(call.stored.flags)} flags · '
        f"{mmss(s.duration)}{agent}{note}</div>"
        "<table><thead><tr><th>检查项 check</th><th>结果 result</th><th>原因 why</th><th>证据 evidence</th>"
        "<th>手册条款 clause</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        + (
            f"<details open><summary>Flags ({len(call.stored.flags)})</summary><ul>{flags}</ul></details>"
            if flags
            else ""
        )
        + "</div>"
    )


def transcript_html(call: ReviewedCall) -> str:
    rows = "".join(
        f'<tr class="cp-{esc(x.segment.speaker)}"><td>{mmss(x.segment.start)}</td>'
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
    """Failed checks and flags with their evidence, one row per piece of evidence."""
    rows: list[EvidenceRow] = []
    for index, call in enumerate(calls):
        for check in call.stored.checks:
            if not check.failed:
                continue
            for e in check.evidence or (Evidence(0.0, 0.0, "unknown", ""),):
                rows.append(
                    EvidenceRow(
                        index,
                        f"check {check.id}",
                        "fail",
                        e.start,
                        e.end,
                        e.speaker,
                        e.text,
                        _clause_text(check.clause),
                    )
                )
        for flag in call.stored.flags:
            for e in flag.evidence[:1]:
                rows.append(
                    EvidenceRow(
                        index,
                        f"flag {flag.rule}:{flag.kind}",
                        flag.severity,
                        e.start,
                        e.end,
                        e.speaker,
                        e.text,
                        _clause_text(flag.clause),
                    )
                )
    return rows


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
