"""Mask personal data in Chinese call text: phone, ID-card, bank-card numbers, e-mails, WeChat/QQ ids,
street addresses and the customer's name.

Callers read numbers aloud, so a mobile number reaches the transcript as ``13812345678``,
``138-1234-5678``, ``幺三八 一二三四 五六七八``, ``一三八，嗯，一二三四，那个，五六七八`` or a mix, often glued
to the next word (``13812345678一直打不通``) and sometimes cut over two segments at the caller's pause.
So we scan for runs of digit-like characters (Arabic, full-width, spoken and capital Chinese digits)
joined by what people and ASR put between digit groups (spaces, dashes, 杠, dots, commas, brackets, fillers),
and read the longest personal number from the start of each run by its length and shape; a number may end
inside a run when what follows is a Chinese numeral starting the next word (``一直``, ``五点``, ``两个``).

Controls are kept: numbers written with 十/百/千 are never runs; a run of dates (``20261201-20261205``), a
price list (context 价/元/块), an order or model number (context 订单/单号/型号 ..., unless it is a mobile
number), business numbers (400/800/95xxx) and the company's own hotlines ([privacy] keep_numbers).

:func:`redact_segments` redacts a whole call: each speaker's segments are read as one text, so a number
split over two segments (also with the other party's ``嗯您说`` in between) is found.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from copilot.types import Segment

PiiKind = Literal["mobile", "id_card", "bank_card", "landline", "email", "wechat", "qq", "address", "name"]
ALL_KINDS: frozenset[PiiKind] = frozenset(get_args(PiiKind))

# The placeholder shown instead of each kind: it says what was removed.
MASKS: dict[PiiKind, str] = {
    "mobile": "[手机号]",
    "id_card": "[身份证号]",
    "bank_card": "[银行卡号]",
    "landline": "[电话]",
    "email": "[邮箱]",
    "wechat": "[微信号]",
    "qq": "[QQ号]",
    "address": "[地址]",
    "name": "[姓名]",
}

# Spoken digits: 幺 is how 1 is read in phone numbers; 〇/零/洞 are read for 0; 两 for 2.
_SPOKEN_DIGITS = {
    "零": "0",
    "〇": "0",
    "洞": "0",
    "一": "1",
    "幺": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
    # Financial (capital) numerals, as written on forms and sometimes typed into notes.
    "壹": "1",
    "贰": "2",
    "叁": "3",
    "肆": "4",
    "伍": "5",
    "陆": "6",
    "柒": "7",
    "捌": "8",
    "玖": "9",
}
_FULLWIDTH_DIGITS = {chr(0xFF10 + i): str(i) for i in range(10)}
_DIGIT_MAP = {**_SPOKEN_DIGITS, **_FULLWIDTH_DIGITS, **{str(i): str(i) for i in range(10)}}
_DIGIT_CLASS = "0-9０-９" + "".join(_SPOKEN_DIGITS)
_CHINESE_DIGITS = frozenset(_SPOKEN_DIGITS)

# Between digit groups: spaces, dashes (and 杠, the spoken dash), dots, commas, brackets around an area
# code, and the fillers of someone reading a number aloud (嗯, 那个 ...), up to a few in a row.
_SEPARATORS = r"[ \t\u3000\-‐–—－·.,，、/()（）杠]"
_FILLER = r"(?:嗯|呃|额|啊|哦|那个|就是)"
_GLUE = rf"(?:{_SEPARATORS}{{1,3}}|(?:{_SEPARATORS}{{0,2}}{_FILLER}){{1,2}}{_SEPARATORS}{{0,2}})"
_RUN = re.compile(
    rf"(?:\+?86{_SEPARATORS}?)?[{_DIGIT_CLASS}](?:{_GLUE}?[{_DIGIT_CLASS}])*(?:{_SEPARATORS}?[xX](?![A-Za-z0-9]))?"
)
# A run glued to ASCII letters or digits is part of a code (XQB80..., wx138...), not a spoken number.
_ALNUM = re.compile(r"[A-Za-z0-9]")

MOBILE_DIGITS = 11
ID_CARD_DIGITS = 18  # 17 digits and a check character that may be X
BANK_CARD_DIGITS = range(16, 20)  # 16-19 digits (UnionPay)
LANDLINE_DIGITS = range(10, 13)  # area code 0xx / 0xxx + 7-8 digit local number
LOCAL_DIGITS = range(7, 9)  # a local number without area code: masked when said as a phone number
QQ_DIGITS = range(5, 12)
PRICE_DIGITS = 6  # a price in a list of prices has at most this many digits
MAX_NUMBER_DIGITS = max(BANK_CARD_DIGITS)
GLUED_WORD_DIGITS = (
    2  # at most this many Chinese numerals after a number may start the next word (一直, 五点)
)
CONTEXT_BEFORE = 12  # characters before a number read for what it is (电话, 订单号, 价格 ...)
CONTEXT_AFTER = 6

# What the words before (or just after) a number say it is. The longest spelling wins at each place
# (订单号码 is an order, not a phone number), and the nearest word before the number decides.
_CONTEXT_WORDS: dict[str, str] = {
    **dict.fromkeys(
        (
            "订单号码",
            "订单编号",
            "订单号",
            "订单",
            "工单号码",
            "工单号",
            "运单号",
            "快递单号",
            "单号码",
            "单号",
            "工单",
            "运单",
            "快递",
            "物流",
            "编号",
            "序列号",
            "条码",
            "型号",
            "发票",
            "批次",
        ),
        "order",
    ),
    **dict.fromkeys(
        ("价格", "价位", "售价", "报价", "优惠", "价钱", "多少钱", "元", "块钱", "¥", "￥"), "price"
    ),
    **dict.fromkeys(
        ("电话号码", "手机号码", "手机号", "电话", "手机", "座机", "固话", "号码", "拨打", "联系方式"),
        "phone",
    ),
    **dict.fromkeys(("QQ号", "QQ", "qq", "扣扣", "企鹅号"), "qq"),
    **dict.fromkeys(("微信号", "微信", "vx", "VX", "wx", "WX"), "wechat"),
    **dict.fromkeys(("身份证号码", "身份证号", "身份证", "证件号"), "id"),
    **dict.fromkeys(("银行卡号", "银行卡", "卡号", "信用卡", "储蓄卡", "账号", "账户"), "card"),
}
_CONTEXT = re.compile("|".join(sorted(map(re.escape, _CONTEXT_WORDS), key=len, reverse=True)))
# Business numbers are not personal: 400/800 service lines and 95xxx/96xxx short numbers.
_BUSINESS = re.compile(r"(?:400|800)\d{7}|9[56]\d{3,6}|1(?:0\d{3}|2\d{3})")

# Dates: a run made only of dates (a date or a date range, 2026-12-01 / 20261201-20261205) is kept.
_DATE = r"(?:19|20)\d\d(?:[-./]?)(?:0?[1-9]|1[0-2])(?:[-./]?)(?:0?[1-9]|[12]\d|3[01])"
_DATES_ONLY = re.compile(rf"{_DATE}(?:\s*(?:[-~–—－至到]|\.\.)\s*{_DATE})*")

# E-mail, written or spoken: name@host.com, name＠host.com, name艾特host点com, name at host dot com.
_AT = r"(?:\s*[@＠]\s*|\s*艾特\s*|\s+(?:at|AT)\s+)"
_DOT = r"(?:\s*[.．。]\s*|\s*点\s*|\s+(?:dot|DOT)\s+)"
_HOST = r"(?:[A-Za-z0-9\-]+|[零一二三四五六七八九幺]+)"
_TLD = r"[A-Za-z]{2,}"
# The look-behind starts a match only where an address-like run begins: without it every position inside
# a long run of letters or dots is tried again, which is quadratic (80 000 letters took 20 s).
_EMAIL = re.compile(
    rf"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*{_AT}{_HOST}(?:{_DOT}{_HOST}){{0,8}}{_DOT}{_TLD}"
)
# WeChat / QQ ids: wx_ / vx prefixed tokens anywhere; other ASCII ids only right after 微信 / QQ.
_WECHAT_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:wx|vx|WX|VX|weixin)[_\-]?[A-Za-z0-9_\-]{4,30}(?![A-Za-z0-9_\-])"
)
_ID_AFTER_CUE = re.compile(
    r"(?P<cue>微信号|微信|QQ号|QQ|qq|扣扣)(?:号)?(?:是|为|：|:|\s)*(?P<id>[A-Za-z][A-Za-z0-9_\-]{5,30}|[1-9]\d{4,10})(?![A-Za-z0-9_\-])"
)

# Street addresses: a street (…路 / …街 / …大道 / …巷 / …弄 / …胡同) with its house number, or a housing
# estate with its building, and then building / unit / floor / room numbers.
_NUM = r"[0-9０-９零一二三四五六七八九十百两幺]+"
_PLACE = r"[^\W\d_的是在住到址了和跟就请呢吗吧啊呀哦嗯那这个我你他她您送上门家里来去说要想给把叫姓号码A-Za-z]"
_UNIT = rf"(?:{_NUM}(?:号楼|号院|栋|幢|座|单元|楼|层|室|号|户)|-{_NUM})"
_ROOM = r"(?:(?:(?<=单元)|(?<=[楼栋幢座]))[0-9０-９]{3,4}(?![0-9０-９]))?"
_ADDRESS = re.compile(
    rf"{_PLACE}{{1,8}}?(?:路|街|大街|大道|巷|弄|胡同){_NUM}(?:号院|号)?{_UNIT}*{_ROOM}"
    rf"|{_PLACE}{{1,8}}?(?:小区|花园|公寓|大厦|家园|新村|社区|苑){_NUM}(?:号楼|栋|幢|座){_UNIT}*{_ROOM}"
)

# Names: a full name after the words people introduce themselves or a contact with.
_NAME_CUE = re.compile(
    r"(?:我叫|名字叫|名字是|姓名是|姓名|叫做|联系人是|联系人|收货人是|收货人|户主是|户主|机主是|机主|登记人是|本人是|我是)"
)
_NAME_STOP = frozenset(
    "的是在住到了和跟就请呢吗吧啊呀哦嗯那这个我你他她您先女小电手号码家里说要想给把对没有不也都还"
)
# The common single surnames (about 90% of the population) and the compound ones.
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪"
    "范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜"
    "倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲"
    "房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋"
    "商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "长孙",
    "令狐",
    "夏侯",
    "独孤",
)


@dataclass(frozen=True)
class PiiSpan:
    """A piece of personal data found in a text: ``text[start:end]`` is masked as ``mask``."""

    kind: PiiKind
    start: int
    end: int
    text: str

    @property
    def mask(self) -> str:
        return MASKS[self.kind]


def kinds_from_names(names: Iterable[str]) -> frozenset[PiiKind]:
    """The kinds named in ``[privacy] redact_kinds`` (unknown names are refused by the configuration)."""
    return frozenset(k for k in ALL_KINDS if k in set(names))


def _digits(text: str) -> str:
    return "".join(_DIGIT_MAP[c] for c in text if c in _DIGIT_MAP)


def _luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _id_checksum(digits17: str, check: str) -> bool:
    """GB 11643: the 18th character of a resident ID number is a checksum of the other 17."""
    total = sum(int(d) * w for d, w in zip(digits17, _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == check.upper()


def _context(text: str, start: int, end: int) -> str:
    """What the nearest context word before the number says it is; failing that, a price word right after
    it (1299、1599、1999四个价位; 1999元)."""
    lo = max(0, start - CONTEXT_BEFORE)
    mask_end = text.rfind("]", lo, start)
    if mask_end >= 0:  # the 电话 of an earlier [电话] mask says nothing about this number
        lo = mask_end + 1
    before = list(_CONTEXT.finditer(text, lo, start))
    if before:
        return _CONTEXT_WORDS[before[-1].group()]
    after = _CONTEXT.search(text, end, min(len(text), end + CONTEXT_AFTER))
    return "price" if after and _CONTEXT_WORDS[after.group()] == "price" else ""


def _classify(digits: str, has_x: bool, context: str) -> PiiKind | None:
    """The kind of personal number ``digits`` is (None: not one), given what its context says."""
    if digits.startswith("86") and len(digits) == MOBILE_DIGITS + 2:
        digits = digits[2:]
    n = len(digits)
    if has_x:
        return "id_card" if n == ID_CARD_DIGITS - 1 else None
    if n == MOBILE_DIGITS and re.fullmatch(r"1[3-9]\d{9}", digits):
        return "mobile"
    if context in ("order", "price") or _BUSINESS.fullmatch(digits):
        return None
    if context == "qq" and n in QQ_DIGITS and digits[0] != "0":
        return "qq"
    if n == ID_CARD_DIGITS and digits[0] != "0":
        if context == "card" or (not _id_checksum(digits[:17], digits[17]) and _luhn(digits)):
            return "bank_card"
        return "id_card"
    if n in BANK_CARD_DIGITS:
        return "bank_card"
    if n in LANDLINE_DIGITS and digits.startswith("0") and not digits.startswith("00"):
        return "landline"
    if context == "phone" and n in LOCAL_DIGITS and digits[0] not in "01":
        return "landline"
    return None


@dataclass(frozen=True)
class _Digit:
    value: str
    start: int  # position in the text
    group_start: bool  # a separator (or the run's start) comes before it


def _run_digits(text: str, start: int, end: int) -> list[_Digit]:
    out: list[_Digit] = []
    previous = -2
    for i in range(start, end):
        c = text[i]
        if c in _DIGIT_MAP:
            out.append(_Digit(_DIGIT_MAP[c], i, previous != i - 1))
            previous = i
    return out


def _cuts(digits: list[_Digit], text: str, first: int) -> list[tuple[int, bool]]:
    """Where a number starting at ``digits[first]`` may end: (index after its last digit, clean) pairs,
    clean meaning at a group boundary. Inside a group a number may end only before at most two Chinese
    numerals that run into the next word (13812345678一直, …五点以后, …两个号)."""
    out: list[tuple[int, bool]] = []
    last = min(len(digits), first + MAX_NUMBER_DIGITS + 2)
    for end in range(first + 1, last + 1):
        if end == len(digits) or digits[end].group_start:
            out.append((end, True))
            continue
        group_end = end
        while group_end < len(digits) and not digits[group_end].group_start:
            group_end += 1
        rest = digits[end:group_end]
        after = digits[group_end - 1].start + 1
        word_follows = (
            after < len(text) and text[after] not in _DIGIT_MAP and not re.match(_SEPARATORS, text[after])
        )
        if (
            len(rest) <= GLUED_WORD_DIGITS
            and all(text[d.start] in _CHINESE_DIGITS for d in rest)
            and word_follows
        ):
            out.append((end, False))
    return out


def _number_spans(text: str) -> list[PiiSpan]:
    spans: list[PiiSpan] = []
    for match in _RUN.finditer(text):
        start, end = match.start(), match.end()
        has_x = text[end - 1] in "xX"
        digits = _run_digits(text, start, end)
        # A group glued to ASCII letters or digits belongs to a code (XQB80-1688, wx138...): drop it.
        if start > 0 and _ALNUM.match(text[start - 1]):
            while digits and not (len(digits) > 1 and digits[1].group_start):
                digits.pop(0)
            digits = digits[1:] if digits else digits
        if end < len(text) and _ALNUM.match(text[end]):
            while digits and not digits[-1].group_start:
                digits.pop()
            digits = digits[:-1] if digits else digits
            has_x = False
        if not digits:
            continue
        arabic = text[digits[0].start : digits[-1].start + 1]
        if _DATES_ONLY.fullmatch(arabic):
            continue
        i = 0
        while i < len(digits):
            if not digits[i].group_start and i > 0:
                i += 1
                continue
            found = _longest_number(text, digits, i, has_x)
            if found is None:
                i += 1
                continue
            stop, kind, with_x = found
            span_start = digits[i].start
            if i == 0 and text[start] == "+":
                span_start = start
            elif span_start > 0 and text[span_start - 1] in "(（" and kind == "landline":
                span_start -= 1
            span_end = end if with_x else digits[stop - 1].start + 1
            spans.append(PiiSpan(kind, span_start, span_end, text[span_start:span_end]))
            i = stop
    return spans


def _longest_number(
    text: str, digits: list[_Digit], first: int, has_x: bool
) -> tuple[int, PiiKind, bool] | None:
    """The longest personal number starting at ``digits[first]``: (end index, kind, takes the final X).
    Numbers ending at a group boundary are preferred to those ending inside a group."""
    context = _context(text, digits[first].start, digits[-1].start + 1)
    groups = [g for g in _group_sizes(digits[first:])]
    if context == "price" and (len(groups) < 2 or max(groups) > PRICE_DIGITS):
        context = ""  # a price list is read as groups of a few digits; one long number is not a price
    cuts = _cuts(digits, text, first)
    for clean in (True, False):
        for stop, is_clean in reversed(cuts):
            if is_clean != clean:
                continue
            value = "".join(d.value for d in digits[first:stop])
            with_x = has_x and stop == len(digits)
            kind = _classify(value, with_x, context)
            if kind is None and with_x:
                kind, with_x = _classify(value, False, context), False
            if kind is not None:
                return stop, kind, with_x
    return None


def _group_sizes(digits: list[_Digit]) -> list[int]:
    sizes: list[int] = []
    for d in digits:
        if d.group_start or not sizes:
            sizes.append(0)
        sizes[-1] += 1
    return sizes


# A mobile number glued to letters (tel13812345678, a WeChat id wx13812345678 said without its cue), or read
# straight into another number (138123456786222…): that run is too long for any one number, so the mobile at
# its start or end is masked and the rest is looked at again (find_pii).
_GLUED_MOBILE = re.compile(
    r"(?<![0-9０-９])1[3-9]\d{9}(?![0-9０-９])"
    r"|(?<![0-9０-９])1[3-9]\d{9}(?=\d{9})"
    r"|(?<=\d{9})1[3-9]\d{9}(?![0-9０-９])"
)


def _glued_mobile_spans(text: str) -> list[PiiSpan]:
    return [PiiSpan("mobile", m.start(), m.end(), m.group()) for m in _GLUED_MOBILE.finditer(text)]


def _email_spans(text: str) -> list[PiiSpan]:
    return [PiiSpan("email", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]


def _id_spans(text: str) -> list[PiiSpan]:
    spans = [PiiSpan("wechat", m.start(), m.end(), m.group()) for m in _WECHAT_TOKEN.finditer(text)]
    for m in _ID_AFTER_CUE.finditer(text):
        kind: PiiKind = "wechat" if "微" in m.group("cue") else "qq"
        spans.append(PiiSpan(kind, m.start("id"), m.end("id"), m.group("id")))
    return spans


def _address_spans(text: str) -> list[PiiSpan]:
    return [PiiSpan("address", m.start(), m.end(), m.group()) for m in _ADDRESS.finditer(text)]


def _name_length(text: str, start: int) -> int:
    """How many characters from ``start`` are a full name (surname + one or two given characters), or 0."""
    surname = next((c for c in _COMPOUND_SURNAMES if text.startswith(c, start)), text[start : start + 1])
    if surname not in _SURNAMES and surname not in _COMPOUND_SURNAMES:
        return 0
    given = 0
    position = start + len(surname)
    if text.startswith(surname, position):  # 谢谢, 常常: a doubled word, not a surname
        return 0
    while given < 2 and position < len(text) and "\u4e00" <= text[position] <= "\u9fff":
        if text[position] in _NAME_STOP or text[position] in _DIGIT_MAP:
            break
        given += 1
        position += 1
    return len(surname) + given


_PLACE_SUFFIXES = frozenset("省市区县镇乡村路街")


def warm() -> None:
    """Load jieba's part-of-speech dictionary (names are told from common words with it) now: its first use
    costs a second or more of pure Python that holds the interpreter lock, on the first line a live panel
    shows."""
    _word_tags()


@functools.lru_cache(maxsize=1)
def _word_tags() -> dict[str, str]:
    from copilot.config import load_jieba

    load_jieba()
    import jieba.posseg

    jieba.posseg.initialize()
    tags: dict[str, str] = jieba.posseg.dt.word_tag_tab
    return tags


def _is_common_word(candidate: str) -> bool:
    """Whether jieba's dictionary has ``candidate`` (or its first two characters) as a word that is not a
    person's name: 余额 (n), 高新区, 张家口 (places). jieba's own name tags are not trusted alone: they also
    tag brands (小天鹅, 海尔) and places (高新区, 张家口) as names (eval/bench_redact_names.py)."""
    if candidate[-1] in _PLACE_SUFFIXES:
        return True
    tags = _word_tags()
    prefix = () if candidate.startswith(_COMPOUND_SURNAMES) else (candidate[:2],)
    for word in (candidate, *prefix):
        tag = tags.get(word)
        if tag is not None and not tag.startswith("nr"):
            return True
    return False


# A full name before 先生 / 女士 / 小姐, starting after punctuation or a word that leads to a name.
_HONORIFIC = re.compile(r"(?:^|(?<=[\s，,。！？!?：:、是叫找给和跟问请]))(?=\w{2,4}?(?:先生|女士|小姐))")


def _name_spans(text: str) -> list[PiiSpan]:
    spans: list[PiiSpan] = []
    starts = [cue.end() for cue in _NAME_CUE.finditer(text)] + [m.start() for m in _HONORIFIC.finditer(text)]
    for start in sorted(set(starts)):
        while start < len(text) and text[start] in " ，,：:":
            start += 1
        length = _name_length(text, start)
        surname = 2 if text.startswith(_COMPOUND_SURNAMES, start) else 1
        if length <= surname or _is_common_word(text[start : start + length]):
            continue  # a surname alone (王先生, 我姓王) names no one
        if spans and spans[-1].end > start:
            continue
        spans.append(PiiSpan("name", start, start + length, text[start : start + length]))
    return spans


_FINDERS: tuple[tuple[frozenset[PiiKind], Callable[[str], list[PiiSpan]]], ...] = (
    (frozenset({"email"}), _email_spans),
    (frozenset({"wechat", "qq"}), _id_spans),
    (frozenset({"mobile", "id_card", "bank_card", "landline", "wechat", "qq"}), _number_spans),
    (frozenset({"mobile"}), _glued_mobile_spans),
    (frozenset({"address"}), _address_spans),
    (frozenset({"name"}), _name_spans),
)


# Looks again around what was masked: a number may stand alone only once its neighbour is gone.
MAX_MASKING_PASSES = 3


def _find_once(text: str, kinds: Collection[str], taken: Sequence[PiiSpan]) -> list[PiiSpan]:
    """One pass of every finder over ``text``: the spans that overlap neither ``taken`` nor each other."""
    found: list[PiiSpan] = []
    for finds, finder in _FINDERS:
        if not finds & set(kinds):
            continue
        for span in finder(text):
            clash = any(span.start < s.end and s.start < span.end for s in (*taken, *found))
            if span.kind in kinds and not clash:
                found.append(span)
    return found


def find_pii(text: str, kinds: Collection[str] = ALL_KINDS) -> list[PiiSpan]:
    """Every piece of personal data of ``kinds`` in ``text``, in order, never overlapping (earlier finders
    win: an e-mail's digits are not also a phone number).

    Found again with what was found covered, until nothing new: a mobile number read straight into a
    card number is one run of digits too long to be either, until the mobile is masked. Redacting the
    redacted text then changes nothing."""
    spans: list[PiiSpan] = []
    covered = list(text)
    for _ in range(MAX_MASKING_PASSES):
        found = _find_once("".join(covered), kinds, spans)
        if not found:
            break
        spans += [dataclasses.replace(s, text=text[s.start : s.end]) for s in found]
        for s in found:  # "]" like the end of a mask: no digit, no separator, and _context stops at it
            covered[s.start : s.end] = "]" * (s.end - s.start)
    return sorted(spans, key=lambda s: s.start)


def redact(text: str, kinds: Collection[str] = ALL_KINDS) -> str:
    """``text`` with every span of :func:`find_pii` replaced by its mask."""
    out: list[str] = []
    last = 0
    for span in find_pii(text, kinds):
        out.append(text[last : span.start])
        out.append(span.mask)
        last = span.end
    out.append(text[last:])
    return "".join(out)


def redact_pieces(pieces: Sequence[str], kinds: Collection[str] = ALL_KINDS) -> list[str]:
    """``pieces`` (e.g. the words of a segment) redacted as the one text they make together.

    Redacting each word alone would keep a number that the recogniser cut into words (138 / 1234 / 5678):
    the first piece a span touches gets the mask, the others lose what the span covers.
    """
    text = "".join(pieces)
    spans = find_pii(text, kinds)
    if not spans:
        return list(pieces)
    out: list[str] = []
    offset = 0
    for piece in pieces:
        start, end = offset, offset + len(piece)
        offset = end
        kept: list[str] = []
        position = start
        for span in spans:
            if span.end <= start or span.start >= end:
                continue
            kept.append(text[position : max(position, span.start)])
            if span.start >= start:  # the span begins in this piece: the mask goes here
                kept.append(span.mask)
            position = min(end, span.end)
        kept.append(text[position:end])
        out.append("".join(kept))
    return out


# A speaker's next segment continues the same text (a number read over the pause) within this gap.
JOIN_GAP_SECONDS = 20.0
_SENTENCE_END = "。？！?!"


def redact_texts(
    texts: Sequence[str],
    speakers: Sequence[str],
    starts: Sequence[float],
    ends: Sequence[float],
    kinds: Collection[str] = ALL_KINDS,
) -> list[str]:
    """The texts of one call's segments, redacted as each speaker's whole side of the call: a number cut
    over two segments of the same speaker (whatever the other said in between) is found and masked."""
    out = list(texts)
    for speaker in dict.fromkeys(speakers):
        order = sorted((i for i, s in enumerate(speakers) if s == speaker), key=lambda i: starts[i])
        pieces: list[str] = []
        owners: list[int | None] = []
        tails: dict[int, str] = {}
        previous_end: float | None = None
        for i in order:
            text = texts[i]
            core = text.rstrip(_SENTENCE_END)
            # "…138。" then "1234 5678": the full stop the ASR put at the pause does not end the number.
            if not (core and core[-1] in _DIGIT_MAP):
                core = text
            tails[i] = text[len(core) :]
            if previous_end is not None:
                pieces.append("，" if starts[i] - previous_end <= JOIN_GAP_SECONDS else "\n\n")
                owners.append(None)
            pieces.append(core)
            owners.append(i)
            previous_end = ends[i]
        for piece, owner in zip(redact_pieces(pieces, kinds), owners, strict=True):
            if owner is not None:
                out[owner] = piece + tails[owner]
    return out


def redact_segments(segments: Sequence[Segment], kinds: Collection[str] = ALL_KINDS) -> tuple[Segment, ...]:
    """``segments`` of one call with their text redacted as a whole (see :func:`redact_texts`); words dropped."""
    texts = redact_texts(
        [s.text for s in segments],
        [s.speaker for s in segments],
        [s.start for s in segments],
        [s.end for s in segments],
        kinds,
    )
    return tuple(dataclasses.replace(s, text=t, words=()) for s, t in zip(segments, texts, strict=True))


def call_redactor(
    raw: Sequence[Segment], redacted: Sequence[Segment], fallback: Callable[[str], str]
) -> Callable[[str], str]:
    """Redact a text taken from a call (evidence): a whole segment's text becomes that segment's redacted
    text (so a number split over segments stays masked in quotes too); any other text, ``fallback``."""
    known = {r.text: d.text for r, d in zip(raw, redacted, strict=True)}

    def clean(text: str) -> str:
        return known[text] if text in known else fallback(text)

    return clean


def text_redactor(enabled: bool, kinds: Collection[str] = ALL_KINDS) -> Callable[[str], str]:
    """``redact`` for the configured kinds, or the identity when redaction is off ([privacy] redact)."""
    if not enabled:
        return _identity
    return functools.partial(redact, kinds=kinds_from_names(kinds))


# What a call's name or file path may hold that identifies a person: recorders put the caller's number in
# file names (13812345678_20261205_1432.wav, 客户13912345678回访). Names also carry long ids (dialogue,
# order and recording serials such as stc3-3853239869252399) that the bank-card rule would mask, and a
# reviewer or an evaluator needs them to find the call: those kinds are not applied to names.
NAME_KINDS: frozenset[PiiKind] = frozenset({"mobile", "id_card", "landline", "email"})


def name_redactor(enabled: bool, kinds: Collection[str] = ALL_KINDS) -> Callable[[str], str]:
    """``text_redactor`` for call names and file paths: only the kinds a name can identify someone by."""
    return text_redactor(enabled, [k for k in kinds_from_names(kinds) if k in NAME_KINDS])


def _identity(text: str) -> str:
    return text
