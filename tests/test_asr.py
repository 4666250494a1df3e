"""ASR: homophone correction, hallucination guard, clean-up (fast), and both real backends (real)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from copilot.config import AsrConfig
from copilot.errors import AudioError, ConfigError
from copilot.transcription.asr import (
    DecodedSegment,
    FasterWhisperTranscriber,
    OpenAIWhisperTranscriber,
    Transcriber,
    Vocabulary,
    build_prompt,
    clean_segment,
    clip_seconds,
    collapse_repetitions,
    drop_broken_tail,
    is_silence_hallucination,
    load_transcriber,
    to_segments,
    to_simplified,
    token_budget,
)
from copilot.transcription.correct import correct_homophones, correction_map
from copilot.transcription.window import WHISPER_WINDOW_FRAMES, content_frames, trimmed_length
from copilot.types import Word

DOMAIN = ["客服", "致电", "售后", "油烟机", "保修", "保修期", "报修", "维修", "上门"]


# ---------------------------------------------------------------- correct_homophones


@pytest.mark.parametrize(
    ("heard", "meant"),
    [
        ("您好，克服中心，请问有什么可以帮您？", "您好，客服中心，请问有什么可以帮您？"),
        ("感谢您制电", "感谢您致电"),
        ("我的游腌机坏了", "我的油烟机坏了"),
        ("还在宝修期内吗", "还在保修期内吗"),
        ("这是收获服务中心", "这是售后服务中心"),
        ("我帮您转到收获", "我帮您转到售后"),
    ],
)
def test_mishearings_of_domain_words_are_corrected(heard: str, meant: str) -> None:
    assert correct_homophones(heard, DOMAIN) == meant


@pytest.mark.parametrize(
    "real",
    [
        "我们一起克服困难",  # 克服 is a real word: no service cue next to it
        "今年的收获很大",  # 收获 = harvest
        "我想报修一下",  # 报修 = report a fault, a real after-sales word
        "已经收货了",  # 收货 = goods received
        "我是客户",  # 客户 sounds nothing like 客服 but shares 客
        "保修期是一年",  # already right
        "请问您贵姓",  # nothing to do
        "",
    ],
)
def test_real_words_are_not_over_corrected(real: str) -> None:
    assert correct_homophones(real, DOMAIN) == real


def test_correction_keeps_length_and_reports_positions() -> None:
    text = "克服中心，游腌机宝修"
    found = correction_map(text, DOMAIN)
    expected = [(0, "克服", "客服"), (5, "游腌机", "油烟机"), (8, "宝修", "保修")]
    assert found == expected
    assert len(correct_homophones(text, DOMAIN)) == len(text)


def test_ambiguous_windows_prefer_the_curated_mishearing_whatever_the_order() -> None:
    assert correct_homophones("宝修", ["报修", "保修"]) == "保修"
    assert correct_homophones("宝修", ["保修", "报修"]) == "保修"


@given(st.text(alphabet="克服客宝保修报游腌油烟机制致电收获售后中心困难，a ", max_size=30))
def test_correction_never_changes_length_and_is_stable(text: str) -> None:
    once = correct_homophones(text, DOMAIN)
    assert len(once) == len(text)
    assert correct_homophones(once, DOMAIN) == once


def test_empty_vocabulary_changes_nothing() -> None:
    assert correct_homophones("克服中心游腌机", []) == "克服中心游腌机"


def test_non_chinese_windows_are_left_alone() -> None:
    assert correct_homophones("ke fu 中心 KF", ["客服"]) == "ke fu 中心 KF"


# ---------------------------------------------------------------- hallucination guard


@pytest.mark.parametrize(
    "credit",
    [
        "字幕由Amara.org社区提供",
        "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目",
        "明镜与点点栏目",
        "中文字幕志愿者 李宗盛",
    ],
)
def test_subtitle_credits_are_silence_hallucinations(credit: str) -> None:
    assert is_silence_hallucination(credit, no_speech_prob=0.05, avg_logprob=-0.2)


def test_weak_outro_is_dropped_only_when_the_decoder_was_unsure() -> None:
    assert is_silence_hallucination("谢谢观看。", no_speech_prob=0.5, avg_logprob=-0.3)
    assert not is_silence_hallucination("谢谢观看。", no_speech_prob=0.01, avg_logprob=-0.1)


def test_real_service_speech_is_kept_even_when_unsure() -> None:
    assert not is_silence_hallucination("我的油烟机坏了", no_speech_prob=0.4, avg_logprob=-0.9)
    assert not is_silence_hallucination("请帮我订阅一下维修提醒", no_speech_prob=0.0, avg_logprob=-0.3)
    assert is_silence_hallucination("嗯", no_speech_prob=0.9, avg_logprob=-1.5)  # whisper's own rule
    assert is_silence_hallucination("。", no_speech_prob=0.0, avg_logprob=0.0)  # nothing but punctuation
    # faster-whisper's temperature-1.0 text over the trailing pause of firered_IT0011W0001.wav:
    assert is_silence_hallucination("我认识一下", no_speech_prob=0.54, avg_logprob=-1.55)


def test_repetition_loops_are_collapsed_but_speech_repeats_stay() -> None:
    assert collapse_repetitions("我的油烟机坏了坏了坏了坏了坏了坏了坏了") == "我的油烟机坏了"
    assert collapse_repetitions("好的" * 9 + "谢谢") == "好的谢谢"
    assert collapse_repetitions("啊" * 20) == "啊"
    assert collapse_repetitions("对对对，好的好的") == "对对对，好的好的"
    assert collapse_repetitions("谢谢谢谢") == "谢谢谢谢"


# ---------------------------------------------------------------- clean-up and timing


def _words(*pieces: tuple[str, float, float]) -> tuple[Word, ...]:
    return tuple(Word(text, start, end, 0.9) for text, start, end in pieces)


def test_clean_segment_simplifies_corrects_and_keeps_words_aligned() -> None:
    decoded = DecodedSegment(
        0.0,
        2.0,
        "您好克服中心",
        _words(("您好", 0.0, 0.5), ("克", 0.5, 0.8), ("服", 0.8, 1.0), ("中心", 1.0, 1.5), ("。", 1.5, 1.5)),
    )
    cleaned = clean_segment(decoded, Vocabulary(words=("客服",)))
    assert cleaned is not None
    assert cleaned.text == "您好客服中心。"
    assert [w.text for w in cleaned.words] == ["您好", "客", "服", "中心", "。"]
    assert cleaned.words[1].start == 0.5


def test_clean_segment_converts_traditional_and_drops_loop_words() -> None:
    loop = tuple(Word("壞了", 1.0 + i / 10, 1.05 + i / 10) for i in range(8))
    decoded = DecodedSegment(0.0, 2.0, "", (Word("機器", 0.0, 1.0), *loop))
    cleaned = clean_segment(decoded)
    assert cleaned is not None
    assert cleaned.text == "机器坏了"
    assert len(cleaned.words) == 2


def test_clean_segment_drops_credits_and_keeps_text_without_words() -> None:
    assert clean_segment(DecodedSegment(0.0, 3.0, "字幕由Amara.org社区提供")) is None
    kept = clean_segment(DecodedSegment(0.0, 3.0, "這是售後服務"))
    assert kept is not None and kept.text == "这是售后服务"


def test_a_broken_character_cuts_the_run_off_tail() -> None:
    assert drop_broken_tail("还有动漫设计。你认\ufffd") == "还有动漫设计。"
    assert (
        drop_broken_tail("设计\ufffd") == "设计"
    )  # no sentence end before it: only the broken character goes
    assert drop_broken_tail("设计。好的") == "设计。好的"
    words = (Word("设计。", 0.0, 1.0), Word("你认", 1.0, 1.2), Word("\ufffd", 1.2, 1.3))
    cleaned = clean_segment(DecodedSegment(0.0, 1.3, "设计。你认\ufffd", words))
    assert cleaned is not None and cleaned.text == "设计。"
    assert [w.text for w in cleaned.words] == ["设计。"]


def test_correction_is_off_when_asked() -> None:
    decoded = DecodedSegment(0.0, 1.0, "克服中心")
    cleaned = clean_segment(decoded, Vocabulary(words=("客服",), correct=False))
    assert cleaned is not None and cleaned.text == "克服中心"


def test_to_segments_puts_times_on_the_call_clock_and_clips_to_the_audio() -> None:
    decoded = [
        DecodedSegment(0.2, 1.4, "你好", _words(("你", 0.2, 0.6), ("好", 0.6, 1.45))),
        DecodedSegment(1.5, 1.6, "字幕由某某提供", _words(("字幕由某某提供", 1.5, 1.6))),
    ]
    segments = to_segments(decoded, start_time=30.0, duration=1.42)
    assert len(segments) == 1
    (segment,) = segments
    assert segment.speaker == "unknown"
    assert segment.start == pytest.approx(30.2) and segment.end == pytest.approx(31.4)
    assert segment.words[-1].end == pytest.approx(31.42)  # clipped to the end of the audio
    assert all(isinstance(w.start, float) for w in segment.words)


def test_build_prompt_orders_config_vocabulary_then_recent_context() -> None:
    vocab = Vocabulary(words=("客服", "保修"), in_prompt=True)
    prompt = build_prompt("以下是普通话的句子。", vocab, "前文" * 200)
    assert prompt.startswith("以下是普通话的句子。常用词：客服、保修。")
    assert prompt.endswith("前文") and len(prompt) < 200
    assert build_prompt("以下是普通话的句子。", Vocabulary(words=("客服",)), "") == "以下是普通话的句子。"


def test_clip_seconds_flattens_vad_spans_for_openai_whisper() -> None:
    assert clip_seconds([{"start": 8000, "end": 24000}, {"start": 32000, "end": 40000}], 48000) == [
        0.5,
        1.5,
        2.0,
        2.5,
    ]
    assert clip_seconds([], 0) == []


def test_to_simplified() -> None:
    assert to_simplified("這台油煙機還在保修期內") == "这台油烟机还在保修期内"


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        load_transcriber(AsrConfig(backend="kaldi"))  # type: ignore[arg-type]


# ---------------------------------------------------------------- real models on real audio

CLIP = "firered_BAC009S0764W0121.wav"


def _bare(text: str) -> str:
    return "".join(c for c in to_simplified(text) if not unicodedata.category(c).startswith(("P", "Z", "S")))


def _reference(shared: Path, name: str) -> str:
    for line in (shared / "audio" / "refs.tsv").read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if fields[0] == name:
            return fields[1]
    raise AssertionError(f"{name} has no reference")


def _is_simplified(text: str) -> bool:
    return to_simplified(text) == text


def _check_real(transcriber: Transcriber, shared: Path) -> None:
    import jiwer

    from copilot.transcription.audio import read_all

    audio, duration = read_all(shared / "audio" / CLIP)
    start = 12.5  # pretend the clip sits 12.5 s into a call
    segments = transcriber.transcribe(audio[0], start_time=start)
    text = "".join(s.text for s in segments)
    cer = jiwer.cer(_bare(_reference(shared, CLIP)), _bare(text))
    assert cer < 0.3, (cer, text)
    assert _is_simplified(text)
    words = [w for s in segments for w in s.words]
    assert words, "word timestamps are missing"
    for w in words:
        assert start <= w.start <= w.end <= start + duration + 1e-6, w
    assert {s.speaker for s in segments} == {"unknown"}


@pytest.mark.real
def test_faster_whisper_transcribes_real_speech(whisper_ct2_dir: Path, shared_dir: Path) -> None:
    transcriber = FasterWhisperTranscriber(AsrConfig(model=str(whisper_ct2_dir), word_timestamps=True))
    _check_real(transcriber, shared_dir)
    with pytest.raises(AudioError):
        transcriber.transcribe(np.zeros((2, 16000), dtype=np.float32))


@pytest.mark.real
def test_openai_whisper_transcribes_real_speech(whisper_openai_pt: Path, shared_dir: Path) -> None:
    config = AsrConfig(
        backend="openai-whisper",
        model=str(whisper_openai_pt),
        beam_size=1,
        openai_trim_padding=False,  # the full 30-s window
        word_timestamps=True,  # as `transcribe --words` asks
    )
    transcriber = load_transcriber(config)
    assert isinstance(transcriber, OpenAIWhisperTranscriber)
    _check_real(transcriber, shared_dir)
    # the leftover after the last word of a VAD clip was not decoded, and the text above is still right
    assert transcriber.remnant_guard.skipped >= 1


@pytest.mark.real
def test_openai_whisper_with_the_trimmed_encoder_still_transcribes_and_times_words(
    whisper_openai_pt: Path, shared_dir: Path
) -> None:
    config = AsrConfig(
        backend="openai-whisper", model=str(whisper_openai_pt), beam_size=5, word_timestamps=True
    )
    assert config.openai_trim_padding  # the shipped default: openai-whisper trims offline too
    _check_real(load_transcriber(config), shared_dir)


# ---------------------------------------------------------------- the trimmed encoder window


def _padded_features(frames: int, rng: np.random.Generator) -> np.ndarray:
    """Log-mel-like features: ``frames`` of audio, then pad_or_trim's zero columns up to 30 s."""
    features = np.zeros((80, WHISPER_WINDOW_FRAMES), dtype=np.float32)
    features[:, :frames] = rng.uniform(-1.5, 1.0, size=(80, frames))
    return features


@pytest.mark.parametrize(
    ("frames", "expected"), [(40, 1000), (949, 1000), (951, 1100), (1351, 1500), (2990, 3000), (3000, 3000)]
)
def test_trimmed_window_keeps_the_audio_plus_a_margin_in_whole_seconds(frames: int, expected: int) -> None:
    features = _padded_features(frames, np.random.default_rng(frames))
    assert content_frames(features) == frames
    assert trimmed_length(features) == expected


def test_digital_silence_is_content_not_padding() -> None:
    features = np.zeros((80, WHISPER_WINDOW_FRAMES), dtype=np.float32)
    features[:, :1200] = -1.5  # what Whisper's log-mel makes of all-zero audio
    assert content_frames(features) == 1200 and trimmed_length(features) == 1300


@pytest.mark.real
def test_trimmed_window_transcribes_a_real_clip_like_the_full_window(
    whisper_ct2_dir: Path, shared_dir: Path
) -> None:
    from copilot.transcription.audio import read_all

    audio, _duration = read_all(shared_dir / "audio" / CLIP)
    texts = [
        "".join(
            s.text
            for s in FasterWhisperTranscriber(
                AsrConfig(model=str(whisper_ct2_dir), trim_padding=trim)
            ).transcribe(audio[0])
        )
        for trim in (True, False)
    ]
    reference = _bare(_reference(shared_dir, CLIP))
    import jiwer

    trimmed, full = (jiwer.cer(reference, _bare(text)) for text in texts)
    assert trimmed <= full + 0.05, texts


@pytest.mark.real
def test_live_decode_settings_transcribe_real_speech_without_word_times(
    whisper_ct2_dir: Path, shared_dir: Path
) -> None:
    """What live calls decode with (trimmed window, no alignment pass) still reads the clip."""
    import jiwer

    from copilot.transcription.audio import read_all

    audio, _duration = read_all(shared_dir / "audio" / CLIP)
    live = AsrConfig(model=str(whisper_ct2_dir)).for_live()
    segments = FasterWhisperTranscriber(live).transcribe(audio[0], start_time=3.0)
    text = "".join(s.text for s in segments)
    assert jiwer.cer(_bare(_reference(shared_dir, CLIP)), _bare(text)) < 0.35, text
    assert segments and all(not s.words for s in segments)
    assert all(s.start >= 3.0 for s in segments)


@pytest.mark.real
def test_live_decodes_run_side_by_side_and_each_reads_as_it_would_alone(
    whisper_ct2_dir: Path, shared_dir: Path
) -> None:
    """Two calls decoding at once on the live model's workers get the text each gets on its own."""
    from concurrent.futures import ThreadPoolExecutor

    from copilot.transcription.audio import read_all

    live = AsrConfig(model=str(whisper_ct2_dir)).for_live()
    assert live.workers >= 2
    transcriber = FasterWhisperTranscriber(live)
    names = [CLIP, "firered_IT0011W0001.wav", "firered_TEST_NET_Y0000000000_-KTKHdZ2fb8_S00000.wav"]
    clips = [read_all(shared_dir / "audio" / name)[0][0] for name in names]

    def read(audio: np.ndarray) -> str:
        return "".join(s.text for s in transcriber.transcribe(audio))

    alone = [read(clip) for clip in clips]
    with ThreadPoolExecutor(len(clips)) as pool:
        together = list(pool.map(read, clips * 2))
    assert together == alone * 2
    assert all(alone) and len(set(alone)) == len(alone)


def test_token_budget_grows_with_the_audio_and_fits_beside_the_longest_prompt() -> None:
    assert token_budget(0.5) < token_budget(5.0) < token_budget(15.0)
    assert token_budget(15.0) >= 15 * 7  # Mandarin: ~5 characters, ~7 tokens a second at most
    assert token_budget(30.0) == token_budget(600.0) <= 448 - 224  # Whisper: 448 positions, prompt <= 224


@pytest.mark.parametrize(("limit", "expected"), [(True, token_budget(2.0)), (False, None)])
def test_the_token_budget_caps_a_decode_only_when_configured(limit: bool, expected: int | None) -> None:
    """Live decodes are capped (a loop must not hold a commit); offline ones keep Whisper's own limit,
    where a full-length loop triggers the temperature fallback that re-decodes it cleanly."""
    seen: dict[str, object] = {}

    class Model:
        def transcribe(self, audio: np.ndarray, **options: object) -> tuple[list[object], None]:
            seen.update(options)
            return [], None

    transcriber = object.__new__(FasterWhisperTranscriber)
    transcriber.config = AsrConfig(limit_tokens=limit)
    transcriber.vocabulary = Vocabulary()
    transcriber._model = Model()
    transcriber.decode(np.zeros(2 * 16000, dtype=np.float32), "")
    assert seen["max_new_tokens"] == expected


# ---------------------------------------------------------------- openai-whisper speed-ups (asr_openai)


def test_clip_ends_stop_at_the_last_whole_mel_frame() -> None:
    # 463679 samples hold 2897 whole 10-ms frames; Silero's end (28.97994 s) rounds to frame 2898.
    assert clip_seconds([{"start": 0, "end": 463679}], 463679) == [0.0, 28.97]


def test_folded_cross_attention_equals_the_broadcast_one() -> None:
    import torch
    import whisper.model

    from copilot.transcription.openai_decode import SharedAudioCrossAttention

    torch.manual_seed(0)
    stock = whisper.model.MultiHeadAttention(64, 4).eval()
    folded = whisper.model.MultiHeadAttention(64, 4).eval()
    folded.load_state_dict(stock.state_dict())
    folded.__class__ = SharedAudioCrossAttention
    beams, audio = torch.randn(5, 3, 64), torch.randn(1, 50, 64)  # 5 hypotheses, one audio
    with torch.no_grad():
        expected, _ = stock(beams, audio)
        got, _ = folded(beams, audio)
        alone, _ = folded(beams[:1], audio)  # one hypothesis: the stock path
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(alone, expected[:1], atol=1e-5)


def test_reusing_encoder_encodes_a_window_once_and_trims_only_when_asked() -> None:
    import torch
    import whisper.model

    from copilot.transcription.openai_decode import ReusingEncoder, encoder_frames

    torch.manual_seed(0)
    stock = whisper.model.AudioEncoder(80, WHISPER_WINDOW_FRAMES // 2, 16, 2, 1).eval()
    mel = torch.from_numpy(_padded_features(400, np.random.default_rng(1)))[None]
    assert encoder_frames(mel, trim=False) == WHISPER_WINDOW_FRAMES
    assert encoder_frames(mel, trim=True) == 1000
    with torch.no_grad():
        full, trimmed = ReusingEncoder(stock, trim=False), ReusingEncoder(stock, trim=True)
        first = full(mel)
        assert torch.equal(first, stock(mel))
        assert full(mel.clone()) is first  # the same window again: no second encoder pass
        assert trimmed(mel).shape == (1, 500, 16)
        assert not torch.equal(full(mel + 1), first)


def test_openai_short_vad_clips_are_widened_to_a_second_inside_the_audio_and_merged() -> None:
    from copilot.transcription.openai_decode import pad_clips

    assert pad_clips([1.0, 1.3, 5.0, 7.0], 10.0, 1.0) == [1.0, 2.0, 5.0, 7.0]  # end widened, long one kept
    assert pad_clips([9.7, 9.9], 10.0, 1.0) == [9.0, 10.0]  # no room after: start moves back
    assert pad_clips([0.0, 0.2], 0.5, 1.0) == [0.0, 0.5]  # shorter audio: all of it
    assert pad_clips([1.0, 1.2, 1.8, 3.0], 10.0, 1.0) == [1.0, 3.0]  # widened into the next: merged
    assert pad_clips([], 3.0, 1.0) == []


def test_openai_remnant_limit_never_exceeds_the_shortest_clip_in_whisper_frames() -> None:
    from copilot.transcription.openai_decode import remnant_frames

    assert remnant_frames([0.0, 5.0, 6.0, 8.0], 100) == 100
    assert remnant_frames([0.0, 5.0, 6.0, 6.5], 100) == 50  # a first decode of a clip is never a remnant
    assert remnant_frames([0.004, 0.996], 100) == 100  # rounded to frames as openai-whisper does


def test_openai_remnant_guard_returns_silence_for_short_leftovers_only() -> None:
    import math

    import torch
    import whisper

    from copilot.transcription.openai_decode import RemnantGuard

    calls: list[int] = []

    def decode(mel: torch.Tensor, options: whisper.DecodingOptions) -> str:
        calls.append(mel.shape[-1])
        return "decoded"

    guard = RemnantGuard(decode)
    options = whisper.DecodingOptions(language="zh", temperature=0.0)
    short = torch.from_numpy(_padded_features(49, np.random.default_rng(2)))
    long = torch.from_numpy(_padded_features(100, np.random.default_rng(3)))
    assert guard(short, options) == "decoded"  # off (min_frames 0): every window is decoded
    guard.min_frames = 100
    assert guard(long, options) == "decoded"
    result = guard(short, options)
    assert result.tokens == [] and result.no_speech_prob == 1.0 and result.avg_logprob == -math.inf
    assert guard.skipped == 1 and len(calls) == 2


class _LazyModel:
    """Stands in for faster-whisper's model: segments come from a generator, each window decoded on demand."""

    def __init__(self, ends: list[float]) -> None:
        self.ends = ends
        self.decoded = 0  # windows decoded so far

    def transcribe(self, audio: np.ndarray, **_options: object) -> tuple[Iterator[SimpleNamespace], None]:
        return self._segments(), None

    def _segments(self) -> Iterator[SimpleNamespace]:
        start = 0.0
        for end in self.ends:
            self.decoded += 1
            yield SimpleNamespace(
                start=start, end=end, text="好的", words=[], avg_logprob=-0.2, no_speech_prob=0.01
            )
            start = end


@pytest.mark.parametrize(("ends", "decoded"), [([9.5, 10.0], 1), ([4.0, 8.0, 10.0], 3)])
def test_a_decode_stops_where_its_text_reaches_the_end_of_the_audio(ends: list[float], decoded: int) -> None:
    # 10 s of audio: text ending at 9.5 s leaves only the utterance's trailing pad, which faster-whisper would
    # decode on its own (and fill with loops through every temperature fallback); it is not asked for
    transcriber = object.__new__(FasterWhisperTranscriber)
    transcriber.config = AsrConfig()
    transcriber.vocabulary = Vocabulary()
    model = _LazyModel(ends)
    transcriber._model = model
    segments = transcriber.decode(np.zeros(10 * 16000, dtype=np.float32), "")
    assert model.decoded == decoded and len(segments) == decoded
