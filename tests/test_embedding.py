"""The embedder protocol, its two real implementations, and the hash fake other tests rely on."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from copilot import embedding
from copilot.config import EmbedderConfig
from copilot.embedding import Embedder, SentenceTransformerEmbedder, UseEmbedder, load_embedder
from copilot.errors import ModelError, ModelNotInstalledError
from tests.fakes_embedding import HashEmbedder

PARAPHRASE = ("洗衣机不脱水了", "我家洗衣机甩干不了")
UNRELATED = "请问今天天气怎么样"


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    load_embedder.cache_clear()
    yield
    load_embedder.cache_clear()


def assert_unit_rows(matrix: np.ndarray, rows: int, dimension: int) -> None:
    assert matrix.dtype == np.float32
    assert matrix.shape == (rows, dimension)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


# ---------------------------------------------------------------- the fake


def test_hash_embedder_follows_the_protocol() -> None:
    fake = HashEmbedder()
    assert isinstance(fake, Embedder)
    vectors = fake.embed([*PARAPHRASE, UNRELATED, ""], kind="passage")
    assert_unit_rows(vectors, 4, fake.dimension)
    assert fake.embed([], kind="query").shape == (0, fake.dimension)
    np.testing.assert_array_equal(
        fake.embed(["洗衣机"], kind="query"), HashEmbedder().embed(["洗衣机"], kind="passage")
    )


def test_hash_embedder_scores_shared_characters_higher() -> None:
    vectors = HashEmbedder().embed(["洗衣机不脱水", "洗衣机不能脱水了", UNRELATED], kind="passage")
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        HashEmbedder().embed(["x"], kind="document")  # type: ignore[arg-type]


def test_normalize_rows_keeps_zero_rows_zero() -> None:
    out = embedding.normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]), 2)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32 and out.flags.c_contiguous


# ------------------------------------------- sentence-transformers, with a fake library


class FakeSentenceTransformer:
    """Stands in for sentence_transformers.SentenceTransformer: records prompts, returns raw vectors."""

    instances: ClassVar[list[FakeSentenceTransformer]] = []

    def __init__(self, location: str, **kwargs: Any) -> None:
        self.location, self.kwargs = location, kwargs
        self.prompts: list[str | None] = []
        self.threads: list[int] = []
        FakeSentenceTransformer.instances.append(self)

    def get_embedding_dimension(self) -> int:
        return 3

    def encode(self, texts: list[str], *, prompt: str | None = None, **kwargs: Any) -> np.ndarray:
        import torch

        self.prompts.append(prompt)
        self.threads.append(torch.get_num_threads())
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float64)  # not normalised on purpose


@pytest.fixture
def fake_st(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    FakeSentenceTransformer.instances.clear()
    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = FakeSentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    monkeypatch.setattr(embedding, "resolve", lambda name: str(tmp_path))
    return tmp_path


def test_prefixes_follow_the_kind_and_rows_are_normalised(fake_st: Path) -> None:
    embedder = SentenceTransformerEmbedder(EmbedderConfig())
    model = FakeSentenceTransformer.instances[-1]
    assert model.location == str(fake_st) and model.kwargs["device"] == "cpu"
    assert_unit_rows(embedder.embed(["您好", "请问"], kind="query"), 2, 3)
    embedder.embed(["您好"], kind="passage")
    assert model.prompts == ["query: ", "passage: "]
    assert embedder.name == "e5-small" and embedder.dimension == 3
    assert embedder.embed([], kind="query").shape == (0, 3)
    assert model.prompts == ["query: ", "passage: "]  # an empty batch never reaches the model


def test_a_live_query_runs_on_one_thread_and_the_process_setting_is_restored(fake_st: Path) -> None:
    import torch

    embedder = SentenceTransformerEmbedder(EmbedderConfig(), threads=2)
    before = torch.get_num_threads()
    embedder.embed(["您好"], kind="query")
    embedder.embed(["句子"] * (embedding.FEW_TEXTS + 1), kind="passage")
    assert FakeSentenceTransformer.instances[-1].threads == [embedding.FEW_TEXTS_THREADS, 2]
    assert torch.get_num_threads() == before


def test_custom_prefixes_change_the_recorded_name(fake_st: Path) -> None:
    plain = SentenceTransformerEmbedder(EmbedderConfig(model="my/model", query_prefix="", passage_prefix=""))
    assert plain.name != "my/model" and plain.name.startswith("my/model")
    plain.embed(["x"], kind="query")
    assert FakeSentenceTransformer.instances[-1].prompts == [""]


def test_load_embedder_dispatches_and_loads_once(fake_st: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_embedder(EmbedderConfig())
    assert isinstance(first, SentenceTransformerEmbedder)
    assert load_embedder(EmbedderConfig()) is first
    assert len(FakeSentenceTransformer.instances) == 1
    fake_use = HashEmbedder()
    monkeypatch.setattr(embedding, "UseEmbedder", lambda: fake_use)
    assert load_embedder(EmbedderConfig(model="use-multilingual")) is fake_use


def test_unprovisioned_packaged_model_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COPILOT_HOME", str(tmp_path))
    with pytest.raises(ModelNotInstalledError, match="copilot models install"):
        SentenceTransformerEmbedder(EmbedderConfig())
    with pytest.raises(ModelNotInstalledError, match="copilot models install"):
        UseEmbedder()


def test_use_folder_without_its_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match=r"weights\.npz"):
        UseEmbedder(tmp_path)


def test_a_folder_that_is_not_a_model_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model", encoding="utf-8")
    with pytest.raises(ModelError, match="cannot load embedding model"):
        SentenceTransformerEmbedder(EmbedderConfig(model=str(tmp_path)))


# ------------------------------------------------------------------ real models


def check_paraphrase_ranking(embedder: Embedder) -> None:
    for kind in embedding.EMBED_KINDS:
        vectors = embedder.embed([*PARAPHRASE, UNRELATED], kind=kind)
        assert_unit_rows(vectors, 3, embedder.dimension)
        paraphrase, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
        print(embedder.name, kind, f"paraphrase {paraphrase:.3f} unrelated {unrelated:.3f}")
        assert paraphrase > unrelated


def check_query_finds_its_passage(embedder: Embedder) -> None:
    passages = [
        "冰箱不制冷时，先确认电源和温控档位，再安排师傅上门检修。",
        "洗衣机脱水时不转或甩不干，请检查衣物是否偏向一侧、排水管是否堵塞。",
        "退货需在签收后七天内申请，商品包装和配件需保持完整。",
    ]
    query = embedder.embed(["我家洗衣机甩不干衣服怎么办"], kind="query")[0]
    scores = embedder.embed(passages, kind="passage") @ query
    assert int(np.argmax(scores)) == 1


@pytest.mark.real
def test_real_e5_ranks_a_paraphrase_above_an_unrelated_sentence(installed_models: None) -> None:
    embedder = load_embedder(EmbedderConfig())  # packaged name -> provisioned, verified folder
    assert embedder.name == "e5-small" and embedder.dimension == 384
    check_paraphrase_ranking(embedder)
    check_query_finds_its_passage(embedder)


@pytest.mark.real
def test_real_use_ranks_a_paraphrase_above_an_unrelated_sentence(
    installed_models: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[Any] = []
    real_load = np.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        loads.append(kwargs.get("allow_pickle", False))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    embedder = load_embedder(EmbedderConfig(model="use-multilingual"))
    assert loads and not any(loads)  # the weights were read without unpickling
    assert embedder.name == "use-multilingual" and embedder.dimension == 512
    check_paraphrase_ranking(embedder)
    check_query_finds_its_passage(embedder)
