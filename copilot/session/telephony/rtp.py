"""RTP in: strict packet parsing (RFC 3550) and a per-stream timeline.

A :class:`StreamTimeline` places each packet's samples by its RTP timestamp on the call's clock and hands
out contiguous audio: packets that arrive out of order are put back in order (as long as they are not
older than what was already handed out), lost packets and silence-suppressed stretches become silence,
duplicates are dropped, and a new SSRC (a re-INVITE, a failover) is anchored afresh where the clock is.
Everything here is pure: no sockets, no clock of its own (tests drive it with numbers).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")  # flags, marker+payload type, sequence, timestamp, SSRC
RTCP_TYPES = range(72, 77)  # payload types 200-204 with the marker bit: RTCP multiplexed on the RTP port
MAX_AHEAD_SECONDS = 10.0  # a packet this far beyond the timeline is a timestamp jump: anchor afresh
WRAP = 1 << 32
HALF = 1 << 31


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket | None:
    """A version-2 RTP packet, or None for anything else (RTCP, junk, truncated or inconsistent headers)."""
    if len(data) < HEADER.size:
        return None
    flags, kind, sequence, timestamp, ssrc = HEADER.unpack_from(data)
    if flags >> 6 != RTP_VERSION:
        return None
    payload_type = kind & 0x7F
    if payload_type in RTCP_TYPES:
        return None
    offset = HEADER.size + 4 * (flags & 0x0F)  # CSRC list
    if flags & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if len(data) < offset + 4:
            return None
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data)
    if flags & 0x20:  # padding: the last byte counts the padding bytes, itself included
        if end <= offset or not 0 < data[-1] <= end - offset:
            return None
        end -= data[-1]
    if offset > end:
        return None
    return RtpPacket(payload_type, sequence, timestamp, ssrc, bool(kind & 0x80), bytes(data[offset:end]))


@dataclass
class TimelineStats:
    packets: int = 0
    late: int = 0  # arrived after their time was handed out: dropped
    duplicates: int = 0
    reordered: int = 0  # arrived after a later packet, still in time
    filled: int = 0  # samples of silence put where no packet was (loss, silence suppression)
    anchors: int = 0  # times the stream was (re)anchored on the clock: first packet, new SSRC, jumps


@dataclass
class StreamTimeline:
    """One stream's samples on the call clock (sample 0 = the start of the call), handed out in order."""

    rate: int
    position: int = 0  # everything before this sample has been handed out
    stats: TimelineStats = field(default_factory=TimelineStats)
    _pending: dict[int, np.ndarray] = field(default_factory=dict)  # start sample -> samples
    _ssrc: int | None = None
    _anchor: int = 0  # call sample of extended timestamp 0
    _highest_ts: int = 0  # the highest RTP timestamp seen (unsigned) and its extended value
    _highest_ext: int = 0
    _end: int | None = None  # end sample of the latest packet placed

    def add(self, ssrc: int, timestamp: int, samples: np.ndarray, arrival: int) -> bool:
        """Place a packet's ``samples`` (RTP ``timestamp``, arrived at call sample ``arrival``)."""
        self.stats.packets += 1
        if self._ssrc != ssrc:
            self._anchor_at(ssrc, timestamp, arrival)
        diff = (timestamp - self._highest_ts + HALF) % WRAP - HALF  # signed distance, across the wrap
        extended = self._highest_ext + diff
        start = self._anchor + extended
        if start - self.position > MAX_AHEAD_SECONDS * self.rate:
            self._anchor_at(ssrc, timestamp, arrival)
            extended, start = 0, self._anchor
        if diff > 0:
            self._highest_ts, self._highest_ext = timestamp, extended
        end = start + len(samples)
        if end <= self.position:
            self.stats.late += 1
            return False
        if start in self._pending:
            self.stats.duplicates += 1
            return False
        if diff < 0:
            self.stats.reordered += 1
        self._pending[start] = np.asarray(samples, dtype=np.int16)
        self._end = end if self._end is None else max(self._end, end)
        return True

    def _anchor_at(self, ssrc: int, timestamp: int, arrival: int) -> None:
        self.stats.anchors += 1
        self._ssrc = ssrc
        self._highest_ts, self._highest_ext = timestamp, 0
        self._anchor = max(arrival, self.position, self._end or 0)

    @property
    def received_until(self) -> int | None:
        """End sample of the latest packet placed (None before the first)."""
        return self._end

    def take(self, until: int) -> np.ndarray:
        """The samples from ``position`` to ``until`` (silence where nothing arrived); moves ``position``."""
        length = until - self.position
        if length <= 0:
            return np.zeros(0, dtype=np.int16)
        out = np.zeros(length, dtype=np.int16)
        covered = np.zeros(length, dtype=bool)
        for start in sorted(s for s in self._pending if s < until):
            samples = self._pending.pop(start)
            lo = max(start, self.position)
            hi = min(start + len(samples), until)
            if hi > lo:
                out[lo - self.position : hi - self.position] = samples[lo - start : hi - start]
                covered[lo - self.position : hi - self.position] = True
            if start + len(samples) > until:  # the tail belongs to the next take
                self._pending[until] = samples[until - start :]
        self.stats.filled += int(length - covered.sum())
        self.position = until
        return out
