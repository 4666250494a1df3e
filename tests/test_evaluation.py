"""The evaluation harness with fake suites: table, comparison, floors, stored runs, the CLI around them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from copilot.commands.cli import main
from copilot.config import Config, RetrievalConfig
from copilot.errors import ConfigError, KnowledgeError
from copilot.evaluation import EvalContext, EvalOutcome, Metric, Suite, SuiteOptions, context_of
from copilot.evaluation.harness import (
    ConfigRun,
    Floor,
    check_floors,
    load_floors,
    render_history,
    render_table,
    run_suites,
    table_rows,
)
from copilot.qa.store import EvalRun, Store

# --- fake suites -----------------------------------------------------------------------------------

MODE_QUALITY = {"hybrid": 0.8, "dense": 0.7, "bm25": 0.5}  # what the fake "retrieval" measures per mode


def fake_retrieval(options: SuiteOptions, config: Config) -> EvalOutcome:
    recall = MODE_QUALITY[config.retrieval.mode]
    if options.quick:
        recall -= 0.1  # a smaller set measures a different number: proves options.quick reached the suite
    return EvalOutcome(f"fake retrieval {recall}", {"recall": recall, "latency": 100.0 * recall})


def fake_retrieval_metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    return [
        Metric("recall@3", "recall@3", data["recall"], n=10),
        Metric("p50_ms", "query p50", data["latency"], "lower", "ms", 10),
    ]


def broken(options: SuiteOptions, config: Config) -> EvalOutcome:
    raise KnowledgeError("the index is missing")


def interrupted(options: SuiteOptions, config: Config) -> EvalOutcome:
    raise KeyboardInterrupt


def fake_counts(options: SuiteOptions, config: Config) -> EvalOutcome:
    return EvalOutcome("counts", {"hits": 3})


FAKES = {
    "fakeret": Suite("fakeret", "fake retrieval", fake_retrieval, metrics=fake_retrieval_metrics),
    "broken": Suite("broken", "always fails", broken, metrics=lambda data, config: []),
    "counts": Suite(
        "counts", "count", fake_counts, metrics=lambda d, c: [Metric("hits", "hits", d["hits"], unit="n")]
    ),
    "slow": Suite("slow", "not in quick", fake_counts, quick=False, metrics=lambda d, c: []),
    "interrupted": Suite("interrupted", "Ctrl-C", interrupted, default=False),
}

DENSE = dataclasses.replace(Config(), retrieval=RetrievalConfig(mode="dense"))


def _args(**values: Any) -> SuiteOptions:
    return SuiteOptions(**values)


def _runs(quick: bool = False) -> list[ConfigRun]:
    chosen = [FAKES["fakeret"], FAKES["counts"]]
    return [
        run_suites(chosen, _args(quick=quick), Config(), label="hybrid"),
        run_suites(chosen, _args(quick=quick), DENSE, label="dense"),
    ]


# --- running and the table ---------------------------------------------------------------------------


def test_a_failing_suite_is_reported_and_the_others_still_run() -> None:
    run = run_suites([FAKES["broken"], FAKES["counts"]], _args(), Config())
    failed, counted = run.results
    assert failed.error == "the index is missing" and failed.exit_code == KnowledgeError.exit_code
    assert counted.metrics[0].value == 3
    rows = table_rows([run])
    assert rows[0].suite == "broken" and rows[0].error
    assert "failed: the index is missing" in render_table([run], rows)


def test_quick_preparation_applies_only_to_quick_runs_and_reaches_the_suite() -> None:
    seen: list[str] = []

    def prepare(name: str, options: SuiteOptions, config: Config) -> SuiteOptions:
        seen.append(name)
        return dataclasses.replace(options, modes=("prepared",))

    run_suites([FAKES["counts"]], _args(), Config(), prepare=prepare)
    assert seen == []
    quick = _args(quick=True)
    run = run_suites([FAKES["fakeret"]], quick, Config(), prepare=prepare)
    assert seen == ["fakeret"] and quick.modes == ()  # the caller's options are not changed
    assert run.results[0].metrics[0].value == pytest.approx(MODE_QUALITY["hybrid"] - 0.1)


def test_rows_align_two_configurations_and_say_which_is_better() -> None:
    rows = {r.key: r for r in table_rows(_runs())}
    recall, latency, hits = rows["recall@3"], rows["p50_ms"], rows["hits"]
    assert recall.values == (0.8, 0.7)
    assert recall.diff == pytest.approx(-0.1) and recall.verdict == "worse"
    assert latency.diff == pytest.approx(-10.0) and latency.verdict == "better"  # lower is better
    assert hits.verdict == "same"


def test_a_metric_missing_in_one_configuration_has_no_difference() -> None:
    one = run_suites([FAKES["fakeret"]], _args(), Config(), label="a")
    two = run_suites([FAKES["counts"]], _args(), Config(), label="b")
    rows = {r.key: r for r in table_rows([one, two])}
    assert rows["recall@3"].values == (0.8, None) and rows["recall@3"].diff is None
    assert rows["hits"].values == (None, 3)


def test_the_comparison_table_shows_both_configurations_and_the_differences() -> None:
    runs = _runs()
    text = render_table(runs, table_rows(runs))
    header, _rule, *lines = text.splitlines()
    assert "hybrid" in header and "dense" in header and "difference" in header
    recall = next(line for line in lines if "recall@3" in line)
    assert "0.800" in recall and "0.700" in recall and "-0.100 worse" in recall
    latency = next(line for line in lines if "query p50" in line)
    assert "80 ms" in latency and "70 ms" in latency and "better" in latency


# --- floors -----------------------------------------------------------------------------------------


def test_floors_catch_low_high_and_missing_metrics_and_skip_suites_not_run() -> None:
    run = run_suites([FAKES["fakeret"], FAKES["broken"]], _args(), Config(), label="cfg")
    floors = [
        Floor("fakeret", "recall@3", minimum=0.75),  # 0.8: fine
        Floor("fakeret", "p50_ms", maximum=50.0),  # 80 ms: too slow
        Floor("fakeret", "mrr", minimum=0.1),  # not measured: a renamed metric must not pass silently
        Floor("broken", "anything", minimum=0.0),  # the suite failed
        Floor("counts", "hits", minimum=100),  # not run here: skipped
    ]
    failures = check_floors(run, floors)
    assert [(f.suite, f.key) for f in failures] == [
        ("fakeret", "p50_ms"),
        ("fakeret", "mrr"),
        ("broken", "anything"),
    ]
    assert "not measured" in failures[1].message()
    text = render_table([run], table_rows([run]), failures)
    assert "80 ms!" in text and "below the floor" in text


def test_load_floors_reads_minimums_and_maximums(tmp_path: Path) -> None:
    path = tmp_path / "floors.toml"
    path.write_text("[flags]\nprecision = 0.9\n[asr]\ncer_clips = { max = 0.3 }\n", encoding="utf-8")
    assert load_floors(path) == [
        Floor("flags", "precision", minimum=0.9),
        Floor("asr", "cer_clips", maximum=0.3),
    ]
    path.write_text("[flags]\nprecision = 'high'\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_floors(path)


def test_the_repository_floors_name_metrics_the_suites_report() -> None:
    from copilot.evaluation import suites
    from copilot.evaluation.adapters import LEGACY_METRICS

    known = suites()
    floors = load_floors()
    assert floors
    for floor in floors:
        assert floor.suite in known, floor
        assert known[floor.suite].quick, f"{floor.suite} is floored but not part of --quick"
        assert known[floor.suite].metrics or floor.suite in LEGACY_METRICS


# --- history ----------------------------------------------------------------------------------------


def test_history_lists_recent_runs_per_suite() -> None:
    with Store.open("sqlite://") as store:
        for recall in (0.5, 0.6, 0.7):
            store.record_eval_run(
                EvalRun("fakeret", {"recall@3": recall}, config_hash="abc12345xyz", note="x")
            )
        text = render_history({"fakeret": store.eval_runs("fakeret"), "other": []}, last=2)
    assert "fakeret (3 stored, last 2)" in text
    assert "recall@3=0.600" in text and "recall@3=0.700" in text and "0.500" not in text
    assert "other" not in text


# --- the CLI with fake suites -------------------------------------------------------------------------


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import copilot.commands.evaluate as command

    monkeypatch.setattr(command, "suites", lambda: dict(FAKES))
    monkeypatch.setenv("COPILOT_DB", f"sqlite:///{tmp_path / 'eval.db'}")
    monkeypatch.delenv("COPILOT_CONFIG", raising=False)
    (tmp_path / "dense.toml").write_text('[retrieval]\nmode = "dense"\n', encoding="utf-8")
    return tmp_path


def test_cli_compares_two_configurations_writes_the_result_and_stores_the_runs(
    fake_cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = fake_cli / "result.json"
    code = main(
        [
            "eval",
            "fakeret",
            "counts",
            "--config",
            "default",
            "--config",
            str(fake_cli / "dense.toml"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "default" in printed and "dense" in printed and "worse" in printed
    result = json.loads(out.read_text(encoding="utf-8"))
    recall = next(r for r in result["table"] if r["key"] == "recall@3")
    assert recall["values"] == {"default": 0.8, "dense": 0.7} and recall["verdict"] == "worse"
    assert [c["label"] for c in result["configs"]] == ["default", "dense"]
    assert result["configs"][0]["config_hash"] != result["configs"][1]["config_hash"]
    with Store.open() as store:
        assert len(store.eval_runs("fakeret")) == 2 and len(store.eval_runs("counts")) == 2
    assert main(["eval", "--history"]) == 0
    assert "fakeret (2 stored" in capsys.readouterr().out


def test_cli_quick_skips_slow_suites_and_check_floors_fails_the_build(
    fake_cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    floors = fake_cli / "floors.toml"
    floors.write_text("[fakeret]\n'recall@3' = 0.75\n", encoding="utf-8")
    args = ["eval", "fakeret", "--quick", "--check-floors", "--floors", str(floors), "--no-store", "--json"]
    code = main([*args, "--out", str(fake_cli / "r.json")])
    result = json.loads(capsys.readouterr().out)
    assert code == 1  # quick measures 0.7 < 0.75
    assert result["floors"][0]["key"] == "recall@3" and result["floors"][0]["value"] == pytest.approx(0.7)
    floors.write_text("[fakeret]\n'recall@3' = 0.65\n", encoding="utf-8")
    assert main([*args, "--out", str(fake_cli / "r.json")]) == 0
    capsys.readouterr()
    assert (
        main(["eval", "--quick", "--no-store", "--json", "--out", str(fake_cli / "r.json")])
        == KnowledgeError.exit_code
    )
    ran = json.loads(capsys.readouterr().out)["runs"]["default"]
    assert "slow" not in ran and set(ran) == {"fakeret", "broken", "counts"}


def test_cli_one_suite_keeps_its_own_json_and_report(
    fake_cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "counts", "--json", "--no-store", "--out", str(fake_cli / "r.json")]) == 0
    assert json.loads(capsys.readouterr().out) == {"hits": 3, "metrics": {"hits": 3}}
    assert main(["eval", "counts", "--no-store", "--out", str(fake_cli / "r.json")]) == 0
    assert capsys.readouterr().out.startswith("counts\n")


def test_an_interrupted_run_leaves_what_it_measured(fake_cli: Path) -> None:
    out = fake_cli / "r.json"
    assert main(["eval", "fakeret", "interrupted", "counts", "--no-store", "--out", str(out)]) == 130
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["complete"] is False and list(result["runs"]["default"]) == ["fakeret"]
    assert result["table"][0]["values"] == {"default": 0.8}


def test_cli_refuses_unknown_suites_and_a_set_for_several_suites(
    fake_cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "nope"]) == ConfigError.exit_code
    assert main(["eval", "fakeret", "counts", "--set", "x.yaml"]) == ConfigError.exit_code


# --- context ----------------------------------------------------------------------------------------


def test_suites_of_one_configuration_share_one_context() -> None:
    context = EvalContext(Config())
    args = _args(context=context)
    assert context_of(args, Config()) is context
    assert context_of(args, DENSE) is not context  # another configuration never borrows its engines
    assert context_of(_args(), Config()).config == Config()
