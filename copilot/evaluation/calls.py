"""``copilot eval calls``: does the whole-call scorecard give each check the verdict a trainer expects?

``eval/calls.yaml`` lists calls, each with a transcript and/or a recording and the expected verdict of every
check (``pass`` / ``fail``). Each source is reviewed with :func:`copilot.qa.review.review_call`, the function
behind ``copilot review`` and the upload tab; a recording is first transcribed with the configured ASR.
Checklist accuracy = verdicts as expected / verdicts expected, per source (``--quick``: transcripts only).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from copilot.config import REPO_DIR, Config
from copilot.errors import ConfigError
from copilot.evaluation import EvalOutcome, Metric, SuiteOptions, context_of, rate, register_suite
from copilot.qa.review import ReviewOptions, review_call

DEFAULT_SET = REPO_DIR / "eval" / "calls.yaml"
Source = Literal["transcript", "audio"]
SOURCES: tuple[Source, ...] = ("transcript", "audio")
VERDICTS: dict[str, bool | None] = {"pass": True, "fail": False, "unknown": None}  # unknown: cannot tell
NO_SUCH_CHECK = "no such check"


@dataclass(frozen=True)
class LabelledCall:
    name: str
    files: dict[Source, Path]  # where each source of the call is
    checks: dict[str, bool | None]  # check id -> expected to pass (None: the call cannot decide it)


@dataclass(frozen=True)
class Verdict:
    call: str
    source: Source
    check: str
    expected: bool | None
    got: bool | str | None  # None: unknown; NO_SUCH_CHECK: the scorecard has no such check

    @property
    def right(self) -> bool:
        return self.got == self.expected


def load_calls(path: Path = DEFAULT_SET, *, base: Path = REPO_DIR) -> list[LabelledCall]:
    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read the call set {path}: {e}") from e
    if not isinstance(items, list):
        raise ConfigError(f"{path} must be a list of calls")
    calls = []
    for number, item in enumerate(items, 1):
        where = f"{path.name} item {number}"
        if not isinstance(item, dict) or not isinstance(item.get("checks"), dict):
            raise ConfigError(f"{where}: needs 'call' and a 'checks' table")
        files: dict[Source, Path] = {s: base / str(item[s]) for s in SOURCES if item.get(s)}
        if not files:
            raise ConfigError(f"{where}: give a 'transcript' and/or an 'audio' file")
        checks = {}
        for check, verdict in item["checks"].items():
            if verdict not in VERDICTS:
                raise ConfigError(
                    f"{where}: check {check} must be pass or fail (or unknown), not {verdict!r}"
                )
            checks[str(check)] = VERDICTS[verdict]
        calls.append(
            LabelledCall(str(item.get("call") or Path(next(iter(files.values()))).stem), files, checks)
        )
    return calls


def verdicts(call: LabelledCall, source: Source, got: dict[str, bool | None]) -> list[Verdict]:
    return [
        Verdict(call.name, source, check, want, got.get(check, NO_SUCH_CHECK))
        for check, want in call.checks.items()
    ]


def summarise(results: list[Verdict]) -> dict[str, Any]:
    data: dict[str, Any] = {"suite": "calls"}
    for source in SOURCES:
        mine = [v for v in results if v.source == source]
        data[source] = {
            "verdicts": len(mine),
            "accuracy": rate(sum(v.right for v in mine), len(mine)),
            "calls_all_right": sorted({v.call for v in mine} - {v.call for v in mine if not v.right}),
            "wrong": [
                {"call": v.call, "check": v.check, "expected": v.expected, "got": v.got}
                for v in mine
                if not v.right
            ],
        }
    return data


def render(data: dict[str, Any], path: Path) -> str:
    rows = [f"calls on {path.name}: checklist verdicts as a trainer expects"]
    for source in SOURCES:
        part = data[source]
        if not part["verdicts"]:
            continue
        rows.append(f"  from {source}: {part['accuracy']:.3f} of {part['verdicts']} verdicts right")
        for w in part["wrong"]:
            word = {True: "pass", False: "fail", None: "unknown", NO_SUCH_CHECK: NO_SUCH_CHECK}
            rows.append(f"    {w['call']}: {w['check']} expected {word[w['expected']]}, got {word[w['got']]}")
    return "\n".join(rows)


def run(options: SuiteOptions, config: Config) -> EvalOutcome:
    path = Path(options.calls_set) if options.calls_set else DEFAULT_SET
    context = context_of(options, config)
    sources = ("transcript",) if options.quick else SOURCES
    results: list[Verdict] = []
    for call in load_calls(path):
        for source in sources:
            file = call.files.get(source)
            if file is None:
                continue
            transcript = context.transcript(file)
            review = review_call(
                transcript, engine=context.services.rules, options=ReviewOptions(redact=True, tone=False)
            )
            results += verdicts(
                call, source, {c.id: None if c.status == "unknown" else c.passed for c in review.checks}
            )
    data = {"set": str(path), **summarise(results)}
    return EvalOutcome(render(data, path), data)


def metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    rows = []
    for source in SOURCES:
        part = data[source]
        if part["verdicts"]:
            key = "checklist_accuracy" if source == "transcript" else "checklist_accuracy_audio"
            rows.append(Metric(key, f"checklist accuracy ({source})", part["accuracy"], n=part["verdicts"]))
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls-set", help="labelled calls (default: eval/calls.yaml)")


register_suite(
    "calls",
    run,
    help="whole-call checklist verdicts vs a trainer's labels, from transcripts and from audio (eval/calls.yaml)",
    add_arguments=add_arguments,
    metrics=metrics,
)
