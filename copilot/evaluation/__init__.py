"""The trainers' harness: a small registry of evaluation suites behind ``copilot eval [SUITE...]``.

May import every stage package and ``session``; only ``ui`` and ``commands`` import it.

A suite is a function ``run(args, config) -> EvalOutcome``; it registers itself with
:func:`register_suite` when its module is imported. To add a suite, write the module and append
its name to :data:`SUITE_MODULES` (a one-line change). A suite may also give ``metrics``: a function
from its ``data`` to the :class:`Metric` rows of the harness table (the harness has adapters for the
suites that predate it, see :mod:`copilot.evaluation.harness`).

Suites share one :class:`EvalContext` per configuration (``args.eval_context``): the engines of
:class:`~copilot.session.engines.Services`, loaded once, and the transcripts already made from audio.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from copilot.config import Config

if TYPE_CHECKING:
    from copilot.session.engines import Services
    from copilot.types import Transcript

# Modules that call register_suite() on import, in the order `copilot eval` runs and lists them.
SUITE_MODULES: tuple[str, ...] = (
    "copilot.evaluation.retrieval",
    "copilot.evaluation.adapters",  # retrieval on the held-out set
    "copilot.evaluation.flags",
    "copilot.evaluation.suggestions",
    "copilot.evaluation.realsuggest",  # real customer turns (../shared/realdata), needs the data
    "copilot.evaluation.ratings",
    "copilot.evaluation.calls",
    "copilot.evaluation.asr",
    "copilot.evaluation.latency",
    "copilot.evaluation.scenarios",
    "copilot.evaluation.judge",  # only when asked for (--judge): reported separately
    "copilot.evaluation.realcalls",  # only when named: real calls of ../shared/realdata vs eval/realdata labels
)

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class EvalOutcome:
    """What a suite measured: a table for people and the same numbers as JSON."""

    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    """One row of the harness table for one configuration."""

    key: str  # stable name used by eval/floors.toml and the stored runs, e.g. "recall@3", "cer_clips"
    label: str  # what the table shows
    value: float | None  # None: not measured in this run (e.g. no ratings yet, LLM disabled)
    better: Better = "higher"
    unit: str = ""  # "", "ms", "s" or "n" (a count)
    n: int | None = None  # how many items the number rests on


@dataclass(frozen=True)
class SuiteOptions:
    """How a suite is asked to run: built from ``copilot eval``'s flags by the CLI and directly by the app.

    Empty strings and tuples mean "the suite's own default".
    """

    quick: bool = False  # CI-sized: each suite shrinks itself (fewer items, no LLM where it would dominate)
    no_llm: bool = False  # suggestion suites: handbook scripts only
    set_path: str = ""  # --set: the labelled set of retrieval / flags / suggestions
    calls_set: str = ""  # --calls-set: the labelled calls of the calls suite
    scenarios: str = ""  # --scenarios: a scenario file or folder
    modes: tuple[str, ...] = ()  # retrieval modes to compare
    playbook: str = ""  # flags: a playbook other than the configured one
    semantic: bool = False  # flags: also the embedding operator
    judge_cases: int | None = None  # judge: how many suggestions the LLM scores
    from_jsonl: str = ""  # realsuggest: score `copilot suggest --file --json` output instead of running it
    search_jsonl: str = ""  # realsuggest: score `copilot search --file --json` output (retrieval) instead
    dump: str = ""  # realsuggest: write the suggestions with their customer turns here, for reading
    context: EvalContext | None = field(default=None, compare=False)  # engines shared by one run's suites

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SuiteOptions:
        """The CLI's parsed flags (each suite's own flags included) as options."""
        return cls(
            quick=bool(getattr(args, "quick", False)),
            no_llm=bool(getattr(args, "no_llm", False)),
            set_path=getattr(args, "set", None) or "",
            calls_set=getattr(args, "calls_set", None) or "",
            scenarios=getattr(args, "scenarios", None) or "",
            modes=tuple(getattr(args, "modes", None) or ()),
            playbook=getattr(args, "playbook", None) or "",
            semantic=bool(getattr(args, "semantic", False)),
            judge_cases=getattr(args, "judge_cases", None),
            from_jsonl=getattr(args, "from_jsonl", None) or "",
            search_jsonl=getattr(args, "search_jsonl", None) or "",
            dump=getattr(args, "dump", None) or "",
        )


SuiteRun = Callable[["SuiteOptions", Config], EvalOutcome]
AddArguments = Callable[[argparse.ArgumentParser], None]
MetricsOf = Callable[[dict[str, Any], Config], list[Metric]]


@dataclass(frozen=True)
class Suite:
    name: str
    help: str
    run: SuiteRun
    add_arguments: AddArguments | None = None
    metrics: MetricsOf | None = None  # None: the harness's adapter for the suite, if any
    default: bool = True  # run by a bare `copilot eval` (False: only when named, e.g. the LLM judge)
    quick: bool = True  # part of `copilot eval --quick` (suites read args.quick to shrink themselves)


_SUITES: dict[str, Suite] = {}


def register_suite(
    name: str,
    run: SuiteRun,
    *,
    help: str,
    add_arguments: AddArguments | None = None,
    metrics: MetricsOf | None = None,
    default: bool = True,
    quick: bool = True,
) -> None:
    """Make ``copilot eval NAME`` run ``run``; ``add_arguments`` adds the suite's own options."""
    _SUITES[name] = Suite(name, help, run, add_arguments, metrics, default, quick)


def suites() -> dict[str, Suite]:
    for module in SUITE_MODULES:
        importlib.import_module(module)
    return dict(_SUITES)


class EvalContext:
    """What the suites of one configuration share: engines loaded once, transcripts made once."""

    def __init__(self, config: Config, services: Services | None = None) -> None:
        self.config = config
        self._services = services
        self._transcripts: dict[str, Transcript] = {}

    @property
    def services(self) -> Services:
        if self._services is None:
            from copilot.session.engines import Services

            self._services = Services(self.config)
        return self._services

    def transcript(self, path: Path) -> Transcript:
        """The offline transcript of a recording with this configuration's ASR (cached per run)."""
        key = str(path.resolve())
        if key not in self._transcripts:
            from copilot.qa.calls import load_call

            self._transcripts[key] = load_call(path, self.services)
        return self._transcripts[key]


def context_of(options: SuiteOptions, config: Config) -> EvalContext:
    """The run's shared context, or a fresh one when a suite runs on its own (tests, the app)."""
    context = options.context
    if context is not None and context.config == config:
        return context
    return EvalContext(config)


def rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None
