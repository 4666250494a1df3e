"""``copilot eval flags``: precision / recall of the real-time flags on ``eval/flags.yaml``."""

from __future__ import annotations

import argparse
from pathlib import Path

from copilot.config import Config
from copilot.evaluation import EvalOutcome, SuiteOptions, register_suite
from copilot.evaluation.rules import DEFAULT_SET, FlagsReport, evaluate_flags, load_labelled
from copilot.judgement.engine import RuleEngine
from copilot.judgement.playbook import load_playbook


def render(report: FlagsReport, path: Path) -> str:
    s = report.summary()
    rows = [
        f"flags on {path.name}: {s['lines']} agent lines, {s['violations']} violations, {s['traps']} traps",
        f"  precision {s['precision']:.3f}   recall {s['recall']:.3f}   false hits on traps {s['trap_false_hits']}",
    ]
    rows += [f"  false positive: {fp['text']}  ({', '.join(fp['rules'])})" for fp in s["false_positives"]]
    rows += [f"  missed:         {text}" for text in s["false_negatives"]]
    return "\n".join(rows)


def run(options: SuiteOptions, config: Config) -> EvalOutcome:
    path = Path(options.set_path) if options.set_path else DEFAULT_SET
    embedder = None
    if options.semantic:
        from copilot.knowledge.embedding import load_embedder

        embedder = load_embedder(config.embedder)
    engine = RuleEngine(load_playbook(options.playbook or None), embedder=embedder)
    report = evaluate_flags(engine, load_labelled(path))
    return EvalOutcome(render(report, path), {"suite": "flags", "set": str(path), **report.summary()})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", help="labelled agent lines (default: eval/flags.yaml)")
    parser.add_argument("--playbook", help="playbook YAML (default: knowledge/playbook.yaml)")
    parser.add_argument("--semantic", action="store_true", help="also use the embedding operator")


register_suite(
    "flags",
    run,
    help="precision/recall of the playbook's real-time flags on labelled agent lines (eval/flags.yaml)",
    add_arguments=add_arguments,
)
