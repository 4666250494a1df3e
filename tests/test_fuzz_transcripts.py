"""Property tests of the JSON transcript reader: any document gives a transcript or a TranscriptError.

Hypothesis builds near-valid transcripts (each field drawn from good and bad values), arbitrary JSON
values and raw bytes; valid transcripts round-trip through the writer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from copilot.errors import TranscriptError
from copilot.transcription.transcript_files import (
    MAX_SECONDS,
    read_transcript,
    transcript_from_dict,
    write_transcript,
)
from copilot.types import ROLES, Transcript

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Texts from Simplified characters, ASCII and punctuation (Traditional text is converted on reading).
SIMPLIFIED = "您好请问有什么可以帮洗衣机坏了不能脱水师傅上门维修谢谢再见的是我在这"
texts = st.text(alphabet=SIMPLIFIED + "abcXYZ ，。？！,.?!-", max_size=40)
times = st.floats(min_value=0, max_value=MAX_SECONDS, allow_nan=False)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["segments", "role", "start", "end", "text", "duration", "name", "x"]),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)

# Each field of a segment: mostly right, sometimes wrong in every way a file can be wrong.
roles = st.one_of(st.sampled_from(ROLES), scalars)
numbers = st.one_of(times, scalars)
segment_values = st.fixed_dictionaries(
    {},
    optional={
        "role": roles,
        "start": numbers,
        "end": numbers,
        "text": st.one_of(texts, scalars),
        "x": scalars,
    },
)
documents = st.fixed_dictionaries(
    {"segments": st.one_of(st.lists(segment_values, max_size=5), scalars)},
    optional={"duration": numbers, "name": st.one_of(st.text(max_size=10), scalars)},
)


def _valid_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= MAX_SECONDS


def _should_parse(document: dict[str, Any]) -> bool:
    """An independent statement of the format: what the reader must accept."""
    segments = document["segments"]
    if not isinstance(segments, list):
        return False
    for s in segments:
        if not {"role", "start", "end", "text"} <= set(s):
            return False
        if s["role"] not in ROLES or not isinstance(s["text"], str):
            return False
        if not (_valid_number(s["start"]) and _valid_number(s["end"])) or s["end"] < s["start"]:
            return False
    return "duration" not in document or _valid_number(document["duration"])


def _check(result: Transcript) -> None:
    assert all(math.isfinite(s.start) and math.isfinite(s.end) for s in result.segments)
    assert all(0 <= s.start <= s.end <= result.duration for s in result.segments)
    assert list(result.segments) == sorted(result.segments, key=lambda s: s.start)
    assert math.isfinite(result.duration)


@FUZZ
@given(documents)
def test_near_valid_documents_parse_exactly_when_valid(document: dict[str, Any]) -> None:
    try:
        result = transcript_from_dict(document, "call")
    except TranscriptError as e:
        assert "\n" not in str(e)
        assert not _should_parse(document)
        return
    assert _should_parse(document)
    _check(result)
    assert len(result.segments) == len(document["segments"])


@FUZZ
@given(json_values)
def test_any_json_value_is_a_transcript_or_a_transcript_error(value: Any) -> None:
    try:
        result = transcript_from_dict(value, "call")
    except TranscriptError:
        return
    _check(result)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_are_a_transcript_or_a_transcript_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "call.json"
    path.write_bytes(data)
    try:
        _check(read_transcript(path))
    except TranscriptError as e:
        assert "\n" not in str(e)


valid_segments = st.lists(
    st.tuples(st.sampled_from(ROLES), times, times, texts).map(
        lambda t: {"role": t[0], "start": min(t[1], t[2]), "end": max(t[1], t[2]), "text": t[3]}
    ),
    max_size=6,
)


@FUZZ
@given(valid_segments)
def test_valid_transcripts_round_trip_through_the_writer(
    tmp_path: Path, segments: list[dict[str, Any]]
) -> None:
    # The writer rounds to milliseconds: make the input exact to the millisecond so a round trip is exact.
    for s in segments:
        s["start"], s["end"] = round(s["start"], 3), round(s["end"], 3)
    assume(all(s["end"] >= s["start"] for s in segments))
    original = transcript_from_dict({"segments": segments}, "call")
    path = tmp_path / "call.json"
    write_transcript(original, path, redacted=False)
    again = read_transcript(path)
    assert again.duration == round(original.duration, 3)
    assert [(s.speaker, s.start, s.end, s.text) for s in again.segments] == [
        (s.speaker, s.start, s.end, s.text) for s in original.segments
    ]
    assert json.loads(path.read_text(encoding="utf-8"))["name"] == "call"
