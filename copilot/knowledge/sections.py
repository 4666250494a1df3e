"""Sections from a document's own headings (第X部分 / 第X章 / 第X条 / 一、 / (一) / 1. / 1.1 / (1) …).

Heading styles get their nesting level in order of first appearance, the way a reader infers it:
the first style seen is the top level, a new style nests under the current heading, and a style
seen before pops back to its level. Short stand-alone lines without punctuation are unnumbered
headings. Web pages often run a whole document into one line; headings there are recognised
when they follow a space or the end of a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from copilot.knowledge.clean import CN_NUMERALS, SECTION_BREAK

CN = f"[{CN_NUMERALS}]+"
# (style, pattern at the start of a line); the order decides which style wins on a tie.
HEADING_STYLES: tuple[tuple[str, str], ...] = (
    ("markdown", r"#{1,6}\s+"),
    ("part", rf"第(?:{CN}|\d+)(?:部分|章|篇)[::、\s]*"),
    ("article", rf"第(?:{CN}|\d+)[节条][::、\s]*"),
    ("cn", rf"{CN}[、.．::]\s*"),
    ("cn-paren", rf"[((]{CN}[))]\s*"),
    ("num-dot-num", r"\d{1,2}(?:\.\d{1,2})+\.?\s*(?=[\u4e00-\u9fff])"),
    ("num", r"\d{1,2}(?:[、．]|\.(?!\d))\s*"),
    ("num-paren", r"[((]\d{1,2}[))]\s*"),
    ("circled", r"[①②③④⑤⑥⑦⑧⑨⑩]\s*"),
)
_COMPILED = tuple((style, re.compile(pattern)) for style, pattern in HEADING_STYLES)
# Headings inside a run-on line: after whitespace or a sentence end, never after a Chinese
# character ("统一、" is not a heading). "1." is left alone there: it is too often a decimal.
INLINE_HEADING = re.compile(
    rf"(?:(?<=\s)|(?<=[。!?;”]))(?=第(?:{CN}|\d+)(?:部分|章|篇|节|条)|{CN}[、.::]|[((]{CN}[))]|\d{{1,2}}、|[((]\d{{1,2}}[))])"
)
# A short title glued to the first item of its list: "…好吗?”关于特殊沟通内容的应答规范1、遇到…".
GLUED_LIST_TITLE = re.compile(r"(?:(?<=^)|(?<=[。!?;”)]))\)?([^。!?;”,,:)\s\d]{2,20}?)(?=1、)")
TITLE_STYLE = "title"  # an unnumbered heading line
MAX_HEADING_TITLE_CHARS = 24  # the heading's name in a section path; the rest of the line is body
MAX_TITLE_LINE_CHARS = 30  # a stand-alone line longer than this is text, not a heading
TITLE_END = re.compile(r"[::,,。;;!?!?“\"(( ]")
# The next item's number glued to a heading's name (2. 服务时间要求2.1. 客户报修后…, 三、服务质量保障1. …):
# it belongs to the body, not the name.
GLUED_ITEM_NUMBER = re.compile(r"(?<=[\u4e00-\u9fff])\d{1,2}(?:\.\d{1,2})*\.?$")
# Divisions that are always above numbered items, however late their style first shows (a document whose
# 第一章 is glued to its title meets 1.1 first, then 第二章: that chapter is not a child of 1.2).
DIVISION_STYLES = frozenset({"part"})


@dataclass(frozen=True)
class Section:
    path: tuple[str, ...]  # heading names from the top level down
    lines: tuple[str, ...]  # the heading line (if any) and the body lines


@dataclass(frozen=True)
class _Heading:
    style: str
    name: str


def split_inline_headings(line: str) -> list[str]:
    line = GLUED_LIST_TITLE.sub(lambda m: f"\n{m.group(1)}\n", line)
    parts = [part.strip() for chunk in line.split("\n") for part in INLINE_HEADING.split(chunk)]
    return [part for part in parts if part]


def _heading(line: str, is_title_line: bool) -> _Heading | None:
    for style, pattern in _COMPILED:
        match = pattern.match(line)
        if not match:
            continue
        rest = line[match.end() :]
        title = GLUED_ITEM_NUMBER.sub("", TITLE_END.split(rest, maxsplit=1)[0][:MAX_HEADING_TITLE_CHARS])
        if not title:
            continue
        marker = re.sub("[::]$", "、" if style == "cn" else "", match.group(0).strip())
        if style == "markdown":  # each depth of # is its own style, so ## nests under #
            return _Heading(f"markdown{match.group(0).count('#')}", rest.strip()[:MAX_HEADING_TITLE_CHARS])
        return _Heading(style, f"{marker}{' ' if style in ('part', 'article') else ''}{title}")
    if is_title_line:
        return _Heading(TITLE_STYLE, line)
    return None


def _looks_like_title(line: str) -> bool:
    return len(line) <= MAX_TITLE_LINE_CHARS and not re.search(r"[,,。;;!?!?“”]", line)


def split_sections(lines: Sequence[str]) -> list[Section]:
    """Group clean lines (the first one is the document title) into sections by heading."""
    expanded: list[str] = []
    for line in lines[1:]:
        expanded.extend([line] if line == SECTION_BREAK else split_inline_headings(line))
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    levels: dict[str, int] = {}
    current_path: tuple[str, ...] = ()
    current: list[str] = []

    def flush() -> None:
        if current:
            sections.append(Section(current_path, tuple(current)))
        current.clear()

    for i, line in enumerate(expanded):
        if line == SECTION_BREAK:
            flush()
            stack, levels, current_path = [], {}, ()
            continue
        following = expanded[i + 1] if i + 1 < len(expanded) else SECTION_BREAK
        is_title = _looks_like_title(line) and following != SECTION_BREAK
        heading = _heading(line, is_title)
        if heading is None:
            current.append(line)
            continue
        flush()
        if (
            heading.style in DIVISION_STYLES
            and heading.style not in levels
            and (numbered := [level for style, level in levels.items() if style != TITLE_STYLE])
        ):
            # the division takes the place of the highest numbered style, which moves one level down
            top = min(numbered)
            levels = {
                style: level + (style != TITLE_STYLE and level >= top) for style, level in levels.items()
            }
            levels[heading.style] = top
        elif heading.style not in levels:
            levels[heading.style] = stack[-1][0] + 1 if stack else 0
        level = levels[heading.style]
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, heading.name))
        current_path = tuple(name for _, name in stack)
        current.append(line)
    flush()
    return sections
