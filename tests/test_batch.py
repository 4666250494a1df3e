"""Batches on real files and a real SQLite database: bad files, reruns, SIGTERM, metadata, Ray."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from copilot.commands.review import add_batch_arguments, run_batch
from copilot.config import Config
from copilot.qa.batch import (
    BatchOptions,
    CallOutcome,
    PipelineReviewer,
    expand_inputs,
    run,
)
from copilot.qa.report.files import PARTIAL_PREFIX
from copilot.qa.store import ReviewFilter, Store
from tests.fakes_batch import ScriptedReviewer, write_call

REPO = Path(__file__).resolve().parent.parent
KILL_CALLS = 8  # calls in the batch that gets killed
KILL_DELAY = 0.6  # seconds per call there: slow enough to kill it midway
WAIT_LIMIT = 120.0  # seconds to wait for the killed batch to make progress (a busy machine is slow)


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COPILOT_DB", raising=False)
    return tmp_path / "home"


@pytest.fixture()
def calls_dir(tmp_path: Path, shared_dir: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("good_call", "bad_call"):
        shutil.copy(shared_dir / "calls" / f"{name}.json", folder / f"20240131_A017_repair_{name}.json")
    (folder / "20240131_B002_billing_broken.json").write_text('{"segments": [', encoding="utf-8")
    return folder


def _options(out: Path, **kwargs: object) -> BatchOptions:
    return BatchOptions(out_dir=out, progress=False, **kwargs)  # type: ignore[arg-type]


def _db_count(home: Path) -> int:
    with sqlite3.connect(home / "copilot.db") as conn:
        return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])


def test_batch_with_a_corrupt_file_then_rerun_skips_everything(
    home: Path, calls_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    reviewer = ScriptedReviewer()
    summary = run([str(calls_dir), str(tmp_path / "nope.json")], reviewer, _options(out), Config())
    by_status: dict[str, list[CallOutcome]] = {"reviewed": [], "skipped": [], "failed": []}
    for o in summary.outcomes:
        by_status[o.status].append(o)
    assert summary.reviewed == 2 and summary.failed == 2 and summary.exit_code == 1
    failed = {Path(o.file).name: o.reason for o in by_status["failed"]}
    assert "TranscriptError" in failed["20240131_B002_billing_broken.json"]
    assert "no such file" in failed["nope.json"]
    for o in by_status["reviewed"]:
        page = (out / o.report).read_text(encoding="utf-8")
        assert o.call in page and "data:image/png;base64," in page
        assert (out / o.report).with_suffix(".json").is_file()
    written = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert written["failed"] == 2 and written["exit_code"] == 1
    assert any("broken" in o["file"] and o["reason"] for o in written["outcomes"])
    dashboard = (out / "index.html").read_text(encoding="utf-8")
    assert "broken.json" in dashboard and "good_call" in dashboard
    assert (out / "reviews.csv").read_text(encoding="utf-8").count("\n") == 3  # header + 2 calls
    assert _db_count(home) == 2

    reviewer.calls = 0
    (out / by_status["reviewed"][0].report).unlink()  # a lost report is rewritten from the database
    again = run([str(calls_dir)], reviewer, _options(out), Config())
    assert reviewer.calls == 0  # nothing reviewed twice
    assert again.reviewed == 0 and again.skipped == 2 and again.failed == 1
    assert (out / by_status["reviewed"][0].report).is_file()
    assert _db_count(home) == 2

    forced = run([str(calls_dir)], reviewer, _options(out, force=True), Config())
    assert forced.reviewed == 2 and reviewer.calls == 3  # the broken one is tried again too
    assert _db_count(home) == 2  # replaced, not duplicated


def test_metadata_from_file_names_and_a_sidecar_file(home: Path, calls_dir: Path, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("agent,team\nA017,north\n", encoding="utf-8")
    (calls_dir / "20240131_A017_repair_bad_call.meta.json").write_text('{"agent": "A099"}', encoding="utf-8")
    run([str(calls_dir)], ScriptedReviewer(), _options(tmp_path / "out", meta_file=str(roster)), Config())
    with Store.open() as store:
        calls = {c.name: c.meta for c in store.search()}
    assert calls["good_call"].agent == "A017" and calls["good_call"].team == "north"
    assert calls["good_call"].queue == "repair" and calls["good_call"].date == "2024-01-31"
    assert calls["bad_call"].agent == "A099" and calls["bad_call"].team == ""  # the sidecar wins
    assert "A099" in (tmp_path / "out" / "index.html").read_text(encoding="utf-8")


def test_identical_content_under_two_names_is_reviewed_once(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "dups"
    folder.mkdir()
    write_call(folder / "a.json", "same", ["您好"], ["你好"])
    shutil.copy(folder / "a.json", folder / "b.json")
    summary = run([str(folder / "*.json")], ScriptedReviewer(), _options(tmp_path / "out"), Config())
    assert [o.status for o in summary.outcomes] == ["reviewed", "skipped"]
    assert "same content as" in summary.outcomes[1].reason
    assert _db_count(home) == 1


def test_expand_inputs_globs_folders_and_sidecars(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("a.json", "sub/b.wav", "sub/b.meta.json", "notes.txt"):
        (tmp_path / name).write_text("{}", encoding="utf-8")
    files, missing = expand_inputs([str(tmp_path), str(tmp_path / "**" / "*.json"), str(tmp_path / "*.mp3")])
    assert sorted(f.name for f in files) == ["a.json", "b.wav"]
    assert [p for p, _ in missing] == [str(tmp_path / "*.mp3")]


KILL_SCRIPT = """
import sys
from pathlib import Path
from copilot.qa.batch import BatchOptions, CallOutcome, run
from copilot.config import Config
from tests.fakes_batch import ScriptedReviewer

summary = run([sys.argv[1]], ScriptedReviewer(delay=float(sys.argv[3])), BatchOptions(out_dir=Path(sys.argv[2]), progress=False), Config())
sys.exit(summary.exit_code)
"""


def test_sigterm_midway_then_rerun_completes_without_duplicates(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(KILL_CALLS):
        write_call(
            folder / f"call{i:02d}.json", f"call{i:02d}", [f"您好，我是{i}号", "请问还有其他问题吗"], ["你好"]
        )
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(folder), str(out), str(KILL_DELAY)],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + WAIT_LIMIT
    stored = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            stored = _db_count(home)
        except sqlite3.Error:  # database or table not created yet
            stored = 0
        if stored >= 2:
            break
        time.sleep(0.1)
    assert process.poll() is None, "the batch finished before it could be killed"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=WAIT_LIMIT)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    kept = _db_count(home)
    assert 2 <= kept < KILL_CALLS
    summary = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert summary["interrupted"] == "SIGTERM" and summary["reviewed"] == kept
    assert not list(out.rglob(PARTIAL_PREFIX + "*"))
    assert len(list((out / "calls").glob("*.html"))) == kept  # a report for every stored call, no more

    rerun = run([str(folder)], ScriptedReviewer(), _options(out), Config())
    assert rerun.exit_code == 0 and rerun.skipped == kept and rerun.reviewed == KILL_CALLS - kept
    with sqlite3.connect(home / "copilot.db") as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM calls ORDER BY name")]
    assert names == [f"call{i:02d}" for i in range(KILL_CALLS)]  # all there, each once
    assert len(list((out / "calls").glob("*.html"))) == KILL_CALLS


def test_cli_hook_prints_json_and_exit_status(
    home: Path, calls_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("calls", nargs="*")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--config")
    add_batch_arguments(parser)
    args = parser.parse_args([str(calls_dir), "--out", str(tmp_path / "out"), "--json", "--no-progress"])
    status = run_batch(args, ScriptedReviewer())
    printed = json.loads(capsys.readouterr().out)
    assert status == 1 == printed["exit_code"]
    assert printed["reviewed"] == 2 and printed["failed"] == 1


@pytest.mark.services
def test_ray_engine_stores_the_same_reviews_as_the_local_engine(
    home: Path, calls_dir: Path, tmp_path: Path
) -> None:
    config = Config()
    local = run([str(calls_dir)], PipelineReviewer(config), _options(tmp_path / "local"), config)
    with Store.open() as store:
        local_scores = {c.name: c.score for c in store.search()}
        local_failed = {c.name: c.failed_checks for c in store.search()}
    os.environ["COPILOT_DB"] = f"sqlite:///{tmp_path / 'ray.db'}"
    try:
        distributed = run(
            [str(calls_dir)],
            PipelineReviewer(config),
            _options(tmp_path / "ray", engine="ray", workers=2),
            config,
        )
        with Store.open() as store:
            ray_calls = store.search(ReviewFilter())
    finally:
        del os.environ["COPILOT_DB"]
    assert distributed.reviewed == local.reviewed == 2 and distributed.failed == local.failed == 1
    assert {c.name: c.score for c in ray_calls} == local_scores
    assert {c.name: c.failed_checks for c in ray_calls} == local_failed
    assert "TranscriptError" in next(o.reason for o in distributed.outcomes if o.status == "failed")
