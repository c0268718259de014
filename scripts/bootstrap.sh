#!/usr/bin/env bash
# Create .venv at the repository root and install citybaseline with pinned versions.
#   scripts/bootstrap.sh          the package and what the pipeline needs
#   scripts/bootstrap.sh --test   also the test tools and headless Chromium (Debian's package)
# Safe to rerun: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "[bootstrap] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi

# constraints.txt pins every package (torch 2.14.1 and torchvision 0.29.1 included),
# so every machine resolves the same versions.
stamp=.venv/.citybaseline-installed
extras=""
[[ $want_test == 1 ]] && extras="[test]"
want="$(sha256sum constraints.txt pyproject.toml | sha256sum | cut -c1-16)${extras}"
if [[ ! -f $stamp ]] || ! grep -qxF "$want" "$stamp"; then
  echo "[bootstrap] installing citybaseline${extras} (first time: a few minutes, torch is large)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".${extras}"
  echo "$want" > "$stamp"
else
  echo "[bootstrap] .venv is up to date"
fi

if [[ $want_test == 1 ]] && ! command -v chromium >/dev/null 2>&1; then
  echo "[bootstrap] installing Debian's chromium and chromium-driver for the report tests"
  if [[ $(id -u) == 0 ]]; then
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -q >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null
  else
    echo "[bootstrap] cannot install chromium (not root, no sudo): browser tests will be skipped" >&2
  fi
fi
