"""Matplotlib figures for the reports, returned as ``data:`` URIs of PNG images.

Figures are built with the object-oriented API on the Agg canvas (no pyplot global state), so reports
can be drawn from any thread. Labels are ASCII: no CJK font can be assumed on a QA server.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from copilot.qa.store.records import StoredSegment
from copilot.types import Flag

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100  # dots per inch of the embedded PNGs
WIDE = (10.0, 2.6)  # inches: timeline and pace strips
SQUARE = (5.0, 3.2)  # inches: dashboard charts
HANDBOOK_PACE = (180.0, 220.0)  # Chinese characters per minute the handbook asks of agents
SECONDS_PER_MINUTE = 60.0
MIN_PACE_SECONDS = 1.0  # shorter segments give meaningless rates
SPEAKER_COLOURS = {"agent": "#3b6fd8", "customer": "#e59a2f", "unknown": "#999999"}
MOOD_LEVELS = ("angry", "anxious", "distressed", "calm", "thankful")  # bottom to top of the mood plot
SPOKEN_CHAR = re.compile(r"\w")  # letters, CJK characters and digits: punctuation is not spoken


def _figure(size: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def spoken_chars(text: str) -> int:
    return len(SPOKEN_CHAR.findall(text))


def pace(segment: StoredSegment) -> float | None:
    """Characters per minute of one segment, or None when it is too short to say."""
    seconds = segment.segment.duration
    if seconds < MIN_PACE_SECONDS:
        return None
    return spoken_chars(segment.segment.text) / (seconds / SECONDS_PER_MINUTE)


def timeline(segments: Sequence[StoredSegment], flags: Sequence[Flag], duration: float) -> str:
    """Who spoke when (one row per speaker), with flagged moments marked in red."""
    fig = _figure(WIDE)
    ax = fig.add_subplot()
    speakers = [s for s in ("customer", "agent", "unknown") if any(x.segment.speaker == s for x in segments)]
    speakers = speakers or ["agent", "customer"]
    for row, speaker in enumerate(speakers):
        spans = [(x.segment.start, x.segment.duration) for x in segments if x.segment.speaker == speaker]
        ax.broken_barh(spans, (row - 0.35, 0.7), facecolors=SPEAKER_COLOURS[speaker])
    for flag in flags:
        for evidence in flag.evidence:
            ax.axvline(evidence.start, color="#b3261e", linewidth=1, alpha=0.8)
    ax.set_yticks(range(len(speakers)), speakers)
    ax.set_xlim(0, max(duration, 1.0))
    ax.set_xlabel("seconds (red lines: flagged moments)")
    ax.set_title("Who spoke when")
    return _data_uri(fig)


def pace_plot(segments: Sequence[StoredSegment], duration: float) -> str:
    """Agent speech rate per utterance against the handbook's band."""
    fig = _figure(WIDE)
    ax = fig.add_subplot()
    low, high = HANDBOOK_PACE
    ax.axhspan(low, high, color="#d8f0dc", label=f"handbook {low:.0f}-{high:.0f}")
    for speaker in ("agent", "customer"):
        points = [
            ((x.segment.start + x.segment.end) / 2, rate)
            for x in segments
            if x.segment.speaker == speaker and (rate := pace(x)) is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", linestyle="-", color=SPEAKER_COLOURS[speaker], label=speaker)
    ax.set_xlim(0, max(duration, 1.0))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds")
    ax.set_ylabel("chars / min")
    ax.set_title("Pace")
    ax.legend(loc="upper right", fontsize="small")
    return _data_uri(fig)


def mood_plot(segments: Sequence[StoredSegment], duration: float) -> str | None:
    """Customer mood over the call, or None when no segment carries a mood label."""
    points = [
        ((x.segment.start + x.segment.end) / 2, x.mood)
        for x in segments
        if x.mood and x.segment.speaker != "agent"
    ]
    if not points:
        return None
    levels = list(MOOD_LEVELS) + sorted({m for _, m in points} - set(MOOD_LEVELS))
    fig = _figure(WIDE)
    ax = fig.add_subplot()
    xs = [t for t, _ in points]
    ys = [levels.index(m) for _, m in points]
    ax.step(xs, ys, where="post", color="#7a4fb5")
    ax.scatter(xs, ys, color="#7a4fb5", zorder=3)
    ax.set_yticks(range(len(levels)), levels)
    ax.set_xlim(0, max(duration, 1.0))
    ax.set_xlabel("seconds")
    ax.set_title("Customer mood")
    return _data_uri(fig)


def score_histogram(scores: Sequence[float]) -> str:
    fig = _figure(SQUARE)
    ax = fig.add_subplot()
    ax.hist(list(scores), bins=[i * 10 for i in range(11)], color="#3b6fd8", edgecolor="white")
    ax.set_xlim(0, 100)
    ax.set_xlabel("score")
    ax.set_ylabel("calls")
    ax.set_title("Score distribution")
    return _data_uri(fig)


def failed_checks_bar(counts: Mapping[str, int]) -> str:
    fig = _figure(SQUARE)
    ax = fig.add_subplot()
    items: list[tuple[str, int]] = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))
    if items:
        labels, values = zip(*items, strict=True)
        ax.barh(list(labels), list(values), color="#b3261e")
    ax.set_xlabel("calls failing")
    ax.set_title("Most-failed checks")
    return _data_uri(fig)


def agent_scores(per_agent: Mapping[str, Sequence[float]]) -> str:
    """A box per agent (ids are drawn as given; non-ASCII ids show as boxes without a CJK font)."""
    fig = _figure(SQUARE)
    ax = fig.add_subplot()
    names = sorted(per_agent)
    data: list[Any] = [list(per_agent[n]) for n in names]
    if data:
        ax.boxplot(data, tick_labels=names, orientation="horizontal")
    ax.set_xlim(0, 100)
    ax.set_xlabel("score")
    ax.set_title("Scores per agent")
    return _data_uri(fig)
