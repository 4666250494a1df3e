"""``copilot eval SUITE``: run one registered evaluation suite (see copilot/evaluation.py)."""

from __future__ import annotations

import argparse

from copilot.commands._common import config_from_args, print_json
from copilot.evaluation import suites


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a component on a labelled set (retrieval, ...)",
        description="Run an evaluation suite on its labelled set and print the measurements.",
    )
    suite_parsers = parser.add_subparsers(dest="suite", metavar="SUITE")
    suite_parsers.required = True
    for suite in suites().values():
        sub = suite_parsers.add_parser(suite.name, help=suite.help, description=suite.help)
        sub.add_argument("--json", action="store_true", help="print the measurements as one JSON object")
        if suite.add_arguments is not None:
            suite.add_arguments(sub)
        sub.set_defaults(func=_run, suite_run=suite.run)


def _run(args: argparse.Namespace) -> int:
    outcome = args.suite_run(args, config_from_args(args))
    if args.json:
        print_json(outcome.data)
    else:
        print(outcome.text)
    return 0
