"""Reading and writing JSON transcripts in the shape of ../shared/calls/*.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.errors import TranscriptError
from copilot.transcription.transcript_files import read_transcript, transcript_from_dict, write_transcript


def test_reads_shared_calls(shared_dir: Path) -> None:
    call = read_transcript(shared_dir / "calls" / "good_call.json")
    assert call.source == "good_call"
    assert call.duration == pytest.approx(91.82)
    assert call.segments[0].speaker == "agent"
    assert [s.start for s in call.segments] == sorted(s.start for s in call.segments)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "JSON object"),
        ({}, "missing 'segments'"),
        ({"segments": {}}, "must be a list"),
        ({"segments": [{"role": "agent", "start": 0, "end": 1}]}, "missing text"),
        ({"segments": [{"role": "boss", "start": 0, "end": 1, "text": "x"}]}, "role must be"),
        ({"segments": [{"role": "agent", "start": "0", "end": 1, "text": "x"}]}, "start must be a number"),
        ({"segments": [{"role": "agent", "start": 2, "end": 1, "text": "x"}]}, "ends"),
        ({"segments": [{"role": "agent", "start": 0, "end": 1, "text": 5}]}, "text must be a string"),
    ],
)
def test_malformed_transcripts_name_the_problem(data: object, fragment: str) -> None:
    with pytest.raises(TranscriptError, match=fragment):
        transcript_from_dict(data, "call")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(TranscriptError, match="not found"):
        read_transcript(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(TranscriptError, match="not a JSON transcript"):
        read_transcript(bad)


def test_write_is_redacted_and_round_trips(tmp_path: Path) -> None:
    call = transcript_from_dict(
        {"segments": [{"role": "customer", "start": 1, "end": 3, "text": "我电话13812345678"}]}, "c"
    )
    out = tmp_path / "c.json"
    write_transcript(call, out)
    assert "13812345678" not in out.read_text(encoding="utf-8")
    again = read_transcript(out)
    assert again.segments[0].speaker == "customer" and again.duration == 3.0
    write_transcript(call, out, redacted=False)
    assert json.loads(out.read_text(encoding="utf-8"))["segments"][0]["text"].endswith("13812345678")
