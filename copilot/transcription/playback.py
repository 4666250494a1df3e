"""Transcribe a file by replaying it through the streaming path.

Offline transcription and the live view run the same code: :func:`replay` reads the file chunk by
chunk, pushes each channel into its own :class:`~copilot.transcription.streaming.ChannelStream` and yields the events.
With ``speed=None`` the clock is simulated (no sleeping: as fast as the decoder goes); with a ``speed``
the chunks are paced against a real clock, ``speed`` times faster than real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from copilot.config import AsrConfig
from copilot.transcription.audio import CHUNK_SECONDS, SAMPLE_RATE, channel_roles, read_all, read_chunks
from copilot.transcription.streaming import (
    ChannelStream,
    SileroVad,
    StreamOptions,
    Transcriber,
    Vad,
    merge_segments,
    utterance_segment,
)
from copilot.types import Committed, Role, Segment, StreamEvent, Transcript, Word

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


def stream_options(options: StreamOptions, role: Role, config: AsrConfig) -> StreamOptions:
    """A channel's stream options: no tentative text on the agent's channel unless ``agent_partials``."""
    if role == "agent" and not config.agent_partials:
        return replace(options, partials=False)
    return options


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
                    role,
                    transcriber,
                    make_vad(),
                    stream_options(options.stream, role, config),
                    partial_transcriber=partial_transcriber,
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


WINDOW_SECONDS = 30.0  # s of one channel's speech decoded together offline: one Whisper window
PACK_GAP_SECONDS = 0.5  # silence put between packed utterances: Whisper ends a segment at a pause


@dataclass
class _Clip:
    """One utterance found by the stream's VAD: its committed bounds and the padded audio around it."""

    speaker: Role
    start: float  # committed bounds (VAD)
    end: float
    begin: float  # absolute time of audio[0]
    audio: np.ndarray

    @property
    def stop(self) -> float:
        return self.begin + len(self.audio) / SAMPLE_RATE


class _Recorder:
    """A Transcriber that decodes nothing: it keeps each utterance's audio for a batched decode later."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, np.ndarray]] = []

    def transcribe(
        self, audio: np.ndarray, *, start_time: float = 0.0, prompt: str = "", word_times: bool | None = None
    ) -> tuple[Segment, ...]:
        self.pending.append((start_time, np.array(audio, dtype=np.float32, copy=True)))
        end = start_time + len(audio) / SAMPLE_RATE
        return (Segment("unknown", start_time, end, "…"),)  # a placeholder so the stream commits


def _packed_seconds(clip: _Clip) -> float:
    """At most how long ``clip`` is in a packed window: its speech with the lead-in or the pause before it."""
    return clip.stop - clip.start + LEAD_SECONDS


def _windows(clips: list[_Clip]) -> list[list[_Clip]]:
    """Consecutive utterances of one speaker grouped so that their audio, packed, fits one window."""
    groups: list[list[_Clip]] = []
    length = 0.0
    for clip in clips:
        seconds = _packed_seconds(clip)
        if groups and length + seconds <= WINDOW_SECONDS:
            groups[-1].append(clip)
            length += seconds
        else:
            groups.append([clip])
            length = seconds
    return groups


def _pieces(
    group: list[_Clip], channel: np.ndarray | None, not_before: float
) -> list[tuple[float, np.ndarray]]:
    """Each utterance's audio for a packed window, with the call-clock time of its first sample. From the
    ``channel``, an utterance starts up to ``LEAD_SECONDS`` early (Whisper reads a clip better from its own
    lead-in: one meeting clip CER 0.24 from 0 s, 0.43 from 0.3 s), never before the audio already packed;
    without it, the utterances' own padded audio with a short pause between."""
    pieces: list[tuple[float, np.ndarray]] = []
    if channel is None:
        gap = np.zeros(round(PACK_GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
        for i, clip in enumerate(group):
            pause = gap if i else gap[:0]
            pieces.append((clip.begin - pause.size / SAMPLE_RATE, np.concatenate([pause, clip.audio])))
        return pieces
    done = not_before
    for i, clip in enumerate(group):
        if not i:
            begin = max(done, clip.start - LEAD_SECONDS, 0.0)
        elif clip.start - done <= KEEP_PAUSE_SECONDS:
            begin = done  # a pause within the speaker's turn stays as it was said
        else:
            begin = clip.start - PACK_GAP_SECONDS  # the other party's turn in between: a short pause instead
        at, stop = round(begin * SAMPLE_RATE), round(clip.stop * SAMPLE_RATE)
        pieces.append((begin, np.ascontiguousarray(channel[at:stop])))
        done = max(done, clip.stop)
    return pieces


def _decode_window(
    group: list[_Clip],
    transcriber: Transcriber,
    prompt: str = "",
    channel: np.ndarray | None = None,
    not_before: float = 0.0,
) -> list[Segment]:
    """Decode a group of utterances in one pass: their audio packed end to end (the call's silence between
    them is not decoded, as faster-whisper's VAD does it). Each decoded word goes to the utterance it falls
    in, on the call's clock; word times are asked for only when the window holds several utterances (they
    cost several times the decode's CPU)."""
    pieces = _pieces(group, channel, not_before)
    # The packed window starts on the call's clock (a window of one utterance is not moved at all); each
    # later piece sits earlier in it than in the call by the silence cut out before it.
    start = pieces[0][0]
    offsets: list[float] = []  # where each piece starts on the packed window's clock
    packed = 0
    for _, audio in pieces:
        offsets.append(start + packed / SAMPLE_RATE)
        packed += audio.size

    def owner(t: float) -> int:
        return max((i for i, o in enumerate(offsets) if o <= t), default=0)

    def on_call_clock(i: int, t: float) -> float:
        return pieces[i][0] + t - offsets[i]

    decoded = transcriber.transcribe(
        np.concatenate([audio for _, audio in pieces]),
        start_time=start,
        prompt=prompt,
        word_times=True if len(group) > 1 else None,
    )
    words: list[list[Word]] = [[] for _ in group]
    texts: list[list[str]] = [[] for _ in group]
    for segment in decoded:
        for word in segment.words or (Word(segment.text, segment.start, segment.end),):
            i = owner((word.start + word.end) / 2)
            texts[i].append(word.text)
            if segment.words:
                words[i].append(
                    replace(word, start=on_call_clock(i, word.start), end=on_call_clock(i, word.end))
                )
    result = []
    for clip, clip_words, clip_texts in zip(group, words, texts, strict=True):
        if not clip_texts and len(group) > 1:
            # Whisper sometimes ends a window's text early and skips the rest (a 22-s customer window lost
            # its last two utterances): an utterance no decoded text covers is decoded on its own.
            alone = transcriber.transcribe(clip.audio, start_time=clip.begin, prompt=prompt)
            clip_texts = [s.text for s in alone]
        said = [Segment(clip.speaker, clip.start, clip.end, "".join(clip_texts), tuple(clip_words))]
        committed = utterance_segment(clip.speaker, clip.start, clip.end, said)
        if committed is not None:
            result.append(committed)
    return result


def transcribe_file(
    path: str | Path,
    config: AsrConfig,
    transcriber: Transcriber,
    *,
    options: ReplayOptions = OFFLINE,
    vad_factory: Callable[[], Vad] | None = None,
    batched: bool = True,
) -> Transcript:
    """The committed segments of a whole file (simulated clock, no tentative decodes), ordered by time.

    The same streaming path as live finds the utterances; with ``batched`` (default) the decoder then reads
    up to ``WINDOW_SECONDS`` of one channel's utterances per pass, packed (a pause within a turn kept, the
    other party's turn cut to a short pause), instead of one pass per utterance: Whisper pays a full 30 s
    encoder pass either way. eval/bench_transcription.py, tuning half: realcalls CER 0.940 -> 0.785 of plain
    faster-whisper's, at 1.0x its CPU instead of 2.5x (the windows with silence between, and the
    trailing-pad decodes asr.TAIL_SECONDS now skips).
    """
    options = replace(options, speed=None)
    recorder = _Recorder() if batched else None
    committed: list[Segment] = []
    clips: list[_Clip] = []
    duration = 0.0
    for timed in replay(path, config, recorder or transcriber, options, vad_factory=vad_factory):
        if isinstance(timed.event, Committed):
            segment = timed.event.segment
            if recorder is None:
                committed.append(segment)
            else:
                begin, audio = recorder.pending.pop()
                clips.append(_Clip(segment.speaker, segment.start, segment.end, begin, audio))
        elif isinstance(timed.event, EndOfAudio):
            duration = timed.event.duration
    channels: dict[Role, np.ndarray] = {}
    if recorder is not None and duration <= WHOLE_READ_SECONDS:
        audio, _ = read_all(path)
        channels = dict(zip(channel_roles(audio.shape[0], config.agent_channel), audio, strict=True))
        clips += _unheard_channels(channels, {c.speaker for c in clips})
    speakers = dict.fromkeys(c.speaker for c in clips)
    groups = [g for s in speakers for g in _windows([c for c in clips if c.speaker == s])]
    decoded_to: dict[Role, float] = {}  # where each channel's last window ended
    for group in sorted(groups, key=lambda g: g[0].start):  # in call order: earlier text is the prompt
        speaker = group[0].speaker
        context = _call_context(committed, group[0].start)
        channel = channels.get(speaker)
        committed += _decode_window(group, transcriber, context, channel, decoded_to.get(speaker, 0.0))
        decoded_to[speaker] = group[-1].stop
    return Transcript(source=str(path), duration=duration, segments=merge_segments(committed))


# Files up to this long are read whole once more for their windows (real gaps, lead-in) and the check for
# channels the VAD missed: 20 min of stereo is ~150 MB of float32. Longer ones keep memory flat (an hour
# of audio must not need GBs): their windows are the utterances' own audio with silent gaps.
WHOLE_READ_SECONDS = 1200.0
# s of the recording decoded before a window's first utterance (beyond the stream's pad): Whisper starts
# better from the recording's own lead-in, as plain Whisper reads a clip from 0 (one meeting clip: CER 0.24
# from 0 s, 0.43 from 0.3 s, the utterance's start minus the pad)
LEAD_SECONDS = 1.0
# A pause between two utterances of one speaker up to this long is packed whole (a pause within a turn:
# the meeting clip lost words when its pauses were cut to 0.5 s, CER 0.24 -> 0.36); a longer one (the other
# party speaking) becomes PACK_GAP_SECONDS. Tuning half, synthetic calls CER/plain: 0.808 with every pause cut
# to 1.0 s, 0.885 with pauses up to 2 s kept, 0.846 with up to 1 s kept; real-clip calls 0.785 with both.
KEEP_PAUSE_SECONDS = 1.0


# A channel whose VAD found no speech at all is decoded whole when it is louder than this (RMS, full scale
# 1.0; about -40 dBFS): Silero misses some telephone-band speech entirely (a 1.8-s 8 kHz clip peaked at 0.22
# against its 0.5 threshold), while a muted or idle channel stays well below. Whisper's own no-speech and
# log-probability guards (asr.is_silence_hallucination) still drop what it writes over noise.
UNHEARD_MIN_RMS = 0.01


def _unheard_channels(channels: dict[Role, np.ndarray], heard: set[Role]) -> list[_Clip]:
    """The channels with signal but no utterance from the VAD, as one-window clips of their whole audio."""
    step = round(WINDOW_SECONDS * SAMPLE_RATE)
    out = []
    for role, samples in channels.items():
        if role in heard or float(np.sqrt(np.mean(np.square(samples)))) < UNHEARD_MIN_RMS:
            continue
        for at in range(0, samples.size, step):
            piece = samples[at : at + step]
            begin = at / SAMPLE_RATE
            out.append(_Clip(role, begin, begin + piece.size / SAMPLE_RATE, begin, piece))
    return out


def _call_context(segments: list[Segment], before: float) -> str:
    """What both parties said before ``before``, in time order: the prompt of the window starting there."""
    return "".join(s.text for s in merge_segments(segments) if s.start < before)
