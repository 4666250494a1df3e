"""The shared, read-only engines of one process, loaded once and lazily.

The app, the CLI and the evaluation harness all get their models here, so a model is never loaded twice in
one process and a command that needs no LLM never pays for loading one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from copilot.config import AsrConfig, Config

if TYPE_CHECKING:
    from copilot.judgement import RuleEngine
    from copilot.knowledge.embedding import Embedder
    from copilot.knowledge.retrieval import Retriever
    from copilot.suggest.engine import Suggester
    from copilot.suggest.llm import Generator
    from copilot.transcription.streaming import Transcriber
    from copilot.types import Script

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # packaged models only unless the user names a hub id
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # CLI output is JSON; no progress bars on load
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

log = logging.getLogger(__name__)

# glibc malloc tuning (mallopt parameters). By default glibc raises its mmap threshold each time a large
# block is freed, so after a model's float32 weights were converted and freed, later allocations reuse
# that heap and it is never returned: the app held 4.3 GB for a 0.5B LLM whose int8 copy needs 1.7 GB.
# A fixed threshold keeps every block >= 1 MB in its own mapping, given back to the kernel when freed;
# two arenas instead of 8 per core keep the app's many threads from each hoarding freed small blocks.
M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20
MALLOC_ARENAS = 2


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 -- glibc only (musl and others lack them)
    except (OSError, AttributeError):
        return None
    return libc


def tune_allocator() -> None:
    """Make freed model-sized memory go back to the kernel (no-op where the C library is not glibc)."""
    libc = _libc()
    if libc is None:
        return
    if not (
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    ):
        log.warning("mallopt refused the memory settings: freed memory may stay resident")


def release_memory() -> None:
    """Free what only reference cycles still hold (a converted model's old layers), then return the heap's
    free pages to the kernel: after loading a model, and after a call or a review."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


class Services:
    """Lazily loaded engines for one configuration. Thread-safe loading; the engines are read-only."""

    def __init__(self, config: Config) -> None:
        tune_allocator()  # before any model loads
        self.config = config
        self._lock = threading.RLock()

    @cached_property
    def embedder(self) -> Embedder:
        from copilot.knowledge.embedding import load_embedder

        with self._lock:
            embedder = load_embedder(self.config.embedder)
        release_memory()
        return embedder

    @cached_property
    def retriever(self) -> Retriever:
        from copilot.knowledge.retrieval import open_retriever

        with self._lock:
            embedder = None if self.config.retrieval.mode == "bm25" else self.embedder
            return open_retriever(self.config, embedder=embedder)

    @cached_property
    def scripts(self) -> list[Script]:
        from copilot.knowledge import load_scripts

        return load_scripts(Path(self.config.knowledge_dir))

    @cached_property
    def rules(self) -> RuleEngine:
        from copilot.judgement import RuleEngine, load_playbook

        return RuleEngine(load_playbook(Path(self.config.knowledge_dir) / "playbook.yaml"))

    @cached_property
    def generator(self) -> Generator | None:
        if not self.config.llm.enabled:
            return None
        from copilot.suggest.llm import load_generator

        with self._lock:
            generator = load_generator(self.config.llm)
        release_memory()  # the float32 layers replaced by int8 ones are garbage only once collected
        return generator

    def _load_transcriber(self, asr: AsrConfig) -> Transcriber:
        from copilot.transcription.asr import load_domain_transcriber

        with self._lock:
            transcriber = load_domain_transcriber(asr, Path(self.config.knowledge_dir))
        release_memory()
        return transcriber

    @cached_property
    def transcriber(self) -> Transcriber:
        return self._load_transcriber(self.config.asr)

    @cached_property
    def live_transcriber(self) -> Transcriber:
        """The transcriber of live calls: a trimmed encoder window unless configured otherwise."""
        live = self.config.asr.for_live()
        if live == self.config.asr:
            return self.transcriber  # nothing would differ: share the one model
        return self._load_transcriber(live)

    @cached_property
    def suggester(self) -> Suggester:
        from copilot.knowledge.ingest import load_typo_fixes
        from copilot.suggest.engine import Suggester
        from copilot.suggest.gate import GenerationGate

        with self._lock:
            return Suggester(
                self.retriever,
                self.scripts,
                embedder=None if self.config.retrieval.mode == "bm25" else self.embedder,
                generator=self.generator,
                rules=self.rules,
                max_new_tokens=self.config.llm.max_new_tokens,
                gate=GenerationGate(self.config.app.llm_at_once, self.config.app.llm_wait_seconds),
                company=self.config.company,
                scrape_wordings=[wording for wording, _ in load_typo_fixes(Path(self.config.knowledge_dir))],
            )
