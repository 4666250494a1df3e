"""The SIPREC recording server: a receive-only SIP UAS (``aiosipua``) and its RTP sockets, on one asyncio loop.

For each recording-session INVITE it reads the offer (:mod:`~copilot.session.telephony.siprec`), asks the
service for a :class:`~copilot.session.telephony.feed.PhoneCall` (None: at capacity, 486), opens one UDP
socket per recorded stream (ports P and P+2 of a pair, so a capture replayed by SIPp reaches both), and
answers ``recvonly``. A re-INVITE is answered on the same ports; BYE, CANCEL, an ACK that never comes, or
no media for ``media_timeout_seconds`` end the call. OPTIONS keep-alives are answered in and out of dialogs.
Packets are taken only from the address the offer names (symmetric RTP: the recorder sends from the port it
offered; another port of that host is latched only until the offered one is heard from).
Malformed SIP never reaches this module: ``aiosipua`` drops what it cannot parse and answers 400 to requests
without their mandatory headers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiosipua import IncomingCall, SipRequest, SipResponse, SipUAS
from aiosipua.transport import UdpSipTransport, _UdpProtocol
from aiosipua.utils import generate_tag

from copilot.config import TelephonyConfig, rtp_port_range
from copilot.session.telephony import g711
from copilot.session.telephony.feed import PhoneCall
from copilot.session.telephony.rtp import parse_rtp
from copilot.session.telephony.siprec import (
    OfferedStream,
    RecordingOffer,
    SiprecError,
    answer_sdp,
    label_roles,
    parse_offer,
    stream_roles,
)
from copilot.types import Role

log = logging.getLogger(__name__)

USER_AGENT = "mandarin-copilot-srs"
DECODERS: dict[str, Callable[[bytes], object]] = {
    "PCMU": g711.decode_ulaw,
    "PCMA": g711.decode_alaw,
    "L16": g711.decode_l16,
}
ANY_ADDRESS = ("", "0.0.0.0", "::")
RTP_RECEIVE_BUFFER = 1 << 20  # bytes: the default (208 KB) overflowed at ~2 s of a busy loop

# (call id, extension, source, rate) -> a new PhoneCall, or None when no place is free
CallFactory = Callable[[str, str, str, int], PhoneCall | None]


class PortPool:
    """RTP port pairs (P, P+2) from the configured range; a pair is handed out only when both bind."""

    def __init__(self, low: int, high: int) -> None:
        self._starts = list(range(low + low % 2, high - 2, 4))
        self._used: set[int] = set()

    def candidates(self) -> list[int]:
        return [p for p in self._starts if p not in self._used]

    def take(self, start: int) -> None:
        self._used.add(start)

    def give_back(self, start: int) -> None:
        self._used.discard(start)


class _SipProtocol(_UdpProtocol):
    """aiosipua 0.7.1 asserts ``isinstance(transport, asyncio.DatagramTransport)``, which Python 3.11's
    selector transport is not (it is from 3.12 on): the assertion fails on every start, harmlessly but loudly."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._owner._udp_transport = transport  # type: ignore[assignment]


class SipTransport(UdpSipTransport):
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _SipProtocol(self), local_addr=self.local_addr
        )
        self._udp_transport = transport


class RecordingUAS(SipUAS):
    """aiosipua's UAS, absorbing retransmitted INVITEs: it answers a repeated re-INVITE (same Via branch and
    CSeq, sent again because the 200 was slow to arrive) with 500 as if its CSeq went backwards. The 200 is
    already being retransmitted until the ACK, so a retransmission needs nothing more."""

    def _handle_invite(self, request: SipRequest, addr: tuple[str, int]) -> None:
        existing = self._calls.get(request.call_id or "")
        if existing is not None and _same_transaction(existing.invite, request):
            return
        super()._handle_invite(request, addr)


def _same_transaction(first: SipRequest, second: SipRequest) -> bool:
    branch = [v.branch for v in first.via[:1]] == [v.branch for v in second.via[:1]]
    return branch and first.get_header("cseq") == second.get_header("cseq")


class RtpReceiver(asyncio.DatagramProtocol):
    """One recorded stream's socket: packets from the expected source, decoded, to the call's timeline."""

    def __init__(self, call: PhoneCall, role: Role, stream: OfferedStream) -> None:
        self.call = call
        self.role = role
        self.stream = stream
        self.decode = DECODERS[stream.encoding]
        self.offered = (stream.address, stream.port)
        self.source: tuple[str, int] | None = None
        self.refused = 0  # packets from elsewhere, or not RTP of the negotiated payload type

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:  # room for seconds of packets while the loop is busy (capped by rmem_max)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RTP_RECEIVE_BUFFER)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        source = (addr[0], addr[1])
        if self.stream.address not in ANY_ADDRESS and source[0] != self.stream.address:
            self.refused += 1
            return
        if source == self.offered or self.source is None:
            self.source = source  # the offered port always wins the latch
        elif source != self.source:
            self.refused += 1
            return
        packet = parse_rtp(data)
        if packet is None or packet.payload_type != self.stream.payload_type:
            self.refused += 1
            return
        samples = self.decode(packet.payload)
        self.call.receive(self.role, packet.ssrc, packet.timestamp, samples)  # type: ignore[arg-type]


@dataclass
class Recording:
    """One recording session: its SIP side, its call, its sockets."""

    sip: IncomingCall
    call: PhoneCall
    offer: RecordingOffer
    roles: dict[int, Role]
    port_pair: int
    ports: dict[int, int] = field(default_factory=dict)  # m-line index -> local port
    receivers: dict[int, RtpReceiver] = field(default_factory=dict)
    transports: list[asyncio.DatagramTransport] = field(default_factory=list)


class SiprecServer:
    def __init__(self, config: TelephonyConfig, new_call: CallFactory) -> None:
        self.config = config
        self.new_call = new_call
        self.recordings: dict[str, Recording] = {}
        self._pool = PortPool(*rtp_port_range(config.rtp_ports))
        self._label_order = label_roles(config.label_order)
        self._uas: SipUAS | None = None
        self.port = config.sip_port

    async def start(self) -> None:
        transport = SipTransport(local_addr=(self.config.host, self.config.sip_port))
        uas = RecordingUAS(transport, user_agent=USER_AGENT)
        uas.on_invite = lambda call: self._spawn(self._on_invite(call))
        uas.on_reinvite = self._on_reinvite
        uas.on_bye = lambda call, _request: self.end(call.call_id)
        uas.on_cancel = lambda request, _addr: self.end(request.call_id or "")
        uas.on_ack_timeout = lambda call: self.end(call.call_id)
        uas.on_options = self._on_options
        await uas.start()
        udp = transport._udp_transport
        if udp is not None:  # port 0 in the configuration: the system picked one
            self.port = udp.get_extra_info("sockname")[1]
        self._uas = uas

    async def stop(self) -> None:
        for call_id in list(self.recordings):
            self.end(call_id, hang_up=True)
        if self._uas is not None:
            await self._uas.stop()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        task.add_done_callback(_log_failure)

    # -- requests --------------------------------------------------------------------------------------
    async def _on_invite(self, sip: IncomingCall) -> None:
        try:
            offer = parse_offer(sip.invite.get_header("content-type") or "", sip.invite.body or b"")
        except SiprecError as e:
            log.warning("refused recording session %s: %s", sip.call_id, e)
            sip.reject(e.status, str(e)[:80])
            return
        roles, extension = stream_roles(offer, self.config.agent_pattern, self._label_order)
        rate = next(s.rate for s in offer.streams if s.index in roles)
        call = self.new_call(sip.call_id, extension, "siprec", rate)
        if call is None:
            sip.reject(486, "All Recording Places In Use")
            return
        recording = await self._open_media(sip, call, offer, roles)
        if recording is None:
            call.end()
            sip.reject(503, "No RTP Ports Free")
            return
        self.recordings[sip.call_id] = recording
        sip.accept(answer_sdp(offer, self._media_address(), recording.ports, str(recording.port_pair)))
        log.info("recording %s: extension %r, streams %s", sip.call_id, extension, roles)

    async def _open_media(
        self, sip: IncomingCall, call: PhoneCall, offer: RecordingOffer, roles: dict[int, Role]
    ) -> Recording | None:
        loop = asyncio.get_running_loop()
        indexes = sorted(roles)
        for start in self._pool.candidates():
            recording = Recording(sip, call, offer, roles, start)
            try:
                for n, index in enumerate(indexes):
                    stream = offer.streams[index]
                    receiver = RtpReceiver(call, roles[index], stream)
                    transport, _ = await loop.create_datagram_endpoint(
                        lambda receiver=receiver: receiver,  # type: ignore[misc]
                        local_addr=(self.config.host, start + 2 * n),
                    )
                    recording.transports.append(transport)
                    recording.receivers[index] = receiver
                    recording.ports[index] = start + 2 * n
            except OSError:
                for transport in recording.transports:
                    transport.close()
                continue
            self._pool.take(start)
            return recording
        return None

    def _media_address(self) -> str:
        return self.config.host if self.config.host not in ANY_ADDRESS else "127.0.0.1"

    def _on_reinvite(self, sip: IncomingCall) -> None:
        recording = self.recordings.get(sip.call_id)
        if recording is None:
            sip.reject(481, "Call/Transaction Does Not Exist")
            return
        try:
            offer = parse_offer(sip.invite.get_header("content-type") or "", sip.invite.body or b"")
        except SiprecError as e:
            sip.reject(e.status, str(e)[:80])  # the session goes on as it was
            return
        # Same streams, same ports (matched by label); the recorder may have moved its own side.
        by_label = {recording.offer.streams[i].label: i for i in recording.ports}
        ports: dict[int, int] = {}
        for stream in offer.streams:
            old = by_label.get(stream.label)
            if old is not None and stream.payload_type is not None:
                ports[stream.index] = recording.ports[old]
                receiver = recording.receivers[old]
                receiver.stream = OfferedStream(
                    stream.index,
                    stream.label,
                    stream.port,
                    stream.address,
                    stream.payload_type,
                    stream.encoding,
                    stream.rate,
                )
                receiver.decode = DECODERS[stream.encoding]
                receiver.offered = (stream.address, stream.port)
        sip.accept(answer_sdp(offer, self._media_address(), ports, str(recording.port_pair)))

    def _on_options(self, request: SipRequest, addr: tuple[str, int]) -> None:
        assert self._uas is not None
        response = SipResponse(status_code=200, reason_phrase="OK")
        for via in request.headers.get("via"):
            response.headers.append("Via", via)
        for name in ("from", "call-id", "cseq"):
            value = request.headers.get_first(name)
            if value:
                response.headers.set_single(name.title() if name != "call-id" else "Call-ID", value)
        to = request.headers.get_first("to") or ""
        response.headers.set_single("To", to if ";tag=" in to else f"{to};tag={generate_tag()}")
        response.headers.set_single("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")
        response.headers.set_single("Accept", "application/sdp, application/rs-metadata+xml, multipart/mixed")
        response.headers.set_single("User-Agent", USER_AGENT)
        self._uas.transport.send_reply(response)

    # -- ending ----------------------------------------------------------------------------------------
    def end(self, call_id: str, *, hang_up: bool = False) -> None:
        """End a recording: close its sockets and let its call finish (and be stored)."""
        recording = self.recordings.pop(call_id, None)
        if recording is None:
            return
        if hang_up:
            recording.sip.hangup()
        for transport in recording.transports:
            transport.close()
        self._pool.give_back(recording.port_pair)
        recording.call.end()

    def check_media(self, timeout: float) -> None:
        """Hang up recordings that have had no media for ``timeout`` s (the recorder went away)."""
        for call_id, recording in list(self.recordings.items()):
            if recording.call.idle_seconds > timeout:
                log.warning("recording %s: no media for %.0f s, hanging up", call_id, timeout)
                self.end(call_id, hang_up=True)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("SIPREC request failed", exc_info=task.exception())
