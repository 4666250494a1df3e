"""G.711 (PCMU / PCMA) decoding and encoding with 256- and 65536-entry numpy tables (``audioop`` is gone
from Python 3.13). Decoding follows ITU-T G.711 exactly; encoding picks the code whose decoded value is
nearest (used to make test captures and by media-stream clients).
"""

from __future__ import annotations

import numpy as np

ULAW_BIAS = 0x84
ALAW_TOGGLE = 0x55  # even bits are inverted on the wire


def _ulaw_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ ALAW_TOGGLE
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


ULAW_DECODE = _ulaw_table()
ALAW_DECODE = _alaw_table()


def _encoder(decode: np.ndarray) -> np.ndarray:
    """For every int16 value (offset by 32768), the code whose decoded value is nearest."""
    order = np.argsort(decode, kind="stable")
    values = decode[order].astype(np.int32)
    linear = np.arange(-32768, 32768, dtype=np.int32)
    upper = np.clip(np.searchsorted(values, linear), 1, len(values) - 1)
    nearer_lower = (linear - values[upper - 1]) <= (values[upper] - linear)
    return order[np.where(nearer_lower, upper - 1, upper)].astype(np.uint8)


_ULAW_ENCODE: np.ndarray | None = None
_ALAW_ENCODE: np.ndarray | None = None


def decode_ulaw(payload: bytes) -> np.ndarray:
    return ULAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]


def decode_alaw(payload: bytes) -> np.ndarray:
    return ALAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]


def encode_ulaw(samples: np.ndarray) -> bytes:
    global _ULAW_ENCODE
    if _ULAW_ENCODE is None:
        _ULAW_ENCODE = _encoder(ULAW_DECODE)
    return _ULAW_ENCODE[np.asarray(samples, dtype=np.int16).astype(np.int32) + 32768].tobytes()


def encode_alaw(samples: np.ndarray) -> bytes:
    global _ALAW_ENCODE
    if _ALAW_ENCODE is None:
        _ALAW_ENCODE = _encoder(ALAW_DECODE)
    return _ALAW_ENCODE[np.asarray(samples, dtype=np.int16).astype(np.int32) + 32768].tobytes()


def decode_l16(payload: bytes) -> np.ndarray:
    """RTP L16 (RFC 3551): big-endian signed 16-bit."""
    usable = len(payload) - len(payload) % 2
    return np.frombuffer(payload[:usable], dtype=">i2").astype(np.int16)
