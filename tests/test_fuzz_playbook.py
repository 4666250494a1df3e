"""Property tests of the playbook loader: any YAML gives a playbook or a PlaybookError, never a crash.

Hypothesis mutates the real ``knowledge/playbook.yaml`` (one value anywhere in the tree replaced by a
value of another shape), feeds arbitrary YAML-like values, and raw bytes through ``load_playbook``.
"""

from __future__ import annotations

import contextlib
import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copilot.judgement.engine import RuleEngine
from copilot.judgement.playbook import Playbook, PlaybookError, load_playbook, parse_playbook
from copilot.types import Segment, Transcript

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "knowledge" / "playbook.yaml"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# What a YAML file can hold in place of any value.
yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["(", "[a-", "*", "stage", "phrases", "hold", "major", "您好", ""]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.one_of(st.text(max_size=8), st.integers(0, 3)), children, max_size=3)
    ),
    max_leaves=10,
)

CALL = Transcript(
    "fuzz",
    12.0,
    (
        Segment("agent", 0.0, 3.0, "您好，我是客服小李，请问有什么可以帮您？"),
        Segment("customer", 3.5, 7.0, "洗衣机坏了，你们什么服务！"),
        Segment("agent", 7.5, 11.0, "非常抱歉，请您稍等，我帮您查询一下。"),
    ),
)


@pytest.fixture(scope="module")
def real_playbook() -> Any:
    return yaml.safe_load(PLAYBOOK.read_text(encoding="utf-8"))


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a YAML tree where a value sits."""
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out += _paths(value, (*prefix, i))
    return out


def _replace(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    mutated = copy.deepcopy(tree)
    node = mutated
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return mutated


def _usable(playbook: Playbook) -> None:
    """A playbook that loads must also run and score a call."""
    engine = RuleEngine(playbook)
    checks = engine.check_call(CALL)
    score = engine.score(checks)
    assert math.isfinite(score) and 0 <= score <= 100
    engine.call_flags(CALL)


def test_the_real_playbook_loads_and_runs() -> None:
    _usable(load_playbook(PLAYBOOK))


def _by_name(tree: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Paths grouped by the name of their last step (list positions as "[]"): drawing a name first gives
    the rare keys (``weight``, ``last_n``, ``items``) as much weight as the hundreds of phrase strings."""
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for path in _paths(tree):
        name = "[]" if isinstance(path[-1], int) else str(path[-1])
        groups.setdefault(name, []).append(path)
    return groups


@FUZZ
@given(data=st.data())
def test_one_value_replaced_anywhere_gives_a_playbook_or_a_playbook_error(
    real_playbook: Any, data: Any
) -> None:
    groups = _by_name(real_playbook)
    name = data.draw(st.sampled_from(sorted(groups)), label="name")
    path = data.draw(st.sampled_from(groups[name]), label="path")
    value = data.draw(yaml_values, label="value")
    mutated = _replace(real_playbook, path, value)
    if data.draw(st.booleans(), label="also add a key beside it"):
        parent = mutated
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict):
            parent[data.draw(st.one_of(st.text(max_size=8), st.integers(0, 3)), label="key")] = value
    try:
        playbook = parse_playbook(mutated, "fuzz.yaml")
    except PlaybookError as e:
        assert "\n" not in str(e).strip() or "regex" in str(e)
        return
    _usable(playbook)


@FUZZ
@given(yaml_values)
def test_any_yaml_value_gives_a_playbook_or_a_playbook_error(value: Any) -> None:
    with contextlib.suppress(PlaybookError):
        parse_playbook(value, "fuzz.yaml")


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_give_a_playbook_or_a_playbook_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "playbook.yaml"
    path.write_bytes(data)
    with contextlib.suppress(PlaybookError):
        load_playbook(path)
