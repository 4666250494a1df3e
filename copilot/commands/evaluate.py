"""``copilot eval [SUITE...]``: run evaluation suites and print one table (see copilot/evaluation/harness.py).

    copilot eval                                   every default suite, default configuration
    copilot eval --quick --check-floors            CI sizes; exit 1 when a metric is below eval/floors.toml
    copilot eval retrieval suggestions --config default --config dense.toml    side by side, with differences
    copilot eval --history                         recent stored runs per suite

Naming one suite alone (``copilot eval retrieval``) prints that suite's own report, as before, followed by
the table; its ``--json`` is the suite's own object with a ``metrics`` entry added. Every run writes a JSON
result file and is stored in the database (``--no-store`` to skip) so trainers see the trend.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from copilot.commands._common import config_from_args, print_json
from copilot.config import Config, copilot_home, load_config, validate
from copilot.errors import ConfigError, StoreError
from copilot.evaluation import EvalContext, Suite, SuiteOptions, suites
from copilot.evaluation.adapters import LEGACY_METRICS, quick_options
from copilot.evaluation.harness import (
    DEFAULT_FLOORS,
    ConfigRun,
    check_floors,
    load_floors,
    render_history,
    render_table,
    result_json,
    run_suites,
    store_runs,
    table_rows,
    write_result,
)

BUILT_IN = "default"  # --config default: the built-in configuration (ignores $COPILOT_CONFIG)
HISTORY_RUNS = 5
RESULTS_DIR = "eval-results"  # under COPILOT_HOME


def register(subparsers: argparse._SubParsersAction) -> None:
    known = suites()
    parser = subparsers.add_parser(
        "eval",
        help="evaluate the copilot: retrieval, flags, suggestions, calls, ASR, latency, scenarios",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        conflict_handler="resolve",  # suites share option names such as --set
    )
    names = ", ".join(f"{s.name}{'' if s.default else ' (only when named)'}" for s in known.values())
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=f"suites to run (default: all): {names}")
    parser.add_argument(
        "--config",
        dest="configs",
        action="append",
        metavar="TOML",
        help="configuration to evaluate; give two (or more) to compare side by side ('default' = built-in)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI sizes: no LLM, no live replay, calls from transcripts, ASR on the 4 clips",
    )
    parser.add_argument("--check-floors", action="store_true", help="exit 1 when a metric is below its floor")
    parser.add_argument(
        "--floors", default=str(DEFAULT_FLOORS), help="floors file (default: eval/floors.toml)"
    )
    parser.add_argument("--judge", action="store_true", help="also run the LLM-as-judge suite")
    parser.add_argument(
        "--details", action="store_true", help="print each suite's own report above the table"
    )
    parser.add_argument("--history", action="store_true", help="print recent stored runs per suite and exit")
    parser.add_argument("--last", type=int, default=HISTORY_RUNS, help="runs per suite in --history")
    parser.add_argument("--out", help="JSON result file (default: $COPILOT_HOME/eval-results/<time>.json)")
    parser.add_argument("--no-store", action="store_true", help="do not record the run in the database")
    for suite in known.values():
        if suite.add_arguments is not None:
            group = parser.add_argument_group(f"{suite.name} options")
            suite.add_arguments(cast(argparse.ArgumentParser, group))
    parser.add_argument(
        "--set", help="the labelled set of the one suite named (retrieval, flags, suggestions)"
    )
    parser.set_defaults(func=_run)


def chosen_suites(known: dict[str, Suite], names: list[str], *, quick: bool, judge: bool) -> list[Suite]:
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown suite(s): {', '.join(unknown)} (known: {', '.join(known)})")
    if names:
        picked = [known[n] for n in dict.fromkeys(names)]
    else:
        picked = [s for s in known.values() if s.default and (s.quick or not quick)]
    if judge and "judge" in known and known["judge"] not in picked:
        picked.append(known["judge"])
    return picked


def configurations(args: argparse.Namespace) -> list[tuple[str, str, Config]]:
    """(label, path, config) per --config; the usual configuration when none is given."""
    if not args.configs:
        return [
            (
                BUILT_IN if not getattr(args, "config", None) else Path(args.config).stem,
                "",
                config_from_args(args),
            )
        ]
    out: list[tuple[str, str, Config]] = []
    for given in args.configs:
        if given == BUILT_IN:
            label, config = BUILT_IN, validate(Config())
        else:
            label, config = Path(given).stem, load_config(given)
        while label in {o[0] for o in out}:
            label += "'"
        out.append((label, "" if given == BUILT_IN else given, config))
    return out


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _history(args: argparse.Namespace, known: dict[str, Suite]) -> int:
    from copilot.qa.store import Store

    config = config_from_args(args)
    names = args.suites or list(known)
    with Store.open(config=config.store) as store:
        runs = {name: store.eval_runs(name) for name in names}
    print(render_history(runs, args.last))
    return 0


def _store(runs: list[ConfigRun], quick: bool) -> None:
    from copilot.qa.store import Store

    try:
        with Store.open(config=runs[0].config.store) as store:
            stored = store_runs(runs, quick=quick, store=store)
        _log(f"stored {stored} suite run(s) in {store.url}")
    except StoreError as e:  # the measurements are still printed and written
        _log(f"copilot: warning: the run was not stored: {e}")


def _run(args: argparse.Namespace) -> int:
    known = suites()
    if args.history:
        return _history(args, known)
    picked = chosen_suites(known, args.suites, quick=args.quick, judge=args.judge)
    if args.set and len(picked) != 1:
        raise ConfigError("--set gives the labelled set of one suite: name exactly one suite")
    floors = load_floors(Path(args.floors)) if args.check_floors else []
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_path = Path(args.out) if args.out else copilot_home() / RESULTS_DIR / f"{stamp}.json"
    runs: list[ConfigRun] = []

    def so_far(run: ConfigRun) -> None:  # the file holds what was measured even if the run is interrupted
        done = [*runs, run]
        write_result(result_json(done, table_rows(done), quick=args.quick, complete=False), out_path)

    for label, path, config in configurations(args):
        context = EvalContext(config)  # engines and transcripts shared by this configuration's suites
        runs.append(
            run_suites(
                picked,
                SuiteOptions.from_args(args),
                config,
                label=label,
                path=path,
                metrics_for=lambda suite: suite.metrics or LEGACY_METRICS.get(suite.name),
                prepare=quick_options,
                context=context,
                log=_log,
                on_result=so_far,
            )
        )
        del context  # free this configuration's models before loading the next one's
    rows = table_rows(runs)
    failures = [f for run in runs for f in check_floors(run, floors)]
    result = result_json(runs, rows, quick=args.quick, failures=failures)
    out = write_result(result, out_path)
    _log(f"results written to {out}")
    if not args.no_store:
        _store(runs, args.quick)

    single = len(picked) == 1 and len(runs) == 1 and not (args.quick or args.check_floors or args.judge)
    table = render_table(runs, rows, failures)
    first = runs[0].results[0] if single else None
    if args.json:
        if first is not None and not first.error:
            legacy: dict[str, Any] = {**first.data, "metrics": {m.key: m.value for m in first.metrics}}
            print_json(legacy)
        else:
            print_json(result)
    else:
        reports = [r.text for run in runs for r in run.results if r.text] if (single or args.details) else []
        print("\n\n".join([*reports, table]))
    return _exit_code(runs, failures, Path(args.floors).name)


def _exit_code(runs: list[ConfigRun], failures: list[Any], floors_file: str) -> int:
    errors = [r for run in runs for r in run.results if r.error]
    for r in errors:
        _log(f"copilot: error: suite {r.suite} failed: {r.error}")
    if failures:
        _log(f"copilot: {len(failures)} metric(s) outside their floor in {floors_file}")
    codes = [r.exit_code for r in errors]
    return max([*codes, 1 if failures else 0])
