#!/usr/bin/env bash
# The README walkthrough (decompose -> eval -> search -> plot), run from the repository root;
# prints Markdown with each command and its real output. The files the commands write
# (plan.yaml, search.png, resnet50_plan.png) are moved to $OUT (default: a new temporary folder).
#   bash examples/search/walkthrough.sh > walkthrough.md
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${OUT:-$(mktemp -d)}"
cd "$ROOT"
run() {
  echo '```console'
  echo "\$ $*"
  local t0 t1
  t0=$(date +%s%N)
  eval "$@" 2>&1 | sed -e 's/[[:space:]]*$//'
  t1=$(date +%s%N)
  echo '```'
  echo "(wall time $(( (t1 - t0) / 1000000 )) ms)"
  echo
}
echo "### 1. decompose a real weight matrix"
run testy-model decompose examples/weights_70pct.npy --series 2:8+1:8
echo "### 2. eval one fixed plan on a small network"
run testy-model eval --arch arch_specs/s2ta_tasd.yaml --mapping mapper \
  --network examples/search/mlp.yaml --plan '"W=2:8+1:8,A=dense"'
echo "### 3. search the per-layer plan"
run testy-model search --arch arch_specs/s2ta_tasd.yaml --network examples/search/mlp.yaml \
  --budget 0.05 --out plan.yaml --plot search.png
run cat plan.yaml
echo "### 4. plot (README's main command, with --plot)"
run testy-model search --arch arch_specs/stc_2of4_tasd.yaml --network resnet50 \
  --weight-sparsity 0.8 --budget 0.05 --plot resnet50_plan.png
mv plan.yaml search.png resnet50_plan.png "$OUT"/
echo "(files written: $OUT)" >&2
