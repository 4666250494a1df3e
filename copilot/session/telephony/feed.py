"""One phone call's audio into one :class:`~copilot.session.call.CallSession`.

The network side (RTP sockets, a WebSocket) hands each role's decoded 8 kHz samples to :meth:`PhoneCall.receive`
as they arrive; :meth:`PhoneCall.tick` (every few tens of milliseconds, on the same loop) takes both roles'
audio up to the same point of the call clock off their :class:`~copilot.session.telephony.rtp.StreamTimeline`
and queues it. A worker thread per call resamples each role to 16 kHz, pushes it through that role's
:class:`~copilot.transcription.streaming.ChannelStream` (the same streaming path as a replayed recording) and
gives the events to the session, which runs the rules and the suggestions. The clock moves on when a party is
silent (silence suppression sends nothing), so utterances still end; audio sent faster than real time moves it
on faster. When the call ends the streams are flushed, the session finishes, and ``on_finished`` runs in the
worker (the service stores the review there).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from copilot.config import AsrConfig
from copilot.errors import CopilotError
from copilot.session.call import CallSession
from copilot.session.telephony.rtp import StreamTimeline
from copilot.transcription.audio import CHUNK_SECONDS, SAMPLE_RATE
from copilot.transcription.playback import BEHIND_SECONDS, stream_options
from copilot.transcription.streaming import ChannelStream, StreamOptions, Transcriber, Vad
from copilot.types import Committed, Role, Segment, StreamEvent

log = logging.getLogger(__name__)

ROLES: tuple[Role, Role] = ("agent", "customer")
PHONE_RATE = 8000  # Hz: G.711 and the media streams' μ-law
MIN_CHUNK_SECONDS = 0.1  # audio is queued to the decoder in pieces at least this long
INT16_SCALE = 32768.0


class Resampler:
    """A stateful resampler of one role's int16 audio to 16 kHz float32 (PyAV's, as for recordings)."""

    def __init__(self, rate: int) -> None:
        import av

        self.rate = rate
        self._av = av
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=SAMPLE_RATE)

    def push(self, samples: np.ndarray | None) -> np.ndarray:
        """``samples`` at ``rate``; None flushes what the filter still holds."""
        frame = None
        if samples is not None:
            if self.rate == SAMPLE_RATE:
                return samples.astype(np.float32) / INT16_SCALE
            if not len(samples):
                return np.zeros(0, dtype=np.float32)
            frame = self._av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = self.rate
        elif self.rate == SAMPLE_RATE:
            return np.zeros(0, dtype=np.float32)
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)


class PromptEchoGuard:
    """Drops decoded text that only repeats the decoder's initial prompt.

    Whisper base answers some short narrowband (8 kHz) clips with its own prompt: bad_call's first agent turn
    ("喂，什么事？") decodes as "以下是普通话的句子。" from the 8-kHz leg, with or without μ-law, and correctly
    from the 16-kHz recording. A missing line is better than a line the agent never said.
    """

    def __init__(self, transcriber: Transcriber, prompt: str) -> None:
        self._inner = transcriber
        self._echo = _bare(prompt)

    def transcribe(
        self, audio: np.ndarray, *, start_time: float = 0.0, prompt: str = "", word_times: bool | None = None
    ) -> tuple[Segment, ...]:
        decoded = self._inner.transcribe(audio, start_time=start_time, prompt=prompt, word_times=word_times)
        if not self._echo:
            return decoded
        return tuple(s for s in decoded if _bare(s.text) != self._echo)


def _bare(text: str) -> str:
    """Text without punctuation or spaces (what is left to compare)."""
    return "".join(ch for ch in text if ch.isalnum())


@dataclass(frozen=True)
class CommitLag:
    """How long after the end of an utterance (on the call clock) its text was committed."""

    role: Role
    end: float  # s into the call
    lag: float  # s


@dataclass(frozen=True)
class PhoneCallInfo:
    call_id: str
    extension: str  # the agent's, "" when unknown
    source: str  # "siprec" or "media-stream"
    started_at: float = field(default_factory=time.time)  # wall clock, for the stored date


class PhoneCall:
    """The audio of one call (agent and customer) feeding one session, on the call's own clock."""

    def __init__(
        self,
        info: PhoneCallInfo,
        session: CallSession,
        asr: AsrConfig,
        transcriber: Transcriber,
        vad_factory: Callable[[], Vad],
        *,
        rate: int = PHONE_RATE,
        jitter_seconds: float = 0.2,
        recording: Path | None = None,
        agent_channel: str = "left",
        on_finished: Callable[[PhoneCall], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.info = info
        self.session = session
        self.rate = rate
        self.recording = recording
        self._clock = clock
        self._started = clock()
        self._jitter = round(jitter_seconds * rate)
        self._min_chunk = round(MIN_CHUNK_SECONDS * rate)
        self.timelines = {role: StreamTimeline(rate) for role in ROLES}
        self._last_media = self._started
        self._queue: queue.Queue[tuple[int, dict[Role, np.ndarray]] | None] = queue.Queue()
        self._ended = False
        self._lock = threading.Lock()
        self.lags: list[CommitLag] = []
        self.errors: list[str] = []
        self._on_finished = on_finished
        self._wav: wave.Wave_write | None = None
        self._channels = ROLES if agent_channel == "left" else (ROLES[1], ROLES[0])
        if recording is not None:
            recording.parent.mkdir(parents=True, exist_ok=True)
            self._wav = wave.open(str(recording), "wb")  # noqa: SIM115 (closed in end())
            self._wav.setnchannels(2)
            self._wav.setsampwidth(2)
            self._wav.setframerate(rate)
        streams = {
            role: ChannelStream(role, transcriber, vad_factory(), stream_options(StreamOptions(), role, asr))
            for role in ROLES
        }
        self._worker = threading.Thread(
            target=self._run, args=(streams,), name=f"phone-{info.call_id[:12]}", daemon=True
        )
        self._worker.start()

    # -- the network side (one thread: the service's event loop) -----------------------------------------
    def now(self) -> int:
        """The call clock in samples."""
        return round((self._clock() - self._started) * self.rate)

    def receive(self, role: Role, ssrc: int, timestamp: int, samples: np.ndarray) -> None:
        """A packet's decoded samples for ``role`` (``timestamp`` in samples, per ``ssrc``)."""
        if self._ended:
            return
        self._last_media = self._clock()
        self.timelines[role].add(ssrc, timestamp, samples, self.now())

    @property
    def idle_seconds(self) -> float:
        """Seconds since the last media packet."""
        return self._clock() - self._last_media

    def tick(self) -> None:
        """Queue both roles' audio up to where it is complete (or due, whichever is later)."""
        if self._ended:
            return
        target = self.now() - self._jitter
        received = [t.received_until for t in self.timelines.values() if t.received_until is not None]
        if received:  # audio sent faster than real time is taken as soon as it is there
            target = max(target, min(received) - self._jitter)
        if target - self.timelines[ROLES[0]].position >= self._min_chunk:
            self._hand_on(target)

    def end(self) -> None:
        """The call is over: queue what arrived, then let the worker flush and finish."""
        if self._ended:
            return
        received = [t.received_until or 0 for t in self.timelines.values()]
        self._hand_on(max([self.timelines[ROLES[0]].position, *received]))
        log.info(
            "call %s ended at %.2f s of audio: %s",
            self.info.call_id,
            self.timelines[ROLES[0]].position / self.rate,
            {role: t.stats for role, t in self.timelines.items()},
        )
        self._ended = True
        if self._wav is not None:
            self._wav.close()
        self._queue.put(None)

    def _hand_on(self, until: int) -> None:
        start = self.timelines[ROLES[0]].position
        chunks = {role: self.timelines[role].take(until) for role in ROLES}
        if self._wav is not None:
            frames = np.stack([chunks[role] for role in self._channels], axis=1)
            self._wav.writeframes(frames.astype("<i2").tobytes())
        self._queue.put((start, chunks))

    # -- the decoding side (the worker thread) ---------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the worker (the call stored); True when it is done."""
        self._worker.join(timeout)
        return not self._worker.is_alive()

    def _run(self, streams: dict[Role, ChannelStream]) -> None:
        resamplers = {role: Resampler(self.rate) for role in ROLES}
        positions = dict.fromkeys(ROLES, 0)  # 16-kHz samples pushed per role

        def push(role: Role, audio: np.ndarray, allow_partial: bool) -> None:
            if len(audio):
                events = streams[role].push(audio, positions[role] / SAMPLE_RATE, allow_partial=allow_partial)
                positions[role] += len(audio)
                self._handle(events)

        try:
            piece = round(CHUNK_SECONDS * self.rate)
            while (item := self._queue.get()) is not None:
                start, chunks = item
                # In the replay's step (0.2 s, both roles in turn): a long hand-on (a busy loop, audio sent
                # faster than real time) must not let one role commit a whole turn before the other.
                for at in range(0, len(chunks[ROLES[0]]), piece):
                    end = (start + min(at + piece, len(chunks[ROLES[0]]))) / self.rate
                    allow_partial = self.now() / self.rate - end < BEHIND_SECONDS  # behind: commits only
                    for role in ROLES:
                        push(role, resamplers[role].push(chunks[role][at : at + piece]), allow_partial)
                    self.session.advance(end)
            for role in ROLES:
                push(role, resamplers[role].push(None), False)
                self._handle(streams[role].flush())
            self.session.finish()
        except CopilotError as e:
            self.errors.append(f"the call stopped: {e}")
        except Exception as e:  # a bug must end this call only, never the server
            log.exception("phone call %s failed", self.info.call_id)
            self.errors.append(f"the call stopped: {type(e).__name__}: {e}")
        finally:
            self.session.close()
            if self._on_finished is not None:
                self._on_finished(self)

    def _handle(self, events: list[StreamEvent]) -> None:
        for event in events:
            if isinstance(event, Committed):
                segment = event.segment
                lag = self.now() / self.rate - segment.end
                with self._lock:
                    self.lags.append(CommitLag(segment.speaker, segment.end, round(lag, 3)))
            self.session.handle(event)

    @property
    def ended(self) -> bool:
        return self._ended
