"""Configuration: defaults in code as frozen dataclasses, overrides from a TOML file.

Model fields accept three kinds of names, resolved by :mod:`copilot.models.registry`:
a packaged model name (``whisper-base``, ``e5-small``, ``qwen2.5-coder-0.5b`` ...), a local path,
or a Hugging Face model id for a user who has a network.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from copilot.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent  # the checkout, when running from one (evaluation sets live in REPO_DIR/eval)
# The knowledge base ships inside the package (copilot/knowledge/bundled links to knowledge/ in a checkout).
BUNDLED_KNOWLEDGE_DIR = PACKAGE_DIR / "knowledge" / "bundled"
CONFIG_ENV = "COPILOT_CONFIG"
HOME_ENV = "COPILOT_HOME"
SHARED_ENV = "COPILOT_SHARED"  # development data: example calls, audio, real dialogues (default ../shared)
MAX_CONFIG_BYTES = 1024 * 1024  # a configuration is a few hundred bytes; a bigger file is a wrong path
MAX_LLM_WAIT_SECONDS = 30.0  # a rewrite that starts later than this would land long after the agent spoke
PARTIAL_BEAM_SIZE = 1  # tentative text is replaced on commit: greedy costs about half of beam 5


def shared_dir() -> Path:
    """The development data folder (``COPILOT_SHARED``, default ``../shared`` beside the checkout)."""
    env = os.environ.get(SHARED_ENV)
    return Path(env).expanduser() if env else REPO_DIR.parent / "shared"


def copilot_home() -> Path:
    """Where converted models, indexes and the database live (``COPILOT_HOME``)."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mandarin-copilot"


JIEBA_CACHE_DIR = "cache"  # under COPILOT_HOME: jieba's prefix-dictionary cache


def load_jieba() -> Any:
    """The jieba module, its dictionary cache kept under ``COPILOT_HOME/cache``: by default jieba writes and
    later loads (unpickles) ``$TMPDIR/jieba.cache``, a file any local user can plant."""
    import logging

    import jieba

    if jieba.dt.tmp_dir is None:  # read by jieba when it first loads its dictionary
        cache = copilot_home() / JIEBA_CACHE_DIR
        cache.mkdir(parents=True, exist_ok=True)
        jieba.dt.tmp_dir = str(cache)
        jieba.setLogLevel(logging.WARNING)  # jieba prints its cache banner otherwise
    return jieba


AsrBackend = Literal["faster-whisper", "openai-whisper"]


@dataclass(frozen=True)
class AsrConfig:
    backend: AsrBackend = "faster-whisper"
    model: str = "whisper-base"  # packaged name, local path, or hub id (e.g. "large-v3")
    # faster-whisper only: int8 is fastest on CPU at equal accuracy (tuning real clips, CER / plain int8:
    # int8 1.008, float32 1.000 at 1.54x the CPU; eval/bench_transcription.py --config)
    compute_type: str = "int8"
    beam_size: int = 5  # 1 = greedy; 5 halves the CER of base on Mandarin at ~2x cost
    language: str = "zh"
    # Simplified-Chinese prompt: without it Whisper base often writes Traditional characters.
    initial_prompt: str = "以下是普通话的句子。"
    vad: bool = True  # openai-whisper decodes only the Silero VAD's speech clips of what it is given
    agent_channel: Literal["left", "right"] = "left"  # stereo recorders put each party on a channel
    # faster-whisper hotwords from knowledge/vocabulary_custom.txt. Off: on the shared calls they leaked
    # into silences as repeated words; the homophone correction over the same words stays on.
    hotwords: bool = False
    threads: int = 2  # CPU threads for each decode
    # faster-whisper: decodes that can run at once (CTranslate2 workers, one model copy each)
    workers: int = 1
    # Encode the audio (at least 10 s), not 30 s of zero padding (faster-whisper: copilot/transcription/window.py;
    # openai-whisper: copilot/transcription/openai_decode.py). Offline (reviews, batches) keeps the full window: CER on the
    # real clips is better with it, and openai-whisper's whole-call RTF was worse trimmed (0.97 vs 0.35).
    trim_padding: bool = False
    # openai-whisper trims offline too: with its leftover guard (asr_openai.RemnantGuard) good_call ran at RTF
    # 0.19 instead of 0.36; CER on the real clips equal or better, on the calls agent 0.103 vs 0.098.
    openai_trim_padding: bool = True
    # The live path (app, latency eval) trims with faster-whisper: live calls keep up with the clock only
    # this way on 2 cores (eval/bench_asr.py --trim-padding: commit latency p50 1.5 s instead of minutes).
    live_trim_padding: bool = True
    # Live commits decode with beam 5, as plain Whisper does: without word times, and decoded speculatively
    # 0.15 s into the pause, beam 5 commits as early as greedy did (eval/bench_live_calls.py, 4 calls at
    # once: p50 0.59 s, max 0.89 s either way) and reads better on unseen speech (bench_transcription.py
    # --half held-out, live / plain CER: clips 1.108 -> 1.017, 8 kHz 1.235 -> 1.057, calls 1.523 -> 1.488,
    # 8 kHz calls 1.572 -> 1.466) for 5-13 % more CPU.
    live_beam_size: int = 5
    # Live calls decode two utterances at once on one thread each, not one at a time on two threads: the
    # channels of one call, and the calls of an app, no longer queue behind each other. Commit lag behind
    # the audio (eval/bench_live_calls.py), four calls at once: p50 0.66 s, p90 1.33 s, max 2.34 s, against
    # 1.15 s, 2.71 s, 3.61 s; one call: p50 0.59 s, max 0.89 s against 0.64 s, 1.22 s. Each worker holds
    # its own copy of the model (about 170 MB for base).
    live_workers: int = 2
    live_threads: int = 1
    # Per-word times on every decode (``transcribe --words`` asks for them). Off by default: they cost ~5x the
    # decode's CPU (four real clips: 28.6 s against 5.9 s, eval/bench_transcription.py). The offline path
    # still asks for them on a window of several utterances, where it splits the text among the VAD's
    # utterances by word time (without them bad_call.wav's turns of one channel merged); live decodes and
    # one-utterance windows skip them.
    word_timestamps: bool = False
    # Tentative text while the *agent* speaks. Off: the agent knows what they are saying, and on 2 cores
    # those decodes compete with the customer's commit and the LLM's suggestion (copilot eval latency).
    # The agent's lines still appear when committed; the customer's channel always has tentative text.
    agent_partials: bool = False
    # Cap each decode at 32 + 12 tokens per second of audio (asr.token_budget) so that a repetition loop on
    # a short noisy clip stops early instead of running to Whisper's 448 tokens. Live calls need that (a
    # loop once held a 0.7-s "你好" for 25 s); offline reviews do not: there a full-length loop trips
    # Whisper's compression-ratio check and the temperature fallback re-decodes it cleanly, where a capped
    # loop slips under it (real clips' CER 0.315 uncapped against 0.382 capped).
    limit_tokens: bool = False

    def for_live(self) -> AsrConfig:
        """What live calls decode with: ``live_beam_size``, no word times, the token budget, and the trimmed
        window when ``live_trim_padding`` asks for it (only faster-whisper has one)."""
        live = dataclasses.replace(
            self, beam_size=self.live_beam_size, word_timestamps=False, limit_tokens=True
        )
        if self.backend != "faster-whisper":
            return live  # openai-whisper's thread count is torch's, for the whole process: left alone
        live = dataclasses.replace(live, workers=self.live_workers, threads=self.live_threads)
        return dataclasses.replace(live, trim_padding=True) if self.live_trim_padding else live

    def for_partials(self) -> AsrConfig | None:
        """What tentative decodes (replaced on commit anyway) use: greedy. ``None`` when this configuration
        already decodes greedily, so one model serves both."""
        if self.beam_size == PARTIAL_BEAM_SIZE:
            return None
        return dataclasses.replace(self, beam_size=PARTIAL_BEAM_SIZE)


@dataclass(frozen=True)
class EmbedderConfig:
    model: str = "e5-small"  # packaged name, local path, or sentence-transformers hub id
    query_prefix: str = "query: "  # e5 was trained with these prefixes
    passage_prefix: str = "passage: "
    # Live queries (a few sentences) go through an ONNX Runtime export of the same encoder when the model
    # folder has one (the packaged e5 does): same vectors, about half the latency of torch on one thread.
    onnx_queries: bool = True


@dataclass(frozen=True)
class RetrievalConfig:
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    top_k: int = 3
    # reciprocal-rank-fusion constant: Cormack et al. use 60; 10 trusts the top ranks more, chosen on the dev
    # set (MRR 0.893 -> 0.908) and then confirmed on the held-out set (0.826 -> 0.872).
    rrf_k: int = 10


@dataclass(frozen=True)
class LlmConfig:
    model: str = "qwen2.5-coder-0.5b"  # packaged name, local path, or transformers hub id
    max_new_tokens: int = 64  # two short sentences of Chinese fit in well under 64 tokens
    threads: int = 2
    enabled: bool = True
    # float32: this CPU has no native bf16, so bf16 prefill is ~2x slower; costs ~1.5 GB more RAM (0.5B).
    dtype: str = "float32"
    # "int8": the transformer blocks' Linear weights quantised to int8, per channel, after loading (torch
    # dynamic quantisation, fbgemm kernels; the LM head stays float32). Decoding on 2 cores is memory-bound:
    # fewer bytes per token, more tokens/s (`copilot eval suggestions --config default --config
    # eval/configs/llm-float32.toml`). "none": the weights as loaded.
    quantize: str = "int8"
    # Prompt lookup decoding: each forward pass also checks up to this many draft tokens copied from the prompt
    # (replies mostly copy the handbook script), keeping those the model would have picked itself. 0: one
    # token per forward pass (transformers generate). `copilot eval suggestions --config default --config
    # eval/configs/llm-no-lookup.toml`: done p50 2745 -> 1215 ms (16; 10: 1387 ms), kept/relevant unchanged.
    prompt_lookup: int = 16


REDACT_KINDS = ("mobile", "id_card", "bank_card", "landline", "email", "wechat", "qq", "address", "name")


@dataclass(frozen=True)
class PrivacyConfig:
    redact: bool = True  # personal data (redact_kinds) is masked wherever shown or stored
    redact_kinds: tuple[str, ...] = REDACT_KINDS  # what redaction masks (copilot/transcription/redact.py)
    # The call file's path as given is stored and shown (database, reports, batch.json) only when true;
    # otherwise it is redacted like the transcript (recorders put the caller's number in file names).
    keep_paths: bool = False
    keep_audio: bool = False  # keep raw audio of reviewed calls in the store
    retention_days: int = 90  # >= 1; older reviews are purged by `copilot store purge` and each review batch


@dataclass(frozen=True)
class AppConfig:
    host: str = "127.0.0.1"  # listen on loopback unless told otherwise
    port: int = 7860
    # Sign-in (copilot/ui/access.py). users: "name:role:argon2-hash" entries, role agent (Live), reviewer
    # (Review), trainer (Train) or admin (all); `python app.py --hash-password` prints a hash. auth_user /
    # auth_password: one admin (the password may be a hash too). No user at all: no sign-in (loopback use).
    users: tuple[str, ...] = ()
    auth_user: str = ""
    auth_password: str = ""
    # Host header names the app answers besides loopback and its own address (DNS rebinding): the names
    # people type when it is served beyond this machine, e.g. ["copilot.example.com"].
    allowed_hosts: tuple[str, ...] = ()
    max_upload_mb: int = 300  # largest upload accepted (a 1-hour stereo 16-kHz WAV is about 230 MB)
    max_live_sessions: int = 4
    # LLM rewrites running at once across all live calls, and how long one may wait for a place before
    # its call keeps the handbook script (on 2 cores, parallel generations only slow each other down).
    llm_at_once: int = 1
    llm_wait_seconds: float = 1.0


@dataclass(frozen=True)
class TelephonyConfig:
    """Live calls from the phone system (``copilot listen``; the app starts it when ``enabled``)."""

    enabled: bool = False  # the app listens for SIPREC / media streams only when asked to
    host: str = "127.0.0.1"  # loopback unless configured: a PBX/SBC on another host needs its address here
    sip_port: int = 5060  # SIPREC recording server (UDP)
    rtp_ports: str = "40000-40999"  # RTP range; each call takes two ports (P, P+2) per recorded pair
    media_stream_port: int = 8765  # WebSocket media streams (0: off)
    # The agent is the recorded participant whose address of record matches; its named group "extension"
    # is what the agent signs in with. Default: a 3-6 digit user part (sip:1001@pbx), not a phone number.
    agent_pattern: str = r"^(?:sips?:|tel:)?(?P<extension>\d{3,6})@"
    # Roles of the offered streams in SDP order when the metadata does not tell (no rs-metadata part, or
    # no participant matches agent_pattern). Also the channel order of binary media-stream frames.
    label_order: str = "agent,customer"
    jitter_seconds: float = 0.2  # audio is handed on this long after it is due, so late packets still fit
    media_timeout_seconds: float = 30.0  # no media for this long ends the call (the recorder went away)
    max_calls: int = 4  # calls transcribed at once; one more is refused (486 / WebSocket close 1013)


@dataclass(frozen=True)
class CompanyConfig:
    """What the handbook scripts' placeholders stand for (xxxx, XX, 敝姓X, **小时内, 工号 *).

    An empty value drops the placeholder and the words that only make sense with it (「这里是xxxx客服中心」
    becomes 「这里是客服中心」, 「于**小时内」 goes), so a suggestion never shows an unfilled template.
    """

    name: str = ""  # the company or brand, e.g. "美家电器"
    agent_name: str = ""  # the agent's name or nickname as said on the phone, e.g. "小王" or "王"
    job_number: str = ""  # the agent's job number, e.g. "1024"
    hotline: str = ""  # the service hotline, e.g. "400-800-1234"
    callback_hours: int = 0  # the promised callback time in hours (0: no time is promised)


@dataclass(frozen=True)
class StoreConfig:
    url: str = ""  # SQLAlchemy URL; empty means SQLite under COPILOT_HOME (env COPILOT_DB overrides)


@dataclass(frozen=True)
class Config:
    asr: AsrConfig = field(default_factory=AsrConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    app: AppConfig = field(default_factory=AppConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    telephony: TelephonyConfig = field(default_factory=TelephonyConfig)
    company: CompanyConfig = field(default_factory=CompanyConfig)
    knowledge_dir: str = str(BUNDLED_KNOWLEDGE_DIR)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build a dataclass from a TOML table, refusing unknown keys and wrong types."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{where}]: {', '.join(sorted(unknown))}")
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"[{where}.{name}] must be a table")
            kwargs[name] = _build(type(default), value, f"{where}.{name}" if where else name)
            continue
        expected = type(default)
        if expected is float and isinstance(value, int):
            value = float(value)
        if expected is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = tuple(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"{where + '.' if where else ''}{name} must be {expected.__name__}, got {value!r}"
            )
        kwargs[name] = value
    return dataclasses.replace(defaults, **kwargs)


def validate(config: Config) -> Config:
    """One validation step for values whose type alone is not enough."""
    if config.asr.backend not in ("faster-whisper", "openai-whisper"):
        raise ConfigError(f"asr.backend must be faster-whisper or openai-whisper, not {config.asr.backend!r}")
    if config.asr.agent_channel not in ("left", "right"):
        raise ConfigError("asr.agent_channel must be 'left' or 'right'")
    if config.asr.beam_size < 1 or config.asr.live_beam_size < 1:
        raise ConfigError("asr.beam_size and asr.live_beam_size must be at least 1")
    if min(config.asr.threads, config.asr.workers, config.asr.live_threads, config.asr.live_workers) < 1:
        raise ConfigError(
            "asr.threads, asr.workers, asr.live_threads and asr.live_workers must be at least 1"
        )
    if config.llm.dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise ConfigError("llm.dtype must be auto, float32, bfloat16 or float16")
    if config.retrieval.mode not in ("hybrid", "dense", "bm25"):
        raise ConfigError("retrieval.mode must be hybrid, dense or bm25")
    if config.retrieval.top_k < 1:
        raise ConfigError("retrieval.top_k must be at least 1")
    if config.company.callback_hours < 0:
        raise ConfigError("company.callback_hours must be 0 (no time promised) or more")
    if config.llm.quantize not in ("none", "int8"):
        raise ConfigError("llm.quantize must be none or int8")
    if config.llm.max_new_tokens < 1:
        raise ConfigError("llm.max_new_tokens must be at least 1")
    if config.llm.prompt_lookup < 0:
        raise ConfigError("llm.prompt_lookup must be 0 (off) or more")
    if config.app.max_live_sessions < 1:
        raise ConfigError("app.max_live_sessions must be at least 1")
    if config.app.max_upload_mb < 1:
        raise ConfigError("app.max_upload_mb must be at least 1")
    if config.app.llm_at_once < 1:
        raise ConfigError("app.llm_at_once must be at least 1")
    if not 0 <= config.app.llm_wait_seconds <= MAX_LLM_WAIT_SECONDS:
        raise ConfigError(f"app.llm_wait_seconds must be between 0 and {MAX_LLM_WAIT_SECONDS:g}")
    if not 0 < config.app.port < 65536:
        raise ConfigError("app.port must be between 1 and 65535")
    if bool(config.app.auth_user) != bool(config.app.auth_password):
        raise ConfigError("app.auth_user and app.auth_password must be set together")
    _validate_telephony(config.telephony)
    unknown_kinds = set(config.privacy.redact_kinds) - set(REDACT_KINDS)
    if unknown_kinds:
        raise ConfigError(
            f"privacy.redact_kinds: unknown {', '.join(sorted(unknown_kinds))} (known: {', '.join(REDACT_KINDS)})"
        )
    if config.privacy.retention_days < 1:  # no "0 = forever": a typo must not silently keep data
        raise ConfigError("privacy.retention_days must be at least 1 (keep longer with a large number)")
    return config


def rtp_port_range(text: str) -> tuple[int, int]:
    """``"40000-40999"`` -> (40000, 40999); a ConfigError unless it is an even-started range of 4+ ports."""
    found = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not found:
        raise ConfigError(f"telephony.rtp_ports must look like 40000-40999, not {text!r}")
    low, high = int(found[1]), int(found[2])
    if not 1024 <= low < high < 65536 or high - low < 3:
        raise ConfigError("telephony.rtp_ports must be a range of at least 4 ports within 1024-65535")
    return low, high


def _validate_telephony(telephony: TelephonyConfig) -> None:
    rtp_port_range(telephony.rtp_ports)
    for name in ("sip_port", "media_stream_port"):
        if not 0 <= getattr(telephony, name) < 65536:
            raise ConfigError(f"telephony.{name} must be between 0 and 65535")
    try:
        pattern = re.compile(telephony.agent_pattern)
    except re.error as e:
        raise ConfigError(f"telephony.agent_pattern must be a regular expression ({e})") from e
    if "extension" not in pattern.groupindex:
        raise ConfigError("telephony.agent_pattern must have a named group (?P<extension>...)")
    roles = [r.strip() for r in telephony.label_order.split(",")]
    if sorted(roles) != ["agent", "customer"]:
        raise ConfigError("telephony.label_order must be 'agent,customer' or 'customer,agent'")
    if not 0 < telephony.jitter_seconds <= 2 or telephony.media_timeout_seconds <= 0:
        raise ConfigError("telephony.jitter_seconds must be in (0, 2] and media_timeout_seconds positive")
    if telephony.max_calls < 1:
        raise ConfigError("telephony.max_calls must be at least 1")


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Defaults, overridden by ``path`` (or ``$COPILOT_CONFIG``) when given."""
    chosen = path if path is not None else os.environ.get(CONFIG_ENV)
    if not chosen:
        return validate(Config())
    file = Path(chosen)
    try:
        if file.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {file} is too large (at most {MAX_CONFIG_BYTES // 1024} KB)")
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {file}") from e
    except OSError as e:  # a folder, no permission
        raise ConfigError(f"cannot read config file {file}: {e.strerror or e}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {file} is not valid TOML: {' '.join(str(e).split())}") from e
    return validate(_build(Config, data, ""))


@dataclass(frozen=True)
class Setting:
    """One effective configuration value and where it came from."""

    key: str  # "asr.beam_size", "knowledge_dir", "home"
    value: Any
    source: str  # "default", "file PATH" or "environment NAME"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            out.update(_flatten(getattr(value, f.name), f"{prefix}{f.name}."))
        return out
    return {prefix.rstrip("."): value}


def effective_settings(path: str | os.PathLike[str] | None = None) -> list[Setting]:
    """Every setting of the configuration ``load_config(path)`` gives, with its source."""
    chosen = path if path is not None else os.environ.get(CONFIG_ENV)
    config = load_config(path)
    from_file: set[str] = set()
    if chosen:
        data = tomllib.loads(Path(chosen).read_text(encoding="utf-8"))
        from_file = set(_flatten_table(data))
    file_source = f"file {chosen}"
    settings = [
        Setting(key, value, file_source if key in from_file else "default")
        for key, value in _flatten(config).items()
    ]
    store_env = os.environ.get("COPILOT_DB")  # the review store's URL (copilot.qa.store.db.DB_ENV)
    if store_env:
        settings = [
            Setting(s.key, "(set)", "environment COPILOT_DB") if s.key == "store.url" else s for s in settings
        ]
    settings.append(
        Setting(
            "home", str(copilot_home()), f"environment {HOME_ENV}" if os.environ.get(HOME_ENV) else "default"
        )
    )
    settings.append(
        Setting(
            "shared",
            str(shared_dir()),
            f"environment {SHARED_ENV}" if os.environ.get(SHARED_ENV) else "default",
        )
    )
    return settings


def _flatten_table(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, value in data.items():
        if isinstance(value, dict):
            keys += _flatten_table(value, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys
