"""What a SIPREC INVITE says (RFC 7866): the offered streams (SDP) and who is on each (rs-metadata, RFC 7865).

The body of a recording-session INVITE is ``multipart/mixed`` with an ``application/sdp`` part (one
``m=audio`` line per recorded stream, each with an ``a=label``) and an ``application/rs-metadata+xml`` part
naming the participants and which stream each one sends. The agent is the participant whose address of
record matches ``[telephony] agent_pattern``; its ``extension`` group is what the agent signs in with. When
the metadata is missing or says nothing usable, the streams take the roles of ``label_order`` in SDP order.
Both the RFC's attribute names (``participant_id``, ``stream_id``) and the older draft's (``id``, ``<aor>``,
``<send>`` inside ``<participant>``) are read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import cast

from aiosipua import SdpMessage, parse_sdp
from aiosipua.sdp import ConnectionData, MediaDescription, Origin

from copilot.errors import CopilotError
from copilot.types import Role

SDP_TYPE = "application/sdp"
METADATA_TYPE = "application/rs-metadata+xml"
MAX_METADATA_BYTES = 64 * 1024  # a few participants and streams; more is not a recording session
CODECS: dict[str, int] = {"PCMU": 8000, "PCMA": 8000, "L16": 8000}  # encoding -> the rate we accept
STATIC_PAYLOADS: dict[int, tuple[str, int]] = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 11: ("L16", 44100)}


class SiprecError(CopilotError):
    """A recording-session request this server cannot take (answered with a 4xx, the server goes on)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Participant:
    id: str
    aor: str
    sends: tuple[str, ...]  # stream ids


@dataclass(frozen=True)
class RecordingMetadata:
    participants: tuple[Participant, ...]
    labels: dict[str, str]  # stream id -> SDP label


@dataclass(frozen=True)
class OfferedStream:
    """One ``m=`` line of the offer."""

    index: int
    label: str
    port: int  # 0: rejected / not media we take
    address: str  # where the recorder sends from (symmetric RTP), from c=
    payload_type: int | None  # the codec we take, None when none is offered
    encoding: str
    rate: int


@dataclass(frozen=True)
class RecordingOffer:
    sdp: SdpMessage
    streams: tuple[OfferedStream, ...]
    metadata: RecordingMetadata | None


def split_body(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a SIP body by content type (a single part comes back under its own type)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not kind.startswith("multipart/"):
        return {kind: body} if body else {}
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise SiprecError("multipart body without a usable boundary")
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            parts.setdefault(part.get_content_type().lower(), payload)
    return parts


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(node: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in node if _local(c.tag) == name]


def _text(node: ET.Element, name: str) -> str:
    found = _children(node, name)
    return (found[0].text or "").strip() if found else ""


def parse_metadata(xml: bytes) -> RecordingMetadata:
    """Participants (with the streams they send) and stream labels from an rs-metadata document."""
    if len(xml) > MAX_METADATA_BYTES:
        raise SiprecError("rs-metadata part is too large")
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise SiprecError("rs-metadata with a DTD is refused")  # no entity expansion, ever
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise SiprecError(f"rs-metadata is not well-formed XML ({e})") from e
    if _local(root.tag) != "recording":
        raise SiprecError(f"rs-metadata root is <{_local(root.tag)}>, not <recording>")
    labels: dict[str, str] = {}
    for stream in _children(root, "stream"):
        stream_id = stream.get("stream_id") or stream.get("id") or ""
        if stream_id:
            labels[stream_id] = _text(stream, "label")
    sends: dict[str, list[str]] = {}
    for assoc in _children(root, "participantstreamassoc"):
        owner = assoc.get("participant_id") or assoc.get("id") or ""
        sends.setdefault(owner, []).extend(s.text.strip() for s in _children(assoc, "send") if s.text)
    participants = []
    for node in _children(root, "participant"):
        pid = node.get("participant_id") or node.get("id") or ""
        name_ids = _children(node, "nameID")
        aor = name_ids[0].get("aor", "") if name_ids else ""
        aor = aor or _text(node, "aor")
        own = [s.text.strip() for s in _children(node, "send") if s.text]  # the older draft's form
        participants.append(Participant(pid, aor.strip(), tuple(own + sends.get(pid, []))))
    return RecordingMetadata(tuple(participants), labels)


def parse_offer(content_type: str, body: bytes) -> RecordingOffer:
    """The SDP offer and (if present and readable) the recording metadata of a SIPREC INVITE."""
    parts = split_body(content_type, body)
    if SDP_TYPE not in parts:
        raise SiprecError("no SDP offer in the INVITE", status=488)
    try:
        sdp = parse_sdp(parts[SDP_TYPE].decode("utf-8"))
    except (ValueError, UnicodeDecodeError, IndexError) as e:
        raise SiprecError(f"unreadable SDP ({e})", status=488) from e
    metadata = parse_metadata(parts[METADATA_TYPE]) if METADATA_TYPE in parts else None
    streams = tuple(_offered(i, m, sdp) for i, m in enumerate(sdp.media))
    if not any(s.payload_type is not None for s in streams):
        raise SiprecError("no audio stream in a codec this server takes (PCMU, PCMA, L16)", status=488)
    return RecordingOffer(sdp, streams, metadata)


def _offered(index: int, media: MediaDescription, sdp: SdpMessage) -> OfferedStream:
    label = (media.attributes.get("label") or [str(index + 1)])[0].strip()
    connection = media.connection or sdp.connection
    address = connection.address if connection else ""
    chosen: tuple[int, str, int] | None = None
    if media.media == "audio" and media.port > 0 and media.proto.upper().startswith("RTP/AVP"):
        rtpmap = {c.payload_type: (c.encoding_name.upper(), c.clock_rate) for c in media.codecs}
        for fmt in media.formats:
            if not fmt.isdigit():
                continue
            pt = int(fmt)
            encoding, rate = rtpmap.get(pt) or STATIC_PAYLOADS.get(pt, ("", 0))
            if CODECS.get(encoding) == rate:
                chosen = (pt, encoding, rate)
                break
    if chosen is None:
        return OfferedStream(index, label, media.port, address, None, "", 0)
    return OfferedStream(index, label, media.port, address, *chosen)


def stream_roles(
    offer: RecordingOffer, agent_pattern: str, label_order: tuple[Role, ...]
) -> tuple[dict[int, Role], str]:
    """Each usable stream's role (by m-line index) and the agent's extension ("" when unknown).

    A stream sent by the participant matching ``agent_pattern`` is the agent's; the streams of the other
    participants are the customer's. Without that, the usable streams take ``label_order`` in SDP order.
    """
    usable = [s for s in offer.streams if s.payload_type is not None]
    pattern = re.compile(agent_pattern)
    extension = ""
    roles: dict[int, Role] = {}
    if offer.metadata is not None:
        by_label = {s.label: s.index for s in usable}
        for participant in offer.metadata.participants:
            found = pattern.search(participant.aor)
            role: Role = "agent" if found else "customer"
            if found and not extension:
                extension = found.group("extension")
            for stream_id in participant.sends:
                index = by_label.get(offer.metadata.labels.get(stream_id, ""))
                if index is not None:
                    roles[index] = role
        if not extension:
            roles = {}  # no agent among the participants: the metadata cannot tell the roles apart
    if sorted(roles.values()) != ["agent", "customer"]:
        roles = {s.index: label_order[i] for i, s in enumerate(usable[: len(label_order)])}
    return roles, extension


def label_roles(label_order: str) -> tuple[Role, ...]:
    """``[telephony] label_order`` ("agent,customer") as roles (the configuration validated it)."""
    return tuple(cast(Role, r.strip()) for r in label_order.split(","))


def answer_sdp(offer: RecordingOffer, local_ip: str, ports: dict[int, int], session_id: str) -> SdpMessage:
    """The receive-only answer: every offered m-line mirrored, the ones we record on ``ports``, others 0."""
    media = []
    for stream in offer.streams:
        port = ports.get(stream.index, 0)
        attributes: dict[str, list[str]] = {"label": [stream.label]}
        if port and stream.payload_type is not None:
            formats = [str(stream.payload_type)]
            attributes["rtpmap"] = [f"{stream.payload_type} {stream.encoding}/{stream.rate}"]
            attributes["recvonly"] = []
        else:
            formats = offer.sdp.media[stream.index].formats[:1] or ["0"]
            attributes["inactive"] = []
        media.append(
            MediaDescription(
                media=offer.sdp.media[stream.index].media or "audio",
                port=port,
                proto=offer.sdp.media[stream.index].proto,
                formats=formats,
                attributes=attributes,
            )
        )
    return SdpMessage(
        origin=Origin(username="copilot", session_id=session_id, session_version="1", address=local_ip),
        session_name="copilot recording",
        connection=ConnectionData(address=local_ip),
        media=media,
    )
