"""The WebSocket media-stream endpoint with a real client: both documented protocols (JSON start/media/stop
with base64 μ-law, and binary interleaved L16 frames after a start) carry a stereo call's two tracks; the
transcript, roles and flags are those of the recording replayed as a file, and the call is stored."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import json
import socket
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from websockets.asyncio.client import connect

from copilot.config import Config, TelephonyConfig
from copilot.qa.store import ReviewFilter, Store
from copilot.session.telephony.g711 import encode_ulaw
from copilot.session.telephony.service import TelephonyService
from copilot.transcription.audio import read_all
from copilot.transcription.transcript_files import read_transcript
from tests import sipp_tools
from tests.fakes_asr import EnergyVad, Line, ScriptedTranscriber
from tests.test_siprec_sipp import replayed
from tests.ui_fakes import Engines

pytestmark = pytest.mark.services

CALL = "bad_call"
FRAME_MS = 20
SPEED = 4.0  # frames carry timestamps (JSON) or are counted (binary): sent faster than real time


@dataclasses.dataclass
class Endpoint:
    service: TelephonyService
    store: Store
    events: list[dict]
    transcriber: ScriptedTranscriber

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.service.media_stream_port}"

    def stored(self, timeout: float = 60.0) -> dict:
        return sipp_tools.stored_events(self.events, 1, timeout)[-1]


@pytest.fixture
def endpoint(tmp_path: Path, shared_dir: Path) -> Iterator[Endpoint]:
    script = read_transcript(shared_dir / "calls" / f"{CALL}.json").segments
    transcriber = ScriptedTranscriber(tuple(Line(s.start, s.end, s.text) for s in script))
    telephony = TelephonyConfig(
        sip_port=sipp_tools.free_port(),
        media_stream_port=sipp_tools.free_port(socket.SOCK_STREAM),
        rtp_ports="44000-44099",
    )
    config = dataclasses.replace(Config(), telephony=telephony)
    store = Store.open(f"sqlite:///{tmp_path / 'reviews.db'}")
    events: list[dict] = []
    service = TelephonyService(
        config,
        Engines(transcriber=transcriber).services(),
        lambda: store,
        vad_factory=EnergyVad,
        on_event=events.append,
    )
    service.start()
    yield Endpoint(service, store, events, transcriber)
    service.stop()
    store.close()


def tracks(path: Path, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Agent (left) and customer (right) as int16 at ``rate``."""
    from scipy.signal import resample_poly

    audio, _ = read_all(path)
    if rate != 16000:
        audio = resample_poly(audio, rate, 16000, axis=1)
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
    return pcm[0], pcm[1]


async def pace(started: float, frame: int) -> None:
    """Wait until frame ``frame`` is due (SPEED x real time), on an absolute schedule: no drift."""
    delay = started + (frame + 1) * FRAME_MS / 1000 / SPEED - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def send_json_protocol(url: str, agent: np.ndarray, customer: np.ndarray) -> None:
    step = 8 * FRAME_MS
    started = time.monotonic()
    async with connect(url) as ws:
        start = {"callId": "json-call", "extension": "1001", "encoding": "audio/x-mulaw", "sampleRate": 8000}
        await ws.send(json.dumps({"event": "start", "start": start}))
        for n in range(len(agent) // step):
            for track, pcm in (("outbound", agent), ("inbound", customer)):
                payload = base64.b64encode(encode_ulaw(pcm[n * step : (n + 1) * step])).decode()
                media = {"track": track, "payload": payload, "timestamp": n * FRAME_MS}
                await ws.send(json.dumps({"event": "media", "media": media}))
            await pace(started, n)
        await ws.send(json.dumps({"event": "stop"}))
        await ws.wait_closed()


async def send_binary_protocol(url: str, agent: np.ndarray, customer: np.ndarray) -> None:
    step = 16 * FRAME_MS
    started = time.monotonic()
    async with connect(url) as ws:
        await ws.send(
            json.dumps(
                {"callId": "fs-uuid-1", "extension": "1001", "encoding": "audio/l16", "sampleRate": 16000}
            )
        )
        frames = np.stack([agent, customer], axis=1)  # label_order: agent, customer
        for n in range(len(frames) // step):
            await ws.send(frames[n * step : (n + 1) * step].astype("<i2").tobytes())
            await pace(started, n)
    # closing without a stop ends the call too


T = TypeVar("T")


def run_client(client: Coroutine[object, object, T]) -> T:
    """Run a websocket client on its own thread's event loop: pytest-playwright's sync API keeps a loop
    running on the main thread once a browser test has run, and asyncio.run refuses to nest in it."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, client).result()


@pytest.mark.parametrize("protocol", ["json", "binary"])
def test_a_media_stream_gives_the_replayed_transcript_and_is_stored(
    endpoint: Endpoint, shared_dir: Path, protocol: str
) -> None:
    recording = shared_dir / "calls" / f"{CALL}.wav"
    if protocol == "json":
        run_client(send_json_protocol(endpoint.url, *tracks(recording, 8000)))
    else:
        run_client(send_binary_protocol(endpoint.url, *tracks(recording, 16000)))
    stored = endpoint.stored()
    assert stored["event"] == "call-stored"
    entry = endpoint.service.registry.current("1001")
    assert entry is not None and entry.source == "media-stream"
    live = entry.session.state()
    offline = replayed(recording, endpoint.transcriber)
    assert [(s.speaker, s.text) for s in live.segments] == [
        (s.speaker, s.text) for s in offline.state().segments
    ]
    assert {f.rule for f in live.flags} == {f.rule for f in offline.state().flags}
    assert [c.id for c in endpoint.store.search(ReviewFilter(agent="1001"))] == [stored["review_id"]]


def test_a_bad_start_closes_the_connection_with_a_reason(endpoint: Endpoint) -> None:
    async def bad() -> tuple[int | None, str | None]:
        async with connect(endpoint.url) as ws:
            await ws.send(json.dumps({"event": "start", "start": {"callId": "x", "encoding": "audio/opus"}}))
            await ws.wait_closed()
            return ws.close_code, ws.close_reason

    code, reason = run_client(bad())
    assert code == 1008 and "encoding" in (reason or "")
    assert endpoint.service.calls == {}
