"""Streaming transcription of one channel: VAD end-of-utterance "two-pass".

A voice-activity detector (Silero, shipped inside faster-whisper as ONNX) marks each 32 ms frame as
speech or not. While someone speaks, a quick partial decode of the current utterance every
``partial_interval`` seconds gives tentative text; once they pause for ``min_silence`` seconds the
utterance is decoded once more and committed. Each decode sees only the current utterance, never the
whole call, so the cost per chunk stays flat however long the call runs.

The decision of *when* to decode lives in :class:`EndpointPolicy`, a small pure class with no model
inside; :class:`ChannelStream` wires it to a VAD and a transcriber. Each channel (role) gets its own
stream; :func:`merge_segments` orders what both committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from copilot.errors import AudioError
from copilot.transcription.audio import SAMPLE_RATE
from copilot.types import Committed, Role, Segment, StreamEvent, TentativeText, Word

FRAME_SAMPLES = 512  # samples: Silero VAD's window at 16 kHz
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE  # 0.032 s
VAD_CONTEXT_SAMPLES = 64  # samples of the previous window Silero v5+/v6 expects in front of each window
VAD_STATE_SHAPE = (1, 1, 128)  # Silero's LSTM state
HYSTERESIS = 0.15  # once in speech, stay there until the probability drops this far below threshold
TIME_TOLERANCE = 1e-3  # s: chunks further apart than this are not contiguous


class Transcriber(Protocol):
    """What the streaming path needs from an ASR backend (``copilot.transcription.asr`` implements it)."""

    def transcribe(
        self, audio: np.ndarray, *, start_time: float = 0.0, prompt: str = "", word_times: bool | None = None
    ) -> tuple[Segment, ...]: ...


class Vad(Protocol):
    """Stateful speech probability per 512-sample frame; frames arrive in order across calls."""

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` shape (n, FRAME_SAMPLES) float32 -> n probabilities in [0, 1]."""
        ...


@dataclass(frozen=True)
class StreamOptions:
    threshold: float = 0.5  # Silero probability at which a frame becomes speech ("lazy 0.5" upstream)
    min_silence: float = 0.4  # s of silence that ends an utterance: the main latency knob
    # s of silence after which the final decode starts speculatively, so the commit is ready when
    # min_silence is reached; wasted if speech resumes. None: decode only at min_silence (offline).
    early_silence: float | None = 0.15
    min_speech: float = 0.25  # s: shorter bursts (clicks, breaths) are dropped undecoded
    partial_interval: float = 1.0  # s between tentative decodes while someone speaks
    partials: bool = True  # False: commits only (offline replay does not need tentative text)
    max_utterance: float = 20.0  # s: a longer utterance is cut at its latest pause (or hard) and committed
    cut_pause: float = 0.15  # s: a pause at least this long is a good place for a forced cut
    pad: float = 0.2  # s of audio kept each side of the speech for the decoder
    # s of the channel's own audio before the utterance that its final decode reads (never reaching back
    # into the previous utterance): Whisper reads speech better from a lead-in, as the offline windows do.
    # bench_transcription --paths live, tuning half, live/plain CER: calls 0.992 -> 0.970, clips 1.060 -> 1.038
    lead: float = 1.0

    def validated(self) -> StreamOptions:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
        if self.min_silence <= 0 or self.partial_interval <= 0 or self.pad < 0 or self.lead < 0:
            raise ValueError("min_silence and partial_interval must be positive, pad and lead non-negative")
        if self.early_silence is not None and not 0 < self.early_silence < self.min_silence:
            raise ValueError("early_silence must be between 0 and min_silence")
        if self.max_utterance <= 2 * self.min_silence:
            raise ValueError("max_utterance must be well above min_silence")
        return self


# --- the pure policy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Partial:
    """Decode [start, end] quickly for tentative text."""

    start: float
    end: float


@dataclass(frozen=True)
class Prepare:
    """Decode [start, end] now, in case a Finalize with the same bounds follows."""

    start: float
    end: float


@dataclass(frozen=True)
class Finalize:
    """Decode [start, end] once and commit it."""

    start: float
    end: float


@dataclass(frozen=True)
class Discard:
    """[start, end] was too short to be speech: drop it (and clear any tentative text)."""

    start: float
    end: float


Action = Partial | Prepare | Finalize | Discard


class EndpointPolicy:
    """Turns per-frame speech decisions into decode actions. Pure: no audio, no model.

    Feed it ``update(end_time, is_speech)`` once per VAD frame (``end_time`` = absolute end of the
    frame) and ``flush(end_time)`` at the end of the stream.
    """

    def __init__(self, options: StreamOptions = StreamOptions(), frame: float = FRAME_SECONDS) -> None:
        self.options = options.validated()
        self.frame = frame
        self._start: float | None = None  # start of the current utterance, None when idle
        self._last_speech = 0.0  # end of the latest speech frame
        self._speech = 0.0  # s of speech frames in the current utterance
        self._last_partial = 0.0
        self._pause_cut: float | None = None  # middle of the latest usable pause inside the utterance
        self._prepared = False  # a Prepare was sent for the current pause

    @property
    def active_start(self) -> float | None:
        """Start of the utterance in progress, if any (audio before it minus ``pad`` can be dropped)."""
        return self._start

    def update(self, t: float, speech: bool) -> list[Action]:
        o = self.options
        if self._start is None:
            if speech:
                self._begin(t - self.frame, t)
            return []
        actions: list[Action] = []
        if speech:
            gap = t - self.frame - self._last_speech
            if gap >= o.cut_pause - 1e-9:
                self._pause_cut = self._last_speech + gap / 2
            self._last_speech = t
            self._speech += self.frame
            self._prepared = False
            if t - self._start >= o.max_utterance:
                cut = self._pause_cut if self._pause_cut is not None else t
                actions.append(Finalize(self._start, cut))
                self._begin(cut, t)
            elif o.partials and t - self._last_partial >= o.partial_interval - 1e-9:
                actions.append(Partial(self._start, t))
                self._last_partial = t
            return actions
        silence = t - self._last_speech
        if silence >= o.min_silence - 1e-9:
            actions.append(self._close())
        elif (
            o.early_silence is not None
            and not self._prepared
            and silence >= o.early_silence - 1e-9
            and self._speech >= o.min_speech - 1e-9
        ):
            actions.append(Prepare(self._start, self._last_speech))
            self._prepared = True
        return actions

    def flush(self, t: float) -> list[Action]:
        """End of stream: close the utterance in progress."""
        return [self._close()] if self._start is not None else []

    def _begin(self, start: float, t: float) -> None:
        self._start = start
        self._last_speech = t
        self._speech = t - start
        self._last_partial = t
        self._pause_cut = None
        self._prepared = False

    def _close(self) -> Action:
        assert self._start is not None
        start, end = self._start, self._last_speech
        long_enough = self._speech >= self.options.min_speech - 1e-9
        self._start = None
        self._pause_cut = None
        return Finalize(start, end) if long_enough else Discard(start, end)


def speech_decisions(probabilities: Iterable[float], threshold: float, was_speech: bool) -> list[bool]:
    """Threshold with hysteresis (as Silero's own ``neg_threshold``): fewer flickers inside words."""
    out: list[bool] = []
    for p in probabilities:
        was_speech = p >= threshold or (was_speech and p >= threshold - HYSTERESIS)
        out.append(was_speech)
    return out


# --- the VAD -------------------------------------------------------------------------------------


class SileroVad:
    """Silero VAD v6 (the ONNX file faster-whisper ships), with its state carried across calls."""

    def __init__(self) -> None:
        import os

        import onnxruntime
        from faster_whisper.utils import get_assets_path

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1  # tiny model: one thread, leave the cores to Whisper
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
        self._session = onnxruntime.InferenceSession(
            path, providers=["CPUExecutionProvider"], sess_options=options
        )
        self._h = np.zeros(VAD_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(VAD_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(VAD_CONTEXT_SAMPLES, dtype=np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros(0, dtype=np.float32)
        previous = np.concatenate([self._context[None], frames[:-1, -VAD_CONTEXT_SAMPLES:]], axis=0)
        batch = np.concatenate([previous, frames], axis=1).astype(np.float32, copy=False)
        probs, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = frames[-1, -VAD_CONTEXT_SAMPLES:].copy()
        return np.asarray(probs, dtype=np.float32).reshape(-1)


# --- one channel's stream ------------------------------------------------------------------------------


class ChannelStream:
    """Streaming transcription of one speaker's channel.

    ``push(samples, start)`` takes contiguous mono 16 kHz float32 audio and returns the events it caused;
    ``flush()`` closes the stream. Audio is kept only from the current utterance (plus ``pad``).
    """

    def __init__(
        self,
        speaker: Role,
        transcriber: Transcriber,
        vad: Vad,
        options: StreamOptions = StreamOptions(),
        *,
        partial_transcriber: Transcriber | None = None,
    ) -> None:
        self.speaker = speaker
        self.options = options.validated()
        self.policy = EndpointPolicy(self.options)
        self._final = transcriber
        self._partial = partial_transcriber or transcriber
        self._vad = vad
        self._buffer = np.zeros(0, dtype=np.float32)  # audio from _buffer_start on
        self._buffer_start: float | None = None
        self._vad_pos = 0  # samples of the buffer already seen by the VAD
        self._in_speech = False
        self._shown = False  # tentative text is on screen and needs clearing if nothing commits
        self._prepared: tuple[Prepare, tuple[Segment, ...]] | None = None  # speculative final decode
        self._said_to = float("-inf")  # end of the last committed utterance: a lead-in stops short of it

    @property
    def time(self) -> float:
        """Absolute end of the audio pushed so far."""
        start = self._buffer_start or 0.0
        return start + len(self._buffer) / SAMPLE_RATE

    def push(self, samples: np.ndarray, start: float, *, allow_partial: bool = True) -> list[StreamEvent]:
        """Add audio that starts at ``start`` s; ``allow_partial=False`` skips tentative decodes (when behind)."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._buffer_start is None:
            self._buffer_start = start
        elif abs(start - self.time) > TIME_TOLERANCE:
            raise AudioError(
                f"{self.speaker} stream: chunk at {start:.3f} s does not follow {self.time:.3f} s"
            )
        self._buffer = np.concatenate([self._buffer, samples])
        actions: list[Action] = []
        usable = (len(self._buffer) - self._vad_pos) // FRAME_SAMPLES
        if usable:
            frames = self._buffer[self._vad_pos : self._vad_pos + usable * FRAME_SAMPLES]
            probs = self._vad(frames.reshape(usable, FRAME_SAMPLES))
            decisions = speech_decisions(probs, self.options.threshold, self._in_speech)
            first_end = self._buffer_start + self._vad_pos / SAMPLE_RATE + FRAME_SECONDS
            for i, speech in enumerate(decisions):
                actions += self.policy.update(first_end + i * FRAME_SECONDS, speech)
            self._in_speech = decisions[-1]
            self._vad_pos += usable * FRAME_SAMPLES
        events = self._run(actions, allow_partial)
        self._trim()
        return events

    def flush(self) -> list[StreamEvent]:
        """End of audio: commit the utterance in progress."""
        events = self._run(self.policy.flush(self.time), allow_partial=False)
        self._trim()
        return events

    def _run(self, actions: Sequence[Action], allow_partial: bool) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        last_partial = max((i for i, a in enumerate(actions) if isinstance(a, Partial)), default=-1)
        for i, action in enumerate(actions):
            if isinstance(action, Prepare):
                if not any(isinstance(a, Finalize | Discard) for a in actions[i + 1 :]):
                    audio, begin = self._slice(action.start, action.end, final=True)
                    self._prepared = (action, self._final.transcribe(audio, start_time=begin))
            elif isinstance(action, Finalize):
                events += self._commit(action)
            elif isinstance(action, Discard):
                self._prepared = None
                events += self._clear(action.start)
            elif (
                allow_partial
                and i == last_partial
                and not any(isinstance(a, Finalize | Discard) for a in actions[i + 1 :])
            ):
                # Only the latest partial of a push is worth its decode; a later commit supersedes it.
                events += self._tentative(action)
        return events

    def _slice(self, start: float, end: float, *, final: bool = False) -> tuple[np.ndarray, float]:
        """The utterance's audio with ``pad`` each side; a final decode's starts ``lead`` early, but after the
        previous utterance (its words would be written twice)."""
        assert self._buffer_start is not None
        begin = max(self._buffer_start, start - self.options.pad)
        if final:
            lead_from = max(start - self.options.lead, self._said_to + self.options.pad)
            begin = max(self._buffer_start, min(begin, lead_from))
        stop = min(self.time, end + self.options.pad)
        lo = round((begin - self._buffer_start) * SAMPLE_RATE)
        hi = round((stop - self._buffer_start) * SAMPLE_RATE)
        return self._buffer[lo:hi], begin

    def _tentative(self, action: Partial) -> list[StreamEvent]:
        audio, begin = self._slice(action.start, action.end)
        segments = self._partial.transcribe(audio, start_time=begin)
        text = "".join(s.text for s in segments).strip()
        if not text:
            return []
        self._shown = True
        return [TentativeText(self.speaker, action.start, text)]

    def _commit(self, action: Finalize) -> list[StreamEvent]:
        prepared, self._prepared = self._prepared, None
        if prepared is not None and (prepared[0].start, prepared[0].end) == (action.start, action.end):
            segments = prepared[1]  # decoded during the pause: the commit costs nothing now
        else:
            audio, begin = self._slice(action.start, action.end, final=True)
            segments = self._final.transcribe(audio, start_time=begin)
        self._said_to = action.end
        segment = utterance_segment(self.speaker, action.start, action.end, segments)
        if segment is None:
            return self._clear(action.start)
        self._shown = False
        return [Committed(segment)]

    def _clear(self, start: float) -> list[StreamEvent]:
        if not self._shown:
            return []
        self._shown = False
        return [TentativeText(self.speaker, start, "")]

    def _trim(self) -> None:
        """Drop audio no future decode can need: before the utterance (or now) minus the pad or lead-in."""
        assert self._buffer_start is not None
        active = self.policy.active_start
        kept_before = max(self.options.pad, self.options.lead)
        keep_from = (active if active is not None else self.time) - kept_before - FRAME_SECONDS
        drop = int((keep_from - self._buffer_start) * SAMPLE_RATE)
        drop = min(max(0, drop), self._vad_pos)  # never drop audio the VAD has not seen
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop / SAMPLE_RATE
            self._vad_pos -= drop


def utterance_segment(speaker: Role, start: float, end: float, decoded: Sequence[Segment]) -> Segment | None:
    """One committed segment per utterance: the VAD's bounds, the decoder's text and words."""
    text = "".join(s.text.strip() for s in decoded).strip()
    if not text:
        return None
    words: tuple[Word, ...] = tuple(
        replace(w, start=min(max(w.start, start), end), end=min(max(w.end, start), end))
        for s in decoded
        for w in s.words
    )
    return Segment(speaker=speaker, start=round(start, 3), end=round(end, 3), text=text, words=words)


def merge_segments(*streams: Iterable[Segment]) -> tuple[Segment, ...]:
    """All channels' committed segments in time order (ties: the earlier end first)."""
    return tuple(sorted((s for stream in streams for s in stream), key=lambda s: (s.start, s.end)))
