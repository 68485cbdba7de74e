#!/usr/bin/python3
"""Benchmarks fairness between users of one gardend: how long bob's one-step
`garden hist` takes while alice sweeps all steps without pause, against its idle
latency, in one run. Not a test; see bench/README.md.

  bench/fairness_bench.py [--steps 16] [--threads 2] [--runs 15] [--keep DIR]

Two servers over the pythia-70m-shaped suite of bench/hist_bench.py: the baseline
without tokens, where every caller on this host is one caller (127.0.0.1) and the
pool serves tasks first come, first served; and the same server with
--auth-tokens, where alice and bob are told apart and the pool's lanes take turns.
Alice keeps two `hist --steps all` sweeps running; bob's latency is the median of
--runs one-step requests (process start included, as a user waits for it).
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import hist_bench as hb  # noqa: E402


def garden(bin_dir, port, token, *args):
    env = dict(os.environ)
    env.pop("GARDEN_TOKEN", None)
    if token:
        env["GARDEN_TOKEN"] = token
    cmd = [os.path.join(bin_dir, "garden"), "--server", f"127.0.0.1:{port}", "hist",
           "--size", hb.SIZE, "--format", "jsonl", "--no-progress", *args]
    r = subprocess.run(cmd, capture_output=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.decode(errors='replace')}")


def latency(bin_dir, port, token, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        garden(bin_dir, port, token, "--steps", "0")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(a, work, tokens_file, alice, bob):
    extra = ["--auth-tokens", tokens_file] if tokens_file else []
    server = hb.Server(a.bin_dir, a.keep, a.threads, work, extra=extra)
    try:
        garden(a.bin_dir, server.port, bob, "--steps", "all")  # warm the page cache
        idle = latency(a.bin_dir, server.port, bob, a.runs)
        stop = threading.Event()
        sweeps = [0]

        def sweep_forever():
            while not stop.is_set():
                garden(a.bin_dir, server.port, alice, "--steps", "all")
                sweeps[0] += 1

        loops = [threading.Thread(target=sweep_forever) for _ in range(2)]
        for t in loops:
            t.start()
        time.sleep(1.0)
        loaded = latency(a.bin_dir, server.port, bob, a.runs)
        stop.set()
        for t in loops:
            t.join()
        return idle, loaded, sweeps[0]
    finally:
        server.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    hb.add_suite_arguments(p)
    p.add_argument("--runs", type=int, default=15, help="bob's requests per measurement")
    a = p.parse_args()
    hb.ensure_suite(a.keep, hb.bench_steps(a.steps))
    work = os.path.join(a.keep, ".fairness-bench")
    os.makedirs(work, exist_ok=True)
    made = {}
    for name in ("alice", "bob"):
        out = subprocess.run([os.path.join(a.bin_dir, "garden"), "token", "new", name],
                             capture_output=True, text=True, check=True).stdout.split()
        made[name] = out
    tokens_file = os.path.join(work, "tokens")
    with open(tokens_file, "w") as f:
        f.write("".join(line + "\n" for _, line in made.values()))
    rows = [("one caller, first come first served (no tokens)",
             measure(a, work, None, None, None)),
            ("alice and bob in lanes that take turns (tokens)",
             measure(a, work, tokens_file, made["alice"][0], made["bob"][0]))]
    print(f"fairness_bench: bob's one-step hist while alice sweeps {a.steps} steps twice "
          f"over, --threads {a.threads}, median of {a.runs}")
    print(f"{'server':50} {'idle s':>8} {'loaded s':>9} {'ratio':>6} {'sweeps':>7}")
    for name, (idle, loaded, sweeps) in rows:
        print(f"{name:50} {idle:8.3f} {loaded:9.3f} {loaded / idle:6.2f} {sweeps:7d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
