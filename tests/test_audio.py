"""Audio in: containers/codecs, resampling, chunking, roles by channel, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from copilot.errors import AudioError
from copilot.transcription.audio import SAMPLE_RATE, channel_roles, probe, read_all, read_chunks
from tests.fakes_asr import tone_track, write_wav

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def encode(path: Path, fmt: str, codec: str, rate: int, layout: str, seconds: float = 1.0) -> Path:
    """A short 440 Hz tone in any container/codec PyAV can write."""
    import av

    channels = av.AudioLayout(layout).nb_channels
    t = np.arange(int(rate * seconds)) / rate
    data = np.tile((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), (channels, 1))
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)
        frame.rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize(
    ("name", "fmt", "codec", "rate", "layout"),
    [
        ("a.wav", "wav", "pcm_s16le", 44100, "stereo"),
        ("a.mp3", "mp3", "libmp3lame", 44100, "stereo"),
        ("a.flac", "flac", "flac", 22050, "mono"),
        ("a.m4a", "mp4", "aac", 48000, "stereo"),
        ("a.opus", "ogg", "libopus", 48000, "mono"),
        ("tel.wav", "wav", "pcm_s16le", 8000, "mono"),
    ],
)
def test_any_container_resampled_to_16k(tmp_path, name, fmt, codec, rate, layout):
    path = encode(tmp_path / name, fmt, codec, rate, layout)
    info = probe(path)
    assert info.sample_rate == rate
    channels = 1 if layout == "mono" else 2
    assert info.channels == channels
    audio, duration = read_all(path)
    assert audio.dtype == np.float32 and audio.shape[0] == channels
    assert duration == pytest.approx(1.0, abs=0.06)  # codecs add or trim a few ms of padding
    spectrum = np.abs(np.fft.rfft(audio[0, SAMPLE_RATE // 4 : SAMPLE_RATE // 4 + 4000]))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / 4000
    assert peak_hz == pytest.approx(440, abs=10)  # the tone survives decoding and resampling


def test_chunks_are_fixed_size_with_absolute_times(tmp_path):
    path = tmp_path / "s.wav"
    rate = 44100  # Hz: resampled on the way in
    left, right = tone_track([(0, 1)], 2.3, rate=rate), tone_track([(1, 2)], 2.3, rate=rate)
    write_wav(path, np.stack([left, right]), rate=rate)
    chunks = list(read_chunks(path, chunk_seconds=0.5))
    assert [c.start for c in chunks] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    assert all(c.samples.shape == (2, SAMPLE_RATE // 2) for c in chunks[:-1])
    assert chunks[-1].end == pytest.approx(2.3, abs=0.01)
    left = np.concatenate([c.samples[0] for c in chunks])
    right = np.concatenate([c.samples[1] for c in chunks])
    # channels stay apart: left has the tone in the first second, right in the second
    assert np.abs(left[:SAMPLE_RATE]).max() > 0.2 > np.abs(left[int(1.1 * SAMPLE_RATE) :]).max()
    assert (
        np.abs(right[int(1.1 * SAMPLE_RATE) : 2 * SAMPLE_RATE]).max()
        > 0.2
        > np.abs(right[: int(0.9 * SAMPLE_RATE)]).max()
    )


def test_chunks_stream_without_decoding_the_whole_file(tmp_path):
    path = tmp_path / "long.wav"
    write_wav(path, np.zeros((1, 60 * SAMPLE_RATE), np.float32))
    iterator = read_chunks(path, chunk_seconds=1.0)
    first = next(iterator)
    assert first.start == 0.0 and first.samples.shape == (1, SAMPLE_RATE)
    assert sum(1 for _ in iterator) == 59


def test_roles_by_channel():
    assert channel_roles(1) == ("unknown",)
    assert channel_roles(2) == ("agent", "customer")
    assert channel_roles(2, "right") == ("customer", "agent")
    with pytest.raises(AudioError, match="6 audio channels"):
        channel_roles(6)


def test_shared_stereo_call_probe():
    info = probe(SHARED / "calls" / "good_call.wav")
    assert (info.channels, info.sample_rate) == (2, 16000)
    assert info.duration == pytest.approx(91.8, abs=0.1)


# --- bad input: a typed AudioError with a one-line message, or a correct result ---------------------------


def bad_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.wav"
    write_wav(good, np.stack([tone_track([(0, 1)], 2.0)] * 2))
    data = good.read_bytes()
    files = {
        "empty": tmp_path / "empty.wav",
        "text": tmp_path / "notes.wav",
        "header": tmp_path / "header.wav",
        "missing": tmp_path / "missing.wav",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("这不是音频文件\n" * 50, encoding="utf-8")
    files["header"].write_bytes(data[:30])
    return files


@pytest.mark.parametrize("kind", ["empty", "text", "header", "missing"])
def test_bad_files_raise_one_line_audio_error(tmp_path, kind):
    path = bad_files(tmp_path)[kind]
    with pytest.raises(AudioError) as info:
        list(read_chunks(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    with pytest.raises(AudioError):
        probe(path)


def test_six_channels_refused_before_decoding(tmp_path):
    path = tmp_path / "six.wav"
    write_wav(path, np.zeros((6, SAMPLE_RATE), np.float32))
    assert probe(path).channels == 6
    with pytest.raises(AudioError, match="expected mono or stereo"):
        next(read_chunks(path))


def test_truncated_body_keeps_what_decoded(tmp_path):
    path = tmp_path / "cut.wav"
    write_wav(path, np.stack([tone_track([(0, 2)], 2.0)] * 2))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    audio, duration = read_all(path)
    assert audio.shape[0] == 2
    assert duration == pytest.approx(1.0, abs=0.05)


def test_silence_only_decodes(tmp_path):
    path = tmp_path / "silence.wav"
    write_wav(path, np.zeros((1, 3 * SAMPLE_RATE), np.float32))
    audio, duration = read_all(path)
    assert duration == pytest.approx(3.0) and not audio.any()


def test_no_samples_is_an_error(tmp_path):
    import wave

    path = tmp_path / "zero.wav"
    with wave.open(str(path), "wb") as out:  # a valid header and no frames
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
    with pytest.raises(AudioError):
        list(read_chunks(path))
