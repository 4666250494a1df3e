"""Per-batch aggregates (pure) and the HTML dashboard that shows them."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from copilot.qa.report import plots
from copilot.qa.report.html import esc, mmss, page, table
from copilot.qa.store.records import CallSummary

SECONDS_PER_MINUTE = 60.0
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class GroupStats:
    """Scores of the calls of one agent or team."""

    name: str
    calls: int
    mean_score: float
    min_score: float
    max_score: float
    call_minutes: float
    most_failed: str  # check id failed most often in this group, "" if none failed


@dataclass(frozen=True)
class BatchStats:
    calls: int
    mean_score: float
    median_score: float
    call_minutes: float
    failed_counts: Mapping[str, int]  # check id -> calls failing it
    per_agent: tuple[GroupStats, ...]
    per_team: tuple[GroupStats, ...]


def _group(calls: Sequence[CallSummary], key: Callable[[CallSummary], str]) -> tuple[GroupStats, ...]:
    groups: dict[str, list[CallSummary]] = {}
    for call in calls:
        groups.setdefault(key(call) or UNKNOWN, []).append(call)
    out = []
    for name, members in groups.items():
        scores = [c.score for c in members if c.scored] or [0.0]  # a call with no speech has no score
        failed = Counter(check for c in members for check in set(c.failed_checks))
        out.append(
            GroupStats(
                name=name,
                calls=len(members),
                mean_score=statistics.fmean(scores),
                min_score=min(scores),
                max_score=max(scores),
                call_minutes=sum(c.duration for c in members) / SECONDS_PER_MINUTE,
                most_failed=min(failed, key=lambda k: (-failed[k], k)) if failed else "",
            )
        )
    # Weakest first: that is where a QA lead looks.
    return tuple(sorted(out, key=lambda g: (g.mean_score, g.name)))


def batch_stats(calls: Sequence[CallSummary]) -> BatchStats:
    scores = [c.score for c in calls if c.scored]
    failed = Counter(check for c in calls for check in set(c.failed_checks))
    return BatchStats(
        calls=len(calls),
        mean_score=statistics.fmean(scores) if scores else 0.0,
        median_score=statistics.median(scores) if scores else 0.0,
        call_minutes=sum(c.duration for c in calls) / SECONDS_PER_MINUTE,
        failed_counts=dict(failed.most_common()),
        per_agent=_group(calls, lambda c: c.meta.agent),
        per_team=_group(calls, lambda c: c.meta.team),
    )


def _group_table(groups: Sequence[GroupStats], label: str) -> str:
    return table(
        [label, "calls", "mean score", "min", "max", "call minutes", "most failed check"],
        [
            [
                g.name,
                str(g.calls),
                f"{g.mean_score:.1f}",
                f"{g.min_score:.0f}",
                f"{g.max_score:.0f}",
                f"{g.call_minutes:.1f}",
                g.most_failed or "—",
            ]
            for g in groups
        ],
    )


def render_dashboard_html(
    calls: Sequence[CallSummary],
    *,
    title: str = "QA batch",
    links: Mapping[int, str] | None = None,
    failures: Sequence[tuple[str, str]] = (),
    notes: Sequence[str] = (),
) -> str:
    """The batch dashboard; ``links`` maps a call id to its report's relative URL, ``failures`` lists
    (file, reason) of inputs that could not be reviewed."""
    links = links or {}
    stats = batch_stats(calls)
    body = [
        f"<h1>{esc(title)}</h1>",
        *(f'<p class="meta">{esc(n)}</p>' for n in notes),
        '<div class="cards">',
        f'<div class="card"><div class="score">{stats.calls}</div>calls reviewed</div>',
        f'<div class="card"><div class="score">{stats.mean_score:.1f}</div>mean score</div>',
        f'<div class="card"><div class="score">{stats.median_score:.1f}</div>median score</div>',
        f'<div class="card"><div class="score">{stats.call_minutes:.1f}</div>call minutes</div>',
        f'<div class="card"><div class="score">{len(failures)}</div>inputs failed</div>',
        "</div>",
    ]
    if calls:
        body += [
            "<h2>Scores</h2>",
            f'<img class="plot" alt="score distribution" src="{plots.score_histogram([c.score for c in calls])}">',
            "<h2>Most-failed checks</h2>",
            f'<img class="plot" alt="most-failed checks" src="{plots.failed_checks_bar(stats.failed_counts)}">',
            table(
                ["check", "calls failing", "share"],
                [[k, str(v), f"{v / stats.calls:.0%}"] for k, v in stats.failed_counts.items()],
            ),
            "<h2>Per agent</h2>",
            f'<img class="plot" alt="scores per agent" src="{plots.agent_scores({g.name: [c.score for c in calls if (c.meta.agent or UNKNOWN) == g.name] for g in stats.per_agent})}">',
            _group_table(stats.per_agent, "agent"),
            "<h2>Per team</h2>",
            _group_table(stats.per_team, "team"),
        ]
    if failures:
        body += [
            "<h2>Inputs that could not be reviewed</h2>",
            table(["file", "reason"], [[f, r] for f, r in failures]),
        ]
    call_rows = [
        [
            f'<a href="{esc(links[c.id])}">{esc(c.name)}</a>' if c.id in links else esc(c.name),
            esc(c.meta.agent or "—"),
            esc(c.meta.team or "—"),
            esc(mmss(c.duration)),
            f"{c.score:.0f}",
            esc(", ".join(c.failed_checks) or "—"),
        ]
        for c in sorted(calls, key=lambda c: (c.score, c.name))
    ]
    body += [
        "<h2>Calls</h2>",
        table(["call", "agent", "team", "length", "score", "failed checks"], call_rows, raw=True),
    ]
    return page(title, "\n".join(body))
