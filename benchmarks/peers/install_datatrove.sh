#!/usr/bin/env bash
# Create .venv-datatrove (the peer used by benchmarks/bench_clean.py) from datatrove.lock.
# Idempotent: a second run installs nothing unless the lock changed.
#
#     bash benchmarks/peers/install_datatrove.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-datatrove"
LOCK="$ROOT/benchmarks/peers/datatrove.lock"
STAMP="$VENV/.datatrove.lock"
PYTHON="${PYTHON:-python3.11}"

if [ -f "$STAMP" ] && cmp -s "$LOCK" "$STAMP"; then
  exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --no-deps -r "$LOCK"
HF_HUB_OFFLINE=1 "$VENV/bin/python" -c \
  "from datatrove.utils.word_tokenizers import load_word_tokenizer; load_word_tokenizer('en').word_tokenize('ok')"
cp "$LOCK" "$STAMP"
echo "datatrove installed in $VENV"
