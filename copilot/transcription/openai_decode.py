"""Make openai-whisper's CPU decode affordable without changing what it computes (openai backend only).

Two costs dominated an offline decode of a stereo call (py-spy over eval/bench_asr.py's windows):

* Beam search runs the decoder on 5 hypotheses against one copy of the audio features, so every
  cross-attention call hands PyTorch's scaled_dot_product_attention a query batch of 5 and a key batch
  of 1; its CPU kernel handles that broadcast about 30x slower than the same product with the 5 queries
  laid side by side in one batch (15 ms instead of 0.5 ms a layer and step on a 30-s window, 2 cores).
* The encoder ran again for every temperature fallback and for the word-timestamp alignment of the
  same 30-s window, and always on 30 s even for a 2-s clip.

:class:`SharedAudioCrossAttention` folds the beams into the query length (cross-attention has no mask,
so each query row attends to the same keys either way); :class:`ReusingEncoder` keeps its last output and
optionally encodes only the audio plus a margin, as faster-whisper's trimming does (asr_window.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import whisper.model
from torch import Tensor, nn
from torch.nn import functional as F

from copilot.transcription.window import (
    FRAMES_PER_SECOND,
    WHISPER_WINDOW_FRAMES,
    content_frames,
    trimmed_length,
)


class SharedAudioCrossAttention(whisper.model.MultiHeadAttention):
    """Cross-attention of several hypotheses over one audio: one SDPA call with the beams as query rows."""

    def qkv_attention(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        if not _folds(q, k, mask):
            return super().qkv_attention(q, k, v, mask)
        batch, n_ctx, n_state = q.shape
        out, qk = super().qkv_attention(q.reshape(1, batch * n_ctx, n_state), k, v)
        return out.reshape(batch, n_ctx, n_state), qk


def _folds(q: Tensor, k: Tensor, mask: Tensor | None) -> bool:
    """Whether the beams can share one key batch: SDPA on (it returns no weights to reshape), no mask,
    several queries over a single audio."""
    sdpa = whisper.model.SDPA_AVAILABLE and whisper.model.MultiHeadAttention.use_sdpa
    return sdpa and mask is None and k.shape[0] == 1 and q.shape[0] > 1


def encoder_frames(mel: Tensor, trim: bool) -> int:
    """Mel frames the encoder reads: all of them, or (``trim``) the audio and a margin of a padded window."""
    if not trim or mel.shape[-1] != WHISPER_WINDOW_FRAMES:
        return int(mel.shape[-1])
    return max(trimmed_length(np.asarray(m)) for m in mel.detach().cpu())


class ReusingEncoder(nn.Module):
    """openai-whisper's AudioEncoder that returns its last output again for the same mel (fallback decodes
    and the word alignment re-encode the window they just decoded) and may skip the zero padding."""

    def __init__(self, encoder: whisper.model.AudioEncoder, *, trim: bool) -> None:
        super().__init__()
        self.inner = encoder
        self.trim = trim
        self._last: tuple[Tensor, Tensor] | None = None

    def forward(self, mel: Tensor) -> Tensor:
        if self._last is not None and torch.equal(self._last[0], mel):
            return self._last[1]
        features = self._encode(mel)
        self._last = (mel.detach().clone(), features)
        return features

    def _encode(self, mel: Tensor) -> Tensor:
        frames = encoder_frames(mel, self.trim)
        if frames == mel.shape[-1]:
            return self.inner(mel)
        # AudioEncoder.forward, but with the positional embedding cut to the shorter input (it asserts
        # the full 1500 positions); the first positions are the same, so timestamps keep their meaning.
        enc = self.inner
        x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel[..., :frames])))).permute(0, 2, 1)
        x = (x + enc.positional_embedding[: x.shape[1]]).to(x.dtype)
        for block in enc.blocks:
            x = block(x)
        features: Tensor = enc.ln_post(x)
        return features


def speed_up(model: whisper.model.Whisper, *, trim: bool) -> None:
    """Install both changes on a loaded model (in place)."""
    for block in model.decoder.blocks:
        if block.cross_attn is not None:
            block.cross_attn.__class__ = SharedAudioCrossAttention
    model.encoder = ReusingEncoder(model.encoder, trim=trim)


class RemnantGuard:
    """openai-whisper's ``model.decode`` that does not decode a window's short leftover of a VAD clip.

    With word timestamps, ``transcribe()`` moves ``seek`` back to the last word's end and decodes what is
    left of the clip, often a fraction of a second of silence after 再见 or 嗯; on such a piece the decoder
    writes repetition loops, each worth five more temperature fallbacks. A piece with fewer than
    ``min_frames`` mel frames of audio comes back as silence (no tokens, no_speech_prob 1), which
    ``transcribe()`` skips. Callers set ``min_frames`` per call no longer than their shortest clip, so the
    first decode of every clip always runs; 0 turns the guard off.
    """

    def __init__(self, decode: Any) -> None:
        self.decode = decode
        self.min_frames = 0
        self.skipped = 0

    def __call__(self, mel: Tensor, options: whisper.DecodingOptions) -> Any:
        if (
            self.min_frames > 0
            and mel.ndim == 2
            and content_frames(np.asarray(mel.detach().cpu())) < self.min_frames
        ):
            self.skipped += 1
            return silence(options)
        return self.decode(mel, options)


def silence(options: whisper.DecodingOptions) -> whisper.DecodingResult:
    """A decode result that ``transcribe()`` takes for silence: skipped, with no temperature fallback."""
    return whisper.DecodingResult(
        audio_features=torch.empty(0),
        language=options.language or "zh",
        tokens=[],
        text="",
        avg_logprob=-math.inf,
        no_speech_prob=1.0,
        temperature=options.temperature,
        compression_ratio=0.0,
    )


def pad_clips(clips: list[float], duration: float, min_seconds: float) -> list[float]:
    """Flat ``[start, end, ...]`` clips widened to at least ``min_seconds`` inside ``[0, duration]``
    (end first, then start), overlapping ones merged."""
    spans: list[list[float]] = []
    for start, end in zip(clips[::2], clips[1::2], strict=True):
        short = min_seconds - (end - start)
        if short > 0:
            end = min(duration, end + short)
            start = max(0.0, end - min_seconds)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [t for span in spans for t in span]


def remnant_frames(clips: list[float], most: int) -> int:
    """RemnantGuard's ``min_frames`` for flat ``clips``: ``most``, or fewer than the shortest clip as
    openai-whisper rounds it to frames, so that no clip's first decode counts as a leftover."""
    fps = FRAMES_PER_SECOND
    lengths = [round(e * fps) - round(s * fps) for s, e in zip(clips[::2], clips[1::2], strict=True)]
    return min([most, *lengths])
