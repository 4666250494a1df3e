"""The per-call report: scorecard with evidence and clauses, flags, plots, redacted transcript.

Rendered from a :class:`~copilot.qa.store.StoredCall`, i.e. from what the database holds, so a report
regenerated later shows exactly what was stored (text already redacted there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from copilot.qa.report import plots
from copilot.qa.report.html import esc, mmss, page, table
from copilot.qa.review import check_dict, flag_dict
from copilot.qa.store.records import StoredCall
from copilot.types import Clause, Evidence


def _evidence_html(evidence: Sequence[Evidence]) -> str:
    if not evidence:
        return '<span class="meta">—</span>'
    return "<br>".join(
        f'<span class="meta">{esc(mmss(e.start))}–{esc(mmss(e.end))} {esc(e.speaker)}</span> '
        f'<span class="quote">“{esc(e.text)}”</span>'
        for e in evidence
    )


def _clause_html(clause: Clause) -> str:
    where = " § ".join(x for x in (clause.document, clause.section) if x)
    quote = f'<br><span class="quote">“{esc(clause.quote)}”</span>' if clause.quote else ""
    return f"{esc(where)}{quote}" if where or quote else '<span class="meta">—</span>'


def _plot(uri: str | None, alt: str) -> str:
    if uri is None:
        return f'<p class="meta">{esc(alt)}: not available for this call.</p>'
    return f'<img class="plot" alt="{esc(alt)}" src="{uri}">'


def render_call_html(call: StoredCall) -> str:
    s = call.summary
    meta = s.meta
    checks_rows = [
        [
            f"<b>{esc(c.id)}</b>",
            {
                "pass": '<span class="pass">pass</span>',
                "fail": '<span class="fail">fail</span>',
                "unknown": f'<span class="unknown" title="{esc(c.unknown_reason)}">cannot tell</span>',
            }[c.status],
            esc(c.message),
            _evidence_html(c.evidence),
            _clause_html(c.clause),
        ]
        for c in call.checks
    ]
    flag_rows = [
        [
            f'<span class="sev-{esc(f.severity)}">{esc(f.severity)}</span>',
            esc(f.rule),
            esc(f.message),
            _evidence_html(f.evidence),
            _clause_html(f.clause),
        ]
        for f in call.flags
    ]
    transcript_rows = "".join(
        f'<tr class="{esc(x.segment.speaker)}"><td>{esc(mmss(x.segment.start))}–{esc(mmss(x.segment.end))}</td>'
        f"<td>{esc(x.segment.speaker)}</td><td>{esc(x.segment.text)}</td><td>{esc(x.mood)}</td></tr>"
        for x in call.segments
    )
    passed = sum(c.passed for c in call.checks)
    who = ", ".join(
        f"{label} {esc(value)}"
        for label, value in (
            ("agent", meta.agent),
            ("team", meta.team),
            ("queue", meta.queue),
            ("date", meta.date),
        )
        if value
    )
    models = ", ".join(f"{esc(k)}: {esc(v)}" for k, v in sorted(call.model_versions.items()))
    body = [
        f"<h1>Call review: {esc(s.name)}</h1>",
        f'<p class="meta">{esc(s.file)} · {esc(mmss(s.duration))} · {who or "agent unknown"}</p>',
        '<div class="cards">',
        f'<div class="card"><div class="score">{s.score:.0f}</div>score / 100</div>'
        if s.scored
        else f'<div class="card"><div class="score">—</div>{s.outcome}: not scored</div>',
        f'<div class="card"><div class="score">{passed}/{len(call.checks)}</div>checks passed</div>',
        f'<div class="card"><div class="score">{len(call.flags)}</div>flags</div>',
        "</div>",
        "<h2>Scorecard</h2>",
        table(["check", "result", "why", "evidence", "handbook clause"], checks_rows, raw=True),
    ]
    if call.summary_text:
        body += ["<h2>Summary</h2>", f"<p>{esc(call.summary_text)}</p>"]
    body += [
        f"<h2>Flags ({len(call.flags)})</h2>",
        table(["severity", "rule", "message", "evidence", "handbook clause"], flag_rows, raw=True)
        if flag_rows
        else '<p class="meta">No flags.</p>',
        "<h2>Timeline</h2>",
        _plot(plots.timeline(call.segments, call.flags, s.duration), "who spoke when"),
        _plot(plots.pace_plot(call.segments, s.duration), "pace"),
        _plot(plots.mood_plot(call.segments, s.duration), "customer mood"),
        "<h2>Transcript (redacted)</h2>",
        "<table><thead><tr><th>time</th><th>speaker</th><th>text</th><th>mood</th></tr></thead>"
        f"<tbody>{transcript_rows}</tbody></table>",
        f'<p class="meta">Reviewed {esc(s.created_at)} · configuration {esc(s.config_hash[:12])} · '
        f"models: {models or '—'} · content {esc(s.content_hash[:12])}</p>",
    ]
    return page(f"Review {s.name}", "\n".join(body))


def call_json(call: StoredCall) -> dict[str, Any]:
    """The review JSON shape (checks and flags exactly as ``copilot review --json`` writes them) plus provenance."""
    s = call.summary
    return {
        "call": s.name,
        "file": s.file,
        "duration": s.duration,
        "score": s.score if s.scored else None,
        **({"outcome": s.outcome} if s.outcome else {}),
        "agent": s.meta.agent,
        "team": s.meta.team,
        "queue": s.meta.queue,
        "date": s.meta.date,
        "segments": [
            {
                "speaker": x.segment.speaker,
                "start": x.segment.start,
                "end": x.segment.end,
                "text": x.segment.text,
                **({"mood": x.mood} if x.mood else {}),
            }
            for x in call.segments
        ],
        "checks": [check_dict(c) for c in call.checks],
        "flags": [flag_dict(f) for f in call.flags],
        "content_hash": s.content_hash,
        "config_hash": s.config_hash,
        "model_versions": dict(call.model_versions),
        "reviewed_at": s.created_at.isoformat(),
    }
