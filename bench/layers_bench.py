#!/usr/bin/python3
"""garden layers against numpy on the pythia-70m-shaped suite of bench/hist_bench.py
(F16; every 2-D weight: 6 blocks x 4 matrices and both embeddings, 26 a step), all
metrics. Baseline in the same run: a numpy script computing the same metrics
(tests/integration/layers_test.py's reference: numpy.linalg.svd and the power-law fit
from its definition) over the same files, page cache warm for both. Then a repeated
request, which gardend answers from its cache, and the block matrices' spectra by
LAPACK's SVD (--spectrum exact; the embeddings are past its limit).

  bench/layers_bench.py [--steps 16] [--root DIR] [--threads 2]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import hist_bench  # noqa: E402
import gardend_harness as harness  # noqa: E402
import make_suite  # noqa: E402
from layers_test import reference  # noqa: E402

BIN = os.environ.get("GARDEN_BIN", os.path.join(REPO, "build", "bin"))


def numpy_metrics(dirs):
    """Every 2-D weight of every step, as a user's numpy script would."""
    records = 0
    for step in sorted(dirs):
        header = make_suite.read_header(dirs[step])
        for name in sorted(header):
            e = header[name]
            if len(e["shape"]) != 2 or not name.endswith(".weight"):
                continue
            w = make_suite.read_tensor(dirs[step], name).astype(np.float64)
            reference(w)
            records += 1
    return records


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--root", default=os.path.join(REPO, "build", "bench-suite"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    steps = hist_bench.bench_steps(args.steps)
    dirs = hist_bench.ensure_suite(args.root, steps)
    hist_bench.warm_page_cache([os.path.join(d, "model.safetensors") for d in dirs.values()])

    t0 = time.monotonic()
    n_numpy = numpy_metrics(dirs)
    numpy_s = time.monotonic() - t0

    with tempfile.TemporaryDirectory(prefix="garden-layers-bench-") as tmp:
        proc, port = harness.start_server(
            os.path.join(BIN, "gardend"),
            ["--checkpoints", args.root, "--threads", str(args.threads)],
            os.path.join(tmp, "gardend.log"), os.path.join(tmp, "port"))
        try:
            cmd = [os.path.join(BIN, "garden"), "--server", f"127.0.0.1:{port}", "layers",
                   "--suite", hist_bench.SUITE, "--size", hist_bench.SIZE, "--variant",
                   hist_bench.VARIANT, "--steps", "all", "--format", "jsonl"]
            timings = []  # (seconds, records)
            # cold (computing), then cached; then the block matrices' spectra by
            # LAPACK's SVD (the embeddings are past the exact method's limit)
            for extra in ([], [], ["--spectrum", "exact", "--tensors", r"layers\."]):
                t0 = time.monotonic()
                out = subprocess.run(cmd + extra, capture_output=True, text=True,
                                     check=True).stdout
                lines = out.splitlines()
                timings.append((time.monotonic() - t0, len(lines)))
                if not extra:
                    records = [json.loads(line) for line in lines]
        finally:
            harness.stop_server(proc, 10)
    methods = sorted({r["spectrum_method"] for r in records})
    (garden_s, _), (cached_s, _), (exact_s, exact_n) = timings
    print(f"layers_bench: {len(steps)} steps of {hist_bench.PRESET} ({hist_bench.DTYPE}), "
          f"{len(records)} matrices ({n_numpy} for numpy), all metrics; spectra by "
          f"{', '.join(methods)}; --threads {args.threads}")
    print(f"{'':34} {'total s':>9} {'per step s':>11} {'per matrix ms':>14} {'vs numpy':>9}")
    for label, s, n in (("numpy (baseline)", numpy_s, n_numpy),
                        ("garden layers", garden_s, len(records)),
                        ("garden layers, repeated (cache)", cached_s, len(records))):
        print(f"{label:34} {s:9.3f} {s / len(steps):11.3f} {1000 * s / n:14.1f} "
              f"{numpy_s / s:8.2f}x")
    # Not the same work as the baseline: per matrix only.
    print(f"{'--spectrum exact, block matrices':34} {exact_s:9.3f} {exact_s / len(steps):11.3f} "
          f"{1000 * exact_s / exact_n:14.1f} {'':>9}  ({exact_n} matrices)")


if __name__ == "__main__":
    main()
