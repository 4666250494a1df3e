"""Speech recognition over the packaged Whisper base: two real backends behind one protocol.

``FasterWhisperTranscriber`` (CTranslate2, int8, Silero VAD) is the default; ``OpenAIWhisperTranscriber``
runs the same weights converted for openai-whisper (fp32 torch). Both return :class:`Segment` values in
Simplified characters with absolute times and word timestamps, after the same clean-up:
OpenCC t2s (Whisper base drifts into Traditional), a guard against known silence hallucinations
(subtitle credits) and repetition loops, and optional near-homophone correction of domain words.
"""

from __future__ import annotations

import os
import re
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from copilot.config import AsrConfig
from copilot.errors import AudioError, ConfigError, ModelError, install_hint
from copilot.models.provision import resolve
from copilot.transcription.audio import SAMPLE_RATE
from copilot.transcription.correct import correct_homophones
from copilot.transcription.window import FRAMES_PER_SECOND, trimming_whisper_model
from copilot.types import Segment, Word

PACKAGED_CT2 = "whisper-base"
PACKAGED_OPENAI = "whisper-base-openai"  # the same weights converted by models/convert_whisper.py
OPENAI_ALIGNMENT_KEY = "base"  # openai-whisper's table of cross-attention heads that track time
PROMPT_CONTEXT_CHARS = 120  # chars of caller context kept: Whisper's prompt holds ~223 tokens in all
VOCABULARY_PROMPT_LABEL = "常用词："  # "common words:" before the vocabulary in the prompt
BROKEN_CHARACTER = "\ufffd"  # a decode that stopped inside a multi-byte character (你认\ufffd)
SENTENCE_ENDS = "。！？!?"

# Whisper's own silence rule (openai transcribe.py): both must hold to call a segment silence.
NO_SPEECH_MAX = 0.6
LOGPROB_SILENCE = -1.0
# Below this mean token log-probability the decoder barely believes its own words (often the
# temperature-fallback text it writes over a trailing pause): dropped whatever it says.
LOGPROB_VERY_LOW = -1.5
# A weak credit phrase (谢谢观看 ...) is dropped only when the decoder was this unsure.
WEAK_NO_SPEECH = 0.3
WEAK_LOGPROB = -0.8
# Subtitle credits and video outros that Whisper writes over silence; nobody says them on a service call.
CREDIT_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"字幕(由|提供|制作|志愿者|组|by|BY)",
        r"中文字幕",
        r"不吝点赞",
        r"点赞.{0,4}(订阅|转发|打赏|关注)",
        r"订阅.{0,4}(转发|打赏|频道)",
        r"明镜.{0,2}点点",
        r"(优优|YoYo).{0,4}(独播|字幕)",
    )
)
# Outros that a person could say in principle: dropped when they are the whole segment and unsure.
WEAK_PHRASES = frozenset(
    {"谢谢观看", "感谢观看", "谢谢收看", "感谢收看", "感谢收听", "谢谢大家", "下期再见", "我们下期再见"}
)
# Decode budget: Mandarin speech is ~4-5 characters (~5-7 tokens) a second; Whisper's prompt takes at
# most 224 of its 448 positions, so 220 new tokens always fit beside it.
BASE_NEW_TOKENS = 32
NEW_TOKENS_PER_SECOND = 12
MAX_NEW_TOKENS = 220
REPEAT_UNIT_MAX = 15  # chars: longest n-gram checked for a repetition loop
REPEAT_MIN = 4  # occurrences in a row of an n-gram (2+ chars) that make a loop
REPEAT_MIN_SINGLE = 6  # occurrences of one character (对对对 is speech; 对 x 6 is a loop)
MEL_HOP = SAMPLE_RATE // FRAMES_PER_SECOND  # samples per Whisper log-mel frame
MIN_CLIP_SECONDS = 1.0  # openai-whisper: VAD clips are widened to this much audio
# openai-whisper: a clip's leftover under this many mel frames (the widened length) is not decoded
MIN_CLIP_FRAMES = round(MIN_CLIP_SECONDS * FRAMES_PER_SECOND)


class Transcriber(Protocol):
    """One-method protocol every ASR backend implements (the streaming path depends only on this).

    ``word_times``: per-word times for this decode (None: as ``AsrConfig.word_timestamps`` says).
    """

    def transcribe(
        self, audio: np.ndarray, *, start_time: float = 0.0, prompt: str = "", word_times: bool | None = None
    ) -> tuple[Segment, ...]: ...


@dataclass(frozen=True)
class Vocabulary:
    """Domain words fed to recognition, independently of :class:`AsrConfig`."""

    words: tuple[str, ...] = ()
    hotwords: bool = True  # faster-whisper's ``hotwords`` (a previous-text hint); ignored by openai-whisper
    in_prompt: bool = False  # list the words in the initial prompt (both backends)
    correct: bool = True  # replace near-homophones of the words after decoding (asr_correct)


@dataclass(frozen=True)
class DecodedSegment:
    """What a backend decoded, before clean-up; times relative to the audio passed in."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


# ---------------------------------------------------------------- pure clean-up (unit-tested)


@lru_cache(maxsize=1)
def _t2s() -> Any:
    from opencc import OpenCC

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    converted: str = _t2s().convert(text)
    return converted


def _bare(text: str) -> str:
    """Text without punctuation, symbols and spaces, for matching phrases."""
    return "".join(c for c in text if not unicodedata.category(c).startswith(("P", "Z", "S")))


def is_silence_hallucination(text: str, no_speech_prob: float, avg_logprob: float) -> bool:
    """Whether a decoded segment is something Whisper writes over silence rather than speech."""
    bare = _bare(text)
    if not bare:
        return True
    if any(p.search(bare) for p in CREDIT_PATTERNS):
        return True
    unsure = no_speech_prob >= WEAK_NO_SPEECH or avg_logprob <= WEAK_LOGPROB
    if bare in WEAK_PHRASES and unsure:
        return True
    if avg_logprob < LOGPROB_VERY_LOW:
        return True
    return no_speech_prob > NO_SPEECH_MAX and avg_logprob < LOGPROB_SILENCE


_LOOP = re.compile(rf"(.{{1,{REPEAT_UNIT_MAX}}}?)\1+", re.DOTALL)


def repetition_mask(text: str) -> list[bool]:
    """Per character: ``True`` to keep. Loops keep their first occurrence of the repeated n-gram."""
    keep = [True] * len(text)
    for match in _LOOP.finditer(text):
        unit = len(match.group(1))
        count = len(match.group(0)) // unit
        if count >= (REPEAT_MIN_SINGLE if unit == 1 else REPEAT_MIN):
            for i in range(match.start() + unit, match.end()):
                keep[i] = False
    return keep


def collapse_repetitions(text: str) -> str:
    """``text`` with repetition loops cut to one occurrence (哈哈哈 stays, a 10 x loop does not)."""
    return "".join(c for c, k in zip(text, repetition_mask(text), strict=True) if k)


def _apply_to_words(words: Sequence[Word], text: str, keep: Sequence[bool]) -> tuple[Word, ...]:
    """Words re-cut from ``text`` (same characters as the words joined, possibly corrected), dropping masked chars."""
    out: list[Word] = []
    position = 0
    for word in words:
        span = range(position, position + len(word.text))
        position += len(word.text)
        kept = "".join(text[i] for i in span if keep[i])
        if kept.strip():
            out.append(replace(word, text=kept))
    return tuple(out)


def _cut_words(words: Sequence[Word], keep: int) -> tuple[Word, ...]:
    """The words covering the first ``keep`` characters of their joined text (broken characters dropped)."""
    out: list[Word] = []
    for word in words:
        if keep <= 0:
            break
        text = word.text[:keep].replace(BROKEN_CHARACTER, "")
        keep -= len(word.text)
        if text:
            out.append(replace(word, text=text))
    return tuple(out)


_CJK_SPACE = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef])\s+|\s+(?=[\u3000-\u9fff\uff00-\uffef])")


def _tidy(text: str) -> str:
    """No spaces next to Chinese characters: Whisper's word pieces often carry a leading space."""
    return _CJK_SPACE.sub("", text)


def drop_broken_tail(text: str) -> str:
    """``text`` without a run-off tail: a broken character means the decoder stopped mid-character, past
    the speech, so what follows the last sentence end before it goes too (or just the broken character)."""
    broken = text.find(BROKEN_CHARACTER)
    if broken < 0:
        return text
    end = max(text.rfind(mark, 0, broken) for mark in SENTENCE_ENDS)
    return text[: end + 1] if end >= 0 else text.replace(BROKEN_CHARACTER, "")


def clean_segment(segment: DecodedSegment, vocabulary: Vocabulary = Vocabulary()) -> DecodedSegment | None:
    """Simplified characters, loops cut, homophones corrected; ``None`` for a silence hallucination."""
    words = tuple(replace(w, text=_tidy(to_simplified(w.text))) for w in segment.words)
    if words and BROKEN_CHARACTER in "".join(w.text for w in words):
        kept = len(drop_broken_tail("".join(w.text for w in words)))
        words = _cut_words(words, kept)
    text = "".join(w.text for w in words) if words else drop_broken_tail(_tidy(to_simplified(segment.text)))
    if is_silence_hallucination(text, segment.no_speech_prob, segment.avg_logprob):
        return None
    if vocabulary.correct and vocabulary.words:
        text = correct_homophones(text, vocabulary.words)  # same length: maps back onto the words
    keep = repetition_mask(text)
    if words:
        words = _apply_to_words(words, text, keep)
        cleaned = "".join(w.text for w in words).strip()
    else:
        cleaned = "".join(c for c, k in zip(text, keep, strict=True) if k).strip()
    if not cleaned:
        return None
    return replace(segment, text=cleaned, words=words)


def to_segments(
    decoded: Sequence[DecodedSegment],
    *,
    start_time: float,
    duration: float,
    vocabulary: Vocabulary = Vocabulary(),
) -> tuple[Segment, ...]:
    """Clean each decoded segment and place it on the call's clock, clipped to the audio."""
    end_of_audio = start_time + duration

    def clock(t: float) -> float:
        return float(min(max(start_time + t, start_time), end_of_audio))

    out: list[Segment] = []
    for item in decoded:
        cleaned = clean_segment(item, vocabulary)
        if cleaned is None:
            continue
        words = tuple(replace(w, start=clock(w.start), end=clock(w.end)) for w in cleaned.words)
        out.append(
            Segment(
                speaker="unknown",
                start=clock(cleaned.start),
                end=clock(cleaned.end),
                text=cleaned.text,
                words=tuple(w for w in words if w.end >= w.start),
            )
        )
    return tuple(out)


def build_prompt(initial_prompt: str, vocabulary: Vocabulary, context: str) -> str:
    """The configured Simplified prompt, then the vocabulary (if asked), then the caller's context."""
    parts = [initial_prompt.strip()]
    if vocabulary.in_prompt and vocabulary.words:
        parts.append(VOCABULARY_PROMPT_LABEL + "、".join(vocabulary.words) + "。")
    if context.strip():
        parts.append(context.strip()[-PROMPT_CONTEXT_CHARS:])
    return "".join(p for p in parts if p)


def _check_audio(audio: np.ndarray) -> np.ndarray:
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise AudioError(f"transcribe expects mono audio (one dimension), got shape {samples.shape}")
    return samples


# ---------------------------------------------------------------- backends


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub at run time


@dataclass(frozen=True)
class LoadInfo:
    """How a backend's model was loaded (for benchmarks and `copilot models status`)."""

    backend: str
    path: str
    seconds: float


class FasterWhisperTranscriber:
    """faster-whisper (CTranslate2) with its bundled Silero VAD; the model is loaded once here."""

    def __init__(self, config: AsrConfig, vocabulary: Vocabulary = Vocabulary()) -> None:
        _offline()
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise ModelError(f"faster-whisper is not installed; {install_hint('faster-whisper')}") from e
        self.config = config
        self.vocabulary = vocabulary
        path = resolve(config.model)
        started = time.monotonic()
        model_class = trimming_whisper_model if config.trim_padding else WhisperModel
        try:
            self._model = model_class(
                path,
                device="cpu",
                compute_type=config.compute_type,
                cpu_threads=config.threads,
                num_workers=config.workers,
            )
        except Exception as e:  # CTranslate2 raises RuntimeError/ValueError on a bad folder or type
            raise ModelError(f"cannot load Whisper model {config.model!r} from {path}: {e}") from e
        self.load_info = LoadInfo("faster-whisper", path, time.monotonic() - started)

    def decode(self, audio: np.ndarray, prompt: str, word_times: bool | None = None) -> list[DecodedSegment]:
        use_hotwords = self.vocabulary.hotwords and self.vocabulary.words
        segments, _info = self._model.transcribe(
            audio,
            language=self.config.language,
            beam_size=self.config.beam_size,
            initial_prompt=prompt or None,
            hotwords=" ".join(self.vocabulary.words) if use_hotwords else None,
            # The stream's VAD has chosen this audio already (an utterance live, a window offline); a second
            # pass here dropped whole utterances it missed (a 1.8-s telephone-band clip came out empty).
            vad_filter=False,
            word_timestamps=self.config.word_timestamps if word_times is None else word_times,
            condition_on_previous_text=False,  # each call gets its context through ``prompt``
            max_new_tokens=token_budget(audio.size / SAMPLE_RATE) if self.config.limit_tokens else None,
        )
        duration = audio.size / SAMPLE_RATE
        out = []
        for s in segments:  # a generator: each window is decoded when the next segment is asked for
            out.append(
                DecodedSegment(
                    start=float(s.start),
                    end=float(s.end),
                    text=s.text,
                    words=tuple(
                        Word(w.word, float(w.start), float(w.end), float(w.probability))
                        for w in s.words or ()
                    ),
                    avg_logprob=float(s.avg_logprob),
                    no_speech_prob=float(s.no_speech_prob),
                )
            )
            if duration - float(s.end) < TAIL_SECONDS:
                # What is left is the utterance's trailing pad: Whisper seeks to the last word's end and
                # decodes the rest on its own, where it writes loops (中文字幕) through every temperature
                # fallback: one 0.4-s tail cost 23 s of CPU in a 27-s window. Not asking for it skips it.
                break
        return out

    def transcribe(
        self, audio: np.ndarray, *, start_time: float = 0.0, prompt: str = "", word_times: bool | None = None
    ) -> tuple[Segment, ...]:
        samples = _check_audio(audio)
        if samples.size == 0:
            return ()
        decoded = self.decode(
            samples, build_prompt(self.config.initial_prompt, self.vocabulary, prompt), word_times
        )
        return to_segments(
            decoded, start_time=start_time, duration=samples.size / SAMPLE_RATE, vocabulary=self.vocabulary
        )


TAIL_SECONDS = 1.0  # s: a decode whose text reaches this close to the end of the audio is finished


def token_budget(seconds: float) -> int:
    """Tokens a decode of ``seconds`` of speech may emit: generous for real speech, but a repetition loop
    on a short noisy clip stops early instead of running to Whisper's 448-token limit (seconds of CPU,
    each temperature fallback included)."""
    return min(MAX_NEW_TOKENS, BASE_NEW_TOKENS + round(NEW_TOKENS_PER_SECOND * seconds))


def clip_seconds(speech: Sequence[dict[str, int]], samples: int) -> list[float]:
    """Silero's speech spans (sample indices) as openai-whisper's flat ``clip_timestamps`` in seconds.

    Ends are cut to the last whole mel frame of the ``samples``-long audio: openai-whisper rounds a clip's
    end to frames but decodes only whole frames, so an end rounded past them left a clip 0 frames short,
    and it decoded that empty remainder again and again (a hallucination loop that never advanced).
    """
    last = whole_frame_seconds(samples)
    return [min(float(span[key]) / SAMPLE_RATE, last) for span in speech for key in ("start", "end")]


def whole_frame_seconds(samples: int) -> float:
    """Seconds covered by the whole mel frames of ``samples`` audio samples (what openai-whisper decodes)."""
    return samples // MEL_HOP / FRAMES_PER_SECOND


def speech_clips(audio: np.ndarray) -> list[float]:
    """Where ``audio`` has speech, by the Silero VAD bundled with faster-whisper (same defaults as there)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return clip_seconds(get_speech_timestamps(audio, VadOptions(), sampling_rate=SAMPLE_RATE), audio.size)


def _openai_model_path(name: str) -> str:
    """The packaged CTranslate2 name maps to its openai-whisper conversion; anything else is kept."""
    return resolve(PACKAGED_OPENAI if name in (PACKAGED_CT2, PACKAGED_OPENAI) else name)


class OpenAIWhisperTranscriber:
    """openai-whisper in fp32 on CPU over the converted checkpoint, with faster-whisper's Silero VAD."""

    def __init__(self, config: AsrConfig, vocabulary: Vocabulary = Vocabulary()) -> None:
        _offline()
        try:
            import torch
            import whisper
        except ImportError as e:
            raise ModelError(f"openai-whisper is not installed; {install_hint('openai-whisper')}") from e
        self.config = config
        self.vocabulary = vocabulary
        path = _openai_model_path(config.model)
        started = time.monotonic()
        torch.set_num_threads(config.threads)
        try:
            self._model = whisper.load_model(path, device="cpu")
        except Exception as e:  # torch/whisper raise many types on a bad checkpoint
            raise ModelError(f"cannot load openai-whisper model {config.model!r} from {path}: {e}") from e
        from copilot.transcription.openai_decode import RemnantGuard, speed_up

        speed_up(self._model, trim=config.trim_padding or config.openai_trim_padding)
        self.remnant_guard = RemnantGuard(self._model.decode)
        self._decode_lock = threading.Lock()
        self._model.decode = self.remnant_guard
        heads = getattr(whisper, "_ALIGNMENT_HEADS", {}).get(OPENAI_ALIGNMENT_KEY)
        if Path(path).is_file() and heads is not None and self._model.dims.n_text_layer == 6:
            # A file path loses openai's per-model alignment heads; base's are the ones CT2 ships too.
            self._model.set_alignment_heads(heads)
        self.load_info = LoadInfo("openai-whisper", path, time.monotonic() - started)

    def decode(self, audio: np.ndarray, prompt: str, word_times: bool | None = None) -> list[DecodedSegment]:
        # openai-whisper has no VAD of its own: decode only the speech (silence is where it hallucinates).
        clips = speech_clips(audio) if self.config.vad else []
        if self.config.vad and not clips:
            return []
        if clips:
            from copilot.transcription.openai_decode import pad_clips

            clips = pad_clips(clips, whole_frame_seconds(audio.size), MIN_CLIP_SECONDS)
        # The guard's limit belongs to this decode's clips: one decode at a time on the shared model.
        with self._decode_lock:
            return self._decode_clips(audio, clips, prompt, word_times)

    def _decode_clips(
        self, audio: np.ndarray, clips: list[float], prompt: str, word_times: bool | None = None
    ) -> list[DecodedSegment]:
        from copilot.transcription.openai_decode import remnant_frames

        beam = self.config.beam_size
        # A clip's leftover shorter than every clip is not decoded (see RemnantGuard).
        self.remnant_guard.min_frames = remnant_frames(clips, MIN_CLIP_FRAMES) if clips else 0
        result = self._model.transcribe(
            audio,
            clip_timestamps=clips or "0",
            language=self.config.language,
            task="transcribe",
            initial_prompt=prompt or None,
            fp16=False,  # CPU
            word_timestamps=self.config.word_timestamps if word_times is None else word_times,
            condition_on_previous_text=False,
            beam_size=beam if beam > 1 else None,
            best_of=beam if beam > 1 else None,
            verbose=None,  # no printing, no progress bar
        )
        return [
            DecodedSegment(
                start=float(s["start"]),
                end=float(s["end"]),
                text=str(s["text"]),
                words=tuple(
                    Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w["probability"]))
                    for w in s.get("words", ())
                ),
                avg_logprob=float(s["avg_logprob"]),
                no_speech_prob=float(s["no_speech_prob"]),
            )
            for s in result["segments"]
        ]

    def transcribe(
        self, audio: np.ndarray, *, start_time: float = 0.0, prompt: str = "", word_times: bool | None = None
    ) -> tuple[Segment, ...]:
        samples = _check_audio(audio)
        if samples.size == 0:
            return ()
        decoded = self.decode(
            samples, build_prompt(self.config.initial_prompt, self.vocabulary, prompt), word_times
        )
        return to_segments(
            decoded, start_time=start_time, duration=samples.size / SAMPLE_RATE, vocabulary=self.vocabulary
        )


def load_transcriber(config: AsrConfig, vocabulary: Vocabulary = Vocabulary()) -> Transcriber:
    """The backend ``config.backend`` names, with its model loaded once."""
    if config.backend == "faster-whisper":
        return FasterWhisperTranscriber(config, vocabulary)
    if config.backend == "openai-whisper":
        return OpenAIWhisperTranscriber(config, vocabulary)
    raise ConfigError(f"unknown ASR backend {config.backend!r} (faster-whisper or openai-whisper)")


# ~30 curated domain words cut the calls' CER 0.078 -> 0.048 (eval/bench_asr_vocab.py); hundreds slowed
# every decode down, and the handbooks' frequent generic words (您好, 请问 ...) were hallucinated into silences.
MAX_DOMAIN_WORDS = 40


def domain_vocabulary_for(config: AsrConfig, knowledge_dir: Path) -> Vocabulary:
    """The curated domain words (``knowledge/vocabulary_custom.txt``) as the product feeds them to ASR."""
    from copilot.knowledge.ingest import VOCABULARY_CUSTOM_FILE
    from copilot.knowledge.vocabulary import read_word_list

    words = read_word_list(knowledge_dir / VOCABULARY_CUSTOM_FILE)[:MAX_DOMAIN_WORDS]
    return Vocabulary(words=tuple(words), hotwords=config.hotwords)


def load_domain_transcriber(
    config: AsrConfig, knowledge_dir: Path, *, domain_words: bool = True, warm: bool = True
) -> Transcriber:
    """The product's transcriber: the configured backend with the domain words, correction warmed.

    Every entry point (CLI, app, batch, evaluation, benchmarks) builds its transcriber here, so a call
    is transcribed the same way wherever it comes in. ``domain_words=False``: plain Whisper (no correction);
    ``warm=False``: the correction's dictionaries (~2.5 s) load at its first use, after the first decode
    (a one-file ``copilot transcribe``), not before it (a live call, whose first line must not wait).

    The correction (``correct.py``) stays although it changes nothing on speech it was not written for: on
    66 real clips outside the domain it replaced no character (CER 0.1231 either way), on the two after-sales
    calls it took plain Whisper's CER from 0.0697 to 0.0617 (eval/bench_transcription.py dumps).
    """
    vocabulary = domain_vocabulary_for(config, knowledge_dir) if domain_words else Vocabulary()
    if warm and vocabulary.correct and vocabulary.words:
        from copilot.transcription import correct

        correct.warm()
    return load_transcriber(config, vocabulary)
