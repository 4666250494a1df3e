"""Fakes for the transcription path: a scripted transcriber and an energy VAD.

``ScriptedTranscriber`` answers from a script of timed lines, so what it "hears" depends only on which
absolute stretch of audio it is given: a decode that covers a scripted line's midpoint returns that line.
It hears a line only where the audio it is given is not silent, and records every call, so tests can
check that no decode ever sees the whole call. Given the recording (``heard_from``), it finds each line's
middle in the audio by its samples instead, so a window packed from pieces of the call (silence cut out)
is heard as a real decoder hears it: each line where its audio is, on the window's own clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from copilot.transcription.audio import SAMPLE_RATE
from copilot.types import Segment, Word

ENERGY_THRESHOLD = 0.01  # RMS above which a frame counts as speech for the fake VAD


@dataclass(frozen=True)
class Line:
    start: float
    end: float
    text: str


@dataclass
class ScriptedTranscriber:
    lines: tuple[Line, ...]
    calls: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, prompt) of each decode
    word_times: list[bool | None] = field(default_factory=list)  # what each decode asked for
    # the recording's channels (channels, samples) as the product reads them: lines are found by their audio
    heard_from: np.ndarray | None = None

    def transcribe(
        self, audio: np.ndarray, *, start_time: float = 0.0, prompt: str = "", word_times: bool | None = None
    ) -> tuple[Segment, ...]:
        end_time = start_time + len(audio) / SAMPLE_RATE
        self.calls.append((start_time, end_time, prompt))
        self.word_times.append(word_times)
        out = []
        for line in self.lines:
            middle = (line.start + line.end) / 2
            if self.heard_from is not None:
                found = _found_at(audio, self.heard_from, middle)
                if found is None:
                    continue
                shift = start_time + found - middle  # from the call's clock to the window's
            # Like a real decoder, it hears a line only where the audio it was given is not silent.
            elif start_time <= middle <= end_time and _loud_at(audio, middle - start_time):
                shift = 0.0
            else:
                continue
            begin, step = line.start + shift, (line.end - line.start) / max(1, len(line.text))
            words = tuple(
                Word(ch, begin + i * step, begin + (i + 1) * step) for i, ch in enumerate(line.text)
            )
            out.append(Segment("unknown", begin, line.end + shift, line.text, words))
        return tuple(out)


FINGERPRINT = 128  # samples each side of a line's middle that must appear in a decode's audio


def _found_at(audio: np.ndarray, recording: np.ndarray, middle: float) -> float | None:
    """Where (s into ``audio``) the recording's audio around ``middle`` is, if ``audio`` holds it."""
    at = round(middle * SAMPLE_RATE)
    for channel in np.atleast_2d(recording):
        snippet = channel[at - FINGERPRINT : at + FINGERPRINT]
        if snippet.size < 2 * FINGERPRINT or not _loud_at(snippet, FINGERPRINT / SAMPLE_RATE):
            continue
        for j in np.flatnonzero(audio[: audio.size - snippet.size + 1] == snippet[0]):
            if np.array_equal(audio[j : j + snippet.size], snippet):
                return float(j + FINGERPRINT) / SAMPLE_RATE
    return None


def _loud_at(audio: np.ndarray, offset: float, half_window: float = 0.1) -> bool:
    lo = max(0, round((offset - half_window) * SAMPLE_RATE))
    hi = min(len(audio), round((offset + half_window) * SAMPLE_RATE))
    return hi > lo and float(np.sqrt(np.mean(np.square(audio[lo:hi])))) > ENERGY_THRESHOLD


class EnergyVad:
    """Speech probability 1.0 for frames whose RMS is above a threshold (stands in for Silero)."""

    def __init__(self) -> None:
        self.frames_seen = 0

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        self.frames_seen += len(frames)
        rms = np.sqrt(np.mean(np.square(frames), axis=1))
        return (rms > ENERGY_THRESHOLD).astype(np.float32)


def tone_track(
    spans: list[tuple[float, float]], duration: float, freq: float = 220.0, rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Mono float32 audio: a tone over each (start, end) span, silence elsewhere. A little fixed noise on
    the tone makes every stretch of it unique, so a fake can tell where a piece of it came from."""
    audio = np.zeros(int(duration * rate), dtype=np.float32)
    for start, end in spans:
        lo, hi = int(start * rate), int(end * rate)
        t = np.arange(hi - lo) / rate
        noise = np.random.default_rng(lo).standard_normal(hi - lo)
        audio[lo:hi] = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * noise
    return audio


def write_wav(path, channels: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Write (channels, n) float32 audio as 16-bit PCM WAV with PyAV."""
    import av

    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels.shape[0]]
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(channels, dtype=np.float32), format="fltp", layout=layout
        )
        frame.rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
