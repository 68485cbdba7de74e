#!/usr/bin/python3
"""Peak memory of concurrent model requests: N `garden logits --all` of a ~2000-token
text at once on a d=768, 4-layer model (vocab 50304, float32 CPU), with the compute
gate (--compute-slots 1, the default), without it (0, the baseline), and with no
count limit but a byte budget (--compute-slots 0 --request-memory-bytes --budget), in
one run. Not a test; see bench/README.md.

  /usr/bin/python3 bench/memory_bench.py [--clients 8] [--threads 2] [--budget BYTES]

Prints gardend's VmHWM after one request and after the N, and the N's wall time.
Needs the Pythia tokenizer (../shared/pythia/tokenizer.json).
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

TEXT = " ".join(["the history of printing"] * 500)  # about 2000 tokens


def peak_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.environ.get(
        "GARDEN_BIN", os.path.join(HERE, "..", "build", "bin")))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=int, default=1_000_000_000,
                    help="--request-memory-bytes of the third row (default 1e9: one "
                         "request's estimate, ~0.91 GB, fits; two do not)")
    ap.add_argument("--shared", default=os.environ.get("GARDEN_SHARED") or
                    os.path.join(HERE, "..", "..", "shared"))
    a = ap.parse_args()
    tokenizer = os.path.join(a.shared, "pythia", "tokenizer.json")
    if not os.path.isfile(tokenizer):
        print(f"memory_bench: skipped: {tokenizer} is missing")
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="memory_bench_") as root:
        gb.write_served_model(root, tokenizer, hidden_size=768, num_attention_heads=12,
                              num_hidden_layers=4, intermediate_size=3072, vocab_size=50304,
                              rotary_pct=0.25, use_parallel_residual=True,
                              max_position_embeddings=2048)
        for slots, budget in ((0, 0), (1, 0), (0, a.budget)):
            flags = ["--compute-slots", str(slots), "--request-memory-bytes", str(budget)]
            with gb.Gardend(a.bin, root, a.threads, flags) as s:
                def one():
                    r = subprocess.run([os.path.join(a.bin, "garden"), "--server", s.addr,
                                        "logits", "--size", gb.SIZE, "--step", str(gb.STEP),
                                        "--text", TEXT, "--all", "--format", "json"],
                                       capture_output=True, text=True)
                    if r.returncode != 0:
                        raise RuntimeError(r.stderr)
                one()
                alone = peak_mb(s.proc.pid)
                start = time.perf_counter()
                clients = [threading.Thread(target=one) for _ in range(a.clients)]
                for c in clients:
                    c.start()
                for c in clients:
                    c.join()
                rows.append((slots, budget, alone, peak_mb(s.proc.pid),
                             time.perf_counter() - start))
    print(f"memory_bench: {a.clients} concurrent logits --all of ~2000 tokens, d=768 4 layers, "
          f"--threads {a.threads}")
    print(f"{'server':54} {'peak after one MB':>18} {'peak after N MB':>16} {'N s':>7}")
    for slots, budget, alone, together, seconds in rows:
        name = f"--compute-slots {slots} --request-memory-bytes {budget}"
        if slots == 0 and budget == 0:
            name += " (baseline)"
        print(f"{name:54} {alone:18d} {together:16d} {seconds:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
