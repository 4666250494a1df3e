"""The issue's check, with the real models: SIPp sends a SIPREC session with a stereo call's two legs as RTP
(G.711 μ-law at 8 kHz) to the server on 127.0.0.1; the agent whose extension the metadata names gets the
transcript with the roles right and the flags that the offline review of the same recording gives, and the
call is stored for QA when SIPp sends BYE. Real time, as a PBX sends it (bad_call: 30 s)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from copilot.config import Config, TelephonyConfig
from copilot.qa.calls import load_call
from copilot.qa.review import ReviewOptions, review_call
from copilot.qa.store import ReviewFilter, Store
from copilot.session.engines import Services
from copilot.session.telephony.service import TelephonyService
from copilot.transcription.transcript_files import read_transcript
from tests import sipp_tools as sipp

CALL = "bad_call"


@pytest.mark.real
@pytest.mark.services
def test_a_siprec_call_with_real_models_reaches_the_agent_and_is_stored(
    installed_models: None, tmp_path: Path, shared_dir: Path
) -> None:
    recording = shared_dir / "calls" / f"{CALL}.wav"
    telephony = TelephonyConfig(sip_port=sipp.free_port(), media_stream_port=0, rtp_ports="43000-43099")
    config = dataclasses.replace(Config(), telephony=telephony)
    services = Services(config)
    services.suggester.warm()
    _ = services.live_transcriber
    store = Store.open(f"sqlite:///{tmp_path / 'reviews.db'}")
    events: list[dict] = []
    service = TelephonyService(config, services, lambda: store, on_event=events.append)
    service.start()
    try:
        duration = sipp.write_capture(sipp.legs_of(recording), tmp_path / "call.pcap")
        scenario = sipp.scenario(
            "siprec_call.xml",
            tmp_path / "call.xml",
            pcap=tmp_path / "call.pcap",
            metadata=sipp.metadata(),
            first_pause_ms=5000,
            rest_pause_ms=int(duration * 1000) - 5000 + 1500,
        )
        result = sipp.run_sipp(
            scenario, telephony.sip_port, media_port=sipp.free_port(), timeout=120, workdir=tmp_path
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        entry = service.registry.wait_for(lambda r: ((e := r.current("1001")) and e.ended and e) or None, 120)
        assert entry is not None, events
    finally:
        service.stop()
    live = entry.session.state()
    offline = review_call(load_call(recording, services), engine=services.rules, options=ReviewOptions())
    script = read_transcript(shared_dir / "calls" / f"{CALL}.json").segments

    # Roles: every live segment lies over a scripted line of the same speaker.
    for segment in live.segments:
        middle = (segment.start + segment.end) / 2
        under = [s for s in script if s.start - 0.5 <= middle <= s.end + 0.5]
        assert under and segment.speaker in {s.speaker for s in under}, (segment, under)
    assert {s.speaker for s in live.segments} == {"agent", "customer"}
    # Flags: every flag of the offline review of the recording was raised live, and everything raised live
    # is a flag or a failed check of that review (the panel shows a missed greeting or apology as it happens).
    offline_failed = {c.id for c in offline.checks if not c.passed}
    assert (
        {f.rule for f in offline.flags}
        <= {f.rule for f in live.flags}
        <= {f.rule for f in offline.flags} | offline_failed
    )
    stored = next(e for e in events if e["event"] == "call-stored")
    # The agent's average pace of bad_call sits on the 230-chars-per-minute edge (offline: 220), and the live
    # 8-kHz leg's text and utterance bounds are not stable across runs (one checkout lost two agent lines and
    # split another where a second one kept them): that one check may fall either side. Every other check the
    # offline review fails is failed in the stored live review, and no other.
    near_threshold = {"speech_rate"}
    assert sorted(set(stored["failed_checks"]) - near_threshold) == sorted(
        c.id for c in offline.checks if not c.passed and c.id not in near_threshold
    )
    assert [c.id for c in store.search(ReviewFilter(agent="1001"))] == [stored["review_id"]]
    store.close()
