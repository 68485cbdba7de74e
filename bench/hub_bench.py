#!/usr/bin/python3
"""Benchmarks the Hugging Face Hub as a checkpoint source against local files, over
the mock Hub (tests/testing/mock_hub.py) on loopback, in one run. Not a test; see
bench/README.md.

  bench/hub_bench.py [--steps 16] [--threads 2] [--keep DIR]

The pythia-70m-shaped suite of bench/hist_bench.py is served twice by one gardend:
from disk (--checkpoints) and through the mock Hub (--hub-repo, its weights behind
the mock's CDN port). Rows: the local sweep (best of 3); a cold sweep over the Hub
(empty cache, fresh gardend) with the bytes the mock sent, against the tensors'
bytes + 128 KiB per file; the warm sweep (best of 3; extracts cached) and what it
moved; 8 identical cold sweeps at once (another empty cache) and what they moved;
and the floors the mock sets: curl fetching just the same tensor ranges, as many at a
time as gardend has threads, to /dev/null and to files (what a client that keeps them
must do at least).
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import hist_bench as hb  # noqa: E402
from hist_bench import make_suite  # noqa: E402

sys.path.insert(0, os.path.join(hb.REPO, "tests", "testing"))
import mock_hub  # noqa: E402

HUB_SIZE = "70mhub"
REPO = f"EleutherAI/{hb.SUITE}-{HUB_SIZE}"


def sweep(bin_dir, port, size):
    cmd = [os.path.join(bin_dir, "garden"), "--server", f"127.0.0.1:{port}", "hist",
           "--suite", hb.SUITE, "--size", size, "--variant", hb.VARIANT, "--steps", "all",
           "--format", "jsonl", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.decode(errors='replace')}")
    return r.stdout


def curl_floor(hub, steps, header, threads, keep_in=None):
    """The mock's own speed: curl fetching just the tensor's range of every step,
    `threads` at a time (what any client of this mock waits for at least); with
    `keep_in`, each range is written to a file there, as a client that keeps what
    it fetched must (the files are removed afterwards)."""
    e = header[hb.TENSOR]
    first, last = e["data_start"] + e["data_offsets"][0], e["data_start"] + e["data_offsets"][1] - 1

    def one(step):
        url = f"{hub.url}/{REPO}/resolve/step{step}/model.safetensors"
        out = os.path.join(keep_in, f"step{step}") if keep_in else os.devnull
        subprocess.run(["curl", "-s", "-f", "-L", "-r", f"{first}-{last}", "-o", out, url],
                       check=True)

    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, steps))


def moved(hub):
    sent = hub.stats()["bytes_sent"]
    return sent.get("hub", 0) + sent.get("cdn", 0)


def start(a, hub, cache, workdir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    if os.path.isdir(cache):
        shutil.rmtree(cache)
    return hb.Server(a.bin_dir, a.keep, a.threads, workdir,
                     extra=["--hub-repo", REPO, "--hub-endpoint", hub.url,
                            "--hub-cache", cache], env=env)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    hb.add_suite_arguments(p)
    a = p.parse_args()
    steps = hb.bench_steps(a.steps)
    dirs = hb.ensure_suite(a.keep, steps)
    hb.warm_page_cache([os.path.join(d, "model.safetensors") for d in dirs.values()])
    header = make_suite.read_header(dirs[steps[0]])
    tensor = header[hb.TENSOR]["data_offsets"][1] - header[hb.TENSOR]["data_offsets"][0]
    work = os.path.join(a.keep, ".hub-bench")
    os.makedirs(work, exist_ok=True)
    model_dir = os.path.join(a.keep, make_suite.repo_name(hb.SUITE, hb.SIZE, hb.VARIANT))
    hub = mock_hub.MockHub(repos={REPO: model_dir}).start()
    try:
        server = start(a, hub, os.path.join(work, "cache"), work)
        try:
            want = sweep(a.bin_dir, server.port, hb.SIZE)
            t_local = hb.best_of(3, lambda: sweep(a.bin_dir, server.port, hb.SIZE))
            hub.reset_stats()
            t0 = time.perf_counter()
            cold = sweep(a.bin_dir, server.port, HUB_SIZE)
            t_cold = time.perf_counter() - t0
            b_cold = moved(hub)
            hub.reset_stats()
            t_warm = hb.best_of(3, lambda: sweep(a.bin_dir, server.port, HUB_SIZE))
            b_warm = moved(hub)
            t_floor = hb.best_of(3, lambda: curl_floor(hub, steps, header, a.threads))
            kept = os.path.join(work, "curl-kept")

            def curl_kept():
                shutil.rmtree(kept, ignore_errors=True)
                os.makedirs(kept)
                curl_floor(hub, steps, header, a.threads, keep_in=kept)
            t_kept = hb.best_of(3, curl_kept)
            shutil.rmtree(kept, ignore_errors=True)
        finally:
            server.stop()
        server = start(a, hub, os.path.join(work, "cache8"), work)
        try:
            hub.reset_stats()
            cmd = [os.path.join(a.bin_dir, "garden"), "--server", f"127.0.0.1:{server.port}",
                   "hist", "--size", HUB_SIZE, "--steps", "all", "--format", "jsonl",
                   "--no-progress"]
            t0 = time.perf_counter()
            procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for _ in range(8)]
            outs = [proc.communicate()[0] for proc in procs]
            t_eight = time.perf_counter() - t0
            b_eight = moved(hub)
        finally:
            server.stop()
    finally:
        hub.stop()
    n = len(steps)
    bound = 1.02 * tensor * n + 128 * 1024 * n
    same = cold == want and all(o == want for o in outs)
    print(f"hub_bench: {n} steps of a pythia-70m-shaped suite (F16) over the mock Hub on "
          f"loopback, --threads {a.threads}")
    print(f"{'measurement':52} {'seconds':>8} {'ratio':>7} {'bytes moved':>14}")
    print(f"{'local files':52} {t_local:8.3f} {1.0:7.2f} {'':>14}")
    print(f"{'floor: curl of the tensor ranges from the mock':52} {t_floor:8.3f} "
          f"{t_floor / t_local:7.2f} {'':>14}")
    print(f"{'floor, kept: curl writing those ranges to files':52} {t_kept:8.3f} "
          f"{t_kept / t_local:7.2f} {'':>14}")
    print(f"{'Hub, cold (empty cache)':52} {t_cold:8.3f} {t_cold / t_local:7.2f} {b_cold:14,}")
    print(f"{'Hub, warm (extracts cached)':52} {t_warm:8.3f} {t_warm / t_local:7.2f} {b_warm:14,}")
    print(f"{'Hub, 8 identical cold sweeps at once':52} {t_eight:8.3f} {t_eight / t_local:7.2f} "
          f"{b_eight:14,}")
    print(f"tensor bytes {tensor * n:,}; bound 1.02 x that + 128 KiB per file = {bound:,.0f}; "
          f"cold moved {b_cold / (tensor * n):.4f}x the tensors")
    print(f"cold over the floor: {t_cold / t_floor:.2f}x; over the kept floor: "
          f"{t_cold / t_kept:.2f}x")
    print(f"outputs identical to the local sweep: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
