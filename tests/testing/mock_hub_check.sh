#!/usr/bin/env bash
# ctest mock_hub_js_check: the mock Hub (mock_hub.py) against the official JS
# client, @huggingface/hub (version pinned in package.json, installed from the
# npm registry into tests/testing/node_modules). Exits 77 (skipped) without
# node and npm, or when the package cannot be installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "mock_hub_check: node and npm are not installed (scripts/setup); skipped" >&2
  exit 77
fi
want=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['dependencies']['@huggingface/hub'])" "$here/package.json")
have=$(node -e "try{console.log(require('$here/node_modules/@huggingface/hub/package.json').version)}catch(e){}" 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  if ! npm install --silent --no-audit --no-fund --no-package-lock --prefix "$here" >&2; then
    echo "mock_hub_check: npm install of @huggingface/hub@$want failed; skipped" >&2
    exit 77
  fi
fi
fixtures=$(mktemp -d)
trap 'rm -rf "$fixtures"' EXIT
/usr/bin/python3 "$here/../../scripts/make_suite.py" --out "$fixtures" --steps 0,8 -q
node "$here/mock_hub_check.mjs" --spawn "$fixtures/pythia-micro"
