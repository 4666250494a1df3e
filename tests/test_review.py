"""review_call and the check / review commands on JSON transcripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.commands.cli import main
from copilot.errors import AudioError
from copilot.qa.review import ReviewOptions, review_call, review_dict, review_file
from copilot.transcription.transcript_files import transcript_from_dict

PHONE = "13912345678"


def test_review_good_and_bad_calls(shared_dir: Path) -> None:
    good = review_file(shared_dir / "calls" / "good_call.json")
    assert good.score == 100.0 and not any(c.failed for c in good.checks) and not good.flags
    bad = review_dict(review_file(shared_dir / "calls" / "bad_call.json"))
    failed = {c["id"] for c in bad["checks"] if c["status"] == "fail"}
    assert {"greeting", "forbidden", "apology", "closing", "interruption"} <= failed
    assert {"call", "duration", "segments", "checks", "flags", "score"} <= set(bad)
    for check in bad["checks"]:
        assert set(check) >= {"id", "status", "passed", "evidence", "clause"}
        for e in check["evidence"]:
            assert set(e) == {"start", "end", "speaker", "text"}
    assert any(t["label"] == "angry" for t in bad["tone"])


def test_review_redacts_everything_it_returns() -> None:
    transcript = transcript_from_dict(
        {
            "segments": [
                {"role": "agent", "start": 0, "end": 4, "text": "喂，电话多少？"},
                {
                    "role": "customer",
                    "start": 4.5,
                    "end": 9,
                    "text": f"幺三九 一二三四 五六七八，也就是{PHONE}",
                },
                {"role": "agent", "start": 9.5, "end": 12, "text": f"好的{PHONE}，不行就算了"},
            ]
        },
        "pii",
    )
    out = json.dumps(review_dict(review_call(transcript)), ensure_ascii=False)
    assert PHONE not in out and "五六七八" not in out and "[手机号]" in out
    raw = review_call(transcript, options=ReviewOptions(redact=False))
    assert PHONE in raw.segments[1].text


def test_audio_needs_the_transcription_layer(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="transcription"):
        review_file(tmp_path / "call.wav")


def test_check_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "这个不行，我们没办法", "--role", "agent", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    flag = out["flags"][0]
    assert set(flag) == {"rule", "kind", "severity", "message", "evidence", "clause"}
    assert flag["rule"] == "forbidden" and flag["clause"]["quote"]


def test_check_command_file_gives_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("不可能让您白跑一趟\n\n您别激动\n", encoding="utf-8")
    assert main(["check", "--file", str(lines), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [bool(r["flags"]) for r in rows] == [False, True]


def test_review_command_jsonl_and_bad_file(
    shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"segments": [{"role": "agent"}]}', encoding="utf-8")
    calls = [
        str(shared_dir / "calls" / "good_call.json"),
        str(broken),
        str(shared_dir / "calls" / "bad_call.json"),
    ]
    code = main(["review", *calls, "--json"])
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 4 and [r["call"] for r in rows] == ["good_call", "bad_call"]
    assert "missing start, end, text" in captured.err


def test_check_without_input_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) != 0
    assert "no text given" in capsys.readouterr().err
