"""Live calls in the app: one :class:`LiveCall` per browser session, fed by a replayed file or a microphone.

A replay runs in a background thread that pushes streaming events into the call's
:class:`~copilot.session.call.CallSession`; the page polls :meth:`LiveCall.view` on a timer. The microphone path
pushes browser chunks into a queue that a worker thread turns into events through a
:class:`~copilot.transcription.streaming.ChannelStream`. Nothing here is module-level state: the app keeps each
``LiveCall`` in a ``gr.State`` and one :class:`LiveSlots` per app bounds how many run at once.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from copilot.errors import CopilotError
from copilot.judgement.engine import RuleEngine
from copilot.judgement.playbook import SequenceParams, SpeechRateParams, StageParams
from copilot.session.call import CallSession
from copilot.session.engines import release_memory
from copilot.transcription.audio import SAMPLE_RATE
from copilot.transcription.playback import EndOfAudio, TimedEvent
from copilot.transcription.streaming import ChannelStream, StreamOptions, Transcriber, Vad
from copilot.types import Committed, Role, Transcript
from copilot.ui.panel import PACE_TARGET, PanelView, Step, render_panel

log = logging.getLogger(__name__)

SPEEDS: dict[str, float | None] = {"1x": 1.0, "2x": 2.0, "4x": 4.0, "8x": 8.0, "max": None}
MIC_IDLE_SECONDS = 120.0  # s without a microphone chunk after which the call is considered over
STOP_JOIN_SECONDS = 5.0  # s to wait for a stopped feeder thread before leaving it to finish on its own
INT16_SCALE = 32768.0
RATE_AFTER_SECONDS = 5.0  # s of a replay before its real speed is judged
LAGGING = 0.85  # a replay running below this share of its asked speed says how fast it really runs  # browser microphone chunks arrive as int16 PCM
STEP_LABELS = {
    "greeting": "问候并自报公司和姓名 (greeting)",
    "recap": "复述并确认客户问题 (recap)",
    "apology": "客户不满后道歉或表示理解 (apology)",
    "closing": "询问其他需要并道别 (closing)",
}

SourceKind = Literal["audio", "transcript"]


# --- app-wide limit on live calls ---------------------------------------------------------------------


class Slot:
    """One of the app's live-call places; releasing twice is harmless."""

    def __init__(self, owner: LiveSlots) -> None:
        self._owner = owner
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._owner._release()


class LiveSlots:
    """At most ``limit`` live calls at once in one app; a further one is refused, never queued forever."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the live-call limit must be at least 1")
        self.limit = limit
        self._lock = threading.Lock()
        self._used = 0

    def acquire(self) -> Slot | None:
        with self._lock:
            if self._used >= self.limit:
                return None
            self._used += 1
        return Slot(self)

    def _release(self) -> None:
        with self._lock:
            self._used = max(0, self._used - 1)

    @property
    def in_use(self) -> int:
        with self._lock:
            return self._used


def busy_message(limit: int) -> str:
    return (
        f"所有 {limit} 个实时通话位置都在使用中，请稍后再试。"
        f" (All {limit} live-call places are in use; try again when a call ends.)"
    )


# --- the checklist and pace target from the playbook -----------------------------------------------------


def playbook_steps(engine: RuleEngine) -> tuple[Step, ...]:
    """The required steps of a call (stage checks) and those owed on a trigger (sequence checks)."""
    steps = []
    for check in engine.playbook.checks:
        if isinstance(check.params, StageParams | SequenceParams):
            label = STEP_LABELS.get(check.id, f"{check.message} ({check.id})")
            steps.append(Step(check.id, label, conditional=isinstance(check.params, SequenceParams)))
    return tuple(steps)


def pace_target(engine: RuleEngine) -> tuple[float, float]:
    for check in engine.playbook.checks:
        if isinstance(check.params, SpeechRateParams):
            return (float(check.params.min_cpm), float(check.params.max_cpm))
    return PACE_TARGET


# --- event sources ------------------------------------------------------------------------------------


def transcript_events(
    transcript: Transcript, speed: float | None, stop: threading.Event
) -> Iterator[TimedEvent]:
    """A JSON transcript replayed as live: each segment is committed when its end time comes round.

    A transcript has no tentative text: only commits are replayed. ``speed=None`` means no waiting.
    """
    clock = _Clock(speed, stop)
    for segment in sorted(transcript.segments, key=lambda s: (s.end, s.start)):
        if not clock.wait_until(segment.end):
            return
        yield TimedEvent(segment.end, Committed(segment))
    end = max([transcript.duration, *(s.end for s in transcript.segments)])
    if clock.wait_until(end):
        yield TimedEvent(end, EndOfAudio(round(end, 3)))


class _Clock:
    """Paces a replay against the real clock (``speed`` x real time); ``stop`` interrupts any wait."""

    def __init__(self, speed: float | None, stop: threading.Event) -> None:
        import time

        self._speed = speed
        self._stop = stop
        self._monotonic = time.monotonic
        self._started = time.monotonic()

    def wait_until(self, audio_time: float) -> bool:
        """Wait until ``audio_time`` s of the call have played; False if stopped."""
        if self._speed is not None:
            delay = self._started + audio_time / self._speed - self._monotonic()
            if delay > 0:
                self._stop.wait(delay)
        return not self._stop.is_set()


def to_mono_16k(rate: int, samples: np.ndarray) -> np.ndarray:
    """A browser microphone chunk (int16 or float, mono or (n, channels)) as mono float32 at 16 kHz."""
    audio = np.asarray(samples)
    if audio.dtype.kind in "iu":
        audio = audio.astype(np.float32) / INT16_SCALE
    else:
        audio = audio.astype(np.float32, copy=False)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    audio = audio.reshape(-1)
    if rate != SAMPLE_RATE and len(audio):
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    return audio


# --- one browser session's call -----------------------------------------------------------------------


@dataclass(frozen=True)
class CallInfo:
    """What the panel says about where the call comes from."""

    source: str  # e.g. "good_call.wav · 8x" or "microphone (customer)"
    steps: tuple[Step, ...]
    pace_target: tuple[float, float] = PACE_TARGET
    speed: float | None = None  # a paced replay's asked speed (x real time); None: max speed or live


class LiveCall:
    """One call on one browser session's panel: the session and the thread that feeds it."""

    def __init__(self, session: CallSession, info: CallInfo, slot: Slot | None = None) -> None:
        self.session = session
        self.info = info
        self._slot = slot
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._mic: queue.Queue[tuple[int, np.ndarray] | None] | None = None
        self.last_view: PanelView | None = None  # what the page shows now (the timer skips unchanged parts)
        self._started: float | None = None

    # -- feeding ----------------------------------------------------------------------------------------
    def start(self, events: Callable[[threading.Event], Iterable[TimedEvent]]) -> None:
        """Feed the session from ``events(stop)`` in a background thread."""
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(events,), name="live-replay", daemon=True)
        self._thread.start()

    def _run(self, events: Callable[[threading.Event], Iterable[TimedEvent]]) -> None:
        try:
            for timed in events(self._stop):
                if self._stop.is_set():
                    return
                event = timed.event
                if isinstance(event, EndOfAudio):
                    self.session.advance(event.duration)
                    break
                self.session.handle(event)
                self.session.advance(timed.audio_time)
            if not self._stop.is_set():
                self.session.finish()
        except CopilotError as e:
            self.add_error(f"the call stopped: {e}")
        except Exception as e:  # a bug must reach the panel as a message, not kill the page
            log.exception("live call failed")
            self.add_error(f"the call stopped: {type(e).__name__}: {e}")
        finally:
            self.session.close()  # marks the call finished (a no-op after finish) and frees the slot
            self._release()
            release_memory()  # what the call's decodes and suggestions freed goes back to the kernel

    def start_microphone(
        self, role: Role, transcriber: Transcriber, vad: Vad, options: StreamOptions | None = None
    ) -> None:
        """Feed the session from microphone chunks given to :meth:`push_audio`."""
        self._mic = queue.Queue()
        stream = ChannelStream(role, transcriber, vad, options or StreamOptions())
        self._thread = threading.Thread(target=self._run_mic, args=(stream,), name="live-mic", daemon=True)
        self._thread.start()

    def push_audio(self, rate: int, samples: np.ndarray) -> None:
        if self._mic is not None and not self._stop.is_set():
            self._mic.put((rate, samples))

    def end_audio(self) -> None:
        """The microphone stopped: commit what was said and finish the call."""
        if self._mic is not None:
            self._mic.put(None)

    def _run_mic(self, stream: ChannelStream) -> None:
        assert self._mic is not None
        position = 0  # samples pushed so far
        try:
            while not self._stop.is_set():
                try:
                    item = self._mic.get(timeout=MIC_IDLE_SECONDS)
                except queue.Empty:
                    self.add_error("no microphone audio for a while: the call was ended")
                    item = None
                if item is None:
                    for event in stream.flush():
                        self.session.handle(event)
                    self.session.finish()
                    return
                audio = to_mono_16k(*item)
                if not len(audio):
                    continue
                start = position / SAMPLE_RATE
                position += len(audio)
                for event in stream.push(audio, start):
                    self.session.handle(event)
                self.session.advance(position / SAMPLE_RATE)
        except CopilotError as e:
            self.add_error(f"the microphone stream stopped: {e}")
        except Exception as e:
            log.exception("microphone stream failed")
            self.add_error(f"the microphone stream stopped: {type(e).__name__}: {e}")
        finally:
            self.session.close()
            self._release()

    # -- control and output -------------------------------------------------------------------------
    @property
    def is_microphone(self) -> bool:
        return self._mic is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the feeder to finish (tests, shutdown); True when it has."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def add_error(self, message: str) -> None:
        with self._lock:
            self._errors.append(message)

    def stop(self) -> None:
        """Abandon the call (a new one starts, or the page went away): stop feeding, cancel the LLM."""
        self._stop.set()
        if self._mic is not None:
            self._mic.put(None)
        self.session.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_JOIN_SECONDS)
        self._release()

    def _release(self) -> None:
        if self._slot is not None:
            self._slot.release()

    def view(self) -> PanelView:
        state = self.session.state()
        with self._lock:
            extra = tuple(self._errors)
        if extra:
            state = dataclasses.replace(state, errors=state.errors + extra)
        # The panel says "finished" only when the feeder is done too (the last suggestion has landed).
        if state.finished and self.running:
            state = dataclasses.replace(state, finished=False)
        return render_panel(
            state,
            steps=self.info.steps,
            source=self.info.source,
            pace_target=self.info.pace_target,
            rate=self.lagging_rate(state.time),
        )

    def lagging_rate(self, audio_time: float) -> float | None:
        """How fast a paced replay really runs (x real time), when it falls short of the asked speed: the
        page says so instead of showing "4x" for a call that decodes at 2.2x. None when on pace."""
        asked, started = self.info.speed, self._started
        if asked is None or started is None or not self.running:
            return None
        elapsed = time.monotonic() - started
        if elapsed < RATE_AFTER_SECONDS:
            return None
        rate = audio_time / elapsed
        return rate if rate < asked * LAGGING else None


def changed_parts(
    new: PanelView, old: PanelView | None, fields: Sequence[str], *, resend_below: int = 0
) -> list[str | None]:
    """For each field, the HTML to send, or None where the page already shows it.

    An unchanged field shorter than ``resend_below`` characters is sent again anyway: Gradio 6 turns a
    ``gr.skip()`` into a rebuilt component and config (about 1 ms of the event loop each, measured), while
    a short unchanged value costs a quarter of that and a few hundred bytes.
    """
    parts: list[str | None] = []
    for field in fields:
        html: str = getattr(new, field)
        unchanged = old is not None and getattr(old, field) == html
        parts.append(None if unchanged and len(html) >= resend_below else html)
    return parts


def source_label(path: Path, speed: str) -> str:
    return f"{path.name} · {speed}"
