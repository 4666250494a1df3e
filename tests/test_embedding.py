"""The embedder protocol, its two real implementations, and the hash fake other tests rely on."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from copilot.config import EmbedderConfig
from copilot.errors import ModelError, ModelNotInstalledError
from copilot.knowledge import embedding
from copilot.knowledge.embedding import (
    Embedder,
    OnnxQueryEncoder,
    SentenceTransformerEmbedder,
    UseEmbedder,
    load_embedder,
)
from copilot.models.convert_e5 import ONNX_QUERY_ENCODER
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
    tokenizer = None
    max_seq_length = 512

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


def test_a_corrupt_onnx_file_is_refused_unless_onnx_queries_is_off(fake_st: Path) -> None:
    onnx_file = fake_st / ONNX_QUERY_ENCODER
    onnx_file.parent.mkdir()
    onnx_file.write_bytes(b"\x08\x07 not a protobuf model " * 100)
    with pytest.raises(ModelError, match="cannot load the ONNX query encoder"):
        SentenceTransformerEmbedder(EmbedderConfig())
    embedder = SentenceTransformerEmbedder(EmbedderConfig(onnx_queries=False))
    assert embedder.onnx is None
    embedder.embed(["您好"], kind="query")
    assert FakeSentenceTransformer.instances[-1].prompts == ["query: "]  # torch (sentence-transformers)


def test_without_an_onnx_file_queries_use_torch_and_a_packaged_model_says_so(
    fake_st: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="copilot.knowledge.embedding"):
        folder = SentenceTransformerEmbedder(EmbedderConfig(model=str(fake_st)))
    assert folder.onnx is None and not caplog.records  # a user's folder or hub model: torch, quietly
    with caplog.at_level(logging.WARNING, logger="copilot.knowledge.embedding"):
        packaged = SentenceTransformerEmbedder(EmbedderConfig())  # e5-small, installed without the file
    assert packaged.onnx is None
    assert "copilot models install" in caplog.text
    packaged.embed(["您好"], kind="query")
    assert FakeSentenceTransformer.instances[-1].prompts == ["query: "]


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


# ------------------------------------------------- the ONNX query encoder of the real e5

QUERIES = (
    "电话接通了，那边一直不出声",
    "你声音怎么这么小，我一点都听不清",
    "俺说的是俺们村里的话，你听得懂不",
    "我的冰箱买回来就不制冷，能不能上门修",
    "喂？",
    "退货" * 400,  # longer than 512 tokens: both truncate it the same way
)


@pytest.fixture(scope="module")
def e5_pair(e5_dir: Path) -> tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder]:
    """The packaged e5 with ONNX queries (the default) and without (torch only)."""
    with_onnx = SentenceTransformerEmbedder(EmbedderConfig(model=str(e5_dir)))
    torch_only = SentenceTransformerEmbedder(EmbedderConfig(model=str(e5_dir), onnx_queries=False))
    return with_onnx, torch_only


def _spy(monkeypatch: pytest.MonkeyPatch, owner: Any, method: str) -> list[int]:
    """Count the texts each call of ``owner.method`` receives."""
    calls: list[int] = []
    real = getattr(owner, method)

    def spy(texts: Sequence[str], **kwargs: Any) -> Any:
        calls.append(len(texts))
        return real(texts, **kwargs)

    monkeypatch.setattr(owner, method, spy)
    return calls


@pytest.mark.real
def test_real_onnx_query_vectors_equal_the_torch_vectors(
    e5_pair: tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder],
) -> None:
    with_onnx, torch_only = e5_pair
    assert with_onnx.onnx is not None and torch_only.onnx is None
    assert with_onnx.name == torch_only.name  # same index identity: the vectors are the same
    for kind in embedding.EMBED_KINDS:
        alone = np.vstack([with_onnx.embed([q], kind=kind) for q in QUERIES])
        batched = with_onnx.embed(list(QUERIES), kind=kind)  # padded to the longest
        reference = np.vstack([torch_only.embed([q], kind=kind) for q in QUERIES])
        for ours in (alone, batched):
            assert_unit_rows(ours, len(QUERIES), 384)
            cosines = np.sum(ours * reference, axis=1)
            print(kind, np.round(cosines, 7))
            assert cosines.min() >= 0.9999


@pytest.mark.real
def test_real_with_an_onnx_export_every_text_goes_through_onnx_and_torch_is_never_loaded(
    e5_pair: tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_onnx, torch_only = e5_pair
    assert with_onnx.onnx is not None
    onnx_calls = _spy(monkeypatch, with_onnx.onnx, "encode")
    with_onnx.embed([QUERIES[0]], kind="query")
    with_onnx.embed(list(QUERIES[:3]), kind="query")
    assert onnx_calls == [1, 3]
    many = embedding.BATCH_SIZE + 3
    vectors = with_onnx.embed([QUERIES[0]] * many, kind="passage")  # index building: in batches
    assert onnx_calls == [1, 3, embedding.BATCH_SIZE, 3] and vectors.shape == (many, with_onnx.dimension)
    assert "_model" not in vars(with_onnx)  # the torch model (~600 MB resident) was never loaded
    torch_only_calls = _spy(monkeypatch, torch_only._model, "encode")
    torch_only.embed([QUERIES[0]], kind="query")  # onnx_queries = false
    assert torch_only_calls == [1]


@pytest.mark.real
def test_real_retrieval_finds_the_same_clauses_with_onnx_queries(
    e5_pair: tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder], tmp_path: Path
) -> None:
    from copilot.config import Config
    from copilot.evaluation.retrieval import DEFAULT_SET, load_set
    from copilot.knowledge import load_passages
    from copilot.knowledge.retrieval import open_retriever

    with_onnx, torch_only = e5_pair
    passages = load_passages(Path(__file__).resolve().parent.parent / "knowledge")
    built: list[str] = []
    torch_retriever = open_retriever(
        Config(), passages=passages, embedder=torch_only, index_dir=tmp_path, log=built.append
    )
    assert any("rebuilding" in m for m in built)
    reopened: list[str] = []
    onnx_retriever = open_retriever(
        Config(), passages=passages, embedder=with_onnx, index_dir=tmp_path, log=reopened.append
    )
    assert not any("rebuilding" in m for m in reopened)  # the torch-built index is valid for ONNX queries
    retrievers = (torch_retriever, onnx_retriever)
    for item in load_set(DEFAULT_SET)[:12]:
        torch_hits, onnx_hits = (r.search(item.query, k=3, mode="dense") for r in retrievers)
        assert [h.passage.id for h in onnx_hits] == [h.passage.id for h in torch_hits], item.query
        np.testing.assert_allclose([h.score for h in onnx_hits], [h.score for h in torch_hits], atol=1e-4)


@pytest.mark.real
def test_real_a_truncated_onnx_file_is_a_model_error(e5_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "query_encoder.onnx"
    with (e5_dir / ONNX_QUERY_ENCODER).open("rb") as source:
        broken.write_bytes(source.read(1 << 20))  # the first MB of the real file
    from transformers import AutoTokenizer

    with pytest.raises(ModelError, match=r"cannot load the ONNX query encoder .*query_encoder\.onnx"):
        OnnxQueryEncoder(broken, AutoTokenizer.from_pretrained(str(e5_dir)), 512)
