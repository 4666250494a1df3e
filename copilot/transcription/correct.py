"""Fix near-homophones of domain words that Whisper base mishears (克服 -> 客服, 宝修 -> 保修 ...).

A window of the transcript is replaced by a vocabulary word of the same length when their toneless
pinyin agree (any reading of each character) and at least one character already matches, or when the
window is a curated known mishearing of that word. Replacing a real word is how over-correction
happens (克服困难 is right), so a window that is itself a common word is replaced only when a
neighbouring cue says the call is talking about the service (客服中心, 致电收获服务 ...).

Corrections never change the length of the text, so word timestamps can be mapped character by
character (see :func:`correction_map`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

# Curated mishearings of Whisper base that toneless pinyin alone cannot catch (shou huo != shou hou).
CONFUSIONS: dict[str, tuple[str, ...]] = {
    "售后": ("收获", "收后", "手后", "授后"),
    "客服": ("克服", "刻服"),
    "致电": ("制电", "置电", "至电"),
    "保修": ("宝修",),
    "油烟机": ("游腌机", "油腌机", "游烟机"),
}
# Real after-sales words that sound like a vocabulary word (报修 = report a fault, bao xiu like 保修).
KEEP = frozenset({"报修", "收货", "售货", "客户", "保险"})
# A window that jieba knows at least this often is a real word and needs a cue before it is replaced.
REAL_WORD_MIN_FREQ = 50
# Text right after / before a window that shows the service is meant (客服中心, 联系售后 ...).
NEXT_CUES = (
    "中心",
    "人员",
    "电话",
    "热线",
    "服务",
    "部",
    "专员",
    "工单",
    "网点",
    "政策",
    "期",
    "范围",
    "凭证",
    "师傅",
    "上门",
)
PREV_CUES = ("联系", "致电", "打给", "转接", "转到", "找", "您好", "这里是", "我是", "感谢您", "感谢")
CUE_SPAN = 4  # characters looked at on each side for a cue


@lru_cache(maxsize=4096)
def _readings(char: str) -> frozenset[str]:
    """Toneless pinyin readings of one character (the character itself if it has none)."""
    from pypinyin import Style, pinyin

    readings = pinyin(char, style=Style.NORMAL, heteronym=True, errors="default")
    return frozenset(readings[0]) if readings and readings[0] else frozenset({char})


def _same_sound(window: str, word: str) -> bool:
    return all(_readings(a) & _readings(b) for a, b in zip(window, word, strict=True))


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, int]:
    from copilot.config import load_jieba

    jieba = load_jieba()
    jieba.initialize()
    freq: dict[str, int] = jieba.dt.FREQ
    return freq


def warm() -> None:
    """Load jieba's dictionary and pypinyin's tables now: about 2.5 s on first use, which would otherwise
    land on the first committed line of a live call."""
    _dictionary()
    _readings("修")


def is_real_word(text: str) -> bool:
    """Whether jieba's dictionary knows ``text`` as a common word."""
    return _dictionary().get(text, 0) >= REAL_WORD_MIN_FREQ


def _has_cue(text: str, start: int, end: int) -> bool:
    after = text[end : end + CUE_SPAN]
    before = text[max(0, start - CUE_SPAN) : start]
    return after.startswith(NEXT_CUES) or before.endswith(PREV_CUES)


def _is_candidate(window: str, word: str) -> bool:
    if window in KEEP or not all("\u4e00" <= c <= "\u9fff" for c in window):
        return False
    if window in CONFUSIONS.get(word, ()):
        return True
    return any(a == b for a, b in zip(window, word, strict=True)) and _same_sound(window, word)


def _rank(window: str, word: str, order: int) -> tuple[bool, int, int]:
    """Curated mishearings first, then more characters already right, then vocabulary order."""
    same = sum(a == b for a, b in zip(window, word, strict=True))
    return (window in CONFUSIONS.get(word, ()), same, -order)


def correction_map(text: str, vocabulary: Iterable[str]) -> list[tuple[int, str, str]]:
    """``(position, heard, corrected)`` for every window that would be replaced, left to right."""
    unique = list(dict.fromkeys(w for w in vocabulary if len(w) >= 2))  # keeps the caller's order
    order = {w: i for i, w in enumerate(unique)}
    lengths = sorted({len(w) for w in unique}, reverse=True)  # longest first: 保修期 before 保修
    found: list[tuple[int, str, str]] = []
    i = 0
    while i < len(text):
        present = [w for w in unique if text.startswith(w, i)]
        if present:  # already right: never rewrite inside a correct word
            i += max(len(w) for w in present)
            continue
        best: tuple[str, str] | None = None
        for length in lengths:
            window = text[i : i + length]
            if len(window) < length:
                continue
            candidates = [w for w in unique if len(w) == length and _is_candidate(window, w)]
            if not candidates or (is_real_word(window) and not _has_cue(text, i, i + length)):
                continue
            best = (window, max(candidates, key=lambda w: _rank(window, w, order[w])))
            break
        if best is None:
            i += 1
            continue
        found.append((i, best[0], best[1]))
        i += len(best[1])
    return found


def correct_homophones(text: str, vocabulary: Sequence[str] | Iterable[str]) -> str:
    """``text`` with near-homophones of vocabulary words replaced; same length as ``text``."""
    chars = list(text)
    for position, _heard, word in correction_map(text, vocabulary):
        chars[position : position + len(word)] = list(word)
    return "".join(chars)
