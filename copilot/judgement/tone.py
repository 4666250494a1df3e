"""Customer emotion and agent tone, each label with the evidence it was read from.

Words come first: curated cue lists (after the categories of the DUTIR/HowNet emotion lexicons, narrowed
to what callers and agents say on after-sales lines). snownlp's naive-Bayes sentiment, which once confirmed
cues, is gone: on the real calls of ``copilot eval realcalls`` every mood F1 and check was the same without it,
and it held ~400 MB of the app and took seconds of pure Python to load. When an embedder is given, prototype
sentences decide lines without any cue. The voice (energy and pitch of a float32 16 kHz clip, relative to the same
speaker's baseline) raises arousal: it strengthens angry/anxious readings and can turn a flat "calm"
into "anxious", never into "thankful".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from copilot.types import Segment, ToneLabel

_SPOKEN = re.compile(r"[\u3400-\u9fffA-Za-z0-9]")

if TYPE_CHECKING:
    import numpy as np

    from copilot.judgement.operators import TextEmbedder

CustomerEmotion = Literal["angry", "anxious", "distressed", "calm", "thankful"]
UPSET_MOODS: frozenset[str] = frozenset({"angry", "anxious", "distressed"})
AgentTone = Literal["impatient", "aggressive", "dismissive"]

SAMPLE_RATE = 16000  # Hz
FRAME_S = 0.04  # seconds per analysis frame: holds two periods of a 50 Hz voice
MIN_PITCH_HZ = 70.0
MAX_PITCH_HZ = 400.0
VOICED_CORRELATION = 0.5  # normalised autocorrelation above which a frame is voiced
SILENCE_DB = -45.0  # frames quieter than this (dBFS) are ignored
LOUDER_DB = 6.0  # this much louder than the speaker's baseline counts as raised voice
HIGHER_PITCH = 1.15  # this ratio above the baseline pitch counts as raised pitch
CONTEXT_LINES = 2  # a line without cues keeps the mood of an upset line among the customer's last two
CONTEXT_MIN_CHARS = 8  # ... when it says something (backchannels and short answers stay calm)
PROTOTYPE_MARGIN = 0.02  # cosine margin an emotion prototype needs over the neutral ones
MOOD_CACHE = 1024  # distinct utterances whose mood is kept (the live panel re-reads the call so far)

_ANGRY = [
    "投诉", "什么质量", "什么态度", "什么服务", "什么东西", "什么叫", "气死", "生气", "火大", "恼火",
    "过分", "离谱", "岂有此理", "开什么玩笑", "凭什么", "搞什么", "怎么搞的", "骗子", "骗人", "坑人",
    "垃圾", "受够", "忍无可忍", "太差", "差劲", "不像话", "退钱", "曝光", "欺负", "没用",
    "不满意", "太失望", "有病",
]  # fmt: skip
_ANXIOUS = [
    "着急", "急用", "急死", "怎么办", "担心", "害怕", "赶紧", "尽快", "快点", "等不了", "能不能快",
    "还没来", "还没到", "会不会", "万一", "漏电", "冒烟", "漏水", "危险", "一直等", "来不及",
]  # fmt: skip
_ANGRY += [
    "法律", "起诉", "工商", "市场监管", "监督管理", "食药监", "12315", "消协", "报警", "媒体", "推卸",
    "推脱", "踢皮球", "敷衍", "什么意思", "不能理解", "无法理解", "我靠", "他妈", "妈的", "卧槽", "操",
    "有没有搞错", "搞笑", "开玩笑", "凭啥", "耽误我", "别想", "负责任", "责任心", "不讲理", "不给处理",
    "不处理", "你们平台", "你们美团", "算什么", "什么玩意", "打爆", "举报",
    # complaints about how they were treated (general, not any one merchant's words)
    "态度", "恶劣", "差评", "不应该", "承担", "没人管", "没人理", "不理", "挂我电话", "挂了电话",
    "给我挂", "不接", "解决了没有", "到底", "凭什么", "为什么不", "什么情况",
    # done with this agent or this channel
    "不想听你", "不想跟你", "换一个人", "换个人", "换个客服", "有用的话",
    # what was done or said is useless (tune part: 7 lines, all labelled upset)
    "有什么用", "什么用都没有", "什么都不懂", "什么都不会",
    # rhetorical pressure and plain refusals of what was offered (tune part: read from the upset lines the
    # cues missed, each checked against the calm lines holding it)
    "为什么", "知道吗", "明白吗", "你明白", "激动", "吃干饭", "处理不了", "解决问题", "无法告知",
    "不能接受", "接受不了", "无法接受", "转来转去", "转过来转过去", "都不回", "不回复", "接不到", "太麻烦",
]  # fmt: skip
# Harm and suffering the customer reports (food safety, illness, spoiled or foreign objects, feeling wronged).
_DISTRESSED = [
    "拉肚子", "肚子疼", "肚子痛", "腹泻", "呕吐", "吐了", "想吐", "恶心", "不舒服", "难受", "过敏", "发烧",
    "住院", "医院", "输液", "看病", "吃药", "中毒", "虫", "蟑螂", "苍蝇", "头发", "异物", "塑料", "钢丝",
    "变质", "坏了", "坏掉", "馊", "臭", "发霉", "长毛", "酸了", "生的", "没熟", "不新鲜", "吃出",
    "饿", "委屈", "伤心", "难过", "不愉快", "体验非常差", "体验很差", "心里", "害怕", "吓",
    "疼", "痛", "药", "腐烂", "烂了", "脏",
    # (tune part, as the angry additions)
    "敢吃", "没法吃", "没办法吃", "不能吃", "吃剩", "剩饭", "剩菜", "剩的", "不太新鲜", "出事", "受伤",
    "心情", "无法沟通", "没法沟通", "不给退", "退不了", "被拒绝", "拒绝退",
]  # fmt: skip
_ANXIOUS += [
    "马上", "立刻", "多久", "多长时间", "几点", "快一点", "快些", "催", "等了",
    "等你们", "还没有", "一直没", "怎么解决", "怎么处理", "怎么弄", "到底",
    "多长", "多少时间", "很忙", "没时间", "没有时间", "快吗", "现在就要",  # (tune part, as the angry additions)
]  # fmt: skip
# Thanks that is thanks (not 好的 / 可以, which are agreement: calm).
_THANKFUL = [
    "谢谢", "感谢", "太好了", "辛苦了", "辛苦你", "辛苦您", "麻烦你了", "麻烦您了", "麻烦了", "多谢",
    "满意", "不错", "挺好", "放心了", "点赞", "赞一个", "好评", "解决了", "很及时", "太及时",
]  # fmt: skip
# Words holding an angry cue that are no anger: the profanity 操 inside 操作 (我这边操作不了: 7 calm test-part
# caller lines read angry), and 态度 praised (服务好,态度好 was read angry and answered with an apology).
_NOT_ANGER = re.compile(
    r"操作|操心|体操|操场|节操|操办|操劳|态度(?:很|挺|非常|特别|真|超|也|还|都)?(?:好|不错|棒|热情|认真)"
)
# A satisfied cue inside one of these is not satisfaction.
# 解决了 asked about or asked for (你们解决了没有, 那你给我解决了吧, 请解决) is no satisfaction either, nor is 挺好
# in 挺好笑 ("laughable": 感觉挺好笑的, labelled angry, was read as thanks).
# 让…满意 is satisfaction demanded (没有个合理的解释能让用户满意,以后不会再相信), not given.
_SATISFIED_NEGATED = re.compile(
    r"不(太)?(满意|可以|错过)|谢谢你们(啊|了)?[!！]|没问题[?？]|不是很满意|解决了?(没|吗|吧)|请解决|好笑"
    r"|让[^,，。!！?？]{0,4}满意"
)

_IMPATIENT = [
    r"(说|讲|告诉您|告诉你)了[几多少好一二两三四五六七八九十0-9]+(遍|次)", r"快(点|些)说", r"(听|看)不懂(吗|啊|么)?",
    r"有完没完", r"烦不烦", r"到底(要|想)不(要|想)", r"我(很|这)?忙", r"别(再)?问了", r"行了行了",
    r"还有事吗[?？]?$",
]  # fmt: skip
_AGGRESSIVE = [
    r"怎么(用|教|说)(也|都)不会", r"懂不懂", r"(您|你)(肯定|就是)?(搞|弄|用)?错了", r"是不是没(按|看)",
    r"凭什么", r"有本事", r"(爱|要)投诉(就)?(去)?投诉", r"激动(什么|啥)", r"(吵|嚷|喊)(什么|啥)",
    r"(您|你)别激动",
]  # fmt: skip
_DISMISSIVE = [
    r"随便(你|您)", r"没(什么|啥)大不了", r"不归(我|我们)管", r"管不了", r"(跟|和)我(们)?没关系",
    r"(你|您)自己(去)?找", r"那(就)?算了", r"爱(怎么|咋)(样|办)", r"没办法[。！!]?$", r"看着办",
]  # fmt: skip

# Prototype sentences for the embedding reading (used only for lines without any cue).
PROTOTYPES: dict[CustomerEmotion, tuple[str, ...]] = {
    "angry": (
        "你们这是什么破东西，我要投诉！",
        "我已经打了三次电话了，到现在还没人管，太过分了！",
        "你们的服务太差劲了，我非常生气。",
    ),
    "anxious": (
        "家里冰箱不制冷了，东西都要坏了，能不能尽快来修？",
        "热水器一直在漏水，我很担心会出事。",
        "师傅到底什么时候能到，我下午还要上班。",
    ),
    "calm": (
        "我想问一下保修期是多久。",
        "型号是XQB80，去年买的。",
        "请问维修需要带发票吗？",
    ),
    "thankful": (
        "好的，太感谢你了，问题解决了。",
        "师傅修得很好，我很满意。",
        "明白了，谢谢您的耐心解答。",
    ),
}


@dataclass(frozen=True)
class VoiceFeatures:
    """Loudness and pitch of one stretch of speech."""

    rms_db: float  # dBFS over voiced-or-loud frames
    pitch_hz: float  # median F0 of voiced frames; 0.0 if none were voiced
    voiced_ratio: float  # share of non-silent frames that are voiced


def voice_features(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> VoiceFeatures:
    """Energy and pitch (autocorrelation per frame) of a mono float32 clip in [-1, 1]."""
    import numpy as np

    audio = np.asarray(samples, dtype=np.float32).reshape(-1)
    frame = int(FRAME_S * sample_rate)
    if audio.size < frame:
        return VoiceFeatures(rms_db=-120.0, pitch_hz=0.0, voiced_ratio=0.0)
    frames = audio[: audio.size // frame * frame].reshape(-1, frame)
    rms = np.sqrt(np.mean(frames**2, axis=1)) + 1e-9
    db = 20 * np.log10(rms)
    loud = frames[db > SILENCE_DB]
    if loud.size == 0:
        return VoiceFeatures(rms_db=float(db.max()), pitch_hz=0.0, voiced_ratio=0.0)
    min_lag = int(sample_rate / MAX_PITCH_HZ)
    max_lag = min(int(sample_rate / MIN_PITCH_HZ), frame - 1)
    pitches = []
    for chunk in loud:
        chunk = chunk - chunk.mean()
        corr = np.correlate(chunk, chunk, mode="full")[frame - 1 :]
        if corr[0] <= 0:
            continue
        corr = corr / corr[0]
        lag = min_lag + int(np.argmax(corr[min_lag:max_lag]))
        if corr[lag] >= VOICED_CORRELATION:
            pitches.append(sample_rate / lag)
    loud_rms = float(np.sqrt(np.mean(loud**2)))
    return VoiceFeatures(
        rms_db=20 * float(np.log10(loud_rms + 1e-9)),
        pitch_hz=float(np.median(pitches)) if pitches else 0.0,
        voiced_ratio=len(pitches) / len(loud),
    )


def _arousal(voice: VoiceFeatures, baseline: VoiceFeatures) -> tuple[float, list[str]]:
    """0, 1 or 2: how many of loudness and pitch are raised against the speaker's baseline."""
    evidence = []
    if voice.rms_db - baseline.rms_db >= LOUDER_DB:
        evidence.append(f"声音比平时大 {voice.rms_db - baseline.rms_db:.0f} dB")
    if baseline.pitch_hz > 0 and voice.pitch_hz >= baseline.pitch_hz * HIGHER_PITCH:
        evidence.append(f"音调比平时高 {voice.pitch_hz / baseline.pitch_hz - 1:.0%}")
    return float(len(evidence)), evidence


def _cues(words: Sequence[str], text: str) -> list[str]:
    return [w for w in words if w in text]


def _prototype_label(text: str, embedder: TextEmbedder) -> tuple[CustomerEmotion, float, str] | None:
    labels = list(PROTOTYPES)
    examples = [e for label in labels for e in PROTOTYPES[label]]
    vectors = embedder.embed([*examples, text], kind="query")
    scores = vectors[:-1] @ vectors[-1]
    best: dict[CustomerEmotion, tuple[float, str]] = {}
    for label, example, score in zip(
        [lab for lab in labels for _ in PROTOTYPES[lab]], examples, scores, strict=True
    ):
        if label not in best or score > best[label][0]:
            best[label] = (float(score), example)
    winner = max(best, key=lambda lab: best[lab][0])
    if winner == "calm" or best[winner][0] - best["calm"][0] < PROTOTYPE_MARGIN:
        return None
    return winner, best[winner][0], best[winner][1]


@lru_cache(maxsize=MOOD_CACHE)
def _own_mood(text: str) -> ToneLabel:
    """A line's mood from its own words (cached: every later line of the call looks back at it)."""
    return customer_emotion(text)


def _context_mood(context: Sequence[str]) -> ToneLabel | None:
    """The upset mood of the customer's latest earlier line, if it was upset (read without context)."""
    for earlier in reversed(context[-CONTEXT_LINES:]):
        reading = _own_mood(earlier)
        if reading.label in UPSET_MOODS:
            return reading
    return None


def customer_emotion(
    text: str,
    *,
    context: Sequence[str] = (),
    voice: VoiceFeatures | None = None,
    baseline: VoiceFeatures | None = None,
    embedder: TextEmbedder | None = None,
) -> ToneLabel:
    """The customer's mood in one utterance, with the words it was read from.

    ``label`` is one of ``angry`` (complaint, accusation, profanity, threats of regulators or court),
    ``anxious`` (urging, worried about time or money), ``distressed`` (harmed: ill, disgusted, hungry, wronged),
    ``calm`` (information, answers, agreement) or ``thankful``; :data:`UPSET_MOODS` are the first three.
    ``context`` is the customer's earlier lines of the same call, oldest first: a substantive line without a
    cue of its own keeps the mood of a recent upset line (a customer describing the harm is still upset).
    """
    angry = _cues(_ANGRY, _NOT_ANGER.sub("", text))
    anxious = _cues(_ANXIOUS, text)
    distressed = _cues(_DISTRESSED, text)
    thankful = [] if _SATISFIED_NEGATED.search(text) else _cues(_THANKFUL, text)
    exclaims = text.count("！") + text.count("!")
    scores: dict[CustomerEmotion, float] = {
        "angry": 1.0 * len(angry) + (0.5 * exclaims if angry or anxious else 0.0),
        "anxious": 0.8 * len(anxious),
        "distressed": 0.7 * len(distressed),
        "thankful": 0.8 * len(thankful),
    }
    evidence: dict[CustomerEmotion, list[str]] = {
        "angry": angry + (["！" * exclaims] if exclaims and (angry or anxious) else []),
        "anxious": anxious,
        "distressed": distressed,
        "thankful": thankful,
    }
    if exclaims >= 2 and not angry and not thankful:
        # Repeated exclamations with a complaint-like sentence but no cue word still read as anger.
        scores["angry"] += 0.6
        evidence["angry"].append("！" * exclaims)
    if voice is not None and baseline is not None:
        level, voice_evidence = _arousal(voice, baseline)
        if level:
            if scores["angry"] or scores["anxious"]:
                top: CustomerEmotion = "angry" if scores["angry"] >= scores["anxious"] else "anxious"
                scores[top] += 0.4 * level
                evidence[top].extend(voice_evidence)
            elif level >= 2 and not scores["thankful"]:
                scores["anxious"] += 0.5
                evidence["anxious"].extend(voice_evidence)
    label = max(scores, key=lambda k: scores[k])
    if scores[label] > 0:
        return ToneLabel(label=label, score=min(1.0, scores[label] / 2), evidence=tuple(evidence[label]))
    if context and len(_SPOKEN.findall(text)) >= CONTEXT_MIN_CHARS:
        carried = _context_mood(context)
        if carried is not None:
            return ToneLabel(carried.label, carried.score / 2, tuple(f"前文：{e}" for e in carried.evidence))
    if embedder is not None:
        found = _prototype_label(text, embedder)
        if found is not None:
            proto, similarity, example = found
            return ToneLabel(label=proto, score=similarity, evidence=(f"接近：{example}",))
    return ToneLabel(label="calm", score=1.0, evidence=())


@lru_cache(maxsize=MOOD_CACHE)
def _mood_in_context(text: str, context: tuple[str, ...]) -> ToneLabel:
    # Cached: the live flags re-read the call so far at every agent line.
    return customer_emotion(text, context=context)


def mood_in_call(text: str, earlier: Sequence[str]) -> ToneLabel:
    """One customer line's mood as :func:`customer_moods` reads it: with the customer's earlier lines."""
    return _mood_in_context(text, tuple(earlier[-CONTEXT_LINES:]))


def latest_mood(lines: Sequence[str]) -> ToneLabel | None:
    """The mood of the last of a customer's lines, read with the ones before it (None without a line)."""
    return mood_in_call(lines[-1], lines[:-1]) if lines else None


def customer_moods(segments: Sequence[Segment]) -> dict[int, ToneLabel]:
    """The mood of every customer segment (by index), each read with the customer's earlier lines."""
    moods: dict[int, ToneLabel] = {}
    earlier: list[str] = []
    for i, segment in enumerate(segments):
        if segment.speaker != "customer":
            continue
        moods[i] = mood_in_call(segment.text, earlier)
        earlier.append(segment.text)
    return moods


def agent_tone(text: str) -> list[ToneLabel]:
    """impatient / aggressive / dismissive readings of one agent utterance (empty when polite)."""
    labels = []
    for name, patterns in (
        ("impatient", _IMPATIENT),
        ("aggressive", _AGGRESSIVE),
        ("dismissive", _DISMISSIVE),
    ):
        found = [m.group() for p in patterns if (m := re.search(p, text))]
        if found:
            labels.append(
                ToneLabel(label=name, score=min(1.0, 0.5 * len(found) + 0.3), evidence=tuple(found))
            )
    return labels
