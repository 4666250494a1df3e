"""The telephony path without a network or models: RTP, G.711, SIPREC bodies, the media-stream protocol, a
phone call on a simulated clock feeding a real CallSession (fake ASR), and the registry by extension."""

from __future__ import annotations

import base64
import contextlib
import json
import struct
import time
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.config import Config, TelephonyConfig, validate
from copilot.errors import ConfigError
from copilot.session.call import CallSession, SessionOptions
from copilot.session.telephony import g711
from copilot.session.telephony.feed import PhoneCall, PhoneCallInfo
from copilot.session.telephony.media_stream import MediaStream, ProtocolError, parse_start
from copilot.session.telephony.registry import CallRegistry
from copilot.session.telephony.rtp import StreamTimeline, parse_rtp
from copilot.session.telephony.siprec import (
    SiprecError,
    answer_sdp,
    parse_metadata,
    parse_offer,
    split_body,
    stream_roles,
)
from tests.fakes_asr import EnergyVad, Line, ScriptedTranscriber
from tests.fakes_engines import fake_engines

PATTERN = TelephonyConfig().agent_pattern
ORDER = ("agent", "customer")


def rtp(
    seq: int, ts: int, payload: bytes = b"\xff" * 160, *, pt: int = 0, ssrc: int = 7, extra: int = 0
) -> bytes:
    return struct.pack("!BBHII", 0x80 | extra, pt, seq, ts, ssrc) + payload


# --- G.711 -----------------------------------------------------------------------------------------------


def test_g711_decodes_the_reference_values() -> None:
    assert g711.decode_ulaw(bytes([0xFF, 0x7F, 0x00, 0x80])).tolist() == [0, 0, -32124, 32124]
    assert g711.decode_alaw(bytes([0xD5, 0x55, 0x2A, 0xAA])).tolist() == [8, -8, -32256, 32256]


@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=200))
def test_g711_encoding_round_trips_within_a_step(values: list[int]) -> None:
    samples = np.array(values, dtype=np.int16)
    for encode, decode in ((g711.encode_ulaw, g711.decode_ulaw), (g711.encode_alaw, g711.decode_alaw)):
        back = decode(encode(samples)).astype(np.int32)
        assert np.all(np.abs(back - samples) <= np.maximum(16, np.abs(samples.astype(np.int32)) // 16 + 8))


# --- RTP ----------------------------------------------------------------------------------------------------


def test_rtp_header_fields_extension_and_padding() -> None:
    packet = parse_rtp(rtp(5, 800, b"\x01\x02"))
    assert packet is not None and (packet.sequence, packet.timestamp, packet.payload) == (5, 800, b"\x01\x02")
    extended = struct.pack("!BBHII", 0x90, 0, 1, 2, 3) + b"\xbe\xde\x00\x01" + b"abcd" + b"\x09"
    assert parse_rtp(extended).payload == b"\x09"  # type: ignore[union-attr]
    padded = struct.pack("!BBHII", 0xA0, 8, 1, 2, 3) + b"\x05\x06" + b"\x00\x00\x03"
    assert parse_rtp(padded).payload == b"\x05\x06"  # type: ignore[union-attr]
    assert parse_rtp(struct.pack("!BBHII", 0x80, 200, 1, 2, 3)) is None  # RTCP sender report
    assert parse_rtp(b"\x40" + bytes(20)) is None  # version 1


@given(st.binary(max_size=300))
def test_rtp_parser_never_raises(data: bytes) -> None:
    packet = parse_rtp(data)
    assert packet is None or len(packet.payload) <= len(data) - 12


def test_timeline_reorders_fills_gaps_and_drops_late_and_duplicate_packets() -> None:
    line = StreamTimeline(8000)
    frames = [np.full(160, i + 1, dtype=np.int16) for i in range(6)]
    line.add(7, 1000, frames[0], arrival=800)  # anchored where it arrived: sample 800
    line.add(7, 1320, frames[2], arrival=1200)  # packet 1 is late, packet 2 first
    line.add(7, 1160, frames[1], arrival=1210)
    line.add(7, 1160, frames[1], arrival=1220)  # duplicate
    line.add(7, 1800, frames[5], arrival=1700)  # 3 and 4 lost (or silence suppressed)
    out = line.take(800 + 960)
    assert out[:800].tolist() == [0] * 800
    assert [int(out[800 + 160 * i]) for i in range(6)] == [1, 2, 3, 0, 0, 6]
    assert line.stats.duplicates == 1 and line.stats.reordered == 1
    assert line.add(7, 1480, frames[3], arrival=2000) is False and line.stats.late == 1


def test_timeline_survives_the_timestamp_wrap_and_a_new_ssrc() -> None:
    line = StreamTimeline(8000)
    line.add(1, 2**32 - 160, np.ones(160, dtype=np.int16), arrival=0)
    line.add(1, 0, np.full(160, 2, dtype=np.int16), arrival=160)  # wrapped: right after
    assert line.take(320).tolist() == [1] * 160 + [2] * 160
    line.add(9, 123456, np.full(160, 3, dtype=np.int16), arrival=500)  # a new source starts where it arrives
    assert line.take(660)[-160:].tolist() == [3] * 160 and line.stats.anchors == 2


# --- SIPREC bodies ----------------------------------------------------------------------------------------

SDP = (
    "v=0\r\no=src 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=label:1\r\na=sendonly\r\n"
    "m=audio 6002 RTP/AVP 0\r\na=label:2\r\na=sendonly\r\n"
)
METADATA = """<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <participant participant_id="a"><nameID aor="sip:+8613800000000@carrier"/></participant>
  <participant participant_id="b"><nameID aor="sip:2042@pbx.example.com"/></participant>
  <stream stream_id="s1"><label>1</label></stream><stream stream_id="s2"><label>2</label></stream>
  <participantstreamassoc participant_id="a"><send>s1</send></participantstreamassoc>
  <participantstreamassoc participant_id="b"><send>s2</send></participantstreamassoc>
</recording>"""


def multipart(*parts: tuple[str, str]) -> tuple[str, bytes]:
    body = "".join(f"--XYZ\r\nContent-Type: {kind}\r\n\r\n{text}\r\n" for kind, text in parts) + "--XYZ--\r\n"
    return "multipart/mixed;boundary=XYZ", body.encode()


def test_roles_come_from_the_metadata_and_the_agent_pattern() -> None:
    offer = parse_offer(*multipart(("application/sdp", SDP), ("application/rs-metadata+xml", METADATA)))
    assert [(s.encoding, s.port) for s in offer.streams] == [("PCMA", 6000), ("PCMU", 6002)]
    roles, extension = stream_roles(offer, PATTERN, ORDER)
    assert roles == {0: "customer", 1: "agent"} and extension == "2042"


def test_without_metadata_the_label_order_decides() -> None:
    offer = parse_offer(*multipart(("application/sdp", SDP)))
    assert stream_roles(offer, PATTERN, ORDER) == ({0: "agent", 1: "customer"}, "")
    assert stream_roles(offer, PATTERN, ("customer", "agent"))[0] == {0: "customer", 1: "agent"}


def test_metadata_with_no_agent_falls_back_to_the_label_order() -> None:
    nobody = METADATA.replace("sip:2042@pbx.example.com", "sip:+8613900000000@carrier")
    offer = parse_offer(*multipart(("application/sdp", SDP), ("application/rs-metadata+xml", nobody)))
    assert stream_roles(offer, PATTERN, ORDER) == ({0: "agent", 1: "customer"}, "")


def test_the_older_draft_metadata_form_is_read() -> None:
    draft = b"""<recording xmlns='urn:ietf:params:xml:ns:recording'>
      <participant id='p1'><aor>sip:1001@pbx</aor><send>st1</send></participant>
      <stream id='st1'><label>7</label></stream></recording>"""
    meta = parse_metadata(draft)
    assert meta.participants[0].aor == "sip:1001@pbx" and meta.participants[0].sends == ("st1",)
    assert meta.labels == {"st1": "7"}


def test_answer_is_receive_only_and_mirrors_every_m_line() -> None:
    offer = parse_offer(*multipart(("application/sdp", SDP + "m=video 7000 RTP/AVP 96\r\n")))
    from aiosipua import serialize_sdp

    text = serialize_sdp(answer_sdp(offer, "127.0.0.1", {0: 40000, 1: 40002}, "1"))
    assert text.count("m=") == 3 and "m=video 0 " in text
    assert "m=audio 40000 RTP/AVP 8" in text and text.count("a=recvonly") == 2


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("multipart/mixed;boundary=XYZ", b"no parts here", 400),
        ("application/rs-metadata+xml", METADATA.encode(), 488),
        ("application/sdp", b"v=0\r\nm=video 5000 RTP/AVP 96\r\n", 488),
    ],
)
def test_unusable_offers_are_refused_with_a_status(content_type: str, body: bytes, status: int) -> None:
    with pytest.raises(SiprecError) as refused:
        parse_offer(content_type, body)
    assert refused.value.status == status


def test_metadata_with_entities_is_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><recording>&a;</recording>'
    with pytest.raises(SiprecError, match="DTD"):
        parse_metadata(bomb)


@settings(max_examples=200)
@given(st.binary(max_size=600), st.sampled_from(["multipart/mixed;boundary=b", "application/sdp", "x/y"]))
def test_offer_parsing_raises_only_siprec_errors(body: bytes, content_type: str) -> None:
    try:
        offer = parse_offer(content_type, b"--b\r\nContent-Type: application/sdp\r\n\r\n" + body)
    except SiprecError:
        return
    roles, _ = stream_roles(offer, PATTERN, ORDER)
    assert set(roles.values()) <= {"agent", "customer"}


@given(st.text(max_size=400))
def test_metadata_parsing_raises_only_siprec_errors(text: str) -> None:
    with contextlib.suppress(SiprecError):
        parse_metadata(("<recording>" + text + "</recording>").encode())


def test_body_parts_by_type() -> None:
    parts = split_body(*multipart(("application/sdp", "v=0"), ("application/rs-metadata+xml", "<r/>")))
    assert parts == {"application/sdp": b"v=0", "application/rs-metadata+xml": b"<r/>"}


# --- configuration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"rtp_ports": "40000"},
        {"rtp_ports": "50000-40000"},
        {"agent_pattern": "(unclosed"},
        {"agent_pattern": r"\d+@"},
        {"label_order": "agent,agent"},
        {"max_calls": 0},
    ],
)
def test_bad_telephony_settings_are_refused(bad: dict[str, object]) -> None:
    import dataclasses

    with pytest.raises(ConfigError):
        validate(dataclasses.replace(Config(), telephony=dataclasses.replace(TelephonyConfig(), **bad)))


def test_telephony_is_off_and_on_loopback_by_default() -> None:
    assert TelephonyConfig().enabled is False and TelephonyConfig().host == "127.0.0.1"


# --- a phone call on a simulated clock ------------------------------------------------------------------


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def tone(seconds: float, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


LINES = (
    Line(0.5, 2.0, "您好，这里是售后服务中心，请问有什么可以帮您？"),
    Line(2.6, 4.0, "我家洗衣机不脱水了"),
)


def phone_call(clock: Clock, transcriber: ScriptedTranscriber) -> PhoneCall:
    session = CallSession(fake_engines(), SessionOptions(background=False, use_llm=False))
    return PhoneCall(
        PhoneCallInfo("c1", "1001", "siprec"), session, Config().asr, transcriber, EnergyVad, clock=clock
    )


def play(
    call: PhoneCall, clock: Clock, role_spans: dict[str, list[tuple[float, float]]], until: float
) -> None:
    """20-ms packets per role (none during silence: silence suppression), the clock ticking along."""
    step = 0.02
    for n in range(int(until / step)):
        clock.now = n * step
        for role, spans in role_spans.items():
            if any(a <= clock.now < b for a, b in spans):
                call.receive(role, 5 if role == "agent" else 6, n * 160, tone(step))  # type: ignore[arg-type]
        call.tick()


def test_a_phone_call_commits_each_role_and_suggests_even_with_silence_suppression() -> None:
    clock = Clock()
    call = phone_call(clock, ScriptedTranscriber(LINES))
    play(call, clock, {"agent": [(0.5, 2.0)], "customer": [(2.6, 4.0)]}, until=6.0)
    # No packet came after 4 s, yet the clock handed on silence: both turns commit before the call ends.
    deadline = time.monotonic() + 30
    while len(call.session.segments) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    committed = [(s.speaker, s.text) for s in call.session.segments]
    call.end()
    assert call.wait(30)
    assert committed == [("agent", LINES[0].text), ("customer", LINES[1].text)]
    state = call.session.state()
    assert state.suggestion is not None and state.finished


def test_bye_mid_utterance_commits_what_was_said() -> None:
    clock = Clock()
    call = phone_call(clock, ScriptedTranscriber(LINES))
    play(call, clock, {"agent": [(0.5, 2.0)], "customer": [(2.6, 4.0)]}, until=3.5)  # BYE at 3.5 s
    call.end()
    assert call.wait(30)
    speakers = [s.speaker for s in call.session.state().segments]
    assert speakers == ["agent", "customer"]  # the customer's unfinished turn was flushed and committed


# --- the media-stream protocol --------------------------------------------------------------------------


class Received:
    def __init__(self) -> None:
        self.packets: list[tuple[str, int, int, list[int]]] = []

    def receive(self, role: str, ssrc: int, timestamp: int, samples: np.ndarray) -> None:
        self.packets.append((role, ssrc, timestamp, samples.tolist()))


def media(track: str, samples: list[int], **extra: object) -> str:
    payload = base64.b64encode(g711.encode_ulaw(np.array(samples, dtype=np.int16))).decode()
    return json.dumps({"event": "media", "media": {"track": track, "payload": payload, **extra}})


def test_json_media_messages_go_to_their_tracks_in_time() -> None:
    start = parse_start(json.dumps({"event": "start", "start": {"callId": "x", "extension": "1001"}}))
    assert (start.extension, start.encoding, start.rate) == ("1001", "audio/x-mulaw", 8000)
    got = Received()
    stream = MediaStream(start, got, ORDER)  # type: ignore[arg-type]
    assert stream.message(media("inbound", [0, 0]))
    assert stream.message(media("outbound", [0] * 4, timestamp=20))  # 20 ms = sample 160
    assert stream.message(media("customer", [0]))
    assert [(r, ts, len(s)) for r, _, ts, s in got.packets] == [
        ("customer", 0, 2),
        ("agent", 160, 4),
        ("customer", 2, 1),
    ]
    assert stream.message(json.dumps({"event": "stop"})) is False


def test_binary_frames_are_interleaved_channels_in_label_order() -> None:
    start = parse_start(json.dumps({"callId": "fs-uuid", "encoding": "audio/l16", "sampleRate": 16000}))
    got = Received()
    stream = MediaStream(start, got, ("customer", "agent"))  # type: ignore[arg-type]
    stream.message(np.array([1, 2, 3, 4, 5, 6], dtype="<i2").tobytes())
    assert [(r, s) for r, _, _, s in got.packets] == [("customer", [1, 3, 5]), ("agent", [2, 4, 6])]


def test_the_start_may_name_the_channel_order_of_binary_frames() -> None:
    start = parse_start(
        json.dumps({"callId": "b", "encoding": "audio/l16", "channels": ["agent", "customer"]})
    )
    got = Received()
    stream = MediaStream(start, got, ("customer", "agent"))  # type: ignore[arg-type]
    stream.message(np.array([1, 2], dtype="<i2").tobytes())
    assert [(r, s) for r, _, _, s in got.packets] == [("agent", [1]), ("customer", [2])]
    with pytest.raises(ProtocolError):
        parse_start(json.dumps({"callId": "b", "channels": ["agent", "agent"]}))


@pytest.mark.parametrize(
    "message",
    [
        b"\x00\x01",
        "not json",
        json.dumps({"event": "start", "start": {}}),
        json.dumps({"callId": "x", "encoding": "audio/opus"}),
        json.dumps({"callId": "x", "sampleRate": 44100}),
    ],
)
def test_a_bad_start_is_a_protocol_error(message: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_start(message)


@given(st.text(max_size=200))
def test_any_text_message_is_taken_or_refused_with_a_protocol_error(text: str) -> None:
    stream = MediaStream(parse_start('{"callId": "x"}'), Received(), ORDER)  # type: ignore[arg-type]
    with contextlib.suppress(ProtocolError):
        stream.message(text)


# --- the registry ----------------------------------------------------------------------------------------


def test_the_registry_finds_an_extensions_current_call_then_its_last() -> None:
    registry = CallRegistry()
    session = CallSession(fake_engines())
    registry.add("a", "1001", "siprec", session)
    registry.add("b", "1002", "siprec", session)
    assert registry.current("1001").call_id == "a"  # type: ignore[union-attr]
    assert registry.current("") is None and registry.current("9999") is None
    registry.ended("a", stored_id=3)
    assert registry.current("1001").stored_id == 3  # type: ignore[union-attr]
    registry.add("c", "1001", "media-stream", session)
    assert registry.current("1001").call_id == "c"  # type: ignore[union-attr]
    assert {e.call_id for e in registry.active()} == {"b", "c"}


def test_copilot_listen_refuses_a_bad_port_range_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from copilot.commands.cli import main

    assert main(["listen", "--rtp-ports", "40000"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "rtp_ports" in error


def test_text_that_only_repeats_the_prompt_is_dropped_from_narrowband_calls() -> None:
    from copilot.session.telephony.feed import PromptEchoGuard
    from copilot.types import Segment

    class Echo:
        def transcribe(
            self,
            audio: np.ndarray,
            *,
            start_time: float = 0.0,
            prompt: str = "",
            word_times: bool | None = None,
        ) -> tuple[Segment, ...]:
            return (
                Segment("unknown", 0, 1, "以下是普通话的句子。"),
                Segment("unknown", 1, 2, "喂，什么事？"),
            )

    guard = PromptEchoGuard(Echo(), "以下是普通话的句子。")
    assert [s.text for s in guard.transcribe(np.zeros(16000, dtype=np.float32))] == ["喂，什么事？"]
