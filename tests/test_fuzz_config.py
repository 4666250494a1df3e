"""Property tests of the TOML configuration loader: any file gives a Config or a ConfigError.

Hypothesis writes TOML documents over the real configuration's tables and keys (plus unknown ones) with
values of the right and of the wrong type, and raw bytes; a document whose every value has the field's
type either loads with exactly those values or is refused by validation.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copilot.config import Config, load_config
from copilot.errors import ConfigError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DEFAULTS = Config()
TABLES = {f.name: getattr(DEFAULTS, f.name) for f in dataclasses.fields(Config)}


def _toml_string(text: str) -> str:
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def _toml(document: dict[str, Any]) -> str:
    lines = [f"{key} = {_toml_value(v)}" for key, v in document.items() if not isinstance(v, dict)]
    for table, values in document.items():
        if isinstance(values, dict):
            lines.append(f"[{table}]")
            lines += [f"{key} = {_toml_value(v)}" for key, v in values.items()]
    return "\n".join(lines) + "\n"


any_value = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=12),
    st.lists(st.integers(0, 9), max_size=3),
)


def _typed(default: Any) -> st.SearchStrategy[Any]:
    """Values of the same type as a field's default."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(min_value=-5, max_value=70000)
    if isinstance(default, float):
        return st.floats(allow_nan=False)
    return st.one_of(
        st.sampled_from(["", "left", "right", "hybrid", "bm25", "float32", "faster-whisper"]),
        st.text(max_size=8),
    )


@st.composite
def documents(draw: st.DrawFn, well_typed: bool) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for table in draw(st.lists(st.sampled_from(sorted(TABLES)), max_size=4, unique=True)):
        default = TABLES[table]
        if not dataclasses.is_dataclass(default):  # a top-level key such as knowledge_dir
            document[table] = draw(_typed(default) if well_typed else any_value)
            continue
        keys = [f.name for f in dataclasses.fields(default)]
        chosen = draw(st.lists(st.sampled_from(keys), max_size=4, unique=True))
        document[table] = {k: draw(_typed(getattr(default, k)) if well_typed else any_value) for k in chosen}
        if not well_typed and draw(st.booleans()):
            document[table][draw(st.sampled_from(["unknown", "Port", "beam"]))] = draw(any_value)
    return document


@pytest.fixture()
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "copilot.toml"


@FUZZ
@given(documents(well_typed=False))
def test_any_document_gives_a_config_or_a_config_error(config_file: Path, document: dict[str, Any]) -> None:
    config_file.write_text(_toml(document), encoding="utf-8")
    try:
        load_config(config_file)
    except ConfigError as e:
        assert "\n" not in str(e)


@FUZZ
@given(documents(well_typed=True))
def test_well_typed_documents_load_exactly_or_fail_validation(
    config_file: Path, document: dict[str, Any]
) -> None:
    config_file.write_text(_toml(document), encoding="utf-8")
    try:
        config = load_config(config_file)
    except ConfigError as e:
        assert "must" in str(e)  # validation's own words: a value out of range, never a type error
        return
    for table, values in document.items():
        if not isinstance(values, dict):
            assert getattr(config, table) == values
            continue
        for key, value in values.items():
            assert getattr(getattr(config, table), key) == value


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_give_a_config_or_a_config_error(config_file: Path, data: bytes) -> None:
    config_file.write_bytes(data)
    try:
        load_config(config_file)
    except ConfigError as e:
        assert "\n" not in str(e)


def test_a_folder_or_a_huge_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: never read
    with pytest.raises(ConfigError, match="too large"):
        load_config(huge)
