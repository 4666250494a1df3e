"""The evaluation harness: run suites for one or more configurations, one table, floors, history.

The pieces are plain functions over plain values so that they are tested with fake suites:

* :func:`run_suites` runs the chosen suites for one configuration (a failing suite is reported and the
  others go on) and returns a :class:`ConfigRun` with each suite's data and :class:`Metric` rows;
* :func:`table_rows` aligns the rows of several runs by (suite, metric) and computes the differences;
* :func:`render_table` prints them as one table; :func:`check_floors` compares a run with
  ``eval/floors.toml``; :func:`result_json` is the JSON result file;
* :func:`store_runs` / :func:`render_history` keep and show the trend in the database.
"""

from __future__ import annotations

import dataclasses
import math
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from copilot.config import REPO_DIR, Config
from copilot.errors import ConfigError, CopilotError
from copilot.evaluation import EvalContext, Metric, Suite, SuiteOptions

DEFAULT_FLOORS = REPO_DIR / "eval" / "floors.toml"
DIFF_EPSILON = 1e-9  # differences smaller than this are "same"
VALUE_DIGITS = 6  # metric values are rounded to this many decimals (no 0.7000000000000001)
HISTORY_METRICS = 6  # metrics shown per stored run in --history


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    seconds: float
    metrics: tuple[Metric, ...] = ()
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # the suite failed with this message; no metrics
    exit_code: int = 0  # the failure's CLI exit code (see copilot.errors)


@dataclass(frozen=True)
class ConfigRun:
    label: str  # "default" or the configuration file's stem
    config: Config
    results: tuple[SuiteResult, ...]
    path: str = ""  # the TOML file, "" for the built-in defaults


@dataclass(frozen=True)
class Row:
    suite: str
    key: str
    label: str
    better: str
    unit: str
    values: tuple[float | None, ...]  # one per configuration, in run order
    n: int | None = None
    error: str = ""

    @property
    def diff(self) -> float | None:
        """Last configuration minus the first (None when either is missing or there is one)."""
        if len(self.values) < 2 or self.values[0] is None or self.values[-1] is None:
            return None
        return self.values[-1] - self.values[0]

    @property
    def verdict(self) -> str:
        diff = self.diff
        if diff is None:
            return ""
        if abs(diff) <= DIFF_EPSILON:
            return "same"
        return "better" if (diff > 0) == (self.better == "higher") else "worse"


@dataclass(frozen=True)
class Floor:
    suite: str
    key: str
    minimum: float | None = None
    maximum: float | None = None

    def breach(self, value: float | None) -> str | None:
        """How ``value`` fails this floor ("not measured", "below" or "above"), None when it holds."""
        if value is None:
            return "not measured"
        if self.minimum is not None and value < self.minimum:
            return "below"
        if self.maximum is not None and value > self.maximum:
            return "above"
        return None


@dataclass(frozen=True)
class FloorFailure:
    config: str
    suite: str
    key: str
    value: float | None
    floor: Floor

    def message(self) -> str:
        bound = f">= {self.floor.minimum}" if self.floor.minimum is not None else f"<= {self.floor.maximum}"
        got = "not measured" if self.value is None else f"{self.value:g}"
        return f"[{self.config}] {self.suite} {self.key} = {got}, floor {bound}"


# --- running --------------------------------------------------------------------------------------

MetricsFor = Callable[[Suite], Callable[[dict[str, Any], Config], list[Metric]] | None]
PrepareOptions = Callable[[str, SuiteOptions, Config], SuiteOptions]


def finite_value(value: Any) -> float | None:
    """A metric value as stored and tabulated: a float rounded to VALUE_DIGITS, None when not finite."""
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    number = float(value)
    return round(number, VALUE_DIGITS) if math.isfinite(number) else None


def run_suites(
    chosen: Sequence[Suite],
    options: SuiteOptions,
    config: Config,
    *,
    label: str = "default",
    path: str = "",
    metrics_for: MetricsFor = lambda suite: suite.metrics,
    prepare: PrepareOptions | None = None,
    context: EvalContext | None = None,
    log: Callable[[str], None] = lambda _message: None,
    on_result: Callable[[ConfigRun], None] | None = None,
) -> ConfigRun:
    """Run ``chosen`` for one configuration; one suite's error does not stop the others.

    ``on_result`` sees the run so far after each suite (the CLI keeps the result file up to date, so a
    long run that is interrupted still leaves what it measured).
    """
    context = context or EvalContext(config)
    results: list[SuiteResult] = []
    for suite in chosen:
        own = dataclasses.replace(options, context=context)
        if prepare is not None and options.quick:
            own = prepare(suite.name, own, config)
        log(f"[{label}] {suite.name} ...")
        started = time.monotonic()
        try:
            outcome = suite.run(own, config)
        except CopilotError as e:
            results.append(
                SuiteResult(suite.name, time.monotonic() - started, error=str(e), exit_code=e.exit_code)
            )
            log(f"[{label}] {suite.name} failed: {e}")
        else:
            seconds = time.monotonic() - started
            extract = metrics_for(suite)
            rows = tuple(extract(outcome.data, config)) if extract else ()
            rows = tuple(Metric(m.key, m.label, finite_value(m.value), m.better, m.unit, m.n) for m in rows)
            results.append(SuiteResult(suite.name, seconds, rows, outcome.text, outcome.data))
            log(f"[{label}] {suite.name} done in {seconds:.0f} s")
        if on_result is not None:
            on_result(ConfigRun(label, config, tuple(results), path))
    return ConfigRun(label, config, tuple(results), path)


# --- the table ------------------------------------------------------------------------------------


def table_rows(runs: Sequence[ConfigRun]) -> list[Row]:
    """One row per (suite, metric) seen in any run, in first-seen order, values aligned by run."""
    order: list[tuple[str, str]] = []
    info: dict[tuple[str, str], Metric] = {}
    errors: dict[str, str] = {}
    for run in runs:
        for result in run.results:
            if result.error:
                errors.setdefault(result.suite, result.error)
                if (result.suite, "") not in order:
                    order.append((result.suite, ""))
            for m in result.metrics:
                if (result.suite, m.key) not in info:
                    order.append((result.suite, m.key))
                    info[(result.suite, m.key)] = m
    rows = []
    for suite, key in order:
        if not key:
            if not any(s == suite and k for s, k in order):
                rows.append(
                    Row(suite, "", "error", "higher", "", tuple(None for _ in runs), error=errors[suite])
                )
            continue
        values = []
        for run in runs:
            found = next((r for r in run.results if r.suite == suite), None)
            metric = next((m for m in found.metrics if m.key == key), None) if found else None
            values.append(metric.value if metric else None)
        m = info[(suite, key)]
        rows.append(Row(suite, key, m.label, m.better, m.unit, tuple(values), m.n, errors.get(suite, "")))
    return rows


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "n" or (float(value).is_integer() and abs(value) >= 2):
        return f"{value:.0f}"
    return f"{value:.3f}"


def format_diff(row: Row) -> str:
    diff = row.diff
    if diff is None:
        return ""
    if row.verdict == "same":
        return "same"
    sign = "+" if diff > 0 else "-"
    return f"{sign}{format_value(abs(diff), row.unit)} {row.verdict}"


def render_table(
    runs: Sequence[ConfigRun], rows: Sequence[Row], failures: Sequence[FloorFailure] = ()
) -> str:
    labels = [run.label for run in runs]
    failed = {(f.config, f.suite, f.key) for f in failures}
    width = max([len("metric"), *(len(r.label) for r in rows)])
    suite_w = max([len("suite"), *(len(r.suite) for r in rows)])
    col = max([12, *(len(label) for label in labels)])
    header = f"{'suite':{suite_w}}  {'metric':{width}}  " + "  ".join(f"{label:>{col}}" for label in labels)
    if len(runs) > 1:
        header += f"  {'difference':>18}"
    header += "     n"
    lines = [header, "-" * len(header)]
    last_suite = ""
    for row in rows:
        suite = row.suite if row.suite != last_suite else ""
        last_suite = row.suite
        if row.error and not row.key:
            lines.append(f"{suite:{suite_w}}  failed: {row.error}")
            continue
        cells = []
        for label, value in zip(labels, row.values, strict=True):
            mark = "!" if (label, row.suite, row.key) in failed else " "
            cells.append(f"{format_value(value, row.unit):>{col - 1}}{mark}")
        line = f"{suite:{suite_w}}  {row.label:{width}}  " + "  ".join(cells)
        if len(runs) > 1:
            line += f"  {format_diff(row):>18}"
        line += f"  {row.n if row.n is not None else '':>4}"
        lines.append(line.rstrip())
    seconds = "  ".join(
        f"{run.label}: " + ", ".join(f"{r.suite} {r.seconds:.0f}s" for r in run.results) for run in runs
    )
    lines += ["", f"time per suite: {seconds}"]
    if failures:
        lines.append("below the floor (marked !):")
        lines += [f"  {f.message()}" for f in failures]
    return "\n".join(lines)


# --- floors ----------------------------------------------------------------------------------------


def load_floors(path: Path = DEFAULT_FLOORS) -> list[Floor]:
    """``[suite] metric = minimum`` or ``metric = { max = ... }`` for lower-is-better metrics."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"floors file not found: {path}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from e
    floors = []
    for suite, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{suite}] must be a table of metric = floor")
        for key, bound in table.items():
            if isinstance(bound, bool):
                raise ConfigError(f"{path}: {suite}.{key} must be a number or {{ min/max = number }}")
            if isinstance(bound, int | float):
                floors.append(Floor(suite, key, minimum=float(bound)))
            elif isinstance(bound, dict) and set(bound) <= {"min", "max"} and bound:
                floors.append(
                    Floor(
                        suite,
                        key,
                        minimum=float(bound["min"]) if "min" in bound else None,
                        maximum=float(bound["max"]) if "max" in bound else None,
                    )
                )
            else:
                raise ConfigError(f"{path}: {suite}.{key} must be a number or {{ min/max = number }}")
    return floors


def check_floors(run: ConfigRun, floors: Sequence[Floor]) -> list[FloorFailure]:
    """Floors of the suites that ran: a metric below (or above) its bound, missing, or its suite failed."""
    failures = []
    by_suite = {r.suite: r for r in run.results}
    for floor in floors:
        result = by_suite.get(floor.suite)
        if result is None:
            continue  # the suite was not part of this run
        metric = next((m for m in result.metrics if m.key == floor.key), None)
        value = metric.value if metric else None
        if floor.breach(value) is not None:
            failures.append(FloorFailure(run.label, floor.suite, floor.key, value, floor))
    return failures


# --- results, store, history -----------------------------------------------------------------------


def _metric_dict(m: Metric) -> dict[str, Any]:
    return {"key": m.key, "label": m.label, "value": m.value, "better": m.better, "unit": m.unit, "n": m.n}


def result_json(
    runs: Sequence[ConfigRun],
    rows: Sequence[Row],
    *,
    quick: bool,
    failures: Sequence[FloorFailure] = (),
    complete: bool = True,
) -> dict[str, Any]:
    from copilot.qa.store import provenance

    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": complete,  # False while the run is still going (or was interrupted)
        "quick": quick,
        "configs": [
            {
                "label": run.label,
                "path": run.path,
                "config_hash": provenance(run.config).config_hash,
                "model_versions": provenance(run.config).model_versions,
            }
            for run in runs
        ],
        "table": [
            {
                "suite": r.suite,
                "key": r.key,
                "label": r.label,
                "better": r.better,
                "unit": r.unit,
                "n": r.n,
                "values": dict(zip([run.label for run in runs], r.values, strict=True)),
                **({"difference": r.diff, "verdict": r.verdict} if len(runs) > 1 else {}),
            }
            for r in rows
            if r.key
        ],
        "runs": {
            run.label: {
                r.suite: {
                    "seconds": round(r.seconds, 1),
                    "error": r.error,
                    "metrics": [_metric_dict(m) for m in r.metrics],
                    "data": r.data,
                }
                for r in run.results
            }
            for run in runs
        },
        "floors": [
            {"config": f.config, "suite": f.suite, "key": f.key, "value": f.value, "message": f.message()}
            for f in failures
        ],
    }


def write_result(result: dict[str, Any], path: Path) -> Path:
    import json
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def record_suite_run(store: Any, suite: str, metrics: Sequence[Metric], config: Config, note: str) -> int:
    """Store one suite's metric rows for one configuration: the one stored shape of an evaluation run."""
    from copilot.qa.store import EvalRun, provenance

    prov = provenance(config)
    return int(
        store.record_eval_run(
            EvalRun(
                suite=suite,
                metrics={m.key: m.value for m in metrics},
                config_hash=prov.config_hash,
                model_versions=dict(prov.model_versions),
                note=note,
            )
        )
    )


def store_runs(runs: Sequence[ConfigRun], *, quick: bool, store: Any) -> int:
    """One EvalRun per configuration and suite that produced metrics; returns how many were stored."""
    stored = 0
    for run in runs:
        for result in run.results:
            if result.error or not result.metrics:
                continue
            record_suite_run(
                store, result.suite, result.metrics, run.config, f"{run.label}{' quick' if quick else ''}"
            )
            stored += 1
    return stored


def render_history(runs_by_suite: dict[str, list[Any]], last: int) -> str:
    """Recent stored runs per suite, newest last, with their first few metrics."""
    lines = []
    for suite, runs in runs_by_suite.items():
        if not runs:
            continue
        lines.append(f"{suite} ({len(runs)} stored, last {min(last, len(runs))}):")
        for run in runs[-last:]:
            when = run.created_at.strftime("%Y-%m-%d %H:%M") if run.created_at else "?"
            shown = list(run.metrics.items())[:HISTORY_METRICS]
            values = "  ".join(f"{k}={format_value(v, '')}" for k, v in shown)
            lines.append(f"  {when}  {run.config_hash[:8]:8}  {run.note:16}  {values}")
    return "\n".join(lines) if lines else "no stored evaluation runs yet"
