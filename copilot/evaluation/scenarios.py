"""``copilot eval scenarios``: trainer-written conversations played through a live call session.

A scenario (``eval/scenarios/*.yaml``, format in ``eval/scenarios/README.md``) is a list of turns, each
``agent: TEXT`` or ``customer: TEXT`` with ``expect:`` entries:

* on a customer turn, about the suggestion the copilot shows next: ``clause`` (a cited passage holds this
  text, in its section title or body), ``contains`` / ``absent`` (the suggestion says / does not say this),
  ``within_ms`` (the script appears within this many ms of the end of the turn);
* on an agent turn, about the flags that line raises: ``flag`` (a flag with this rule or kind id),
  ``absent`` (no flag with this id; ``any`` = no flag at all).

An optional ``checks:`` table gives the whole-call verdicts expected at the end (``greeting: pass``).
Turns are timed like speech (about 4 characters a second, 0.6 s between turns); ``pause: S`` puts S
seconds of silence before a turn and ``overlap: S`` starts it S seconds before the previous turn ends.
The session is :class:`~copilot.session.call.CallSession` with ``background=False``: the code path of the live
panel, suggestions computed inline. ``--quick`` plays without the LLM and leaves ``within_ms`` unjudged.
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
from copilot.session.call import CallSession, SessionEngines, SessionOptions
from copilot.suggest.engine import Suggestion
from copilot.types import Flag, Role, Segment

DEFAULT_DIR = REPO_DIR / "eval" / "scenarios"
CHARS_PER_SECOND = 4.0  # scripted turns last as long as speech at ~240 characters a minute
MIN_TURN_SECONDS = 1.0
TURN_GAP_SECONDS = 0.6  # between the end of one turn and the start of the next
ANY = "any"
Kind = Literal["clause", "contains", "absent", "within_ms", "flag"]
CUSTOMER_KINDS: tuple[Kind, ...] = ("clause", "contains", "absent", "within_ms")
AGENT_KINDS: tuple[Kind, ...] = ("flag", "absent")
VERDICTS = {"pass": True, "fail": False}


@dataclass(frozen=True)
class Expectation:
    kind: Kind
    value: str | float | tuple[str, ...]  # a list: clause / contains = any of them, absent = none of them


@dataclass(frozen=True)
class Turn:
    speaker: Role
    text: str
    expect: tuple[Expectation, ...]
    pause: float = 0.0  # s of silence before the turn
    overlap: float = 0.0  # s the turn starts before the previous one ends


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    turns: tuple[Turn, ...]
    checks: dict[str, bool]  # whole-call verdicts expected at the end


@dataclass(frozen=True)
class Outcome:
    scenario: str
    turn: int  # 1-based; 0 for the whole-call checks
    expectation: str  # e.g. "flag: forbidden"
    ok: bool
    got: str


def _expectation(item: Any, speaker: Role, where: str) -> Expectation:
    allowed = CUSTOMER_KINDS if speaker == "customer" else AGENT_KINDS
    if not isinstance(item, dict) or len(item) != 1:
        raise ConfigError(f"{where}: each expect entry is one 'kind: value' pair, got {item!r}")
    kind, value = next(iter(item.items()))
    if kind not in allowed:
        raise ConfigError(f"{where}: {speaker} turns take {', '.join(allowed)}, not {kind!r}")
    if kind == "within_ms":
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{where}: within_ms must be a positive number of milliseconds")
        return Expectation("within_ms", float(value))
    values = tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)
    if value is None or not all(values):
        raise ConfigError(f"{where}: {kind} needs a value")
    return Expectation(kind, values if isinstance(value, list) else values[0])


def _turn(item: Any, where: str) -> Turn:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a turn is a table with 'agent' or 'customer'")
    speakers = [role for role in ("agent", "customer") if role in item]
    if len(speakers) != 1:
        raise ConfigError(f"{where}: give exactly one of 'agent' or 'customer'")
    speaker: Role = "agent" if speakers[0] == "agent" else "customer"
    expect = item.get("expect") or []
    if not isinstance(expect, list):
        raise ConfigError(f"{where}: expect must be a list")
    unknown = set(item) - {"agent", "customer", "expect", "pause", "overlap"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return Turn(
        speaker,
        str(item[speaker]),
        tuple(_expectation(e, speaker, where) for e in expect),
        pause=float(item.get("pause", 0.0)),
        overlap=float(item.get("overlap", 0.0)),
    )


def load_scenario(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read scenario {path}: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list) or not data["turns"]:
        raise ConfigError(f"{path.name}: a scenario needs a list of turns")
    checks = {}
    for check, verdict in (data.get("checks") or {}).items():
        if verdict not in VERDICTS:
            raise ConfigError(f"{path.name}: check {check} must be pass or fail, not {verdict!r}")
        checks[str(check)] = VERDICTS[verdict]
    turns = tuple(_turn(item, f"{path.name} turn {i}") for i, item in enumerate(data["turns"], 1))
    return Scenario(str(data.get("name") or path.stem), str(data.get("title") or ""), turns, checks)


def load_scenarios(directory: Path = DEFAULT_DIR) -> list[Scenario]:
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else [directory]
    if not files:
        raise ConfigError(f"no scenarios (*.yaml) in {directory}")
    return [load_scenario(f) for f in files]


def timed_segments(turns: tuple[Turn, ...]) -> list[Segment]:
    segments: list[Segment] = []
    end = 0.0
    for turn in turns:
        gap = TURN_GAP_SECONDS if segments else 0.0
        start = max(0.0, end - turn.overlap) if turn.overlap else end + gap + turn.pause
        length = max(MIN_TURN_SECONDS, len(turn.text) / CHARS_PER_SECOND)
        segments.append(Segment(turn.speaker, round(start, 2), round(start + length, 2), turn.text))
        end = max(end, start + length)
    return segments


def _flag_ids(flags: tuple[Flag, ...] | list[Flag]) -> set[str]:
    return {f.rule for f in flags} | {f.kind for f in flags}


def _texts(value: str | float | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (str(value),)


def judge_suggestion(expectation: Expectation, suggestion: Suggestion | None) -> tuple[bool, str]:
    if suggestion is None:
        return False, "no suggestion"
    value = expectation.value
    if expectation.kind == "within_ms":
        script_ms = suggestion.latency_ms.script
        limit = float(value) if isinstance(value, int | float) else 0.0
        return script_ms is not None and script_ms <= limit, f"{script_ms} ms"
    if expectation.kind == "clause":
        cited = [f"{c.source} {c.section}\n{c.text}" for c in suggestion.cites]
        ok = any(needle in text for needle in _texts(value) for text in cited)
        return ok, " | ".join(c.section for c in suggestion.cites)
    if expectation.kind == "contains":
        return any(needle in suggestion.text for needle in _texts(value)), suggestion.text
    return not any(needle in suggestion.text for needle in _texts(value)), suggestion.text  # absent


def judge_flags(expectation: Expectation, flags: list[Flag]) -> tuple[bool, str]:
    ids = _flag_ids(flags)
    wanted = set(_texts(expectation.value))
    got = ", ".join(sorted({f"{f.rule}:{f.kind}" for f in flags})) or "no flag"
    if expectation.kind == "flag":
        return bool(wanted & ids), got
    if ANY in wanted:
        return not flags, got
    return not wanted & ids, got


def play(scenario: Scenario, engines: SessionEngines, *, use_llm: bool, timing: bool = True) -> list[Outcome]:
    """Feed the scenario's turns to a call session and judge every expectation as it comes.

    ``timing=False`` leaves ``within_ms`` unjudged (``--quick``: CI machines are shared, a floor must
    not depend on their load; the latency suite measures time properly).
    """
    session = CallSession(engines, SessionOptions(redact=False, use_llm=use_llm, background=False))
    outcomes = []
    for number, (turn, segment) in enumerate(
        zip(scenario.turns, timed_segments(scenario.turns), strict=True), 1
    ):
        flags_before = len(session.state().flags)
        records_before = len(session.records)
        session.add_segment(segment)
        new_flags = list(session.state().flags[flags_before:])
        records = session.records
        suggestion = records[-1].suggestion if len(records) > records_before else None
        for expectation in turn.expect:
            if expectation.kind == "within_ms" and not timing:
                continue
            if turn.speaker == "customer":
                ok, got = judge_suggestion(expectation, suggestion)
            else:
                ok, got = judge_flags(expectation, new_flags)
            shown = "/".join(_texts(expectation.value))
            outcomes.append(Outcome(scenario.name, number, f"{expectation.kind}: {shown}", ok, got))
    session.finish()
    if scenario.checks:
        results = {c.id: c.passed for c in session.review(scenario.name).checks}
        for check, want in scenario.checks.items():
            passed = results.get(check)
            word = {True: "pass", False: "fail", None: "no such check"}
            expected = f"check {check}: {word[want]}"
            outcomes.append(Outcome(scenario.name, 0, expected, passed == want, word[passed]))
    return outcomes


def summarise(scenarios: list[Scenario], outcomes: list[Outcome]) -> dict[str, Any]:
    failed = {o.scenario for o in outcomes if not o.ok}
    return {
        "suite": "scenarios",
        "scenarios": len(scenarios),
        "expectations": len(outcomes),
        "met": rate(sum(o.ok for o in outcomes), len(outcomes)),
        "scenarios_passed": rate(len(scenarios) - len(failed), len(scenarios)),
        "failures": [
            {"scenario": o.scenario, "turn": o.turn, "expected": o.expectation, "got": o.got}
            for o in outcomes
            if not o.ok
        ],
        "per_scenario": {
            s.name: {
                "title": s.title,
                "met": sum(o.ok for o in outcomes if o.scenario == s.name),
                "of": sum(1 for o in outcomes if o.scenario == s.name),
            }
            for s in scenarios
        },
    }


def render(data: dict[str, Any]) -> str:
    rows = [
        f"scenarios: {data['scenarios']} conversations, {data['expectations']} expectations, "
        f"LLM {data['llm'] or 'off'}{'' if data['timing_judged'] else ', within_ms not judged (--quick)'}"
    ]
    rows += [
        f"  {name:24} {s['met']:3d}/{s['of']:<3d} {s['title']}" for name, s in data["per_scenario"].items()
    ]
    for f in data["failures"]:
        where = f"turn {f['turn']}" if f["turn"] else "end of call"
        rows.append(f"  not met: {f['scenario']} {where}: {f['expected']}  (got: {f['got']})")
    return "\n".join(rows)


def run(options: SuiteOptions, config: Config) -> EvalOutcome:
    directory = Path(options.scenarios) if options.scenarios else DEFAULT_DIR
    scenarios = load_scenarios(directory)
    context = context_of(options, config)
    quick = options.quick
    use_llm = config.llm.enabled and not quick and not options.no_llm
    context.services.suggester.warm()  # models loaded and first-call costs paid before any turn is timed
    outcomes: list[Outcome] = []
    for scenario in scenarios:
        outcomes += play(scenario, context.services, use_llm=use_llm, timing=not quick)
    data = {
        **summarise(scenarios, outcomes),
        "dir": str(directory),
        "llm": config.llm.model if use_llm else "",
        "timing_judged": not quick,
    }
    return EvalOutcome(render(data), data)


def metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    return [
        Metric("expectations_met", "scenario expectations met", data["met"], n=data["expectations"]),
        Metric("scenarios_passed", "scenarios fully passed", data["scenarios_passed"], n=data["scenarios"]),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenarios", help="a scenario file or folder (default: eval/scenarios)")


register_suite(
    "scenarios",
    run,
    help="trainer-written conversations (eval/scenarios/*.yaml) played through a call session",
    add_arguments=add_arguments,
    metrics=metrics,
)
