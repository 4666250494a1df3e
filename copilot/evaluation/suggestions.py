"""``copilot eval suggestions``: how good the suggestions are, without a human in the loop.

For each labelled customer utterance (eval/suggestions.yaml): relevant (a cited passage holds the expected
clause), compliant (the text passes the agent's rules and contains nothing the item forbids), concise (at most
two sentences), kept (the LLM's rewrite survived the guard, vs replaced by the script) and latency.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from copilot.config import REPO_DIR, Config
from copilot.errors import ConfigError
from copilot.evaluation import EvalOutcome, SuiteOptions, register_suite
from copilot.evaluation.metrics import p50
from copilot.suggest.engine import Suggester, Suggestion, SuggestOptions, run_to_end
from copilot.suggest.guard import sentence_count
from copilot.types import Segment

DEFAULT_SET = REPO_DIR / "eval" / "suggestions.yaml"
EXAMPLES_SHOWN = 3


@dataclass(frozen=True)
class SuggestionCase:
    say: str
    expect: tuple[str, ...]
    must_not: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseResult:
    case: SuggestionCase
    suggestion: Suggestion
    relevant: bool
    compliant: bool
    concise: bool


def load_cases(path: Path = DEFAULT_SET) -> list[SuggestionCase]:
    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read suggestion set {path}: {e}") from e
    cases = []
    for number, item in enumerate(items or [], 1):
        if not isinstance(item, dict) or not item.get("say") or not item.get("expect"):
            raise ConfigError(f"{path} item {number}: needs 'say' and 'expect'")
        expect = item["expect"] if isinstance(item["expect"], list) else [item["expect"]]
        must_not = item.get("must_not") or []
        cases.append(SuggestionCase(str(item["say"]), tuple(map(str, expect)), tuple(map(str, must_not))))
    return cases


def evaluate(suggester: Suggester, cases: list[SuggestionCase], *, use_llm: bool) -> list[CaseResult]:
    results = []
    for case in cases:
        context = (Segment("customer", 0.0, 0.0, case.say),)
        suggestion = run_to_end(
            suggester.suggest(context, options=SuggestOptions(use_llm=use_llm), turn_ended=time.monotonic())
        )
        cited = [f"{c.section}\n{c.text}" for c in suggestion.cites]
        relevant = any(needle in text for needle in case.expect for text in cited)
        compliant = not suggester.rule_violations(suggestion.text) and not any(
            bad in suggestion.text for bad in case.must_not
        )
        results.append(
            CaseResult(case, suggestion, relevant, compliant, sentence_count(suggestion.text) <= 2)
        )
    return results


def summary(results: list[CaseResult]) -> dict[str, Any]:
    n = len(results) or 1
    llm_tried = [r for r in results if r.suggestion.reason != "LLM disabled"]
    kept = [r for r in llm_tried if not r.suggestion.fallback]
    reasons: dict[str, int] = {}
    for r in llm_tried:
        if r.suggestion.fallback:
            key = r.suggestion.reason.split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
    timing = [r.suggestion.latency_ms for r in results]
    return {
        "cases": len(results),
        "relevant": round(sum(r.relevant for r in results) / n, 3),
        "compliant": round(sum(r.compliant for r in results) / n, 3),
        "concise": round(sum(r.concise for r in results) / n, 3),
        "llm_kept": len(kept),
        "llm_replaced": len(llm_tried) - len(kept),
        "replaced_because": reasons,
        "latency_ms_p50": {
            "script": p50([t.script for t in timing if t.script is not None]),
            "first_token": p50([t.first_token for t in timing if t.first_token is not None]),
            "done": p50([t.done for t in timing if t.done is not None]),
        },
        "examples_kept": [
            {"say": r.case.say, "script": r.suggestion.script, "text": r.suggestion.text}
            for r in kept[:EXAMPLES_SHOWN]
        ],
        "examples_replaced": [
            {"say": r.case.say, "script": r.suggestion.script, "reason": r.suggestion.reason}
            for r in llm_tried
            if r.suggestion.fallback
        ][:EXAMPLES_SHOWN],
        "irrelevant": [r.case.say for r in results if not r.relevant],
        "noncompliant": [r.case.say for r in results if not r.compliant],
    }


def render(data: dict[str, Any], path: Path) -> str:
    latency = data["latency_ms_p50"]
    rows = [
        f"suggestions on {path.name}: {data['cases']} customer utterances",
        f"  relevant {data['relevant']:.3f}   compliant {data['compliant']:.3f}   concise {data['concise']:.3f}",
        f"  LLM rewrite kept {data['llm_kept']}, replaced by the script {data['llm_replaced']} {data['replaced_because']}",
        f"  p50 ms: script {latency['script']}  first token {latency['first_token']}  done {latency['done']}",
    ]
    rows += [f"  kept:     {e['say']} -> {e['text']}" for e in data["examples_kept"]]
    rows += [f"  replaced: {e['say']} -> {e['reason']}" for e in data["examples_replaced"]]
    rows += [f"  not relevant: {say}" for say in data["irrelevant"]]
    return "\n".join(rows)


def run(options: SuiteOptions, config: Config) -> EvalOutcome:
    from copilot.session.engines import Services

    path = Path(options.set_path) if options.set_path else DEFAULT_SET
    services = Services(config)
    use_llm = not options.no_llm and config.llm.enabled
    results = evaluate(services.suggester, load_cases(path), use_llm=use_llm)
    data = {
        "suite": "suggestions",
        "set": str(path),
        "llm": config.llm.model if use_llm else "",
        **summary(results),
    }
    return EvalOutcome(render(data, path), data)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", help="labelled customer utterances (default: eval/suggestions.yaml)")
    parser.add_argument("--no-llm", action="store_true", help="handbook scripts only")


register_suite(
    "suggestions",
    run,
    help="relevance, compliance, conciseness and LLM kept/replaced of suggestions (eval/suggestions.yaml)",
    add_arguments=add_arguments,
)
