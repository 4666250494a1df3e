"""Encode only the audio, not Whisper's 30 s of zero padding (faster-whisper).

faster-whisper pads every window's log-mel features to 3000 frames (30 s) before the encoder, so a
3-second utterance costs as much as a 30-second one. CTranslate2's Whisper encoder accepts shorter
inputs; cutting the padding (keeping a margin of silence so the decoder still sees where speech ends)
makes short utterances several times faster — what live streaming decodes all the time. Measured in
eval/bench_asr.py (``[asr] trim_padding``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

FRAMES_PER_SECOND = 100  # Whisper log-mel frames (10 ms hop)
WHISPER_WINDOW_FRAMES = 3000  # the 30-s window faster-whisper pads to
MARGIN_FRAMES = 50  # 0.5 s of padding kept after the last audio frame
ROUND_FRAMES = 100  # encoder input rounded up to whole seconds: few distinct shapes
MIN_FRAMES = 1000  # never shorter than 10 s: with 2 s a lone short word was often lost


def content_frames(features: np.ndarray) -> int:
    """Frames up to the last one that is not all-zero padding.

    Whisper's log-mel of real audio is never exactly 0 in every bin (even digital silence maps to -1.5),
    so all-zero trailing columns can only be ``pad_or_trim``'s padding.
    """
    nonzero = np.flatnonzero(np.any(features != 0, axis=0))
    return int(nonzero[-1]) + 1 if nonzero.size else 0


def trimmed_length(features: np.ndarray) -> int:
    """How many frames of ``features`` (n_mels, frames) the encoder needs to see."""
    total = features.shape[-1]
    wanted = content_frames(features) + MARGIN_FRAMES
    wanted = -(-wanted // ROUND_FRAMES) * ROUND_FRAMES
    return min(total, max(MIN_FRAMES, wanted))


def trimming_whisper_model(*args: Any, **kwargs: Any) -> Any:
    """A faster-whisper ``WhisperModel`` whose encoder skips the trailing zero padding."""
    from faster_whisper import WhisperModel

    class TrimmedWhisperModel(WhisperModel):
        def encode(self, features: np.ndarray, *rest: Any, **options: Any) -> Any:
            if features.ndim == 2 and features.shape[-1] == WHISPER_WINDOW_FRAMES:
                features = np.ascontiguousarray(features[:, : trimmed_length(features)])
            return super().encode(features, *rest, **options)

    return TrimmedWhisperModel(*args, **kwargs)
