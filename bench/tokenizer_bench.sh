#!/usr/bin/env bash
# Compares Garden's tokenizer with the Hugging Face tokenizers library (Rust)
# on about 4 MB of English text (Debian's license texts and copyright files),
# both on one thread, and checks that they give identical ids.
#
#   bench/tokenizer_bench.sh [BUILD_DIR] [TOKENIZER_JSON]
#
# Needs node and npm; the binding is installed under BUILD_DIR/bench-node
# (git-ignored, as all of build/ is). Builds tokenizer_bench if needed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build}
tokenizer=${2:-${GARDEN_SHARED:-$repo/../shared}/pythia/tokenizer.json}
work=$build/bench-node
mkdir -p "$work"

if [ ! -f "$tokenizer" ]; then
  echo "tokenizer_bench.sh: $tokenizer is absent" >&2
  exit 1
fi

ninja -C "$build" tokenizer_bench >/dev/null

# ~4 MB of English: the license texts and copyright files, repeated.
text=$work/english.txt
if [ ! -s "$text" ]; then
  cat /usr/share/common-licenses/* /usr/share/doc/*/copyright \
    2>/dev/null >"$work/once.txt" || true
  : >"$text"
  while [ "$(stat -c %s "$text")" -lt 4000000 ]; do
    cat "$work/once.txt" >>"$text"
  done
  head -c 4000000 "$text" >"$work/cut.txt" && mv "$work/cut.txt" "$text"
fi

if [ ! -d "$work/node_modules/@anush008/tokenizers" ]; then
  npm install --silent --no-audit --no-fund --prefix "$work" \
    @anush008/tokenizers@0.6.0 >/dev/null
fi

# One thread on both sides: the Rust library would otherwise encode a batch
# in parallel.
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
garden_out=$("$build/bin/tokenizer_bench" "$tokenizer" "$text" "$work/garden.ids")
hf_out=$(node "$repo/bench/tokenizer_bench.mjs" "$work/node_modules" \
  "$tokenizer" "$text" "$work/hf.ids")
echo "$garden_out"
echo "$hf_out"

status=0
for mode in whole paragraphs; do
  if cmp -s "$work/garden.ids.$mode" "$work/hf.ids.$mode"; then
    echo "ids ($mode): identical ($(wc -l <"$work/garden.ids.$mode") tokens)"
  else
    echo "ids ($mode): DIFFERENT (see $work/{garden,hf}.ids.$mode)" >&2
    status=1
  fi
  g=$(grep "^garden $mode:" <<<"$garden_out" | sed -E 's/.* ([0-9.]+) MB\/s$/\1/')
  h=$(grep "^huggingface $mode:" <<<"$hf_out" | sed -E 's/.* ([0-9.]+) MB\/s$/\1/')
  awk -v m="$mode" -v g="$g" -v h="$h" \
    'BEGIN { printf "%s: garden %.2f MB/s, huggingface %.2f MB/s, ratio %.2fx\n", m, g, h, g / h }'
done
exit $status
