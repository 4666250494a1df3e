"""Media streams over WebSocket: the audio of a call forked by a telephony platform, two tracks.

The protocol (one WebSocket connection per call; see the README's "Live calls from the phone system"):

- the first message is text, a JSON ``start``: ``{"event": "start", "start": {"callId": "...",
  "extension": "1001", "encoding": "audio/x-mulaw" | "audio/x-alaw" | "audio/l16", "sampleRate": 8000}}``
  (a bare object with those keys, as FreeSWITCH's ``mod_audio_fork`` sends its metadata, is read the same);
- then either JSON ``media`` messages, ``{"event": "media", "media": {"track": "agent" | "customer" |
  "outbound" | "inbound", "payload": "<base64>", "timestamp": <ms since the start, optional>}}``
  (``inbound`` is the caller, i.e. the customer; ``outbound`` the agent), or binary frames of interleaved
  two-channel audio in the start's encoding, channels in the start's ``"channels"`` (e.g. ``["agent",
  "customer"]``) or else ``[telephony] label_order`` (L16 little-endian);
- ``{"event": "stop"}`` or closing the connection ends the call; its review is stored.

A bad message closes the connection with 1008 and a one-line reason; no free place closes it with 1013.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from copilot.session.telephony import g711
from copilot.session.telephony.feed import PhoneCall
from copilot.types import Role

log = logging.getLogger(__name__)

ENCODINGS: dict[str, tuple[Callable[[bytes], np.ndarray], int]] = {  # decoder, bytes per sample
    "audio/x-mulaw": (g711.decode_ulaw, 1),
    "audio/pcmu": (g711.decode_ulaw, 1),
    "audio/x-alaw": (g711.decode_alaw, 1),
    "audio/pcma": (g711.decode_alaw, 1),
    "audio/l16": (lambda b: np.frombuffer(b[: len(b) - len(b) % 2], dtype="<i2").astype(np.int16), 2),
}
TRACKS: dict[str, Role] = {
    "agent": "agent",
    "outbound": "agent",
    "customer": "customer",
    "inbound": "customer",
}
RATES = (8000, 16000)
SSRC = {"agent": 1, "customer": 2}  # one timeline source per track

# (call id, extension, source, rate) -> a new PhoneCall, or None when no place is free
CallFactory = Callable[[str, str, str, int], PhoneCall | None]


class ProtocolError(ValueError):
    """A message this endpoint does not accept (the connection is closed with 1008)."""


@dataclass(frozen=True)
class StreamStart:
    call_id: str
    extension: str
    encoding: str
    rate: int
    channels: tuple[Role, ...] | None = None  # binary frames' channel roles; None: [telephony] label_order


def parse_start(text: str | bytes) -> StreamStart:
    if isinstance(text, bytes):
        raise ProtocolError("the first message must be a JSON start, not audio")
    try:
        message = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProtocolError(f"start is not JSON ({e.msg})") from e
    if not isinstance(message, dict):
        raise ProtocolError("start must be a JSON object")
    if "event" in message:
        if message.get("event") != "start" or not isinstance(message.get("start"), dict):
            raise ProtocolError('the first message must be {"event": "start", "start": {...}}')
        message = message["start"]
    call_id = str(message.get("callId") or message.get("callSid") or message.get("uuid") or "").strip()
    encoding = str(message.get("encoding") or "audio/x-mulaw").lower()
    rate = message.get("sampleRate", 8000)
    if not call_id or len(call_id) > 200:
        raise ProtocolError("start needs a callId (at most 200 characters)")
    if encoding not in ENCODINGS:
        raise ProtocolError(f"encoding {encoding!r} is not one of {', '.join(ENCODINGS)}")
    if not isinstance(rate, int) or rate not in RATES:
        raise ProtocolError(f"sampleRate must be one of {RATES}")
    channels = message.get("channels")
    if channels is not None:
        if not isinstance(channels, list) or sorted(map(str, channels)) != ["agent", "customer"]:
            raise ProtocolError('channels must be ["agent", "customer"] in the order of the frames')
        channels = tuple(TRACKS[str(c)] for c in channels)
    return StreamStart(call_id, str(message.get("extension") or "").strip(), encoding, rate, channels)


class MediaStream:
    """One connection's call: JSON media or binary frames into its PhoneCall's timelines."""

    def __init__(self, start: StreamStart, call: PhoneCall, label_order: tuple[Role, ...]) -> None:
        self.start = start
        self.call = call
        self.label_order = start.channels or label_order
        self.decode, self.width = ENCODINGS[start.encoding]
        self._counts: dict[Role, int] = {"agent": 0, "customer": 0}

    def message(self, data: str | bytes) -> bool:
        """Take one message; False once the stream has stopped."""
        if isinstance(data, bytes):
            self._frames(data)
            return True
        try:
            message = json.loads(data)
        except json.JSONDecodeError as e:
            raise ProtocolError(f"message is not JSON ({e.msg})") from e
        event = message.get("event") if isinstance(message, dict) else None
        if event == "stop":
            return False
        if event == "media":
            self._media(message.get("media"))
        elif event not in ("mark", "dtmf", "connected"):  # other platforms' chatter is harmless
            raise ProtocolError(f"unknown event {event!r}")
        return True

    def _media(self, media: Any) -> None:
        if not isinstance(media, dict):
            raise ProtocolError("media must be an object")
        role = TRACKS.get(str(media.get("track", "")).lower())
        if role is None:
            raise ProtocolError(f"track must be one of {', '.join(TRACKS)}")
        try:
            payload = base64.b64decode(str(media.get("payload", "")), validate=True)
        except (binascii.Error, ValueError) as e:
            raise ProtocolError("media payload is not base64") from e
        samples = self.decode(payload)
        stamp = media.get("timestamp")
        if stamp is not None:
            try:
                timestamp = round(float(stamp) * self.start.rate / 1000)
            except (TypeError, ValueError) as e:
                raise ProtocolError("media timestamp must be milliseconds") from e
        else:
            timestamp = self._counts[role]
        self._counts[role] = timestamp + len(samples)
        self.call.receive(role, SSRC[role], timestamp % (1 << 32), samples)

    def _frames(self, data: bytes) -> None:
        frame = 2 * self.width
        usable = len(data) - len(data) % frame
        samples = self.decode(data[:usable]).reshape(-1, 2)
        for channel, role in enumerate(self.label_order):
            self.call.receive(role, SSRC[role], self._counts[role] % (1 << 32), samples[:, channel])
            self._counts[role] += len(samples)


async def handle_connection(
    connection: ServerConnection, new_call: CallFactory, label_order: tuple[Role, ...]
) -> None:
    """Serve one media-stream connection until it stops or closes."""
    stream: MediaStream | None = None
    try:
        start = parse_start(await connection.recv())
        call = new_call(start.call_id, start.extension, "media-stream", start.rate)
        if call is None:
            await connection.close(1013, "all live-call places are in use")
            return
        stream = MediaStream(start, call, label_order)
        async for data in connection:
            if not stream.message(data):
                break
        await connection.close(1000, "call stored when its review is done")
    except ProtocolError as e:
        await connection.close(1008, str(e)[:120])
    except ConnectionClosed:
        pass  # the platform hung up without a stop: the call ends all the same
    finally:
        if stream is not None:
            stream.call.end()
