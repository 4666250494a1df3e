"""SIPp as a SIPREC recording client for the tests and ``eval/bench_siprec.py``.

:func:`write_capture` turns the two legs of a stereo call into RTP (G.711 μ-law, 20-ms packets, one SSRC
per leg) in a pcap file, leg 1 to UDP port ``BASE_PORT`` and leg 2 to ``BASE_PORT + 2``: SIPp's
``play_pcap_audio`` sends every packet to the answered port plus its offset from the capture's lowest port,
so one capture reaches both recorded streams. :func:`scenario` fills in the XML templates of tests/sipp/,
and :func:`run_sipp` runs the ``sipp`` binary (Debian's ``sip-tester``) against the server on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

import numpy as np

from copilot.session.telephony.g711 import encode_ulaw

SIPP_DIR = Path(__file__).resolve().parent / "sipp"
BASE_PORT = 10000  # capture ports: leg 1 here, leg 2 two above (SIPp maps them onto the answered ports)
PACKET_SAMPLES = 160  # 20 ms at 8 kHz
RATE = 8000
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # Ethernet link type
ETHERNET = b"\x00" * 12 + b"\x08\x00"
AGENT_AOR = "sip:1001@pbx.example.com"
CUSTOMER_AOR = "sip:+8613800000000@carrier.example.com"


@dataclass(frozen=True)
class Leg:
    samples: np.ndarray  # int16 at 8 kHz
    ssrc: int
    dtx: bool = False  # silence suppression: no packets while the leg is silent


def legs_of(path: Path, order: tuple[int, int] = (1, 0)) -> list[Leg]:
    """The channels of a stereo recording at 8 kHz as capture legs, in ``order`` (default: right first)."""
    from scipy.signal import resample_poly

    from copilot.transcription.audio import read_all

    audio, _ = read_all(path)  # (channels, n) float32 at 16 kHz
    legs = []
    for n, channel in enumerate(order):
        narrow = resample_poly(audio[channel], 1, 2)
        samples = np.clip(np.round(narrow * 32767), -32768, 32767).astype(np.int16)
        legs.append(Leg(samples, ssrc=0x1000 + n))
    return legs


def _packet(dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", dport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        17,
        0,
        socket.inet_aton("127.0.0.1"),
        socket.inet_aton("127.0.0.1"),
    )
    return ETHERNET + ip + udp


def rtp_packets(leg: Leg, *, drop: frozenset[int] = frozenset()) -> list[tuple[int, bytes]]:
    """(packet index, RTP bytes) of a leg; ``drop`` leaves packets out (loss)."""
    out = []
    for i in range(len(leg.samples) // PACKET_SAMPLES):
        chunk = leg.samples[i * PACKET_SAMPLES : (i + 1) * PACKET_SAMPLES]
        # Silence suppression still sends the first packet: SIPp plays a capture from its first packet on.
        if i in drop or (leg.dtx and i > 0 and np.abs(chunk).max() < 200):
            continue
        header = struct.pack("!BBHII", 0x80, 0, i & 0xFFFF, (i * PACKET_SAMPLES) & 0xFFFFFFFF, leg.ssrc)
        out.append((i, header + encode_ulaw(chunk)))
    return out


def write_capture(legs: list[Leg], path: Path, *, speed: float = 1.0) -> float:
    """The legs' RTP, leg n to BASE_PORT + 2n, sent ``speed`` times faster than real time; its duration."""
    packets = []
    for n, leg in enumerate(legs):
        for i, rtp in rtp_packets(leg):
            packets.append((i * PACKET_SAMPLES / RATE / speed, n, _packet(BASE_PORT + 2 * n, rtp)))
    packets.sort(key=lambda p: (p[0], p[1]))
    with path.open("wb") as out:
        out.write(PCAP_HEADER)
        for when, _n, frame in packets:
            seconds = int(when)
            out.write(struct.pack("<IIII", seconds, round((when - seconds) * 1e6), len(frame), len(frame)))
            out.write(frame)
    return packets[-1][0] if packets else 0.0


def scenario(template: str, target: Path, **values: object) -> Path:
    """A scenario from tests/sipp/``template`` with its ``$placeholders`` filled in."""
    text = Template((SIPP_DIR / template).read_text(encoding="utf-8"))
    target.write_text(text.substitute({k: str(v) for k, v in values.items()}), encoding="utf-8")
    return target


def recording_session(
    target: Path, pcap: Path, *, extension: str, first_pause_ms: int, rest_pause_ms: int
) -> Path:
    """The SIPREC call scenario playing ``pcap``, the agent ``sip:EXTENSION@pbx.example.com`` on label 2."""
    return scenario(
        "siprec_call.xml",
        target,
        pcap=pcap,
        metadata=metadata(agent_aor=f"sip:{extension}@pbx.example.com"),
        first_pause_ms=first_pause_ms,
        rest_pause_ms=rest_pause_ms,
    )


def stored_events(events: list[dict], count: int = 1, timeout: float = 60.0) -> list[dict]:
    """Wait until ``count`` calls were stored (or failed) among a service's ``events``; those events."""
    deadline = time.monotonic() + timeout
    while True:
        done = [e for e in events if e["event"] in ("call-stored", "call-failed")]
        if len(done) >= count:
            return done
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(done)} of {count} calls stored; events: {events}")
        time.sleep(0.05)


def metadata(agent_aor: str = AGENT_AOR, customer_aor: str = CUSTOMER_AOR) -> str:
    """The rs-metadata part (agent sends label 2, customer label 1) for a scenario's ``$metadata``."""
    text = Template((SIPP_DIR / "metadata.xml").read_text(encoding="utf-8"))
    return text.substitute(agent_aor=agent_aor, customer_aor=customer_aor).rstrip("\n")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sipp_binary() -> str:
    found = shutil.which("sipp")
    assert found, "sipp is missing: install the Debian package sip-tester (scripts/system-deps.sh)"
    return found


def run_sipp(
    scenario_file: Path, server_port: int, *, media_port: int, timeout: float, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """One call of ``scenario_file`` against 127.0.0.1:``server_port`` (SIPp's own ports are free ones)."""
    command = [
        sipp_binary(),
        "-sf",
        str(scenario_file),
        "-m",
        "1",
        "-l",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(media_port),
        "-nostdin",
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-trace_err",
        "-trace_msg",
        f"127.0.0.1:{server_port}",
    ]
    return subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=timeout + 30, check=False
    )
