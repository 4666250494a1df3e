"""Transcribe a file by replaying it through the streaming path.

Offline transcription and the live view run the same code: :func:`replay` reads the file chunk by
chunk, pushes each channel into its own :class:`~copilot.streaming.ChannelStream` and yields the events.
With ``speed=None`` the clock is simulated (no sleeping: as fast as the decoder goes); with a ``speed``
the chunks are paced against a real clock, ``speed`` times faster than real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from copilot.audio import CHUNK_SECONDS, channel_roles, read_chunks
from copilot.config import AsrConfig
from copilot.streaming import ChannelStream, SileroVad, StreamOptions, Transcriber, Vad, merge_segments
from copilot.types import Committed, Segment, StreamEvent, Transcript

BEHIND_SECONDS = 1.0  # s: when live processing lags the clock by more, skip tentative decodes to catch up


@dataclass(frozen=True)
class ReplayOptions:
    chunk_seconds: float = CHUNK_SECONDS  # size of the chunks pushed into the streams
    speed: float | None = None  # None = simulated clock (offline); N = real clock, N x real time
    stream: StreamOptions = field(default_factory=StreamOptions)


# A file needs commits only: no tentative text, no speculative decodes (no one waits for them).
OFFLINE = ReplayOptions(stream=StreamOptions(partials=False, early_silence=None))


@dataclass(frozen=True)
class EndOfAudio:
    """The last event of a replay: every stream has been flushed."""

    duration: float  # s of audio decoded


@dataclass(frozen=True)
class TimedEvent:
    """An event with the audio time it was produced at (end of the chunk that caused it)."""

    audio_time: float
    event: StreamEvent | EndOfAudio


def replay(
    path: str | Path,
    config: AsrConfig,
    transcriber: Transcriber,
    options: ReplayOptions = ReplayOptions(),
    *,
    partial_transcriber: Transcriber | None = None,
    vad_factory: Callable[[], Vad] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[TimedEvent]:
    """Yield tentative and committed events while streaming ``path`` through one stream per channel.

    The last event is :class:`EndOfAudio`. Raises :class:`~copilot.errors.AudioError` for a bad file.
    """
    if options.speed is not None and options.speed <= 0:
        raise ValueError("speed must be positive")
    make_vad = vad_factory or SileroVad  # looked up at call time: one VAD state per channel
    streams: list[ChannelStream] = []
    started = clock()
    audio_time = 0.0
    for chunk in read_chunks(path, options.chunk_seconds):
        if not streams:
            roles = channel_roles(chunk.channels, config.agent_channel)
            streams = [
                ChannelStream(
                    role, transcriber, make_vad(), options.stream, partial_transcriber=partial_transcriber
                )
                for role in roles
            ]
        allow_partial = True
        if options.speed is not None:
            due = started + chunk.end / options.speed  # the chunk "arrives" when its audio has played
            lag = clock() - due
            if lag < 0:
                sleep(-lag)
            allow_partial = lag * options.speed < BEHIND_SECONDS
        audio_time = chunk.end
        for stream, samples in zip(streams, chunk.samples, strict=True):
            for event in stream.push(samples, chunk.start, allow_partial=allow_partial):
                yield TimedEvent(audio_time, event)
    for stream in streams:
        for event in stream.flush():
            yield TimedEvent(audio_time, event)
    yield TimedEvent(audio_time, EndOfAudio(round(audio_time, 3)))


def transcribe_file(
    path: str | Path,
    config: AsrConfig,
    transcriber: Transcriber,
    *,
    options: ReplayOptions = OFFLINE,
    vad_factory: Callable[[], Vad] | None = None,
) -> Transcript:
    """The committed segments of a whole file (simulated clock, no tentative decodes), ordered by time."""
    options = replace(options, speed=None)
    committed: list[Segment] = []
    duration = 0.0
    for timed in replay(path, config, transcriber, options, vad_factory=vad_factory):
        if isinstance(timed.event, Committed):
            committed.append(timed.event.segment)
        elif isinstance(timed.event, EndOfAudio):
            duration = timed.event.duration
    return Transcript(source=str(path), duration=duration, segments=merge_segments(committed))
