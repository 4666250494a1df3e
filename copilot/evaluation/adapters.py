"""The harness side of the suites that predate it, and the held-out, blind and off-topic retrieval suites.

* Metric adapters: the ``data`` of ``retrieval``, ``flags`` and ``suggestions`` turned into table rows,
  so those modules stay as they are.
* Quick sizes for them: :func:`quick_options` (``--quick``: the retrieval dev set in the configured mode only,
  suggestions without the LLM).
* ``retrieval_holdout``: the retrieval suite on ``eval/retrieval_holdout.yaml`` (not in ``--quick``).
* ``retrieval_blind``: the retrieval suite on ``eval/retrieval_blind.yaml``, written from the raw handbooks alone by
  readers who never saw the knowledge base or the other sets: how far retrieval generalises (not in ``--quick``).
* ``retrieval_blind_holdout``: the same, on ``eval/retrieval_blind_holdout.yaml``, written by two more such readers
  after retrieval was chosen and never tuned on: the held-out figure (not in ``--quick``).
* ``retrieval_offtopic``: the retrieval suite on ``eval/retrieval_offtopic.yaml``, lines nothing in the handbooks
  fits: how many get the "none" answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from copilot.config import REPO_DIR, Config
from copilot.evaluation import EvalOutcome, Metric, MetricsOf, SuiteOptions, rate, register_suite
from copilot.evaluation import (
    retrieval as retrieval_eval,  # registers `retrieval` before its held-out variant
)

EVAL_DIR = REPO_DIR / "eval"
OFFTOPIC_SET = EVAL_DIR / "retrieval_offtopic.yaml"
OTHER_MODE_KEYS = ("recall@3", "mrr")  # shown for the modes the configuration does not use


# --- metric adapters ---------------------------------------------------------------------------------


def retrieval_metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    modes: dict[str, dict[str, Any]] = data.get("modes", {})
    n = data.get("queries")
    rows: list[Metric] = []
    main = config.retrieval.mode
    if main in modes:
        m = modes[main]
        rows += [Metric(f"recall@{k}", f"recall@{k}", m[f"recall@{k}"], n=n) for k in (1, 3, 5)]
        rows += [
            Metric("mrr", "MRR", m["mrr"], n=n),
            Metric("false_none", "fitting queries answered none", m.get("false_none"), "lower", "n", n),
            Metric("p50_ms", "query p50", m["p50_ms"], "lower", "ms", n),
        ]
    for mode, m in modes.items():
        if mode != main:
            rows += [
                Metric(f"{key} ({mode})", f"{'MRR' if key == 'mrr' else key} ({mode})", m[key], n=n)
                for key in OTHER_MODE_KEYS
            ]
    return rows


def offtopic_metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    n = data.get("labelled_none")
    main = data.get("modes", {}).get(config.retrieval.mode, {})
    return [
        Metric("none_right", "off-topic lines answered none", rate(main.get("none_right", 0), n or 0), n=n)
    ]


def flags_metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    n = data.get("lines")
    return [
        Metric("precision", "flag precision", data["precision"], n=data.get("violations")),
        Metric("recall", "flag recall", data["recall"], n=data.get("violations")),
        Metric("trap_false_hits", "false flags on traps", data["trap_false_hits"], "lower", "n", n),
    ]


def suggestion_metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    n = data.get("cases")
    kept, replaced = data.get("llm_kept", 0), data.get("llm_replaced", 0)
    latency = data.get("latency_ms_p50", {})
    return [
        Metric("relevant", "relevant (cites the clause)", data["relevant"], n=n),
        Metric("compliant", "compliant (passes the rules)", data["compliant"], n=n),
        Metric("concise", "concise (<= 2 sentences)", data["concise"], n=n),
        Metric("llm_kept", "LLM rewrite kept", rate(kept, kept + replaced), n=kept + replaced),
        Metric("script_p50_ms", "script p50", latency.get("script"), "lower", "ms", n),
        Metric("first_token_p50_ms", "first LLM token p50", latency.get("first_token"), "lower", "ms", n),
        Metric("done_p50_ms", "suggestion done p50", latency.get("done"), "lower", "ms", n),
    ]


LEGACY_METRICS: dict[str, MetricsOf] = {
    "retrieval": retrieval_metrics,
    "flags": flags_metrics,
    "suggestions": suggestion_metrics,
}


def quick_options(name: str, options: SuiteOptions, config: Config) -> SuiteOptions:
    """A pre-existing suite's options at its CI size."""
    if (name == "retrieval" or name in RETRIEVAL_SETS) and not options.modes:
        return dataclasses.replace(options, modes=(config.retrieval.mode,))
    if name == "suggestions":
        return dataclasses.replace(options, no_llm=True)
    return options


# --- retrieval on the held-out and off-topic sets ----------------------------------------------------


def _on_set(suite: str, path: Path, *, main_mode_only: bool) -> Callable[[SuiteOptions, Config], EvalOutcome]:
    """The retrieval suite on another labelled set, reported under its own name."""

    def run(options: SuiteOptions, config: Config) -> EvalOutcome:
        own = dataclasses.replace(options, set_path=str(path))
        if main_mode_only:
            own = dataclasses.replace(own, modes=(config.retrieval.mode,))
        outcome = retrieval_eval.run(own, config)
        return EvalOutcome(outcome.text, {**outcome.data, "suite": suite})

    return run


# The retrieval suite on its other labelled sets (all modes, like the dev set; not in --quick): each suite
# reads eval/<its name>.yaml.
RETRIEVAL_SETS: dict[str, str] = {
    "retrieval_holdout": "the held-out set eval/retrieval_holdout.yaml (never used for tuning)",
    "retrieval_blind": "eval/retrieval_blind.yaml, written from the raw handbooks by readers who never saw the "
    "knowledge base or the other sets",
    "retrieval_blind_holdout": "eval/retrieval_blind_holdout.yaml, written like eval/retrieval_blind.yaml by two "
    "more readers and never tuned on",
}
for suite_name, about in RETRIEVAL_SETS.items():
    register_suite(
        suite_name,
        _on_set(suite_name, EVAL_DIR / f"{suite_name}.yaml", main_mode_only=False),
        help=f"the retrieval suite on {about}",
        metrics=retrieval_metrics,
        quick=False,
    )
register_suite(
    "retrieval_offtopic",
    _on_set("retrieval_offtopic", OFFTOPIC_SET, main_mode_only=True),
    help='lines nothing in the handbooks fits (eval/retrieval_offtopic.yaml): how many get the "none" answer',
    metrics=offtopic_metrics,
    quick=False,
)
