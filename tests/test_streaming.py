"""The streaming path: the pure endpoint policy with scripted VAD decisions, then ChannelStream with fakes."""

from __future__ import annotations

import numpy as np
import pytest

from copilot.errors import AudioError
from copilot.transcription.audio import SAMPLE_RATE
from copilot.transcription.streaming import (
    ChannelStream,
    Discard,
    EndpointPolicy,
    Finalize,
    Partial,
    Prepare,
    StreamOptions,
    merge_segments,
    speech_decisions,
    utterance_segment,
)
from copilot.types import Committed, Segment, TentativeText, Word
from tests.fakes_asr import EnergyVad, Line, ScriptedTranscriber, tone_track

FRAME = 0.1  # s: a coarse frame keeps the scripted decisions readable


def run(policy: EndpointPolicy, pattern: str, flush: bool = False):
    """Feed one decision per character ('#' speech, '.' silence); return actions with their frame index."""
    out = []
    for i, ch in enumerate(pattern):
        for action in policy.update(round((i + 1) * FRAME, 6), ch == "#"):
            out.append((i, action))
    if flush:
        out += [(len(pattern), a) for a in policy.flush(len(pattern) * FRAME)]
    return out


def options(**kw) -> StreamOptions:
    base = dict(
        min_silence=0.3,
        min_speech=0.2,
        partial_interval=0.5,
        max_utterance=2.0,
        cut_pause=0.2,
        early_silence=None,
    )
    base.update(kw)
    return StreamOptions(**base)


def test_commit_after_silence_with_utterance_bounds():
    actions = run(EndpointPolicy(options(partials=False), frame=FRAME), "..#####...")
    assert [a for _, a in actions] == [Finalize(pytest.approx(0.2), pytest.approx(0.7))]
    assert actions[0][0] == 9  # the third silent frame reaches min_silence


def test_short_pause_does_not_end_the_utterance():
    actions = run(EndpointPolicy(options(partials=False), frame=FRAME), "###..###....")
    assert [a for _, a in actions] == [Finalize(pytest.approx(0.0), pytest.approx(0.8))]


def test_partials_every_interval_while_speaking_only():
    actions = run(EndpointPolicy(options(), frame=FRAME), "############....")
    partial_times = [a.end for _, a in actions if isinstance(a, Partial)]
    assert partial_times == pytest.approx([0.6, 1.1])
    assert isinstance(actions[-1][1], Finalize)
    assert all(a.start == pytest.approx(0.0) for _, a in actions)


def test_blip_shorter_than_min_speech_is_discarded():
    actions = run(EndpointPolicy(options(), frame=FRAME), "..#.....")
    assert [a for _, a in actions] == [Discard(pytest.approx(0.2), pytest.approx(0.3))]


def test_long_utterance_is_cut_at_its_latest_pause():
    actions = run(EndpointPolicy(options(partials=False), frame=FRAME), "########..############....")
    finals = [a for _, a in actions if isinstance(a, Finalize)]
    assert finals[0] == Finalize(pytest.approx(0.0), pytest.approx(0.9))  # middle of the 0.2 s pause
    assert finals[1].start == pytest.approx(0.9)
    assert finals[1].end == pytest.approx(2.2)


def test_long_utterance_without_pause_is_cut_hard():
    actions = run(EndpointPolicy(options(partials=False), frame=FRAME), "#" * 25 + "....")
    finals = [a for _, a in actions if isinstance(a, Finalize)]
    assert finals[0] == Finalize(pytest.approx(0.0), pytest.approx(2.0))
    assert finals[1] == Finalize(pytest.approx(2.0), pytest.approx(2.5))


def test_flush_commits_speech_in_progress():
    actions = run(EndpointPolicy(options(partials=False), frame=FRAME), "..####", flush=True)
    assert [a for _, a in actions] == [Finalize(pytest.approx(0.2), pytest.approx(0.6))]
    assert run(EndpointPolicy(options(), frame=FRAME), "....", flush=True) == []


def test_prepare_once_per_pause_before_the_commit():
    actions = run(EndpointPolicy(options(partials=False, early_silence=0.1), frame=FRAME), "###.###...")
    assert [a for _, a in actions] == [
        Prepare(pytest.approx(0.0), pytest.approx(0.3)),  # a pause starts: decode speculatively
        Prepare(pytest.approx(0.0), pytest.approx(0.7)),  # speech resumed, so a new pause prepares again
        Finalize(pytest.approx(0.0), pytest.approx(0.7)),
    ]


def test_stream_reuses_the_prepared_decode_when_the_pause_confirms_it():
    fake = ScriptedTranscriber(SCRIPT)
    audio = tone_track([(line.start, line.end) for line in SCRIPT], duration=10.0)
    stream = ChannelStream("customer", fake, EnergyVad(), StreamOptions(partials=False, early_silence=0.1))
    step = int(0.1 * SAMPLE_RATE)
    prepared_at = committed_at = None
    for lo in range(0, len(audio), step):
        calls = len(fake.calls)
        events = stream.push(audio[lo : lo + step], lo / SAMPLE_RATE)
        if prepared_at is None and len(fake.calls) > calls:
            prepared_at = lo / SAMPLE_RATE
        if committed_at is None and events:
            committed_at = lo / SAMPLE_RATE
            assert len(fake.calls) == calls  # the commit itself needed no decode
    assert prepared_at is not None and committed_at is not None and prepared_at < committed_at
    assert len(fake.calls) == len(SCRIPT)


def test_hysteresis_keeps_speech_through_a_dip():
    assert speech_decisions([0.2, 0.6, 0.4, 0.3, 0.6], 0.5, False) == [False, True, True, False, True]


def test_options_are_validated():
    with pytest.raises(ValueError):
        StreamOptions(threshold=1.5).validated()
    with pytest.raises(ValueError):
        StreamOptions(max_utterance=0.5, min_silence=0.4).validated()
    with pytest.raises(ValueError, match="lead"):
        StreamOptions(lead=-1.0).validated()


# --- ChannelStream with a scripted transcriber and an energy VAD ----------------------------------------

SCRIPT = (Line(1.0, 2.5, "您好请问"), Line(4.0, 6.0, "洗衣机坏了"), Line(8.0, 8.6, "好的"))


def stream_audio(stream: ChannelStream, audio: np.ndarray, chunk: float = 0.5):
    events = []
    step = int(chunk * SAMPLE_RATE)
    for lo in range(0, len(audio), step):
        events += stream.push(audio[lo : lo + step], lo / SAMPLE_RATE)
    events += stream.flush()
    return events


def test_stream_commits_each_utterance_once_with_its_role_and_bounds():
    fake = ScriptedTranscriber(SCRIPT)
    audio = tone_track([(line.start, line.end) for line in SCRIPT], duration=10.0)
    stream = ChannelStream("customer", fake, EnergyVad(), StreamOptions(partials=False))
    events = stream_audio(stream, audio)
    committed = [e.segment for e in events if isinstance(e, Committed)]
    assert [s.text for s in committed] == [line.text for line in SCRIPT]
    assert all(s.speaker == "customer" for s in committed)
    for seg, line in zip(committed, SCRIPT, strict=True):
        assert seg.start == pytest.approx(line.start, abs=0.05)
        assert seg.end == pytest.approx(line.end, abs=0.05)
        assert all(seg.start <= w.start <= w.end <= seg.end for w in seg.words)
    assert len(fake.calls) == len(SCRIPT)  # one decode per utterance, no partials


def test_stream_gives_tentative_text_before_the_commit_and_never_decodes_the_whole_call():
    long_script = tuple(Line(1.0 + 5 * i, 4.0 + 5 * i, f"第{i}句") for i in range(12))
    fake = ScriptedTranscriber(long_script)
    audio = tone_track([(line.start, line.end) for line in long_script], duration=62.0)
    stream = ChannelStream("agent", fake, EnergyVad(), StreamOptions(partial_interval=1.0, pad=0.2))
    events = stream_audio(stream, audio)
    first_commit = next(i for i, e in enumerate(events) if isinstance(e, Committed))
    assert any(isinstance(e, TentativeText) and e.text == "第0句" for e in events[:first_commit])
    assert len([e for e in events if isinstance(e, Committed)]) == 12
    longest = max(end - start for start, end, _ in fake.calls)
    # each decode sees one 3-s utterance with its lead-in and padding, however long the call
    assert longest < 3.0 + stream.options.lead + stream.options.pad + 0.1
    assert len(stream._buffer) < 5 * SAMPLE_RATE  # memory stays bounded too


def test_final_decode_reads_a_lead_in_that_stops_short_of_the_previous_utterance():
    lines = (Line(3.0, 5.0, "第一句"), Line(5.8, 7.0, "第二句"))  # 0.8 s apart: a commit between them
    fake = ScriptedTranscriber(lines)
    audio = tone_track([(line.start, line.end) for line in lines], duration=9.0)
    stream = ChannelStream("customer", fake, EnergyVad(), StreamOptions(partials=False, lead=1.0, pad=0.2))
    events = stream_audio(stream, audio)
    assert [e.segment.text for e in events if isinstance(e, Committed)] == ["第一句", "第二句"]
    (first_start, _, _), (second_start, _, _) = fake.calls
    assert first_start == pytest.approx(2.0, abs=0.05)  # a full second of lead-in before the first
    assert second_start == pytest.approx(5.2, abs=0.05)  # after the first utterance's end and pad, not 4.8


def test_empty_decode_clears_tentative_text_and_commits_nothing():
    fake = ScriptedTranscriber((Line(1.0, 3.0, "嗯"),))
    audio = tone_track([(1.0, 3.0)], duration=5.0)
    stream = ChannelStream("customer", fake, EnergyVad(), StreamOptions(partial_interval=0.5))
    events = stream_audio(stream, audio)
    assert next(e for e in events if isinstance(e, Committed)).segment.text == "嗯"

    silent = ScriptedTranscriber(())  # e.g. the hallucination guard dropped everything
    stream = ChannelStream("customer", silent, EnergyVad(), StreamOptions(partial_interval=0.5))
    events = stream_audio(stream, audio)
    assert not any(isinstance(e, Committed) for e in events)


def test_tentative_cleared_when_utterance_yields_nothing():
    class PartialOnly(ScriptedTranscriber):
        def transcribe(self, audio, *, start_time=0.0, prompt=""):
            out = super().transcribe(audio, start_time=start_time, prompt=prompt)
            return out if len(self.calls) == 1 else ()

    fake = PartialOnly((Line(1.0, 1.6, "喂"),))
    stream = ChannelStream("customer", fake, EnergyVad(), StreamOptions(partial_interval=0.5))
    events = stream_audio(stream, tone_track([(1.0, 2.5)], duration=4.0))
    assert [e for e in events if isinstance(e, TentativeText)] == [
        TentativeText("customer", pytest.approx(1.0, abs=0.05), "喂"),
        TentativeText("customer", pytest.approx(1.0, abs=0.05), ""),
    ]


def test_skipping_partials_when_behind():
    fake = ScriptedTranscriber(SCRIPT)
    stream = ChannelStream("agent", fake, EnergyVad(), StreamOptions(partial_interval=0.5))
    audio = tone_track([(line.start, line.end) for line in SCRIPT], duration=10.0)
    step = SAMPLE_RATE // 2
    events = []
    for lo in range(0, len(audio), step):
        events += stream.push(audio[lo : lo + step], lo / SAMPLE_RATE, allow_partial=False)
    assert not any(isinstance(e, TentativeText) for e in events)
    assert len(fake.calls) == 3


def test_discontinuous_chunks_are_refused():
    stream = ChannelStream("agent", ScriptedTranscriber(()), EnergyVad())
    stream.push(np.zeros(8000, np.float32), 0.0)
    with pytest.raises(AudioError, match="does not follow"):
        stream.push(np.zeros(8000, np.float32), 2.0)


def test_utterance_segment_joins_decoder_segments_and_clips_words():
    decoded = (
        Segment("unknown", 0.9, 1.5, "您好，", (Word("您好", 0.8, 1.4),)),
        Segment("unknown", 1.5, 2.6, "请问", (Word("请问", 1.5, 2.7),)),
    )
    seg = utterance_segment("agent", 1.0, 2.5, decoded)
    assert seg is not None
    assert (seg.speaker, seg.start, seg.end, seg.text) == ("agent", 1.0, 2.5, "您好，请问")
    assert [(w.start, w.end) for w in seg.words] == [(1.0, 1.4), (1.5, 2.5)]
    assert utterance_segment("agent", 1.0, 2.0, (Segment("unknown", 1, 2, " "),)) is None


def test_merge_orders_both_channels_by_time():
    a = [Segment("agent", 0.0, 2.0, "a1"), Segment("agent", 5.0, 6.0, "a2")]
    c = [Segment("customer", 2.5, 4.0, "c1"), Segment("customer", 5.0, 5.5, "c2")]
    assert [s.text for s in merge_segments(a, c)] == ["a1", "c1", "c2", "a2"]
