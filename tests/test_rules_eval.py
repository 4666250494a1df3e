"""The labelled agent lines: precision and recall of the real-time flags, no false hit on traps."""

from __future__ import annotations

from copilot.evaluation.rules import evaluate_flags, load_labelled
from copilot.judgement import default_engine

MIN_PRECISION = 0.9
MIN_RECALL = 0.9
MIN_LINES = 40


def test_labelled_set_is_large_and_balanced() -> None:
    lines = load_labelled()
    assert len(lines) >= MIN_LINES
    assert sum(line.flag for line in lines) >= 15 and sum(line.trap for line in lines) >= 10
    assert len({line.text for line in lines}) == len(lines)


def test_flags_precision_recall_and_traps() -> None:
    report = evaluate_flags(default_engine(), load_labelled())
    summary = report.summary()
    assert report.precision >= MIN_PRECISION, summary
    assert report.recall >= MIN_RECALL, summary
    assert not report.trap_hits, summary
