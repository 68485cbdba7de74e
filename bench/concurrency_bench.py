#!/usr/bin/python3
"""Concurrent model requests: N sampled `garden generate`s at once against the same
N one after another, on one gardend, with and without the compute gate, in one run.
Not a test; see bench/README.md.

  /usr/bin/python3 bench/concurrency_bench.py [--clients 8] [--new 64] [--threads 2]

The model is bench/generate_bench.py's random pythia-70m-shaped checkpoint with the
real Pythia tokenizer (../shared/pythia/tokenizer.json). Rows: --compute-slots 0 (the
baseline: every request computes at once, as gardend did before the gate) and
--compute-slots 1 (the default). For each: one request alone (best of 3), N at once
(wall time until the last ends), their ratio to N x one, and gardend's peak thread
count while the N ran (/proc/PID/status, sampled every 20 ms).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate_bench as gb  # noqa: E402  (sets OMP_WAIT_POLICY=PASSIVE first)


def generate(server, new, seed):
    r = subprocess.run([os.path.join(server.bin_dir, "garden"), "--server", server.addr,
                        "generate", "--size", gb.SIZE, "--step", str(gb.STEP),
                        "--prompt", "The history of the printing press",
                        "--max-new-tokens", str(new), "--temperature", "0.8",
                        "--seed", str(seed), "--format", "json"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)


def threads_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def measure(args, root, slots):
    with gb.Gardend(args.bin, root, args.threads, ["--compute-slots", str(slots)]) as server:
        generate(server, args.new, 0)  # loads the model
        one = min(timed(lambda: generate(server, args.new, 1)) for _ in range(3))
        peak, done = [threads_of(server.proc.pid)], threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], threads_of(server.proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        clients = [threading.Thread(target=generate, args=(server, args.new, 10 + i))
                   for i in range(args.clients)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        together = time.perf_counter() - start
        done.set()
        sampler.join()
        return one, together, peak[0]


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.environ.get(
        "GARDEN_BIN", os.path.join(HERE, "..", "build", "bin")))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shared", default=os.environ.get("GARDEN_SHARED") or
                    os.path.join(HERE, "..", "..", "shared"))
    args = ap.parse_args()
    tokenizer = os.path.join(args.shared, "pythia", "tokenizer.json")
    if not os.path.isfile(tokenizer):
        print(f"concurrency_bench: skipped: {tokenizer} is missing")
        return 0
    with tempfile.TemporaryDirectory(prefix="concurrency_bench_") as root:
        gb.write_served_model(root, tokenizer, hidden_size=512, num_attention_heads=8,
                              num_hidden_layers=6, intermediate_size=2048, vocab_size=50304,
                              rotary_pct=0.25, use_parallel_residual=True,
                              max_position_embeddings=2048)
        rows = [(slots, *measure(args, root, slots)) for slots in (0, 1)]
    print(f"concurrency_bench: {args.clients} sampled generates of {args.new} tokens, "
          f"pythia-70m shape, float32 CPU, --threads {args.threads}")
    print(f"{'--compute-slots':16} {'one s':>7} {'N at once s':>12} {'/ (N x one)':>12} "
          f"{'peak threads':>13}")
    for slots, one, together, peak in rows:
        name = f"{slots} (baseline)" if slots == 0 else str(slots)
        print(f"{name:16} {one:7.3f} {together:12.3f} {together / (args.clients * one):12.2f} "
              f"{peak:13d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
