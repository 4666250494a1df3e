"""Find runs of random characters with a two-state hidden Markov model.

Real Chinese is scored by a character-bigram language model built from the word frequencies in
jieba's own dictionary (a clean, general-domain corpus that ships with jieba, so nothing is trained
on the handbooks themselves). Noise is modelled as characters drawn uniformly from the common
character set. Viterbi decoding over the two states gives crisp span boundaries, and the switching
penalty means a short rare word inside real text never flips the state on its own.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

# GB2312 level 1 holds the 3755 common characters; the noise runs seen in web previews are drawn
# (near-)uniformly from them, so that is the noise state's alphabet.
NOISE_CHARSET_SIZE = 3755
# Weight of the bigram estimate against the unigram one; real text crosses word boundaries,
# where the in-word bigram table knows nothing, so the unigram term must carry real weight.
BIGRAM_WEIGHT = 0.3
# Log-probability of changing state between two characters: about 14 nats of evidence are
# needed before a span is called noise, which takes several improbable characters in a row.
SWITCH_LOG_PROB = math.log(1e-6)
# Non-Han characters (punctuation, digits, Latin) are ordinary in real text, rare in the noise.
NON_HAN_CLEAN_LOG_PROB = math.log(0.5)
NON_HAN_NOISE_LOG_PROB = math.log(1e-4)
UNIGRAM_SMOOTHING = 0.5  # add-k counts for characters the dictionary never saw


def is_han(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


@dataclass(frozen=True)
class NoiseSpan:
    """A half-open character range ``[start, end)`` decoded as random characters."""

    start: int
    end: int


class CharBigramModel:
    """Interpolated character bigram model over word-internal transitions."""

    def __init__(self, unigrams: Counter[str], bigrams: Counter[str]) -> None:
        self._unigrams = unigrams
        self._bigrams = bigrams
        self._total = sum(unigrams.values())
        self._vocab = max(1, len(unigrams))
        self._left: Counter[str] = Counter()
        for pair, count in bigrams.items():
            self._left[pair[0]] += count

    @classmethod
    def from_word_counts(cls, words: dict[str, int]) -> CharBigramModel:
        unigrams: Counter[str] = Counter()
        bigrams: Counter[str] = Counter()
        for word, count in words.items():
            for char in word:
                unigrams[char] += count
            for a, b in pairwise(word):
                bigrams[a + b] += count
        return cls(unigrams, bigrams)

    def log_prob(self, previous: str, char: str) -> float:
        unigram = (self._unigrams.get(char, 0) + UNIGRAM_SMOOTHING) / (
            self._total + UNIGRAM_SMOOTHING * self._vocab
        )
        left = self._left.get(previous, 0) if previous else 0
        bigram = self._bigrams.get(previous + char, 0) / left if left else 0.0
        return math.log(BIGRAM_WEIGHT * bigram + (1.0 - BIGRAM_WEIGHT) * unigram)


def jieba_dictionary_path() -> Path:
    import jieba

    return Path(jieba.__file__).resolve().parent / "dict.txt"


@lru_cache(maxsize=1)
def default_model() -> CharBigramModel:
    """The model built from jieba's dictionary (about 350k words; a few seconds, done once)."""
    words: dict[str, int] = {}
    with jieba_dictionary_path().open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                words[parts[0]] = int(parts[1]) + 1  # +1: zero-frequency entries are still words
    return CharBigramModel.from_word_counts(words)


def noise_spans(text: str, model: CharBigramModel | None = None, *, min_chars: int = 1) -> list[NoiseSpan]:
    """Viterbi-decode ``text`` into clean / noise states and return the noise spans."""
    if not text:
        return []
    lm = model or default_model()
    noise_emission = math.log(1.0 / NOISE_CHARSET_SIZE)
    clean_score, noise_score = 0.0, SWITCH_LOG_PROB
    back: list[tuple[int, int]] = []
    previous = ""
    for char in text:
        if is_han(char):
            emit_clean = lm.log_prob(previous if is_han(previous) else "", char)
            emit_noise = noise_emission
        else:
            emit_clean, emit_noise = NON_HAN_CLEAN_LOG_PROB, NON_HAN_NOISE_LOG_PROB
        stay_clean, from_noise = clean_score, noise_score + SWITCH_LOG_PROB
        stay_noise, from_clean = noise_score, clean_score + SWITCH_LOG_PROB
        back.append((0 if stay_clean >= from_noise else 1, 1 if stay_noise >= from_clean else 0))
        clean_score = max(stay_clean, from_noise) + emit_clean
        noise_score = max(stay_noise, from_clean) + emit_noise
        previous = char
    state = 0 if clean_score >= noise_score else 1
    labels = [0] * len(text)
    for i in range(len(text) - 1, -1, -1):
        labels[i] = state
        state = back[i][state]
    spans: list[NoiseSpan] = []
    start = -1
    for i, label in enumerate([*labels, 0]):
        if label == 1 and start < 0:
            start = i
        elif label == 0 and start >= 0:
            if i - start >= min_chars:
                spans.append(NoiseSpan(start, i))
            start = -1
    return spans
