#!/usr/bin/python3
"""Greedy generation speed: Garden's C++ GPT-NeoX vs the PyTorch reference.

A random model shaped like pythia-70m (hidden 512, 6 layers, 8 heads,
intermediate 2048, vocab 50304, rotary_pct 0.25, parallel residual) is written
as an F16 checkpoint (like Pythia's) and run in float32 on the CPU, batch 1:
a 32-token prompt, then 64 greedy tokens. Both sides use the same number of
torch threads and count only generation (prefill + decoding), not loading.

  * C++: gpt_neox_tool --greedy 64 (GptNeoxModel::Greedy, with its KV cache);
  * reference: tests/reference/gpt_neox_ref.py GptNeoxRef.greedy, with its
    own KV cache (torch.cat per step), and without one (--no-cache-too).

Each is run --repeats times; the best run counts.

OMP_WAIT_POLICY=PASSIVE is set for both sides (unless already set, or
--active-omp): libtorch's OpenMP workers otherwise spin between ops and fight
OpenBLAS's own threads for the cores. On a 2-core machine that costs the C++
side 5x at 2 threads (about 16 vs 80 tokens/s measured), and it must be in the
environment before libgomp loads, so no program can set it for itself.

Usage:
  /usr/bin/python3 bench/generate_bench.py [--bin build/bin] [--threads 1,2]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

if "--active-omp" not in sys.argv:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from gpt_neox_ref import (GptNeoxRef, make_config, random_weights,  # noqa: E402
                          write_checkpoint)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.environ.get(
        "GARDEN_BIN", os.path.join(HERE, "..", "build", "bin")))
    ap.add_argument("--threads", default="1,2",
                    help="comma-separated torch thread counts to try")
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--active-omp", action="store_true",
                    help="leave OMP_WAIT_POLICY unset")
    ap.add_argument("--no-cache-too", action="store_true",
                    help="also time the reference without a KV cache")
    args = ap.parse_args()

    config = make_config(hidden_size=512, num_attention_heads=8,
                         num_hidden_layers=6, intermediate_size=2048,
                         vocab_size=50304, rotary_pct=0.25,
                         use_parallel_residual=True,
                         max_position_embeddings=2048)
    weights = random_weights(config, seed=0, extra_buffers=False)
    prompt = torch.randint(0, config["vocab_size"], (args.prompt,),
                           generator=torch.Generator().manual_seed(1)).tolist()

    with tempfile.TemporaryDirectory(prefix="generate_bench_") as d:
        decoded = write_checkpoint(d, config, weights, dtype=torch.float16)
        del weights
        ref = GptNeoxRef(config, decoded)
        del decoded

        print(f"pythia-70m shape, batch 1, {args.prompt}-token prompt, "
              f"{args.new} greedy tokens, float32 CPU, OMP_WAIT_POLICY="
              f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
        for threads in [int(t) for t in args.threads.split(",")]:
            bench_threads(args, d, ref, prompt, threads)


def bench_threads(args, d, ref, prompt, threads):
    torch.set_num_threads(threads)
    cpp_best, cpp_tokens = 0.0, None
    for _ in range(args.repeats):
        out = subprocess.run(
            [os.path.join(args.bin, "gpt_neox_tool"), "--checkpoint", d,
             "--ids", ",".join(map(str, prompt)), "--greedy",
             str(args.new), "--threads", str(threads)],
            check=True, capture_output=True, text=True).stdout
        greedy = json.loads(out)["greedy"]
        cpp_best = max(cpp_best, greedy["tokens_per_s"])
        cpp_tokens = greedy["tokens"]

    def time_ref(use_cache):
        best, tokens = 0.0, None
        for _ in range(args.repeats):
            start = time.perf_counter()
            tokens, _ = ref.greedy(prompt, args.new, use_cache=use_cache)
            best = max(best, args.new / (time.perf_counter() - start))
        return best, tokens

    ref_best, ref_tokens = time_ref(True)
    print(f"{threads} torch thread(s):")
    print(f"  C++ GptNeoxModel::Greedy (KV cache): {cpp_best:8.1f} tok/s")
    print(f"  Python reference (KV cache):         {ref_best:8.1f} tok/s")
    print(f"  ratio C++ / reference:               "
          f"{cpp_best / ref_best:8.2f}x")
    if args.no_cache_too:
        nc_best, _ = time_ref(False)
        print(f"  Python reference (no cache):         {nc_best:8.1f} tok/s")
        print(f"  ratio C++ / reference (no cache):    "
              f"{cpp_best / nc_best:8.2f}x")
    print(f"  same tokens: {cpp_tokens == ref_tokens}", flush=True)

if __name__ == "__main__":
    main()
