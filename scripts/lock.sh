#!/usr/bin/env bash
# Regenerate the hash-pinned lock files that `make` installs from (run after changing pyproject.toml).
#   requirements.lock          every package of '.[models,dev,ray]' with its SHA-256 (pip --require-hashes)
#   requirements-no-deps.lock  openai-whisper, installed with --no-deps (its declared triton is GPU-only)
# The current lock constrains the new one, so only what pyproject.toml changed moves. torch 2.13.0+cpu is
# the wheel pip finds in /opt/wheels (see the Makefile); uv is run from a throwaway venv, not the project's.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install --quiet uv==0.13.9
uv="$tools/venv/bin/uv"
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --quiet)
constraints=()
[ -f requirements.lock ] && cp requirements.lock "$tools/current.lock" && constraints=(-c "$tools/current.lock")
"$uv" pip compile pyproject.toml --all-extras --find-links /opt/wheels "${constraints[@]}" "${common[@]}" \
    --no-annotate -o requirements.lock
echo "openai-whisper==20250625" > "$tools/no-deps.in"
"$uv" pip compile "$tools/no-deps.in" --no-deps "${common[@]}" --no-annotate -o requirements-no-deps.lock
echo "locked $(grep -c '==' requirements.lock) packages (+ $(grep -c '==' requirements-no-deps.lock) without dependencies)"
