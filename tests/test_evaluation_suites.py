"""The harness's own suites (calls, scenarios, ASR, judge, ratings) on small inputs, and one real quick run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from copilot.config import Config
from copilot.errors import ConfigError
from copilot.evaluation import EvalContext, SuiteOptions
from copilot.evaluation.asr import cer, speakers_right
from copilot.evaluation.calls import load_calls
from copilot.evaluation.calls import run as run_calls
from copilot.evaluation.judge import score
from copilot.evaluation.metrics import percentile
from copilot.evaluation.ratings import ratings_summary
from copilot.evaluation.scenarios import load_scenario, load_scenarios, play, timed_segments
from copilot.judgement import RuleEngine
from copilot.qa.store import Rating
from copilot.suggest.engine import Suggester
from copilot.types import Segment
from tests.fakes_engines import FakeEngines, fake_engines
from tests.fakes_llm import ScriptedGenerator

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def engines() -> FakeEngines:
    return fake_engines()


# --- calls ------------------------------------------------------------------------------------------


def test_calls_from_transcripts_get_the_labelled_verdicts(shared_dir: Path) -> None:
    calls = {c.name: c for c in load_calls()}
    assert set(calls) >= {"good_call", "bad_call"}
    assert not any(v is False for v in calls["good_call"].checks.values())  # pass, or unknown (never owed)
    assert {k for k, v in calls["bad_call"].checks.items() if not v} >= {
        "greeting",
        "forbidden",
        "apology",
        "closing",
        "interruption",
    }
    outcome = run_calls(SuiteOptions(quick=True), Config())
    part = outcome.data["transcript"]
    assert part["verdicts"] == sum(len(c.checks) for c in calls.values())
    assert outcome.data["audio"]["verdicts"] == 0  # --quick: no transcription
    assert part["accuracy"] == pytest.approx(1 - len(part["wrong"]) / part["verdicts"])


def test_a_wrong_label_shows_up_as_a_wrong_verdict(tmp_path: Path, shared_dir: Path) -> None:
    labels = tmp_path / "calls.yaml"
    call = shared_dir / "calls" / "bad_call.json"
    labels.write_text(
        f"- call: bad\n  transcript: {call}\n  checks: {{greeting: pass, closing: fail}}\n", encoding="utf-8"
    )
    outcome = run_calls(SuiteOptions(quick=True, calls_set=str(labels)), Config())
    assert outcome.data["transcript"]["accuracy"] == 0.5
    assert outcome.data["transcript"]["wrong"] == [
        {"call": "bad", "check": "greeting", "expected": True, "got": False}
    ]


def test_call_labels_must_be_pass_or_fail(tmp_path: Path) -> None:
    labels = tmp_path / "calls.yaml"
    labels.write_text("- call: x\n  transcript: x.json\n  checks: {greeting: maybe}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="pass or fail"):
        load_calls(labels)


# --- scenarios --------------------------------------------------------------------------------------


def test_every_scenario_in_the_repository_loads() -> None:
    scenarios = load_scenarios()
    assert len(scenarios) >= 5
    assert all(s.turns and s.title for s in scenarios)


def _scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_scenario_expectations_are_judged_turn_by_turn(tmp_path: Path, engines: FakeEngines) -> None:
    path = _scenario(
        tmp_path,
        """
name: t
turns:
  - agent: 喂，什么事？
    expect: [{flag: rude_opening}, {absent: any}]
  - customer: 我找你们那个姓刘的客服，上次就是她帮我弄的
    expect: [{clause: 遇到用户找其他客服时}, {absent: 姓刘}, {contains: 这句话不会出现}, {within_ms: 60000}]
  - agent: 这个不归我管，你自己去找厂家吧。
    overlap: 1.0
    expect: [{flag: buck_passing}, {absent: interruption}]
checks: {greeting: fail, closing: pass}
""",
    )
    outcomes = play(load_scenario(path), engines, use_llm=False)
    verdicts = {(o.turn, o.expectation): o.ok for o in outcomes}
    assert verdicts == {
        (1, "flag: rude_opening"): True,
        (1, "absent: any"): False,  # the rude opening is a flag
        (2, "clause: 遇到用户找其他客服时"): True,
        (2, "absent: 姓刘"): True,
        (2, "contains: 这句话不会出现"): False,
        (2, "within_ms: 60000.0"): True,
        (3, "flag: buck_passing"): True,
        (3, "absent: interruption"): False,  # the agent started 1 s before the customer finished
        (0, "check greeting: fail"): True,
        (0, "check closing: pass"): False,
    }
    untimed = play(load_scenario(path), engines, use_llm=False, timing=False)  # --quick: no timing verdicts
    assert [o.expectation for o in untimed] == [
        o.expectation for o in outcomes if "within_ms" not in o.expectation
    ]


def test_scenario_turns_are_timed_like_speech_with_pauses_and_overlaps(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path,
        "turns:\n  - agent: 一二三四五六七八\n  - customer: 好\n    pause: 10\n  - agent: 一二三四\n    overlap: 0.5\n",
    )
    first, second, third = timed_segments(load_scenario(path).turns)
    assert (first.start, first.end) == (0.0, 2.0)  # 8 characters at 4 a second
    assert second.start == pytest.approx(2.0 + 0.6 + 10)
    assert third.start == pytest.approx(second.end - 0.5)


@pytest.mark.parametrize(
    ("turn", "message"),
    [
        ("- agent: 你好\n    expect: [{clause: x}]", "agent turns take"),
        ("- customer: 你好\n    expect: [{flag: forbidden}]", "customer turns take"),
        ("- customer: 你好\n    expect: [{within_ms: -1}]", "positive"),
        ("- agent: 你好\n    customer: 你好", "exactly one"),
        ("- agent: 你好\n    expect: [{flag: a, absent: b}]", "one 'kind: value' pair"),
    ],
)
def test_scenario_mistakes_are_reported_with_the_turn(tmp_path: Path, turn: str, message: str) -> None:
    path = _scenario(tmp_path, f"turns:\n  {turn}\n")
    with pytest.raises(ConfigError, match=message):
        load_scenario(path)


# --- ASR, latency, judge, ratings -------------------------------------------------------------------


def test_cer_uses_the_stated_normalisation() -> None:
    assert cer(["我有80块钱。"], ["我有八十块钱"]) == 0.0  # digits and punctuation normalised
    assert cer(["後來"], ["后来"]) == 0.0  # Traditional -> Simplified
    assert cer(["换一首歌"], ["换一首"]) == pytest.approx(0.25)


def test_speakers_right_matches_each_segment_to_the_utterance_it_overlaps_most() -> None:
    script = [
        {"role": "agent", "start": 0.0, "end": 2.0, "text": "您好"},
        {"role": "customer", "start": 2.5, "end": 5.0, "text": "坏了"},
    ]
    segments = (
        Segment("agent", 0.1, 1.9, "您好"),
        Segment("agent", 2.6, 4.0, "坏了"),  # wrong speaker
        Segment("customer", 9.0, 10.0, "嗯"),  # overlaps nothing: not counted
    )
    assert speakers_right(segments, script) == (1, 2)


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    assert percentile([float(v) for v in range(1, 101)], 0.95) == 95.0


def test_judge_reads_the_first_score_and_says_when_there_is_none() -> None:
    generator = ScriptedGenerator(["4分", "无法判断"])
    assert score(generator, "冰箱坏了", "条款", "非常抱歉") == 4
    assert score(generator, "冰箱坏了", "条款", "非常抱歉") is None
    assert "冰箱坏了" in generator.calls[0][-1].content


def test_judge_suite_scores_suggestions_against_controls(engines: FakeEngines) -> None:
    from copilot.evaluation.judge import run as run_judge

    @dataclass
    class JudgeServices:
        suggester: Suggester
        rules: RuleEngine
        generator: ScriptedGenerator

    services = JudgeServices(engines.suggester, engines.rules, ScriptedGenerator(["5", "2"] * 4))
    context = EvalContext(Config(), services=services)  # type: ignore[arg-type]
    outcome = run_judge(SuiteOptions(context=context, judge_cases=4, no_llm=True), Config())
    assert outcome.data["cases"] == 4
    assert outcome.data["mean"] == 5 and outcome.data["control_mean"] == 2 and outcome.data["gap"] == 3
    assert [r["control"] for r in outcome.data["rows"]][:2] == [
        r["suggestion"] for r in outcome.data["rows"]
    ][2:]


def test_ratings_are_counted_with_the_most_disliked_suggestions() -> None:
    ratings = [Rating("a", "good"), Rating("b", "bad"), Rating("b", "bad"), Rating("c", "bad")]
    summary = ratings_summary(ratings)
    assert (summary["good"], summary["bad"], summary["good_rate"]) == (1, 3, 0.25)
    assert summary["most_disliked"][0] == ("b", 2)
    assert ratings_summary([])["good_rate"] is None


# --- one real run -----------------------------------------------------------------------------------


@pytest.mark.real
def test_quick_run_of_every_suite_reports_each_metric_and_holds_the_floors(
    installed_models: None, shared_dir: Path, tmp_path: Path
) -> None:
    """``copilot eval --quick --json --check-floors`` with the real models: what CI runs."""
    env = {**os.environ, "COPILOT_DB": f"sqlite:///{tmp_path / 'eval.db'}"}
    env.pop("COPILOT_CONFIG", None)
    out = tmp_path / "result.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "copilot.commands.cli",
            "eval",
            "--quick",
            "--json",
            "--check-floors",
            "--out",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result == json.loads(out.read_text(encoding="utf-8"))
    ran = result["runs"]["default"]
    assert set(ran) == {"retrieval", "flags", "suggestions", "ratings", "calls", "asr", "scenarios"}
    assert not any(suite["error"] for suite in ran.values())
    keys = {(row["suite"], row["key"]) for row in result["table"]}
    for wanted in [
        ("retrieval", "recall@3"),
        ("retrieval", "mrr"),
        ("flags", "precision"),
        ("flags", "recall"),
        ("suggestions", "relevant"),
        ("suggestions", "compliant"),
        ("calls", "checklist_accuracy"),
        ("asr", "cer_clips"),
        ("scenarios", "expectations_met"),
        ("ratings", "good_rate"),
    ]:
        assert wanted in keys, wanted
    for row in result["table"]:
        value = row["values"]["default"]
        if row["unit"] == "" and value is not None and row["key"] != "cer_clips":
            assert 0.0 <= value <= 1.0, row
    assert ran["suggestions"]["data"]["llm"] == ""  # quick: scripts only
    assert result["floors"] == []
    from copilot.qa.store import Store

    with Store.open(env["COPILOT_DB"]) as store:
        assert {r.suite for r in store.eval_runs()} >= {"retrieval", "flags", "calls", "asr", "scenarios"}
