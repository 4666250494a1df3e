"""``copilot eval judge`` (or ``--judge``): the local LLM scores suggestions 1-5, reported separately.

A small local model is a weak judge, so every score comes with a control: the same customer turn paired
with the suggestion made for a *different* turn (polite, compliant, off-topic). A judge worth listening to
scores the real suggestions clearly above the controls; the gap is the number to watch, not the mean.
Runs on the first ``--judge-cases`` items of eval/suggestions.yaml; not part of the default run or --quick.
"""

from __future__ import annotations

import argparse
import re
import statistics
from typing import Any

from copilot.config import Config
from copilot.errors import ConfigError
from copilot.evaluation import EvalOutcome, Metric, SuiteOptions, context_of, rate, register_suite
from copilot.evaluation.suggestions import DEFAULT_SET, load_cases
from copilot.suggest.engine import SuggestOptions, run_to_end
from copilot.suggest.llm import ChatMessage, Generator
from copilot.types import Segment

DEFAULT_CASES = 12  # each case costs two short judge generations on top of the suggestion
JUDGE_TOKENS = 3
MAX_CLAUSE_CHARS = 120
SCORE = re.compile(r"[1-5]")
JUDGE_SYSTEM = (
    "你是家电售后客服的质检员。给坐席的回复打分，只看它是否回应了客户刚说的话、是否符合手册条款、是否礼貌得体。"
    "5分=完全回应且符合条款；3分=部分相关；1分=答非所问或不得体。只输出一个数字。"
)


def judge_messages(customer: str, clause: str, reply: str) -> list[ChatMessage]:
    user = f"客户说：{customer}\n手册条款：{clause[:MAX_CLAUSE_CHARS]}\n坐席回复：{reply}\n分数："
    return [ChatMessage("system", JUDGE_SYSTEM), ChatMessage("user", user)]


def score(generator: Generator, customer: str, clause: str, reply: str) -> int | None:
    text = "".join(generator.stream(judge_messages(customer, clause, reply), max_new_tokens=JUDGE_TOKENS))
    found = SCORE.search(text)
    return int(found.group()) if found else None


def _mean(values: list[int | None]) -> float | None:
    scored = [v for v in values if v is not None]
    return round(statistics.mean(scored), 3) if scored else None


def run(options: SuiteOptions, config: Config) -> EvalOutcome:
    services = context_of(options, config).services
    generator = services.generator
    if generator is None:
        raise ConfigError("the LLM judge needs the local LLM ([llm] enabled = true)")
    limit = options.judge_cases or DEFAULT_CASES
    cases = load_cases(DEFAULT_SET)[:limit]
    use_llm = not options.no_llm
    made = []
    for case in cases:
        suggestion = run_to_end(
            services.suggester.suggest(
                (Segment("customer", 0.0, 0.0, case.say),), options=SuggestOptions(use_llm=use_llm)
            )
        )
        made.append(suggestion)
    rows: list[dict[str, Any]] = []
    for i, (case, suggestion) in enumerate(zip(cases, made, strict=True)):
        clause = suggestion.cites[0].text if suggestion.cites else ""
        control = made[(i + len(made) // 2) % len(made)].text
        rows.append(
            {
                "say": case.say,
                "suggestion": suggestion.text,
                "score": score(generator, case.say, clause, suggestion.text),
                "control": control,
                "control_score": score(generator, case.say, clause, control),
            }
        )
    scores = [r["score"] for r in rows]
    controls = [r["control_score"] for r in rows]
    mean, control_mean = _mean(scores), _mean(controls)
    parsed = sum(s is not None for s in scores + controls)
    data = {
        "suite": "judge",
        "judge": generator.name,
        "cases": len(rows),
        "mean": mean,
        "control_mean": control_mean,
        "gap": round(mean - control_mean, 3) if mean is not None and control_mean is not None else None,
        "parsed": rate(parsed, 2 * len(rows)),
        "rows": rows,
    }
    text = (
        f"LLM-as-judge ({generator.name}, reported separately; not a ground truth) on {len(rows)} suggestions:\n"
        f"  mean score {mean}  off-topic control {control_mean}  gap {data['gap']}  "
        f"answers parsed {data['parsed']}"
    )
    return EvalOutcome(text, data)


def metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    n = data["cases"]
    return [
        Metric("mean", "judge score 1-5 (LLM-as-judge)", data["mean"], n=n),
        Metric("control_mean", "judge score of off-topic controls", data["control_mean"], "lower", n=n),
        Metric("gap", "judge gap suggestion - control", data["gap"], n=n),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--judge-cases", type=int, help=f"suggestions the LLM judge scores (default {DEFAULT_CASES})"
    )


register_suite(
    "judge",
    run,
    help="the local LLM scores suggestions 1-5 against off-topic controls (reported separately; --judge)",
    add_arguments=add_arguments,
    metrics=metrics,
    default=False,
    quick=False,
)
