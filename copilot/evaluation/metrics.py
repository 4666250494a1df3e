"""The measures every suite and benchmark shares: CER with its one normalisation, and percentiles.

One definition each, so a figure in a suite's table and the same figure from an ``eval/`` benchmark
never disagree.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import unicodedata
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

CER_NORMALISATION = (
    "t2s (OpenCC), digits -> Chinese numerals (cn2an), lower case, only letters and digits kept; "
    "corpus CER = edits / reference characters"
)
EMPTY_HYPOTHESIS = "∅"  # jiwer refuses an empty hypothesis; one wrong character counts it as all deleted


@cache
def _t2s() -> Any:
    from opencc import OpenCC

    return OpenCC("t2s")


def normalise_for_cer(text: str) -> str:
    """Traditional -> Simplified, Arabic digits -> Chinese numerals, lower case, letters and digits only."""
    import cn2an

    text = _t2s().convert(text)
    with contextlib.suppress(ValueError, KeyError):  # cn2an refuses some digit runs: keep them as they are
        text = cn2an.transform(text, "an2cn")
    return "".join(ch for ch in text.lower() if unicodedata.category(ch)[0] in "LN")


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus-level character error rate: edits over reference characters, summed over the set."""
    import jiwer

    pairs = [(normalise_for_cer(r), normalise_for_cer(h)) for r, h in zip(refs, hyps, strict=True)]
    pairs = [(r, h or EMPTY_HYPOTHESIS) for r, h in pairs if r]
    if not pairs:
        return math.nan
    return float(jiwer.cer([r for r, _ in pairs], [h for _, h in pairs]))


def p50(values: Sequence[float]) -> float | None:
    """The median, rounded to 0.1 (milliseconds in the suites' tables); None for no values."""
    return round(statistics.median(values), 1) if values else None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in (0, 1]: the smallest value with at least q of the values at or
    below it (few samples: p95 is close to the maximum). NaN for no values."""
    if not values:
        return math.nan
    if not 0.0 < q <= 1.0:
        raise ValueError(f"percentile q must be in (0, 1], got {q}")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def rank_none_counted(labelled_none: bool, answered_none: bool, fitting: Iterable[bool]) -> int | None:
    """Rank (1-based) of the first fitting hit, with "none fits" counted as an answer, as ``copilot search``
    gives it: a query labelled none is right at rank 1 when the answer is none; a query with a fitting passage
    is a miss when the answer is none. ``fitting``: per hit, in rank order, whether it fits (read lazily)."""
    if labelled_none:
        return 1 if answered_none else None
    if answered_none:
        return None
    return next((rank for rank, fits in enumerate(fitting, 1) if fits), None)
