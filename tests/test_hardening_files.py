"""Bad transcripts, lists, handbooks and 2-GB files through ``review``, ``check --file`` and ``ingest``, and a
review batch (JSONL and ``--out``) that mixes bad files with good calls and a real recording.

Each bad input gives a typed error: non-zero exit, one ``copilot: error:`` line naming the file, no
traceback. Subprocess timeouts are a safety net only; nothing here asserts on time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from copilot.commands.cli import main
from copilot.errors import CopilotError, KnowledgeError, TranscriptError
from copilot.qa.review import review_dict, review_file
from copilot.transcription.transcript_files import read_transcript
from tests import badinput
from tests.test_hardening_audio import CHILD_TIMEOUT, MAX_CER, assert_one_line_error, error_lines, run_cli

# Peak RSS allowed for a child process that is handed 2-GB files: reading one whole would need 2 GiB
# (4 GiB or more once decoded to text), so staying under 1.5 GiB proves none was read whole.
MAX_HUGE_PEAK_KB = 1536 * 1024
LIST_ERROR_EXIT = CopilotError.exit_code


def _review_shape(review: dict[str, Any]) -> tuple[Any, ...]:
    """What a review concludes, without the text (Traditional and Simplified texts differ)."""
    return (
        review["score"],
        tuple((c["id"], c["passed"]) for c in review["checks"]),
        tuple((f["rule"], f["kind"]) for f in review["flags"]),
        tuple((t["speaker"], t["label"]) for t in review["tone"]),
    )


# ---- JSON transcripts ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_transcripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return badinput.write_bad_transcripts(tmp_path_factory.mktemp("transcripts"))


@pytest.mark.parametrize("name", badinput.BAD_TRANSCRIPTS)
def test_bad_transcript_is_a_one_line_transcript_error(bad_transcripts: dict[str, Path], name: str) -> None:
    with pytest.raises(TranscriptError) as caught:
        read_transcript(bad_transcripts[name])
    message = str(caught.value)
    assert "\n" not in message and name in message


@pytest.mark.parametrize("name", badinput.BAD_TRANSCRIPTS)
def test_review_of_a_bad_transcript_exits_with_one_line(
    bad_transcripts: dict[str, Path], name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    path = bad_transcripts[name]
    code = main(["review", "--json", str(path)])
    out, err = capfd.readouterr()
    assert code == TranscriptError.exit_code and out == ""
    assert_one_line_error(err, path)


@pytest.mark.parametrize("call", badinput.GOOD_CALLS, ids=lambda p: p.stem)
def test_traditional_chinese_call_is_reviewed_like_the_simplified_one(call: Path, tmp_path: Path) -> None:
    traditional = badinput.traditional(call, tmp_path)
    assert traditional.read_text(encoding="utf-8") != call.read_text(encoding="utf-8")
    simplified = review_dict(review_file(call))
    converted = review_dict(review_file(traditional))
    assert _review_shape(converted) == _review_shape(simplified)


def test_check_flags_traditional_text_like_simplified(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", "您別激動，這沒什麼大不了的", "您别激动，这没什么大不了的"]) == 0
    traditional, simplified = (json.loads(line) for line in capfd.readouterr().out.splitlines())
    rules = [(f["rule"], f["kind"]) for f in simplified["flags"]]
    assert rules and [(f["rule"], f["kind"]) for f in traditional["flags"]] == rules
    assert [t["label"] for t in traditional["tone"]] == [t["label"] for t in simplified["tone"]]


def test_transcript_saved_with_a_bom_is_read(tmp_path: Path) -> None:
    call = badinput.GOOD_CALLS[0]
    assert _review_shape(review_dict(review_file(badinput.with_bom(call, tmp_path)))) == _review_shape(
        review_dict(review_file(call))
    )


# ---- check --file ------------------------------------------------------------------------------


def _bad_lists(folder: Path) -> dict[str, Path]:
    latin = folder / "latin1.txt"
    latin.write_bytes("caf\xe9 au lait".encode("latin-1"))
    binary = badinput.random_bytes(folder, "noise.txt")
    binary.write_bytes(b"\x00" + binary.read_bytes())
    empty = badinput.empty(folder, "empty.txt")
    directory = folder / "a_folder.txt"
    directory.mkdir()
    return {"latin-1": latin, "binary": binary, "empty": empty, "folder": directory}


@pytest.mark.parametrize("kind", ["latin-1", "binary", "empty", "folder"])
def test_check_file_with_a_bad_list_exits_with_one_line(
    tmp_path: Path, kind: str, capfd: pytest.CaptureFixture[str]
) -> None:
    path = _bad_lists(tmp_path)[kind]
    code = main(["check", "--file", str(path)])
    out, err = capfd.readouterr()
    assert code != 0 and out == ""
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("copilot: error: ")
    if kind != "empty":  # an empty list is "no text given", like no arguments at all
        assert path.name in err


# ---- handbooks (copilot ingest on a temporary knowledge folder) ---------------------------------


@pytest.mark.parametrize("name", list(badinput.bad_handbooks()))
def test_ingest_with_a_bad_handbook_exits_with_one_line(
    tmp_path: Path, name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    knowledge = badinput.knowledge_copy(tmp_path)
    (knowledge / "raw" / name).write_bytes(badinput.bad_handbooks()[name])
    code = main(["ingest", "--knowledge", str(knowledge), "--dry-run"])
    _out, err = capfd.readouterr()
    assert code == KnowledgeError.exit_code
    assert "Traceback" not in err
    errors = error_lines(err)
    assert len(errors) == 1 and errors[0].startswith("copilot: error: ") and name in errors[0]
    # Nothing else on stderr but the per-handbook progress lines and jieba's one-time notices.
    noise = [line for line in err.splitlines() if line not in errors]
    assert all(":" in line or "prefix dict" in line.lower() for line in noise), noise


def test_ingest_with_an_empty_handbook_keeps_the_others(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    knowledge = badinput.knowledge_copy(tmp_path)
    badinput.empty(knowledge / "raw", "empty.md")
    assert main(["ingest", "--knowledge", str(knowledge), "--json"]) == 0
    summary = json.loads(capfd.readouterr().out)
    by_source = {d["source"]: d for d in summary["documents"]}
    assert by_source["empty.md"]["passages"] == 0 and by_source["empty.md"]["raw_chars"] == 0
    assert summary["passages"] == sum(d["passages"] for d in summary["documents"]) > 0
    assert (knowledge / "passages.jsonl").is_file()


# ---- 2-GB files: refused from their size or header, never read whole ------------------------------

_CHILD = """
import contextlib, io, json, sys
from copilot.commands.cli import main
runs = []
for args in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    runs.append({"args": args, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork+exec, so a child of a big
# pytest process would report its parent's peak.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))  # KB
with open(sys.argv[1], "w") as handle:
    json.dump({"runs": runs, "peak_kb": peak}, handle, ensure_ascii=False)
"""


def run_in_child(tmp_path: Path, commands: list[list[str]], env: dict[str, str]) -> dict[str, Any]:
    """Run ``copilot`` commands one after another in one child process; their results and its peak RSS."""
    report = tmp_path / "child.json"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(report), json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        cwd=badinput.REPO,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return result


def test_two_gigabyte_files_are_refused_without_being_read(tmp_path: Path) -> None:
    huge_json = badinput.sparse(tmp_path, "huge.json")
    huge_wav = badinput.sparse(tmp_path, "huge.wav")
    huge_list = badinput.sparse(tmp_path, "huge.txt")
    huge_toml = badinput.sparse(tmp_path, "huge.toml")
    knowledge = badinput.knowledge_copy(tmp_path)
    badinput.sparse(knowledge / "raw", "huge.md")
    good = tmp_path / "good_call.json"
    shutil.copy(badinput.GOOD_CALLS[0], good)
    out = tmp_path / "out"
    commands = [
        ["review", "--json", str(huge_json)],
        ["check", "--file", str(huge_list)],
        ["review", "--file", str(huge_list)],
        ["ingest", "--knowledge", str(knowledge), "--dry-run"],
        ["--config", str(huge_toml), "check", "您好"],
        ["review", "--json", "--no-progress", "--out", str(out), str(huge_wav), str(huge_json), str(good)],
    ]
    result = run_in_child(tmp_path, commands, {"COPILOT_DB": f"sqlite:///{tmp_path / 'copilot.db'}"})
    runs = result["runs"]
    for run, huge in zip(
        runs[:5], [huge_json, huge_list, huge_list, Path("huge.md"), huge_toml], strict=True
    ):
        assert run["code"] != 0, run
        errors = error_lines(run["stderr"])
        assert "Traceback" not in run["stderr"] and len(errors) == 1, run
        assert huge.name in errors[0] and ("too large" in errors[0] or "not a" in errors[0]), errors[0]
    batch = runs[5]
    summary = json.loads(batch["stdout"])
    assert batch["code"] == 1 and summary["reviewed"] == 1 and summary["failed"] == 2
    failed = {Path(o["file"]).name: o["reason"] for o in summary["outcomes"] if o["status"] == "failed"}
    assert "too large" in failed["huge.json"] and "not a readable audio file" in failed["huge.wav"]
    assert result["peak_kb"] < MAX_HUGE_PEAK_KB, result["peak_kb"]


# ---- a review batch with bad files still reviews the good ones -----------------------------------


@pytest.fixture(scope="module")
def mixed_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    """(good, bad) inputs: the two shared calls and a real recording; bad audio and bad transcripts."""
    folder = tmp_path_factory.mktemp("mixed")
    good = [*badinput.GOOD_CALLS, shutil.copy(badinput.SPEECH, folder / "speech.wav")]
    transcripts = badinput.write_bad_transcripts(folder)
    bad = [
        badinput.empty(folder),
        badinput.text_as_wav(folder),
        badinput.six_channels(folder),
        badinput.random_bytes(folder),
        transcripts["not_json"],
        transcripts["role_unknown"],
        transcripts["nan_time"],
        badinput.sparse(folder, "huge.json"),
        folder / "missing.json",
    ]
    return [Path(p) for p in good], bad


def _interleave(good: list[Path], bad: list[Path]) -> list[str]:
    inputs = [str(p) for p in bad]
    for i, path in enumerate(good):
        inputs.insert(i * 4, str(path))
    return inputs


@pytest.mark.real
def test_review_jsonl_batch_reviews_the_good_files_and_reports_each_bad_one(
    mixed_batch: tuple[list[Path], list[Path]], installed_models: None, tmp_path: Path
) -> None:
    import jiwer

    good, bad = mixed_batch
    done = run_cli(
        "review", "--json", *_interleave(good, bad), env={"COPILOT_DB": f"sqlite:///{tmp_path}/x.db"}
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    errors = error_lines(done.stderr)
    assert len(errors) == len(bad)
    for path in bad:
        assert sum(path.name in line for line in errors) == 1, (path.name, errors)
    reviews = {Path(row["call"]).stem: row for row in map(json.loads, done.stdout.splitlines())}
    assert sorted(reviews) == sorted(p.stem for p in good)
    assert reviews["good_call"]["score"] > reviews["bad_call"]["score"]
    speech = "".join(s["text"] for s in reviews["speech"]["segments"])
    assert jiwer.cer(badinput.SPEECH_TEXT, speech.rstrip("。")) <= MAX_CER, speech


@pytest.mark.real
def test_review_out_batch_stores_the_good_files_and_lists_the_bad_ones(
    mixed_batch: tuple[list[Path], list[Path]], installed_models: None, tmp_path: Path
) -> None:
    good, bad = mixed_batch
    out = tmp_path / "out"
    db = tmp_path / "batch.db"
    args = ["review", "--json", "--no-progress", "--out", str(out), *_interleave(good, bad)]
    done = run_cli(*args, env={"COPILOT_DB": f"sqlite:///{db}"})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    assert summary == json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert summary["reviewed"] == len(good) and summary["failed"] == len(bad)
    by_name = {Path(o["file"]).name: o for o in summary["outcomes"]}
    for path in good:
        outcome = by_name[path.name]
        assert outcome["status"] == "reviewed" and (out / outcome["report"]).is_file()
    for path in bad:
        outcome = by_name[path.name]
        assert outcome["status"] == "failed" and outcome["reason"] and "\n" not in outcome["reason"]
    assert "Traceback" not in (out / "index.html").read_text(encoding="utf-8")
