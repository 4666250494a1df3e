"""Customer emotion and agent tone from words, and voice features from audio."""

from __future__ import annotations

import numpy as np
import pytest

from copilot.judgement.tone import SAMPLE_RATE, VoiceFeatures, agent_tone, customer_emotion, voice_features
from tests.fakes_embedding import HashEmbedder


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("我上个月买的冰箱不制冷了，里面的东西全坏了，你们这是什么质量！", "angry"),
        ("什么叫没什么大不了？我要投诉你们！", "angry"),
        ("家里漏水了，师傅能不能尽快来？我很着急。", "anxious"),
        ("可以，谢谢。", "thankful"),
        ("那什么时候能来修？", "calm"),  # a question about time is not anxiety by itself
        ("对，就是这样。", "calm"),
        ("我对这次维修很不满意。", "angry"),
        ("你们回电话有什么用啊", "angry"),  # what was done is useless
        ("嗯那行吧那就这样吧", "calm"),  # the caller closing the call, not resigned anger
        ("我这边操作不了", "calm"),  # 操作 (operate) holds no profanity
        ("我操这都几点了还没送到", "angry"),
        ("你们平台就这样对待顾客的吗", "angry"),
        ("嗯行那你给我解决了吧", "calm"),  # asking for it to be solved is no satisfaction
        ("感觉挺好笑的就是那个意思吧", "calm"),  # 挺好笑: laughable, not 挺好
        ("你们要让我满意才行", "calm"),  # satisfaction demanded, not given
        ("我对这次服务很满意", "thankful"),
        ("那个师傅态度挺好的", "thankful"),  # attitude praised, not complained about
        ("你这是什么态度", "angry"),
    ],
)
def test_customer_emotion_from_words(text: str, label: str) -> None:
    reading = customer_emotion(text)
    assert reading.label == label
    assert label == "calm" or reading.evidence


def test_agent_tone_labels_with_evidence() -> None:
    labels = {t.label: t for t in agent_tone("随便你，我都说了三遍了，你怎么用也不会？")}
    assert set(labels) == {"dismissive", "impatient", "aggressive"}
    assert all(t.evidence for t in labels.values())
    assert agent_tone("好的，我马上帮您登记，请您稍等。") == []


def _tone(freq: float, amplitude: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_voice_features_measure_pitch_and_energy() -> None:
    low = voice_features(_tone(120.0, 0.05))
    high = voice_features(_tone(220.0, 0.4))
    assert low.pitch_hz == pytest.approx(120.0, rel=0.05)
    assert high.pitch_hz == pytest.approx(220.0, rel=0.05)
    assert high.rms_db - low.rms_db == pytest.approx(18.1, abs=0.5)
    assert voice_features(np.zeros(SAMPLE_RATE, dtype=np.float32)).pitch_hz == 0.0


def test_raised_voice_strengthens_anger_but_never_invents_satisfaction() -> None:
    baseline = VoiceFeatures(rms_db=-30.0, pitch_hz=150.0, voiced_ratio=0.8)
    raised = VoiceFeatures(rms_db=-20.0, pitch_hz=190.0, voiced_ratio=0.8)
    words_only = customer_emotion("你们怎么回事，我要投诉")
    with_voice = customer_emotion("你们怎么回事，我要投诉", voice=raised, baseline=baseline)
    assert with_voice.label == "angry" and with_voice.score > words_only.score
    assert any("dB" in e for e in with_voice.evidence)
    assert customer_emotion("那什么时候能来修", voice=raised, baseline=baseline).label == "anxious"
    assert customer_emotion("那什么时候能来修", voice=baseline, baseline=baseline).label == "calm"


def test_prototypes_decide_lines_without_cues() -> None:
    reading = customer_emotion("师傅修得很好，我很满意啊", embedder=HashEmbedder())  # cue: 满意
    assert reading.label == "thankful"
    plain = customer_emotion("请问维修需要带发票吗？", embedder=HashEmbedder())
    assert plain.label == "calm"


def test_reading_moods_loads_no_sentiment_model() -> None:
    """snownlp held ~400 MB of the app and changed no mood on the real calls: the cue lists read alone."""
    import subprocess
    import sys

    code = (
        "import sys; from copilot.judgement.tone import customer_emotion, customer_moods;"
        "from copilot.types import Segment;"
        "customer_emotion('你们这是什么态度？太气人了！');"
        "customer_moods((Segment('customer', 0, 1, '谢谢你啊'),));"
        "print('snownlp' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
