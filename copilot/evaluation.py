"""A small registry of evaluation suites behind ``copilot eval SUITE``.

A suite is a function ``run(args, config) -> EvalOutcome``; it registers itself with
:func:`register_suite` when its module is imported. To add a suite, write the module and append
its name to :data:`SUITE_MODULES` (a one-line change).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from copilot.config import Config

# Modules that call register_suite() on import, in the order `copilot eval --help` lists them.
SUITE_MODULES: tuple[str, ...] = (
    "copilot.retrieval_eval",
    "copilot.rules.eval_suite",
    "copilot.suggest.evaluate",
)


@dataclass(frozen=True)
class EvalOutcome:
    """What a suite measured: a table for people and the same numbers as JSON."""

    text: str
    data: dict[str, Any] = field(default_factory=dict)


SuiteRun = Callable[[argparse.Namespace, Config], EvalOutcome]
AddArguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Suite:
    name: str
    help: str
    run: SuiteRun
    add_arguments: AddArguments | None = None


_SUITES: dict[str, Suite] = {}


def register_suite(name: str, run: SuiteRun, *, help: str, add_arguments: AddArguments | None = None) -> None:
    """Make ``copilot eval NAME`` run ``run``; ``add_arguments`` adds the suite's own options."""
    _SUITES[name] = Suite(name, help, run, add_arguments)


def suites() -> dict[str, Suite]:
    for module in SUITE_MODULES:
        importlib.import_module(module)
    return dict(_SUITES)
