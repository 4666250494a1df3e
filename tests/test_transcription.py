"""File transcription = a replay through the streaming path (fakes here; real models in the `real` tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from copilot.config import AsrConfig
from copilot.errors import AudioError
from copilot.transcription.audio import SAMPLE_RATE, read_all
from copilot.transcription.playback import EndOfAudio, ReplayOptions, replay, transcribe_file
from copilot.transcription.streaming import StreamOptions
from copilot.types import Committed, TentativeText
from tests.fakes_asr import EnergyVad, Line, ScriptedTranscriber, tone_track, write_wav

AGENT = (Line(0.5, 3.0, "您好欢迎致电"), Line(6.0, 8.0, "请您稍等"))
CUSTOMER = (Line(3.5, 5.5, "洗衣机坏了"),)


@pytest.fixture
def stereo_call(tmp_path):
    path = tmp_path / "call.wav"
    left = tone_track([(x.start, x.end) for x in AGENT], 9.0)
    right = tone_track([(x.start, x.end) for x in CUSTOMER], 9.0, freq=150.0)
    write_wav(path, np.stack([left, right]))
    return path


def hearing(path: Path) -> ScriptedTranscriber:
    """A scripted decoder that finds the lines in whatever audio it is given (offline windows are packed)."""
    return ScriptedTranscriber(AGENT + CUSTOMER, heard_from=read_all(path)[0])


def test_stereo_roles_follow_the_channels(stereo_call):
    fake = hearing(stereo_call)  # hears everything: the channel alone sets the role
    transcript = transcribe_file(stereo_call, AsrConfig(), fake, vad_factory=EnergyVad)
    assert [(s.speaker, s.text) for s in transcript.segments] == [
        ("agent", "您好欢迎致电"),
        ("customer", "洗衣机坏了"),
        ("agent", "请您稍等"),
    ]
    assert transcript.duration == pytest.approx(9.0, abs=0.01)
    assert transcript.source == str(stereo_call)


def test_agent_channel_right_swaps_roles(stereo_call):
    fake = ScriptedTranscriber(AGENT + CUSTOMER)
    config = AsrConfig(agent_channel="right")
    transcript = transcribe_file(stereo_call, config, fake, vad_factory=EnergyVad)
    assert [s.speaker for s in transcript.segments] == ["customer", "agent", "customer"]


def test_mono_is_one_unknown_stream(tmp_path):
    path = tmp_path / "mono.wav"
    write_wav(path, tone_track([(x.start, x.end) for x in AGENT], 9.0)[None])
    transcript = transcribe_file(path, AsrConfig(), ScriptedTranscriber(AGENT), vad_factory=EnergyVad)
    assert [(s.speaker, s.text) for s in transcript.segments] == [("unknown", x.text) for x in AGENT]


def test_silence_only_gives_an_empty_transcript(tmp_path):
    path = tmp_path / "silence.wav"
    write_wav(path, np.zeros((2, 3 * SAMPLE_RATE), np.float32))
    fake = ScriptedTranscriber(AGENT)
    transcript = transcribe_file(path, AsrConfig(), fake, vad_factory=EnergyVad)
    assert transcript.segments == () and transcript.duration == pytest.approx(3.0)
    assert fake.calls == []  # nothing decoded


def test_bad_file_raises_audio_error(tmp_path):
    path = tmp_path / "x.wav"
    path.write_text("not audio", encoding="utf-8")
    with pytest.raises(AudioError):
        transcribe_file(path, AsrConfig(), ScriptedTranscriber(()), vad_factory=EnergyVad)


class FakeClock:
    """A clock that only moves when the replay sleeps (or when a decode "costs" time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


def test_live_replay_paces_chunks_at_speed(stereo_call):
    clock = FakeClock()
    options = ReplayOptions(speed=2.0, stream=StreamOptions(partial_interval=0.5))
    events = list(
        replay(
            stereo_call,
            AsrConfig(),
            ScriptedTranscriber(AGENT + CUSTOMER),
            options,
            vad_factory=EnergyVad,
            clock=clock,
            sleep=clock.sleep,
        )
    )
    assert clock.slept == pytest.approx(9.0 / 2.0, abs=0.01)  # 9 s of audio at 2x
    kinds = [type(t.event) for t in events]
    assert TentativeText in kinds and Committed in kinds and kinds[-1] is EndOfAudio
    times = [t.audio_time for t in events]
    assert times == sorted(times)
    # a commit is emitted soon after the utterance ends in audio time (min_silence + one chunk)
    for timed in events:
        if isinstance(timed.event, Committed):
            assert timed.audio_time - timed.event.segment.end <= 0.4 + 0.5 + 0.05


@pytest.mark.parametrize("agent_partials", [False, True])
def test_agent_tentative_text_only_when_configured(stereo_call, agent_partials):
    clock = FakeClock()
    options = ReplayOptions(speed=1.0, stream=StreamOptions(partial_interval=0.5))
    events = list(
        replay(
            stereo_call,
            AsrConfig(agent_partials=agent_partials),
            ScriptedTranscriber(AGENT + CUSTOMER),
            options,
            vad_factory=EnergyVad,
            clock=clock,
            sleep=clock.sleep,
        )
    )
    tentative = {t.event.speaker for t in events if isinstance(t.event, TentativeText) and t.event.text}
    committed = {t.event.segment.speaker for t in events if isinstance(t.event, Committed)}
    assert committed == {"agent", "customer"}  # the agent's lines still commit either way
    assert tentative == ({"agent", "customer"} if agent_partials else {"customer"})


def test_live_replay_skips_partials_when_behind(stereo_call):
    clock = FakeClock()

    class Slow(ScriptedTranscriber):
        def transcribe(self, audio, *, start_time=0.0, prompt=""):
            clock.now += 3.0  # every decode takes 3 s of wall time: the replay falls behind
            return super().transcribe(audio, start_time=start_time, prompt=prompt)

    fake = Slow(AGENT + CUSTOMER)
    options = ReplayOptions(speed=1.0, stream=StreamOptions(partial_interval=0.5))
    events = list(
        replay(stereo_call, AsrConfig(), fake, options, vad_factory=EnergyVad, clock=clock, sleep=clock.sleep)
    )
    assert len([t for t in events if isinstance(t.event, Committed)]) == 3
    assert len(fake.calls) < 10  # without catching up, every 0.5 s of speech would cost a partial


# --- the CLI, with a scripted backend in place of copilot.transcription.asr -----------------------------------------


@pytest.fixture
def fake_backend(monkeypatch):
    """`copilot.transcription.asr.load_transcriber` replaced by one returning a scripted transcriber and the energy VAD."""
    import copilot.transcription.asr
    import copilot.transcription.playback

    loaded = []

    def load(config, *args, **kwargs):
        loaded.append(config)
        return ScriptedTranscriber(AGENT + CUSTOMER)

    monkeypatch.setattr(copilot.transcription.asr, "load_transcriber", load)
    monkeypatch.setattr(copilot.transcription.playback, "SileroVad", EnergyVad)
    return loaded


def test_cli_jsonl_one_object_per_file_and_bad_file_reported(stereo_call, tmp_path, capsys, fake_backend):
    import json

    from copilot.commands.cli import main

    bad = tmp_path / "bad.wav"
    bad.write_text("not audio", encoding="utf-8")
    code = main(
        ["transcribe", str(stereo_call), str(bad), str(stereo_call), "--json", "--backend", "openai-whisper"]
    )
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == AudioError.exit_code
    assert len(rows) == 2 and all(r["file"] == str(stereo_call) for r in rows)
    assert [s["speaker"] for s in rows[0]["segments"]] == ["agent", "customer", "agent"]
    assert set(rows[0]["segments"][0]) == {"speaker", "start", "end", "text"}
    assert rows[0]["duration"] == pytest.approx(9.0, abs=0.01)
    assert err.count("\n") == 1 and "bad.wav" in err
    assert len(fake_backend) == 1 and fake_backend[0].backend == "openai-whisper"  # loaded once


def test_cli_live_prints_events(stereo_call, capsys, fake_backend):
    import json

    from copilot.commands.cli import main

    assert main(["transcribe", str(stereo_call), "--live", "--speed", "5", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = {r["type"] for r in rows}
    assert kinds == {"tentative", "committed", "end"}
    assert [r["speaker"] for r in rows if r["type"] == "committed"] == ["agent", "customer", "agent"]


def test_cli_redacts_numbers(tmp_path, capsys, monkeypatch, fake_backend):
    import json

    import copilot.transcription.asr
    from copilot.commands.cli import main

    phone = (Line(0.5, 3.0, "我的电话是13812345678"),)
    monkeypatch.setattr(
        copilot.transcription.asr, "load_transcriber", lambda config, *a, **k: ScriptedTranscriber(phone)
    )
    path = tmp_path / "m.wav"
    write_wav(path, tone_track([(0.5, 3.0)], 4.0)[None])
    assert main(["transcribe", str(path), "--json"]) == 0
    text = json.loads(capsys.readouterr().out)["segments"][0]["text"]
    assert "13812345678" not in text and text.startswith("我的电话是")


def test_cli_needs_files(capsys):
    from copilot.commands.cli import main

    assert main(["transcribe"]) != 0
    assert "no audio files" in capsys.readouterr().err


# --- real packaged Whisper base on real input (tolerant assertions) -------------------------------------

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
EXCERPT_END = 16.5  # s: the agent's greeting (0.8-10.0) and the customer's first turn (10.6-16.16)


def _cer(ref: str, hyp: str) -> float:
    import unicodedata

    import jiwer
    from opencc import OpenCC

    def norm(text: str) -> str:
        text = OpenCC("t2s").convert(text)
        return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")

    return float(jiwer.cer(norm(ref), norm(hyp) or "∅"))


@pytest.fixture(scope="module")
def good_call_excerpt(tmp_path_factory):
    from copilot.transcription.audio import read_all

    audio, _ = read_all(SHARED / "calls" / "good_call.wav")
    path = tmp_path_factory.mktemp("excerpt") / "good_call_excerpt.wav"
    write_wav(path, audio[:, : int(EXCERPT_END * SAMPLE_RATE)])
    return path


@pytest.mark.real
def test_real_stereo_call_roles_by_channel(whisper_ct2_dir, good_call_excerpt):
    from copilot.transcription.asr import load_transcriber

    config = AsrConfig(backend="faster-whisper", word_timestamps=True)  # as `transcribe --words` asks
    transcript = transcribe_file(good_call_excerpt, config, load_transcriber(config))
    lines = json.loads((SHARED / "calls" / "good_call.json").read_text(encoding="utf-8"))["segments"][:2]
    agent = [s for s in transcript.segments if s.speaker == "agent"]
    customer = [s for s in transcript.segments if s.speaker == "customer"]
    assert agent and customer
    # the left channel holds only the agent's greeting, the right only the customer's turn
    assert all(lines[0]["start"] - 0.5 <= s.start and s.end <= lines[0]["end"] + 0.5 for s in agent)
    assert all(lines[1]["start"] - 0.5 <= s.start and s.end <= lines[1]["end"] + 0.5 for s in customer)
    assert _cer(lines[0]["text"], "".join(s.text for s in agent)) < 0.35
    assert _cer(lines[1]["text"], "".join(s.text for s in customer)) < 0.35
    assert all(s.words for s in transcript.segments)


@pytest.mark.real
def test_real_openai_backend_on_a_real_recording(whisper_openai_pt):
    from copilot.transcription.asr import load_transcriber

    config = AsrConfig(backend="openai-whisper")
    path = SHARED / "audio" / "firered_BAC009S0764W0121.wav"
    transcript = transcribe_file(path, config, load_transcriber(config))
    assert {s.speaker for s in transcript.segments} == {"unknown"}
    assert _cer("甚至出现交易几乎停滞的情况", "".join(s.text for s in transcript.segments)) < 0.4


def test_offline_batches_a_channels_utterances_into_one_decode(stereo_call):
    batched = hearing(stereo_call)
    one_by_one = hearing(stereo_call)
    fast = transcribe_file(stereo_call, AsrConfig(), batched, vad_factory=EnergyVad)
    slow = transcribe_file(stereo_call, AsrConfig(), one_by_one, vad_factory=EnergyVad, batched=False)
    assert [(s.speaker, s.text) for s in fast.segments] == [(s.speaker, s.text) for s in slow.segments]
    assert [(s.start, s.end) for s in fast.segments] == [(s.start, s.end) for s in slow.segments]
    assert len(one_by_one.calls) == 3  # one decode per utterance
    assert len(batched.calls) == 2  # one per channel: both agent utterances fit one window
    # word times (costly) only for the agent's window of two utterances, where they split its text
    by_start = {
        round(start, 1): words
        for (start, _end, _prompt), words in zip(batched.calls, batched.word_times, strict=True)
    }
    agent_window, customer_window = min(by_start), max(by_start)
    assert by_start[agent_window] is True and by_start[customer_window] is None
    # the customer's turn between the agent's two utterances is not decoded: the window is packed (8.2 s of
    # call in about 6 s of audio), and the words of the later utterance are put back on the call's clock
    agent_start, agent_end, _ = min(batched.calls)
    assert agent_end - agent_start < 6.5
    later = next(s for s in fast.segments if s.text == "请您稍等")
    assert later.words and later.words[0].start == pytest.approx(6.0, abs=0.01)
    assert later.words[-1].end == pytest.approx(8.0, abs=0.01)


class DeafVad:
    """A VAD that hears nothing (as Silero on some telephone-band speech)."""

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return np.zeros(len(frames), np.float32)


def test_a_channel_the_vad_misses_entirely_is_decoded_whole(tmp_path):
    path = tmp_path / "quiet_vad.wav"
    write_wav(path, tone_track([(x.start, x.end) for x in AGENT], 9.0)[None])
    fake = ScriptedTranscriber(AGENT)
    transcript = transcribe_file(path, AsrConfig(), fake, vad_factory=DeafVad)
    assert "".join(s.text for s in transcript.segments) == "".join(x.text for x in AGENT)


def test_a_silent_channel_the_vad_misses_is_not_decoded(tmp_path):
    path = tmp_path / "silence.wav"
    write_wav(path, np.zeros((1, 3 * SAMPLE_RATE), np.float32))
    fake = ScriptedTranscriber(AGENT)
    assert transcribe_file(path, AsrConfig(), fake, vad_factory=DeafVad).segments == ()
    assert fake.calls == []


def test_later_windows_get_the_call_so_far_as_prompt(stereo_call):
    fake = hearing(stereo_call)
    transcribe_file(stereo_call, AsrConfig(), fake, vad_factory=EnergyVad)
    prompts = [prompt for _start, _end, prompt in sorted(fake.calls)]
    assert prompts[0] == ""  # the agent's window opens the call
    assert prompts[-1] == "您好欢迎致电"  # the customer's window: what was said before it, not after
