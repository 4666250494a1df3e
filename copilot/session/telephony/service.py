"""The telephony service: the SIPREC server and the media-stream endpoint on one asyncio loop, the calls they
start, and what happens when a call ends (its review stored through :func:`copilot.qa.archive.save_review`).

``copilot listen`` runs it in the foreground; the app runs it in a thread when ``[telephony] enabled``, so
that an agent's Live view can attach to the call of their extension (:attr:`TelephonyService.registry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from copilot.config import Config, copilot_home
from copilot.errors import CopilotError
from copilot.qa.archive import save_review
from copilot.qa.metadata import CallMetadata
from copilot.qa.store import Store, content_hash, provenance
from copilot.session.call import CallSession, SessionEngines, SessionOptions
from copilot.session.telephony.feed import PhoneCall, PhoneCallInfo, PromptEchoGuard
from copilot.session.telephony.registry import CallRegistry
from copilot.session.telephony.server import SiprecServer
from copilot.session.telephony.siprec import label_roles
from copilot.transcription.audio import SAMPLE_RATE
from copilot.transcription.streaming import Transcriber, Vad
from copilot.types import CallReview

log = logging.getLogger(__name__)

TICK_SECONDS = 0.02  # s between hand-ons of received audio to the calls' decoders
RECORDINGS_DIR = "telephony"  # under COPILOT_HOME: a call's recording while it runs (keep_audio only)
START_TIMEOUT = 10.0  # s for the listeners to bind when started in a thread

Event = dict[str, Any]


class LiveEngines(SessionEngines, Protocol):
    """What the service needs beyond a session's engines: the live transcriber."""

    @property
    def live_transcriber(self) -> Transcriber: ...


class TelephonyService:
    def __init__(
        self,
        config: Config,
        engines: LiveEngines,
        store: Callable[[], Store],
        *,
        vad_factory: Callable[[], Vad] | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.config = config
        self.engines = engines
        self._store = store
        self._vad_factory = vad_factory
        self._on_event = on_event or (lambda _event: None)
        self.registry = CallRegistry()
        self.calls: dict[str, PhoneCall] = {}
        self._lock = threading.Lock()
        self.siprec: SiprecServer | None = None
        self.media_stream_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._label_order = label_roles(config.telephony.label_order)

    # -- calls -----------------------------------------------------------------------------------------
    def new_call(self, call_id: str, extension: str, source: str, rate: int) -> PhoneCall | None:
        """A call for the SIPREC server or the media-stream endpoint; None when every place is taken."""
        with self._lock:
            if len(self.calls) >= self.config.telephony.max_calls or call_id in self.calls:
                return None
            options = SessionOptions(redact=self.config.privacy.redact, blocked=self._blocked())
            session = CallSession(self.engines, options)
            recording = None
            if self.config.privacy.keep_audio:
                safe = hashlib.sha256(call_id.encode()).hexdigest()[:24]
                recording = copilot_home() / RECORDINGS_DIR / f"{source}-{safe}.wav"
            vad = self._vad_factory or _silero
            call = PhoneCall(
                PhoneCallInfo(call_id, extension, source),
                session,
                self.config.asr,
                _transcriber(self.engines.live_transcriber, rate, self.config.asr.initial_prompt),
                vad,
                rate=rate,
                jitter_seconds=self.config.telephony.jitter_seconds,
                recording=recording,
                agent_channel=self.config.asr.agent_channel,
                on_finished=self._finished,
            )
            self.calls[call_id] = call
        self.registry.add(call_id, extension, source, session)
        self._on_event(
            {"event": "call-started", "call_id": call_id, "extension": extension, "source": source}
        )
        return call

    def _blocked(self) -> frozenset[str]:
        try:
            return frozenset(self._store().blocklist())
        except CopilotError as e:
            log.warning("block list unavailable: %s", e)
            return frozenset()

    def _finished(self, call: PhoneCall) -> None:
        """In the call's worker, after its session finished: store the review, free the place."""
        info = call.info
        stored: int | None = None
        event: Event = {"event": "call-stored", "call_id": info.call_id, "extension": info.extension}
        try:
            review = call.session.review(source=_name(info))
            stored = self._save(call, review)
            event |= {
                "review_id": stored,
                "segments": len(review.segments),
                "failed_checks": [c.id for c in review.checks if not c.passed],
                "flags": sorted({f.rule for f in call.session.state().flags}),
                "commit_lags": [lag.lag for lag in call.lags],  # s after each utterance's end
                "errors": call.errors,
            }
        except CopilotError as e:
            event = {"event": "call-failed", "call_id": info.call_id, "error": str(e)}
        except Exception as e:  # never lose the place because of a bug
            log.exception("storing call %s failed", info.call_id)
            event = {"event": "call-failed", "call_id": info.call_id, "error": f"{type(e).__name__}: {e}"}
        finally:
            if call.recording is not None:
                call.recording.unlink(missing_ok=True)  # kept (if at all) under audio/ by save_review
            with self._lock:
                self.calls.pop(info.call_id, None)
            self.registry.ended(info.call_id, stored)
        self._on_event(event)

    def _save(self, call: PhoneCall, review: CallReview) -> int | None:
        info = call.info
        if call.recording is not None and call.recording.is_file():
            path, digest = call.recording, content_hash(call.recording)
        else:
            path = Path(_name(info))  # nothing on disk: save_review keeps no audio
            digest = hashlib.sha256(f"{info.source}\0{info.call_id}\0{info.started_at}".encode()).hexdigest()
        meta = CallMetadata(agent=info.extension, date=date.fromtimestamp(info.started_at).isoformat())
        saved = save_review(
            self._store(),
            review,
            path=path,
            name=_name(info),
            content_hash=digest,
            provenance=provenance(self.config, {"source": info.source}),
            privacy=self.config.privacy,
            meta=meta,
        )
        return saved.call_id

    # -- running ---------------------------------------------------------------------------------------
    async def serve(self, ready: threading.Event | None = None) -> None:
        """Run the listeners until :meth:`stop`; every call in progress is ended (and stored) on the way out."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        telephony = self.config.telephony
        self.siprec = SiprecServer(telephony, self.new_call)
        await self.siprec.start()
        ws_server = None
        if telephony.media_stream_port:
            from websockets.asyncio.server import serve

            from copilot.session.telephony.media_stream import handle_connection

            async def handler(connection: Any) -> None:
                await handle_connection(connection, self.new_call, self._label_order)

            ws_server = await serve(handler, telephony.host, telephony.media_stream_port, compression=None)
            self.media_stream_port = next(iter(ws_server.sockets)).getsockname()[1]
        self._on_event(
            {
                "event": "listening",
                "host": telephony.host,
                "sip_port": self.siprec.port,
                "media_stream_port": self.media_stream_port,
            }
        )
        if ready is not None:
            ready.set()
        try:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), TICK_SECONDS)
                self._tick()
        finally:
            await self.siprec.stop()
            if ws_server is not None:
                ws_server.close()
                await ws_server.wait_closed()
            for call in list(self.calls.values()):
                call.end()

    def _tick(self) -> None:
        for call in list(self.calls.values()):
            call.tick()
        if self.siprec is not None:
            self.siprec.check_media(self.config.telephony.media_timeout_seconds)
        timeout = self.config.telephony.media_timeout_seconds
        for call in list(self.calls.values()):  # media streams whose platform went silent for good
            if call.info.source == "media-stream" and call.idle_seconds > timeout:
                call.end()

    def start(self) -> None:
        """Run :meth:`serve` in a background thread; returns once the listeners are bound."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve(ready))
            except BaseException as e:
                failure.append(e)
                ready.set()

        self._thread = threading.Thread(target=run, name="telephony", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT) or failure:
            reason = failure[0] if failure else "timed out"
            raise CopilotError(f"telephony listeners did not start: {reason}")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop listening, end the calls in progress and wait for their reviews to be stored."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        for call in list(self.calls.values()):
            call.wait(max(0.0, deadline - time.monotonic()))


def _name(info: PhoneCallInfo) -> str:
    return f"{info.source} {info.call_id}"


def _transcriber(transcriber: Transcriber, rate: int, prompt: str) -> Transcriber:
    """Narrowband calls get the prompt-echo guard (:class:`~copilot.session.telephony.feed.PromptEchoGuard`)."""
    return PromptEchoGuard(transcriber, prompt) if rate < SAMPLE_RATE else transcriber


def _silero() -> Vad:
    from copilot.transcription.streaming import SileroVad

    return SileroVad()
