#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment at .venv/.
#
# The environment is keyed on the hash of requirements.txt + constraints.txt and kept in
# a cache folder outside the clone (CLM_VENV_CACHE, default ~/.cache/quantum-trader-clm),
# with .venv a symlink to it: a fresh clone on a machine that already installed the same
# pins reuses them instead of reinstalling (CI clones afresh on every run).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
hash=$(cat requirements.txt constraints.txt | sha256sum | cut -c1-16)
cache_root="${CLM_VENV_CACHE:-$HOME/.cache/quantum-trader-clm}"
target="$cache_root/venv-$hash"

if [ -d .venv ] && [ ! -L .venv ]; then
  if [ -f ".venv/.installed-$hash" ]; then exit 0; fi   # a local venv with these pins
  echo "setup: .venv/ holds other pins; moving it aside to .venv.old" >&2
  rm -rf .venv.old && mv .venv .venv.old
fi

if [ ! -f "$target/.installed-$hash" ]; then
  echo "setup: installing the pinned packages into $target (first time on this machine)" >&2
  rm -rf "$target"
  mkdir -p "$cache_root"
  "$PYTHON" -m venv "$target"
  "$target/bin/pip" install --quiet --upgrade pip
  # torch first, exactly pinned: on these machines 2.13.0 is a CPU build on local disk.
  "$target/bin/pip" install --quiet "$(grep -E '^torch==' requirements.txt)"
  "$target/bin/pip" install --quiet -r requirements.txt -c constraints.txt
  touch "$target/.installed-$hash"
fi
ln -sfn "$target" .venv

# The API's client library (clients/python, which the main run drives the system through):
# installed as `pip install ./clients/python` would, again whenever its sources change.
client_hash=$(cat clients/python/pyproject.toml clients/python/quantum_trader_client/*.py | sha256sum | cut -c1-16)
if [ ! -f "$target/.client-$client_hash" ]; then
  "$target/bin/pip" install --quiet --force-reinstall --no-deps ./clients/python
  "$target/bin/pip" install --quiet ./clients/python  # its dependencies (httpx) if missing
  rm -f "$target"/.client-* && touch "$target/.client-$client_hash"
fi
