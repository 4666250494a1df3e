"""SIPREC against a real SIP client: SIPp sends recording sessions to the server on 127.0.0.1 with RTP made
from the two legs of a stereo call (tests/sipp_tools.py). The ASR is the scripted fake here (what each role
says comes from the call's script); tests/test_siprec_real.py runs the real models.

The call's transcript, roles and flags must be those of the same recording replayed as a file, and the
call must be stored for QA when SIPp sends BYE.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from copilot.config import Config, TelephonyConfig
from copilot.qa.store import ReviewFilter, Store
from copilot.session.call import CallSession, SessionOptions
from copilot.session.telephony.registry import LiveEntry
from copilot.session.telephony.service import TelephonyService
from copilot.transcription.playback import ReplayOptions, replay
from copilot.transcription.transcript_files import read_transcript
from tests import sipp_tools as sipp
from tests.fakes_asr import EnergyVad, Line, ScriptedTranscriber
from tests.ui_fakes import Engines

pytestmark = pytest.mark.services

SPEED = 2.0  # RTP timestamps keep real time; SIPp only sends the packets twice as fast
CALL = "bad_call"


@dataclasses.dataclass
class Running:
    service: TelephonyService
    store: Store
    port: int
    events: list[dict]
    workdir: Path
    transcriber: ScriptedTranscriber

    def wait_stored(self, timeout: float = 60.0) -> dict:
        return sipp.stored_events(self.events, 1, timeout)[-1]


@pytest.fixture
def running(tmp_path: Path, shared_dir: Path) -> Iterator[Running]:
    lines = tuple(
        Line(s.start, s.end, s.text) for s in read_transcript(shared_dir / "calls" / f"{CALL}.json").segments
    )
    transcriber = ScriptedTranscriber(lines)
    services = Engines(transcriber=transcriber).services()
    telephony = TelephonyConfig(sip_port=sipp.free_port(), media_stream_port=0, rtp_ports="42000-42399")
    config = dataclasses.replace(Config(), telephony=telephony)
    store = Store.open(f"sqlite:///{tmp_path / 'reviews.db'}")
    events: list[dict] = []
    service = TelephonyService(config, services, lambda: store, vad_factory=EnergyVad, on_event=events.append)
    service.start()
    yield Running(service, store, telephony.sip_port, events, tmp_path, transcriber)
    service.stop()
    store.close()


def call_scenario(
    run: Running,
    shared_dir: Path,
    *,
    with_metadata: bool = True,
    order: tuple[int, int] = (1, 0),
    bye_at: float | None = None,
    speed: float = SPEED,
) -> Path:
    """The SIPREC scenario for CALL's legs (default: customer on label 1, agent on label 2)."""
    legs = sipp.legs_of(shared_dir / "calls" / f"{CALL}.wav", order)
    duration = sipp.write_capture(legs, run.workdir / "call.pcap", speed=speed)
    # SIPp starts the media at the ACK and cannot wait for its end: a margin for a busy machine.
    end = bye_at / speed if bye_at is not None else duration * speed + 2.0  # the call's real length
    first = min(end / 3, 2.0)
    return sipp.scenario(
        "siprec_call.xml",
        run.workdir / "call.xml",
        pcap=run.workdir / "call.pcap",
        metadata=sipp.metadata() if with_metadata else "",
        first_pause_ms=int(first * 1000),
        rest_pause_ms=int((end - first) * 1000),
    )


def sipp_call(run: Running, scenario: Path) -> None:
    result = sipp.run_sipp(scenario, run.port, media_port=sipp.free_port(), timeout=90, workdir=run.workdir)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def replayed(path: Path, transcriber: ScriptedTranscriber) -> CallSession:
    """The same recording replayed as a file through the same engines: what the offline review gives."""
    session = CallSession(Engines(transcriber=transcriber).services(), SessionOptions(background=False))
    for timed in replay(path, Config().asr, transcriber, ReplayOptions(), vad_factory=EnergyVad):
        if hasattr(timed.event, "segment") or hasattr(timed.event, "text"):
            session.handle(timed.event)  # type: ignore[arg-type]
    session.finish()
    return session


def agents_call(run: Running, extension: str) -> LiveEntry:
    entry = run.service.registry.wait_for(lambda r: r.current(extension), timeout=30)
    assert entry is not None, f"no call for extension {extension}: {run.events}"
    return entry


def test_a_siprec_call_gives_the_replayed_transcript_roles_and_flags_and_is_stored(
    running: Running, shared_dir: Path
) -> None:
    scenario = call_scenario(running, shared_dir)
    stray = threading.Thread(target=send_stray_rtp, args=(running,), daemon=True)
    stray.start()
    sipp_call(running, scenario)
    stored = running.wait_stored()
    stray.join(10)
    entry = agents_call(running, "1001")  # the metadata's agent AOR sip:1001@... is on label 2
    live = entry.session.state()
    offline = replayed(shared_dir / "calls" / f"{CALL}.wav", running.transcriber)
    assert [(s.speaker, s.text) for s in live.segments] == [
        (s.speaker, s.text) for s in offline.state().segments
    ]
    assert {f.rule for f in live.flags} == {f.rule for f in offline.state().flags}
    failed = sorted(c.id for c in offline.review().checks if not c.passed)
    assert stored["event"] == "call-stored" and sorted(stored["failed_checks"]) == failed
    rows = running.store.search(ReviewFilter(agent="1001"))
    assert [r.id for r in rows] == [stored["review_id"]]
    shown = running.store.load_call(stored["review_id"])
    assert [s.segment.speaker for s in shown.segments] == [s.speaker for s in live.segments]
    assert STRAY["refused"] > 0  # RTP from an unexpected address reached the port and was refused


STRAY: dict[str, int] = {"refused": 0}


def stray_targets(run: Running) -> list[int]:
    assert run.service.siprec is not None
    return [p for rec in run.service.siprec.recordings.values() for p in rec.ports.values()]


def send_stray_rtp(run: Running) -> None:
    """Loud RTP from 127.0.0.2 and from another port of 127.0.0.1 at the recorded ports, mid-call."""
    deadline = time.monotonic() + 20
    while not stray_targets(run) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the recorder's own packets come first
    assert run.service.siprec is not None
    recordings = list(run.service.siprec.recordings.values())
    if not recordings:
        return
    loud = bytes([0x80, 0x00]) * 80
    senders = []
    for host in ("127.0.0.2", "127.0.0.1"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        senders.append(sock)
    for n in range(50):
        for port in stray_targets(run):
            for sock in senders:
                sock.sendto(struct.pack("!BBHII", 0x80, 0, n, n * 160, 0xBAD) + loud, ("127.0.0.1", port))
        time.sleep(0.02)
    STRAY["refused"] = sum(r.refused for rec in recordings for r in rec.receivers.values())
    for sock in senders:
        sock.close()


def test_without_metadata_the_label_order_gives_the_roles(running: Running, shared_dir: Path) -> None:
    sipp_call(running, call_scenario(running, shared_dir, with_metadata=False, order=(0, 1)))
    stored = running.wait_stored()
    assert stored["event"] == "call-stored" and stored["extension"] == ""
    entry = running.service.registry.get(stored["call_id"])
    assert entry is not None
    offline = replayed(shared_dir / "calls" / f"{CALL}.wav", running.transcriber)
    assert [(s.speaker, s.text) for s in entry.session.state().segments] == [
        (s.speaker, s.text) for s in offline.state().segments
    ]


def test_bye_mid_utterance_stores_the_call_with_the_turn_in_progress(
    running: Running, shared_dir: Path
) -> None:
    script = read_transcript(shared_dir / "calls" / f"{CALL}.json").segments
    cut = next(s for s in script if s.speaker == "customer" and s.start > 18)  # no one talks over it
    # BYE four fifths into the customer's turn (past the point the fake decoder needs), sent in real time.
    sipp_call(
        running, call_scenario(running, shared_dir, bye_at=cut.start + 0.8 * (cut.end - cut.start), speed=1.0)
    )
    stored = running.wait_stored()
    assert stored["event"] == "call-stored"
    segments = running.store.load_call(stored["review_id"]).segments
    assert segments[-1].segment.speaker == "customer"
    assert segments[-1].segment.start == pytest.approx(cut.start, abs=0.5)
    assert all(s.segment.start < cut.end for s in segments)


def test_malformed_sip_is_refused_and_the_server_keeps_answering(running: Running) -> None:
    scenario = sipp.scenario("malformed.xml", running.workdir / "malformed.xml")
    sipp_call(running, scenario)  # 400 for the request without CSeq and for the partless body, then 200
    assert running.service.siprec is not None and running.service.siprec.recordings == {}
