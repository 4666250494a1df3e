"""Domain vocabulary (products, service terms) for ASR hotwords and the BM25 tokenizer."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

VOCABULARY_SIZE = 300  # TF-IDF keywords kept from the handbooks
MIN_WORD_CHARS = 2
HAN_WORD = re.compile(r"^[\u4e00-\u9fff]+$")


def extract_vocabulary(texts: Iterable[str], size: int = VOCABULARY_SIZE) -> list[str]:
    """Keywords of the handbooks by TF-IDF against jieba's general-language IDF table."""
    import jieba.analyse

    from copilot.config import load_jieba

    load_jieba()
    corpus = "\n".join(texts)
    tags = jieba.analyse.extract_tags(corpus, topK=size * 2)
    return [t for t in tags if len(t) >= MIN_WORD_CHARS and HAN_WORD.match(t)][:size]


def read_word_list(path: Path) -> list[str]:
    if not path.is_file():
        return []
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.split("#", 1)[0].strip()
        if word:
            words.append(word)
    return words


def write_word_list(path: Path, words: Sequence[str], header: str) -> None:
    path.write_text(header + "\n".join(words) + "\n", encoding="utf-8")


def merge_words(*lists: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    merged = []
    for words in lists:
        for word in words:
            if word not in seen:
                seen.add(word)
                merged.append(word)
    return merged
