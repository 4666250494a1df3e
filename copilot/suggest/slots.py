"""Simple slot filling for handbook scripts: the customer's surname, the product named, the callback promised.

Pure functions over the call's text; no model. The surname is only used with an honorific the customer
gave themselves (先生/女士) or with the neutral 您, because guessing a gender is worse than not using one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from copilot.config import CompanyConfig
from copilot.transcription.redact import MASKS, PiiKind, find_pii
from copilot.types import Segment

# Common single-character surnames; a closed list keeps "我姓名不方便说" from giving the surname 名.
COMMON_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
SURNAME_PATTERNS = (
    re.compile(r"(?:我|免贵|本人)姓([\u4e00-\u9fff])"),
    re.compile(r"我是([\u4e00-\u9fff])(先生|女士|小姐)"),
    re.compile(r"叫我([\u4e00-\u9fff])(先生|女士|小姐|工)"),
)
HONORIFIC_PATTERN = re.compile(r"([\u4e00-\u9fff])(先生|女士|小姐)")

# Products an after-sales line hears about; the knowledge base's vocabulary extends this list.
PRODUCTS = (
    "洗衣机",
    "烘干机",
    "冰箱",
    "冰柜",
    "空调",
    "热水器",
    "油烟机",
    "抽油烟机",
    "燃气灶",
    "消毒柜",
    "洗碗机",
    "微波炉",
    "烤箱",
    "电饭煲",
    "电磁炉",
    "净水器",
    "电视",
    "扫地机器人",
    "吸尘器",
    "电风扇",
    "空气净化器",
)

# The callback the agent promised, as the agent said it: 四个小时之内, 明天中午十三点之前, 半个小时内 (ASR writes
# the numbers as characters). Only from an agent line that says a callback (回电, 给您回复, 联系您) and does not
# hedge it (不保证, 无法承诺) or only note it as the caller's wish (记录…半个小时内回电这个诉求): the suggestion
# restates it, so it must be what was promised.
_NUMBER = "[0-9一二三四五六七八九十两幺零半]"
CALLBACK_TIME = re.compile(
    rf"{_NUMBER}+个?(?:小时|钟头|分钟|工作日|天)(?:之内|以内|内)"
    rf"|(?:(?:今天|明天|后天|次日|{_NUMBER}+[日号])的?)?(?:上午|中午|下午|晚上)?的?{_NUMBER}+点(?:半|{_NUMBER}+分?)?(?:之前|以前|前)"
    r"|(?:今天|明天|后天|次日)的?(?:上午|中午|下午|晚上)?(?:之前|以前|之内)"
)
CALLBACK_WORDS = re.compile(r"回电|回拨|回个电话|致电|给您回复|联系您|给您打")
HEDGED = re.compile(r"不保证|不能保证|无法保证|无法承诺|不能承诺|没法保证|(?:回电|回复|联系您?)的?这?个?诉求")


@dataclass(frozen=True)
class CallSlots:
    surname: str = ""
    honorific: str = ""  # 先生 / 女士 / 小姐 when the customer said it, else ""
    product: str = ""
    callback: str = ""  # when the agent promised to call back (四个小时之内), as the agent said it
    number_known: bool = False  # the caller's number is already in the call: no script asks for it again

    @property
    def address(self) -> str:
        """How to address the customer: 王先生, or 您 when nothing reliable is known."""
        if self.surname and self.honorific:
            return self.surname + self.honorific
        return "您"


def extract_slots(segments: Sequence[Segment], products: Iterable[str] = PRODUCTS) -> CallSlots:
    """Read surname and product from what the customer said (latest mention wins)."""
    surname = honorific = product = ""
    catalogue = sorted(set(products), key=len, reverse=True)  # 抽油烟机 before 油烟机
    for segment in segments:
        if segment.speaker == "agent":
            continue
        text = segment.text
        for pattern in SURNAME_PATTERNS:
            match = pattern.search(text)
            if match and match.group(1) in COMMON_SURNAMES:
                surname = match.group(1)
                if match.lastindex and match.lastindex >= 2:
                    honorific = match.group(2)
        for name in catalogue:
            if name in text:
                product = name
                break
    # An honorific the agent used back to the customer ("好的王先生") confirms the gender.
    if surname and not honorific:
        for segment in segments:
            if segment.speaker == "agent":
                for match in HONORIFIC_PATTERN.finditer(segment.text):
                    if match.group(1) == surname:
                        honorific = match.group(2)
    return CallSlots(
        surname=surname,
        honorific=honorific,
        product=product,
        callback=promised_callback(segments),
        number_known=any(
            NUMBER_ON_FILE.search(s.text) if s.speaker == "agent" else gives_number(s.text) for s in segments
        ),
    )


def promised_callback(segments: Sequence[Segment]) -> str:
    """The time of the agent's latest callback promise in the call ("" when none was made)."""
    for segment in reversed(segments):
        if (
            segment.speaker != "agent"
            or not CALLBACK_WORDS.search(segment.text)
            or HEDGED.search(segment.text)
        ):
            continue
        match = CALLBACK_TIME.search(segment.text)
        if match:
            return match.group(0).removeprefix("的")  # 在天的十三点之前: ASR lost the day
    return ""


# The caller said a phone number, or the agent named the number on file (尾号…, 保持电话畅通):
# 「请您留下您的联系电话」 would ask for it again.
PHONE_KINDS: frozenset[PiiKind] = frozenset({"mobile", "landline"})
# A number the transcript already masks: the ASR's digits-as-* (whole or partly: 186****0660, ***四五八七七九幺六),
# or the redactor's own masks of a phone number ([手机号], [电话]).
MASKED_NUMBER = re.compile(
    r"(?=[\d幺一二三四五六七八九零〇*]*\*)[\d幺一二三四五六七八九零〇*]{7,}|"
    + "|".join(re.escape(MASKS[kind]) for kind in sorted(PHONE_KINDS))
)
NUMBER_ON_FILE = re.compile(
    r"尾号|电话(?:保持)?畅通|(?:这个|您的|这边的)(?:号码|手机号|电话)(?:能|可以)?(?:联系|打通|接)"
)
ASK_FOR_NUMBER = re.compile(r"(?:请问您是否方便|请您)留下您的联系电话[,，]")


def gives_number(text: str) -> bool:
    """The caller's line holds a phone number, as the redactor finds them (not an order or QQ number, a
    timestamp), or one already masked."""
    return bool(MASKED_NUMBER.search(text)) or any(span.kind in PHONE_KINDS for span in find_pii(text))


def fill_script(script: str, slots: CallSlots) -> str:
    """Personalise a handbook script: address the customer by name, name the product.

    Scripts may carry explicit slots ``{address}`` / ``{product}``; otherwise the first 您 of a greeting-like
    address ("您好"/"先生") is left alone and only generic product words are replaced.
    """
    text = script.replace("{address}", slots.address).replace("{product}", slots.product or "产品")
    if slots.callback:  # otherwise the slot stays and the script is not usable (an unfilled template)
        text = text.replace("{callback}", slots.callback)
    if slots.product:
        for generic in ("您的产品", "该产品", "您的机器", "您的设备"):
            if generic in text:
                text = text.replace(generic, f"您的{slots.product}", 1)
                break
    if slots.number_known:
        text = ASK_FOR_NUMBER.sub("", text)
    if slots.surname and slots.honorific and text.startswith("您好"):
        text = f"{slots.address}，" + text
    return text


# -- the handbook's placeholders ---------------------------------------------------------------------------
# (pattern, replacement when the [company] value is set, replacement when it is not). Applied in order: the
# specific forms (敝姓X, 我是XX, 于**小时内) before the bare company placeholder.
_NAME = r"(?:[xX]{2,}|X(?=润发)X?润发|X{1,2}(?=品牌))(?:品牌)?"
_AGENT = r"(?:[xX]{1,2}|\*+)"


def _template_rules(company: CompanyConfig) -> tuple[tuple[re.Pattern[str], str], ...]:
    agent = company.agent_name
    hours = company.callback_hours
    name = company.name
    me = (
        f"我是{company.job_number}号客服{agent}，"
        if company.job_number
        else (f"我是{agent}，" if agent else "")
    )
    rules = (
        (r"敝姓" + _AGENT + r"[,，]?", f"敝姓{agent[0]}，" if agent else ""),
        (r"我是(?:客服)?" + _AGENT + r"[,，]?", me),
        (r"(?:于|在)\*+小时内", f"在{hours}小时内" if hours else ""),
        (r"\*+先生/小姐[,，]?", ""),
        (r"拨打[xX]{2,}", f"拨打{company.hotline}" if company.hotline else "拨打我们的服务热线"),
        (r"关于" + _NAME, f"关于{name}" if name else "关于"),
        (_NAME + r"(?=暂时)", name or "我们"),
        (r"这里是" + _NAME + r"的?", f"这里是{name}" if name else "这里是"),
        (_NAME, name),
        (r"\*+", ""),
    )
    return tuple((re.compile(pattern), value) for pattern, value in rules)


UNFILLED = re.compile(
    r"[xX]{2,}|(?<![A-Za-z])X(?![A-Za-z])|\*+|敝姓X|[（(【\[{][^）)】\]}]*[）)】\]}]|…|\.\.\."
)


def fill_company(text: str, company: CompanyConfig) -> str:
    """The script with its placeholders filled from ``[company]``, or their words dropped when unset."""
    for pattern, value in _template_rules(company):
        text = pattern.sub(value, text)
    text = re.sub(r"([,，、])[,，、]+", r"\1", text)  # a dropped part leaves no doubled comma
    text = re.sub(r"([!！。?？])[,，、]+", r"\1", text)
    return re.sub(r"^[,，、\s]+", "", text)


def unfilled_placeholders(text: str) -> list[str]:
    """What in ``text`` is still template, not speech: xxxx, X, *, 敝姓X, bracketed directions, ellipses."""
    return [match.group(0) for match in UNFILLED.finditer(text)]
