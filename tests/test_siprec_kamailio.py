"""Several copilot hosts behind a SIP proxy: Kamailio's dispatcher (tests/kamailio/dispatcher.cfg) hands
SIPREC sessions to two recording servers on loopback in turn, and each session's in-dialog requests follow
it; SIPp is the recording client, the ASR the scripted fake."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from string import Template

import pytest

from copilot.config import Config, TelephonyConfig
from copilot.qa.store import Store
from copilot.session.telephony.service import TelephonyService
from copilot.transcription.transcript_files import read_transcript
from tests import sipp_tools as sipp
from tests.fakes_asr import EnergyVad, Line, ScriptedTranscriber
from tests.ui_fakes import Engines

pytestmark = pytest.mark.services

KAMAILIO_DIR = Path(__file__).resolve().parent / "kamailio"
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
SECONDS = 8.0  # the first seconds of the call are enough to tell where it went


@pytest.fixture
def two_hosts(tmp_path: Path, shared_dir: Path) -> Iterator[tuple[list[list[dict]], int]]:
    kamailio = shutil.which("kamailio") or "/usr/sbin/kamailio"
    assert Path(kamailio).exists(), "kamailio is missing: install the Debian package kamailio"
    script = read_transcript(shared_dir / "calls" / "bad_call.json").segments
    services, stores, events = [], [], []
    ports = []
    for n in range(2):
        transcriber = ScriptedTranscriber(tuple(Line(s.start, s.end, s.text) for s in script))
        port = sipp.free_port()
        telephony = TelephonyConfig(
            sip_port=port, media_stream_port=0, rtp_ports=f"{46000 + 200 * n}-{46199 + 200 * n}"
        )
        store = Store.open(f"sqlite:///{tmp_path / f'host{n}.db'}")
        got: list[dict] = []
        service = TelephonyService(
            dataclasses.replace(Config(), telephony=telephony),
            Engines(transcriber=transcriber).services(),
            lambda store=store: store,
            vad_factory=EnergyVad,
            on_event=got.append,
        )
        service.start()
        services.append(service)
        stores.append(store)
        events.append(got)
        ports.append(port)
    listing = tmp_path / "dispatcher.list"
    listing.write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in ports), encoding="utf-8")
    proxy_port = sipp.free_port()
    config = tmp_path / "kamailio.cfg"
    template = Template((KAMAILIO_DIR / "dispatcher.cfg").read_text(encoding="utf-8"))
    config.write_text(
        template.safe_substitute(port=proxy_port, modules=MODULES, dispatcher_list=listing), encoding="utf-8"
    )
    proxy = subprocess.Popen(
        [kamailio, "-f", str(config), "-DD", "-E", "-Y", str(tmp_path), "-w", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1.0)  # Kamailio binds before it forks its workers
    assert proxy.poll() is None, proxy.stdout.read() if proxy.stdout else ""
    yield events, proxy_port
    proxy.terminate()
    proxy.wait(10)
    for service in services:
        service.stop()
    for store in stores:
        store.close()


def test_a_proxy_spreads_recording_sessions_over_two_hosts(
    two_hosts: tuple[list[list[dict]], int], tmp_path: Path, shared_dir: Path
) -> None:
    events, proxy_port = two_hosts
    legs = sipp.legs_of(shared_dir / "calls" / "bad_call.wav")
    legs = [dataclasses.replace(leg, samples=leg.samples[: int(SECONDS * sipp.RATE)]) for leg in legs]
    duration = sipp.write_capture(legs, tmp_path / "call.pcap", speed=2.0)
    for n in range(2):
        scenario = sipp.recording_session(
            tmp_path / f"call{n}.xml",
            tmp_path / "call.pcap",
            extension=str(1001 + n),
            first_pause_ms=1000,
            rest_pause_ms=int(duration * 1000) + 1000,
        )
        result = sipp.run_sipp(
            scenario, proxy_port, media_port=sipp.free_port(), timeout=60, workdir=tmp_path
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    deadline = time.monotonic() + 30
    while (
        time.monotonic() < deadline
        and sum(1 for got in events for e in got if e["event"] == "call-stored") < 2
    ):
        time.sleep(0.1)
    stored = [[e["extension"] for e in got if e["event"] == "call-stored"] for got in events]
    assert sorted(stored) == [["1001"], ["1002"]]  # one session each, stored where it was recorded
