"""Audio in: decode any common container/codec with PyAV, resample to 16 kHz, stream fixed-size chunks.

Nothing here loads a whole file: :func:`read_chunks` decodes packet by packet and yields chunks of
``chunk_seconds`` with their absolute start time, one row per channel. Stereo keeps both channels
(contact-centre recorders put agent and customer on separate channels); mono is one channel whose
speaker is ``unknown``. Files with more than two channels are refused with :class:`AudioError`: there is
no honest way to tell which of six channels is the agent, so the user is asked to export mono or stereo.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from copilot.errors import AudioError
from copilot.types import Role

SAMPLE_RATE = 16000  # Hz: what Whisper and Silero VAD expect
CHUNK_SECONDS = 0.2  # s: default chunk length pushed into the streaming path (bounds commit delay)
MAX_CHANNELS = 2  # agent + customer; more channels have no role mapping
MIN_DURATION = 0.01  # s: below this a file carries no usable audio

_PLANAR_FLOAT = "fltp"  # PyAV sample format: planar float32, one row per channel


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, as read from its container (before resampling)."""

    path: str
    duration: float  # seconds; estimated from the container, exact after decoding
    channels: int
    sample_rate: int  # Hz, as stored
    codec: str
    container: str


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """A stretch of 16 kHz float32 audio; ``samples`` has shape (channels, n)."""

    start: float  # seconds from the start of the file
    samples: np.ndarray

    @property
    def end(self) -> float:
        return self.start + self.samples.shape[1] / SAMPLE_RATE

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])


def channel_roles(channels: int, agent_channel: str = "left") -> tuple[Role, ...]:
    """The speaker of each channel: stereo by recorder convention, mono ``unknown``."""
    if channels == 1:
        return ("unknown",)
    if channels == 2:
        return ("agent", "customer") if agent_channel == "left" else ("customer", "agent")
    raise AudioError(
        f"{channels} audio channels: expected mono or stereo (agent/customer); "
        "export the call as mono or as a two-channel recording"
    )


def _open(path: str | Path):  # -> av.container.InputContainer
    import av

    file = Path(path)
    problem = file_problem(file)
    if problem:
        raise AudioError(f"audio file {problem}: {file}")
    if file.stat().st_size == 0:
        raise AudioError(f"{file} is empty (0 bytes)")
    try:
        container = av.open(str(file), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise AudioError(f"{file} is not a readable audio file ({_reason(e)})") from e
    if not container.streams.audio:
        container.close()
        raise AudioError(f"{file} has no audio stream")
    return container


def file_problem(file: Path) -> str:
    """Why ``file`` cannot be read as a call ("" when it can): not found, a folder, or not a regular file
    (reading a FIFO blocks until a writer comes, /dev/zero never ends)."""
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        return "not found"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a pipe or a device)"
    return ""


def _reason(error: Exception) -> str:
    """A short, one-line reason from a PyAV/FFmpeg error."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())[:120]


def probe(path: str | Path) -> AudioInfo:
    """Duration, channel count, rate and codec from the container header."""
    container = _open(path)
    try:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000  # container duration is in microseconds
        else:
            duration = 0.0
        return AudioInfo(
            path=str(path),
            duration=duration,
            channels=int(stream.codec_context.channels),
            sample_rate=int(stream.codec_context.sample_rate or 0),
            codec=stream.codec_context.name,
            container=container.format.name,
        )
    finally:
        container.close()


def read_chunks(path: str | Path, chunk_seconds: float = CHUNK_SECONDS) -> Iterator[AudioChunk]:
    """Decode ``path`` and yield 16 kHz chunks of ``chunk_seconds`` (the last one may be shorter).

    Raises :class:`AudioError` for unreadable files, more than two channels, or no audio at all.
    Memory stays at a few chunks whatever the length of the file.
    """
    import av

    if chunk_seconds <= 0:
        raise AudioError(f"chunk length must be positive, got {chunk_seconds}")
    chunk_samples = max(1, round(chunk_seconds * SAMPLE_RATE))
    container = _open(path)
    try:
        stream = container.streams.audio[0]
        channels = int(stream.codec_context.channels)
        if channels < 1:
            raise AudioError(f"{path}: cannot tell the channel count of the audio stream")
        try:
            channel_roles(channels)  # refuse >2 channels before decoding anything
        except AudioError as e:
            raise AudioError(f"{path}: {e}") from e
        layout = "mono" if channels == 1 else "stereo"
        resampler = av.AudioResampler(format=_PLANAR_FLOAT, layout=layout, rate=SAMPLE_RATE)
        pending: list[np.ndarray] = []
        pending_len = 0
        emitted = 0  # samples already yielded: absolute time comes from this, never from pts
        try:
            frames = container.decode(stream)
            for frame in _with_flush(frames):
                for out in resampler.resample(frame):
                    block = out.to_ndarray().astype(np.float32, copy=False).reshape(channels, -1)
                    pending.append(block)
                    pending_len += block.shape[1]
                while pending_len >= chunk_samples:
                    buffer = np.concatenate(pending, axis=1)
                    yield AudioChunk(emitted / SAMPLE_RATE, np.ascontiguousarray(buffer[:, :chunk_samples]))
                    emitted += chunk_samples
                    rest = buffer[:, chunk_samples:]
                    pending, pending_len = ([rest], rest.shape[1]) if rest.shape[1] else ([], 0)
        except av.FFmpegError as e:
            if emitted + pending_len == 0:
                raise AudioError(f"{path} cannot be decoded ({_reason(e)})") from e
            # A truncated tail after good audio: keep what decoded, as players do.
        if emitted + pending_len < MIN_DURATION * SAMPLE_RATE:
            raise AudioError(f"{path} contains no audio samples")
        if pending_len:
            yield AudioChunk(emitted / SAMPLE_RATE, np.ascontiguousarray(np.concatenate(pending, axis=1)))
    finally:
        container.close()


def _with_flush(frames: Iterator) -> Iterator:
    """The decoded frames, then ``None`` so the resampler flushes its tail."""
    yield from frames
    yield None


def read_all(path: str | Path) -> tuple[np.ndarray, float]:
    """Decode a short file whole: (channels, n) float32 at 16 kHz and its duration. For tests and clips."""
    chunks = [c.samples for c in read_chunks(path, chunk_seconds=10.0)]
    audio = np.concatenate(chunks, axis=1)
    return audio, audio.shape[1] / SAMPLE_RATE
