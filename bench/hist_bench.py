#!/usr/bin/python3
"""Benchmarks Garden's histogram sweep against what users' scripts do and against a
read-only floor. Not a test; see bench/README.md.

  bench/hist_bench.py [--steps 16] [--bins 64] [--threads 2] [--keep DIR]

(a) garden hist over every step, served by gardend (best of 3 after a warm-up)
(b) Python baseline: per step read the whole model.safetensors, materialise every
    tensor as a numpy copy (like safetensors.numpy.load_file), then
    numpy.histogram(embed_out.astype(float32), bins) (best of 3)
(c) floor: os.preadv the embed_out.weight bytes of every step into one preallocated
    buffer, page cache warm (best of 5)
(d) garden msd over every step (reference mode), same server (best of 3)
"""

import argparse
import json
import os
import platform
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import make_suite  # noqa: E402

SUITE, SIZE, VARIANT, PRESET, DTYPE, SEED = "pythia", "70m", "standard", "pythia-70m", "F16", 0
TENSOR = "embed_out.weight"
STAMP = ".garden-bench-suite.json"
NP_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}


def pythia_schedule():
    """Pythia's 154 published checkpoints."""
    return [0] + [2 ** i for i in range(10)] + list(range(1000, 143001, 1000))


def bench_steps(count):
    schedule = pythia_schedule()
    if not 1 <= count <= len(schedule):
        raise SystemExit(f"--steps must be within 1..{len(schedule)}")
    picks = np.unique(np.round(np.linspace(0, len(schedule) - 1, count)).astype(int))
    return [schedule[i] for i in picks]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------- suite

def ensure_suite(root, steps):
    """Generates the suite under root unless a complete one with the same parameters is there."""
    params = {"generator": "make_suite", "suite": SUITE, "size": SIZE, "variant": VARIANT,
              "preset": PRESET, "dtype": DTYPE, "seed": SEED, "bifurcate": True,
              "layout": "plain", "shards": 1, "steps": steps}
    stamp = os.path.join(root, STAMP)
    dirs = {s: make_suite.checkpoint_dir(root, SUITE, SIZE, VARIANT, s) for s in steps}
    try:
        with open(stamp) as f:
            old = json.load(f)
        expected = old.pop("file_sizes")
        if old == params and all(
                os.path.getsize(os.path.join(dirs[s], "model.safetensors")) == expected[str(s)]
                for s in steps):
            log(f"reusing suite in {root}")
            return dirs
    except (OSError, ValueError, KeyError, TypeError):
        pass
    # Other steps (from a run with different --steps) would be served too: clear them.
    model_dir = os.path.join(root, make_suite.repo_name(SUITE, SIZE, VARIANT))
    if os.path.isdir(model_dir):
        for entry in os.listdir(model_dir):
            if entry.startswith("step") and entry[4:].isdigit() and int(entry[4:]) not in steps:
                d = os.path.join(model_dir, entry)
                for f in os.listdir(d):
                    os.remove(os.path.join(d, f))
                os.rmdir(d)
    if os.path.exists(stamp):
        os.remove(stamp)
    log(f"generating {len(steps)} {PRESET} checkpoints ({DTYPE}) in {root} ...")
    t0 = time.monotonic()
    dirs = make_suite.write_suite(root, SUITE, SIZE, VARIANT, steps, layout="plain",
                                  dtype=DTYPE, preset=PRESET, seed=SEED, bifurcate=True)
    log(f"  generated in {time.monotonic() - t0:.1f}s")
    params["file_sizes"] = {str(s): os.path.getsize(os.path.join(d, "model.safetensors"))
                            for s, d in dirs.items()}
    with open(stamp, "w") as f:
        json.dump(params, f, indent=1)
    return dirs


def parse_header(data):
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(bytes(data[8:8 + n]))
    header.pop("__metadata__", None)
    return header, 8 + n


def warm_page_cache(files):
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while f.read(1 << 24):
                pass


# --------------------------------------------------------------------------------- (b), (c)

def python_baseline(files, bins):
    """What users' scripts do: load every tensor of the checkpoint, histogram one."""
    results = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        header, start = parse_header(data)
        tensors = {}
        for name, e in header.items():
            begin, end = e["data_offsets"]
            dt = np.dtype(NP_DTYPES[e["dtype"]])
            arr = np.frombuffer(data, dtype=dt, count=(end - begin) // dt.itemsize,
                                offset=start + begin).reshape(e["shape"]).copy()
            tensors[name] = arr
        del data
        results.append(np.histogram(tensors[TENSOR].astype(np.float32), bins=bins))
    return results


def floor_locations(files):
    locs = []
    for path in files:
        with open(path, "rb") as f:
            head = f.read(8)
            (n,) = struct.unpack("<Q", head)
            header, start = parse_header(head + f.read(n))
        begin, end = header[TENSOR]["data_offsets"]
        locs.append((path, start + begin, end - begin))
    return locs


def read_floor(locs, buf):
    view = memoryview(buf)
    total = 0
    for path, offset, size in locs:
        fd = os.open(path, os.O_RDONLY)
        try:
            done = 0
            while done < size:
                got = os.preadv(fd, [view[done:size]], offset + done)
                if got <= 0:
                    raise OSError(f"{path}: short read")
                done += got
            total += done
        finally:
            os.close(fd)
    return total


def best_of(runs, fn):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# --------------------------------------------------------------------------------- (a)

class Server:
    def __init__(self, bin_dir, root, threads, workdir, extra=(), env=None):
        """root: a checkpoint root, or a list of them; extra: more gardend flags."""
        self.port_file = os.path.join(workdir, "gardend.port")
        if os.path.exists(self.port_file):  # a stale one would name a dead port
            os.remove(self.port_file)
        self.log_path = os.path.join(workdir, "gardend.log")
        self.log = open(self.log_path, "wb")
        cmd = [os.path.join(bin_dir, "gardend"), "--listen", "127.0.0.1:0",
               "--port-file", self.port_file, "--threads", str(threads)]
        for r in [root] if isinstance(root, str) else root:
            cmd += ["--checkpoints", r]
        cmd += list(extra)
        log("starting " + " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.port = self._wait_port(30.0)

    def _wait_port(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gardend exited with {self.proc.returncode}:\n"
                                   + self.tail())
            try:
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    return int(text.rsplit(":", 1)[-1])
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        raise RuntimeError("gardend wrote no port file within 30s:\n" + self.tail())

    def tail(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read()[-4000:].decode(errors="replace")

    def peak_rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                log("gardend ignored SIGTERM for 10s; killing it")
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def check_correctness(jsonl, dirs, bins):
    """Compares garden's first-step counts with numpy.histogram over garden's range."""
    frames = [json.loads(line) for line in jsonl.splitlines() if line.strip()]
    if len(frames) != len(dirs):
        return f"MISMATCH ({len(frames)} frames for {len(dirs)} steps)"
    first = min(frames, key=lambda fr: fr["step"])
    step = int(first["step"])
    x = make_suite.read_tensor(dirs[step], TENSOR).astype(np.float64).ravel()
    lo, hi = float(first["lo"]), float(first["hi"])
    counts, _ = np.histogram(x, bins=bins, range=(lo, hi))
    got = np.asarray(first["counts"], dtype=np.int64)
    problems = []
    if got.shape != counts.shape:
        problems.append(f"{got.size} bins, expected {counts.size}")
    elif not np.array_equal(got, counts):
        diff = np.abs(got - counts)
        problems.append(f"counts differ in {np.count_nonzero(diff)} bins, by {diff.sum()} in all")
    under, over = int(np.count_nonzero(x < lo)), int(np.count_nonzero(x > hi))
    if (int(first["underflow"]), int(first["overflow"])) != (under, over):
        problems.append(f"underflow/overflow {first['underflow']}/{first['overflow']}, "
                        f"expected {under}/{over}")
    if int(first["n"]) != x.size:
        problems.append(f"n {first['n']}, expected {x.size}")
    for key, want in (("mean", x.mean()), ("std", x.std()), ("min", x.min()),
                      ("max", x.max())):
        if not np.isclose(float(first[key]), want, rtol=1e-6, atol=1e-12):
            problems.append(f"{key} {first[key]}, expected {want}")
    where = f"step {step}, range [{lo:.6g}, {hi:.6g}]"
    return f"OK ({where})" if not problems else f"MISMATCH ({where}: {'; '.join(problems)})"


def run_garden(bin_dir, port, bins, stdout, command="hist"):
    cmd = [os.path.join(bin_dir, "garden"), "--server", f"127.0.0.1:{port}", command,
           "--suite", SUITE, "--size", SIZE, "--variant", VARIANT, "--steps", "all",
           "--format", "jsonl"]
    if command == "hist":
        cmd += ["--bins", str(bins)]
    r = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {r.returncode}:\n"
                           + r.stderr.decode(errors="replace")[-4000:])
    return r.stdout


# --------------------------------------------------------------------------------- main

def add_suite_arguments(p):
    """The flags every benchmark over this suite takes."""
    p.add_argument("--steps", type=int, default=16,
                   help="checkpoints, spread over Pythia's 154 published steps (default 16)")
    p.add_argument("--threads", type=int, default=2, help="gardend --threads")
    p.add_argument("--keep", metavar="DIR", default=os.path.join(REPO, "build", "bench-suite"),
                   help="where the suite is generated and kept for later runs "
                        "(default build/bench-suite)")
    p.add_argument("--bin-dir", default=os.environ.get("GARDEN_BIN",
                                                       os.path.join(REPO, "build", "bin")),
                   help="directory with gardend and garden (default $GARDEN_BIN or build/bin)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_suite_arguments(p)
    p.add_argument("--bins", type=int, default=64)
    p.add_argument("--no-server", action="store_true",
                   help="measure only (b) and (c)")
    a = p.parse_args()

    steps = bench_steps(a.steps)
    root = os.path.abspath(a.keep)
    os.makedirs(root, exist_ok=True)
    dirs = ensure_suite(root, steps)
    files = [os.path.join(dirs[s], "model.safetensors") for s in steps]
    file_bytes = sum(os.path.getsize(f) for f in files)
    locs = floor_locations(files)
    tensor_bytes = sum(size for _, _, size in locs)
    warm_page_cache(files)

    log("(c) floor ...")
    buf = bytearray(max(size for _, _, size in locs))
    read_floor(locs, buf)
    t_floor = best_of(5, lambda: read_floor(locs, buf))
    log("(b) python baseline ...")
    t_python = best_of(3, lambda: python_baseline(files, a.bins))

    t_garden = t_msd = peak_kib = None
    verdict = "not checked"
    skipped = None
    gardend = os.path.join(a.bin_dir, "gardend")
    garden = os.path.join(a.bin_dir, "garden")
    if a.no_server:
        skipped = "--no-server"
    elif not (os.access(gardend, os.X_OK) and os.access(garden, os.X_OK)):
        skipped = f"no gardend/garden in {a.bin_dir}"
    else:
        with tempfile.TemporaryDirectory(prefix="garden-bench-") as work:
            server = Server(a.bin_dir, root, a.threads, work)
            try:
                log(f"(a) garden hist via 127.0.0.1:{server.port} ...")
                out = run_garden(a.bin_dir, server.port, a.bins, subprocess.PIPE)  # warm-up
                verdict = check_correctness(out.decode(), dirs, a.bins)
                t_garden = best_of(3, lambda: run_garden(a.bin_dir, server.port, a.bins,
                                                         subprocess.DEVNULL))
                log("(d) garden msd ...")
                run_garden(a.bin_dir, server.port, a.bins, subprocess.DEVNULL, "msd")
                t_msd = best_of(3, lambda: run_garden(a.bin_dir, server.port, a.bins,
                                                      subprocess.DEVNULL, "msd"))
                peak_kib = server.peak_rss_kib()
            except RuntimeError as e:
                skipped = f"failed: {e}"
            finally:
                rc = server.stop()
                if rc not in (0, -signal.SIGTERM):
                    log(f"gardend exited with {rc} after SIGTERM:\n{server.tail()}")

    gib = 1 << 30
    print(f"suite: {len(steps)} x {PRESET} {DTYPE} checkpoints ({file_bytes / gib:.2f} GiB), "
          f"{TENSOR} {tensor_bytes / len(steps) / (1 << 20):.1f} MiB per step; "
          f"bins {a.bins}; gardend --threads {a.threads}; "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}")
    print(f"{'measurement':<52}{'seconds':>10}{'GiB/s':>9}")

    def row(label, t, nbytes):
        if t is None:
            print(f"{label:<52}{'-':>10}{'-':>9}")
        else:
            print(f"{label:<52}{t:>10.3f}{nbytes / gib / t:>9.2f}")

    row("(a) garden hist --steps all (best of 3)", t_garden, tensor_bytes)
    row("(b) python: load_file + np.histogram (best of 3)", t_python, file_bytes)
    row("(c) floor: pread embed_out only (best of 5)", t_floor, tensor_bytes)
    row("(d) garden msd --steps all (best of 3)", t_msd, tensor_bytes)
    if t_garden is not None:
        print(f"{'(b)/(a) speed-up over the Python baseline':<52}{t_python / t_garden:>10.1f}x")
        print(f"{'(a)/(c) time over the read floor':<52}{t_garden / t_floor:>10.1f}x")
        if t_msd is not None:
            print(f"{'(d)/(a) MSD sweep over the histogram sweep':<52}"
                  f"{t_msd / t_garden:>10.2f}x")
        print(f"{'gardend peak RSS (VmHWM)':<52}"
              f"{(f'{peak_kib / 1024:.0f} MiB') if peak_kib else '?':>10}")
        print(f"correctness: {verdict}")
    else:
        print(f"(a) skipped: {skipped}")
    if skipped and not a.no_server:
        return 2
    return 0 if verdict.startswith("OK") or a.no_server else 1


if __name__ == "__main__":
    sys.exit(main())
