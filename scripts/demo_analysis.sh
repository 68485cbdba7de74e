# The demo's analysis of one size of a suite, as functions for scripts/demo
# (and tests/integration/demo_report_test.py, which runs it on a micro suite).
# The caller sets: bin (the binaries), server (gardend's address), report (the
# folder the files go to), python, suite (default fortune), variants (array),
# ppl_limit, sentence (a held-out text), and a function stage (prints a
# heading); the server has the dataset "lambada".

garden() { "$bin/garden" --server "$server" "$@"; }

# The paper's analysis of one size: heatmaps with branches, MSD, lag MSD,
# perplexity (standard vs deduped), bifurcation and audit per model, and
# causal unmasking of a held-out fortune (never trained on) at three steps.
analyse() {
  local size=$1
  local both=(--suite "${suite:-fortune}" --size "$size" --variant standard --compare "$size:deduped")
  stage "${suite:-fortune}-$size, standard vs deduped: heatmaps, MSD, perplexity"
  garden hist "${both[@]}" --steps all --bins 96 --branches --no-progress \
    --plot "$report/hist-$size.png" --format csv >"$report/hist-$size.csv"
  garden msd "${both[@]}" --steps all --plot "$report/msd-$size.png" \
    --format json >"$report/msd-$size.json"
  garden msd "${both[@]}" --steps all --mode lag --plot "$report/msd-lag-$size.png" \
    --format json >"$report/msd-lag-$size.json"
  garden ppl "${both[@]}" --steps all --dataset lambada --limit "$ppl_limit" \
    --plot "$report/ppl-$size.png" --format csv >"$report/ppl-$size.csv"
  echo "   figures: $report/{hist,msd,msd-lag,ppl}-$size.png"
  local models
  models=$(garden models --suite "${suite:-fortune}" --format json)
  for variant in "${variants[@]}"; do
    local name
    name=$("$python" -c "import json,sys; print(next(m['name'] for m in json.load(sys.stdin)['models'] if m['size']=='$size' and m['variant']=='$variant'))" <<<"$models")
    local one=(--suite "${suite:-fortune}" --size "$size" --variant "$variant")
    garden bifurcation "${one[@]}" --steps all --format json >"$report/bifurcation-$name.json"
    garden audit "${one[@]}" --steps all --format json >"$report/audit-$name.json"
    # Figure 1 (B: the first 512 rows of the unembedding, C: layer 0's attention,
    # D: the mean logits of a held-out sentence, each at the first and last step)
    # and Figure 5 (causal unmasking at the first, middle and last step).
    local ends three
    ends=$("$python" -c "
import json, sys
s = next(m for m in json.load(sys.stdin)['models'] if m['name'] == '$name')['steps']
print(f'{s[0]},{s[-1]}', ','.join(str(x) for x in sorted({s[0], s[len(s) // 2], s[-1]})))" <<<"$models")
    read -r ends three <<<"$ends"
    garden matrix "${one[@]}" --steps "$ends" --rows 0:512 --plot "$report/matrix-$name.png" \
      --format json >"$report/matrix-$name.json"
    garden attention "${one[@]}" --steps "$ends" --text "$sentence" --layer 0 --average-heads \
      --plot "$report/attention-$name.png" --format json >"$report/attention-$name.jsonl"
    garden logits "${one[@]}" --steps "$ends" --text "$sentence" \
      --plot "$report/logits-$name.png" --format json >"$report/logits-$name.jsonl"
    garden unmask "${one[@]}" --steps "$three" --text "$sentence" --no-progress \
      --plot "$report/unmask-$name.png" --format json >"$report/unmask-$name.json"
  done
  echo "   figures: $report/{matrix,attention,logits,unmask}-*$size*.png"
}
