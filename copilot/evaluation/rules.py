"""Precision and recall of the real-time flags on a labelled set of agent lines (``eval/flags.yaml``).

A line counts as flagged when the engine raises at least one flag on it; ``trap`` lines are acceptable
lines that look like violations, and any flag on them is reported by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from copilot.config import REPO_DIR
from copilot.errors import CopilotError
from copilot.judgement.engine import RuleEngine
from copilot.types import Segment

DEFAULT_SET = REPO_DIR / "eval" / "flags.yaml"


@dataclass(frozen=True)
class LabelledLine:
    text: str
    flag: bool  # the line breaks a handbook rule
    trap: bool = False  # acceptable, but contains a forbidden-looking word


@dataclass(frozen=True)
class LineOutcome:
    line: LabelledLine
    flagged: bool
    rules: tuple[str, ...]  # "rule/kind" of every flag raised


@dataclass(frozen=True)
class FlagsReport:
    outcomes: tuple[LineOutcome, ...]

    @property
    def true_positives(self) -> int:
        return sum(o.flagged and o.line.flag for o in self.outcomes)

    @property
    def false_positives(self) -> tuple[LineOutcome, ...]:
        return tuple(o for o in self.outcomes if o.flagged and not o.line.flag)

    @property
    def false_negatives(self) -> tuple[LineOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.flagged and o.line.flag)

    @property
    def trap_hits(self) -> tuple[LineOutcome, ...]:
        return tuple(o for o in self.false_positives if o.line.trap)

    @property
    def precision(self) -> float:
        flagged = self.true_positives + len(self.false_positives)
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        positives = self.true_positives + len(self.false_negatives)
        return self.true_positives / positives if positives else 1.0

    def summary(self) -> dict[str, Any]:
        return {
            "lines": len(self.outcomes),
            "violations": sum(o.line.flag for o in self.outcomes),
            "traps": sum(o.line.trap for o in self.outcomes),
            "precision": round(self.precision, 3),
            "recall": round(self.recall, 3),
            "trap_false_hits": len(self.trap_hits),
            "false_positives": [{"text": o.line.text, "rules": list(o.rules)} for o in self.false_positives],
            "false_negatives": [o.line.text for o in self.false_negatives],
        }


def load_labelled(path: str | os.PathLike[str] = DEFAULT_SET) -> list[LabelledLine]:
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise CopilotError(f"cannot read labelled set {file}: {e}") from e
    items = data.get("lines") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise CopilotError(f"{file}: expected a non-empty 'lines' list")
    lines = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or "flag" not in item:
            raise CopilotError(f"{file}: lines[{i}] needs 'text' and 'flag'")
        lines.append(LabelledLine(item["text"], bool(item["flag"]), bool(item.get("trap", False))))
    return lines


def evaluate_flags(engine: RuleEngine, lines: list[LabelledLine]) -> FlagsReport:
    outcomes = []
    for line in lines:
        flags = engine.check_utterance(Segment(speaker="agent", start=0.0, end=0.0, text=line.text))
        outcomes.append(LineOutcome(line, bool(flags), tuple(f"{f.rule}/{f.kind}" for f in flags)))
    return FlagsReport(tuple(outcomes))
