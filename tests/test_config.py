from __future__ import annotations

from pathlib import Path

import pytest

from copilot.config import Config, load_config
from copilot.errors import ConfigError


def test_defaults_are_offline_packaged_models_on_loopback() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.app.host == "127.0.0.1"
    assert config.asr.model == "whisper-base"
    assert config.embedder.model == "e5-small"
    assert config.llm.model == "qwen2.5-coder-0.5b"
    assert config.privacy.redact is True


def test_toml_overrides_only_what_it_names(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text(
        '[asr]\nbackend = "openai-whisper"\nbeam_size = 1\n[llm]\nmodel = "Qwen/Qwen2.5-7B-Instruct"\n',
        encoding="utf-8",
    )
    config = load_config(file)
    assert config.asr.backend == "openai-whisper"
    assert config.asr.beam_size == 1
    assert config.asr.language == "zh"  # untouched default
    assert config.llm.model == "Qwen/Qwen2.5-7B-Instruct"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[asr]\nbakend = 'x'\n", "unknown key"),
        ("[asr]\nbeam_size = 'five'\n", "must be int"),
        ("[asr]\nbackend = 'whisper.cpp'\n", "asr.backend"),
        ("[app]\nport = 70000\n", "port"),
        ("[app]\nmax_live_sessions = 0\n", "max_live_sessions"),
        ("[llm]\nmax_new_tokens = -1\n", "max_new_tokens"),
        ("[app]\nauth_user = 'qa'\n", "together"),
        ("[asr\n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(file)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_live_calls_trim_the_encoder_window_only_where_it_exists_and_is_asked_for() -> None:
    from copilot.config import AsrConfig

    assert AsrConfig().for_live().trim_padding and not AsrConfig().trim_padding
    assert not AsrConfig(live_trim_padding=False).for_live().trim_padding
    assert not AsrConfig(backend="openai-whisper").for_live().trim_padding


def test_live_calls_decode_with_the_live_beam_and_without_word_times() -> None:
    from copilot.config import AsrConfig

    offline = AsrConfig(beam_size=5, live_beam_size=2, word_timestamps=True)  # as `transcribe --words` asks
    live = offline.for_live()
    assert (live.beam_size, live.word_timestamps, live.limit_tokens) == (2, False, True)
    assert (offline.beam_size, offline.word_timestamps, offline.limit_tokens) == (5, True, False)
    # per-word times only where the offline path splits a window among utterances (asked per decode)
    assert not AsrConfig().word_timestamps
    assert AsrConfig(backend="openai-whisper").for_live().beam_size == AsrConfig().live_beam_size


def test_live_faster_whisper_decodes_run_side_by_side_and_openai_keeps_the_process_threads() -> None:
    from copilot.config import AsrConfig

    offline = AsrConfig(threads=2, workers=1, live_workers=3, live_threads=1)
    live = offline.for_live()
    assert (live.workers, live.threads) == (3, 1)
    assert (offline.workers, offline.threads) == (1, 2)
    openai = AsrConfig(backend="openai-whisper", threads=2, live_workers=3, live_threads=1).for_live()
    assert (openai.workers, openai.threads) == (1, 2)  # torch's thread count is process-wide


@pytest.mark.parametrize("key", ["threads", "workers", "live_threads", "live_workers"])
def test_a_decoder_thread_or_worker_count_below_one_is_refused(tmp_path: Path, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[asr]\n{key} = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=key):
        load_config(path)


def test_a_live_beam_below_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[asr]\nlive_beam_size = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="live_beam_size"):
        load_config(path)


def test_an_unknown_llm_quantisation_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[llm]\nquantize = "int4"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="quantize"):
        load_config(path)


def test_tentative_decodes_get_a_greedy_model_only_when_the_live_one_is_not_greedy() -> None:
    from copilot.config import AsrConfig

    assert AsrConfig(live_beam_size=1).for_live().for_partials() is None  # one model serves both
    partial = AsrConfig(live_beam_size=5).for_live().for_partials()
    assert partial is not None and partial.beam_size == 1 and not partial.word_timestamps


def test_config_show_names_the_source_of_every_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from copilot.commands.cli import main

    config = tmp_path / "copilot.toml"
    config.write_text(
        '[asr]\nbeam_size = 3\n[store]\nurl = "postgresql+psycopg://u:secret@db/x"\n', encoding="utf-8"
    )
    monkeypatch.setenv("COPILOT_SHARED", str(tmp_path / "shared"))
    assert main(["--config", str(config), "config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["asr.beam_size"] == {"value": 3, "source": f"file {config}"}
    assert shown["asr.language"] == {"value": "zh", "source": "default"}
    assert shown["shared"] == {"value": str(tmp_path / "shared"), "source": "environment COPILOT_SHARED"}
    assert shown["store.url"]["value"] == "(set)"  # a password in a URL is never printed
    assert "secret" not in json.dumps(shown)
