#!/usr/bin/python3
"""Benchmarks reading torch.save checkpoints (pytorch_model.bin, as Pythia's step
revisions hold them) against the same weights as safetensors, in one run. Not a
test; see bench/README.md.

  bench/format_bench.py [--steps 16] [--bins 64] [--threads 2] [--keep DIR]
                        [--load-steps 4]

The pythia-70m-shaped suite of bench/hist_bench.py is written once as safetensors
and once converted with torch.save (scripts/make_suite.py save_as_torch, which adds
Pythia's uint8 attention.bias buffers). One gardend serves both. Rows:
(a) garden hist --steps all over each format (best of 3 after a warm-up), outputs
    compared byte for byte;
(b) bytes gardend read per step during one sweep (rchar of /proc/PID/io), against
    what the reader needs: the tensor, data.pkl, the zip's central directory and
    the tail it searches for the end record;
(c) model load: tools/gpt_neox_tool loading each of --load-steps checkpoints and
    running one token (best of 3 per step, summed), each format.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
import zipfile

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import hist_bench as hb  # noqa: E402
from hist_bench import make_suite  # noqa: E402

BIN_SIZE = "70mbin"  # the .bin copy is another model of the same suite


def ensure_bin_suite(st_dirs, root):
    """A torch.save copy of every safetensors checkpoint, made once."""
    dirs = {}
    for step, st in st_dirs.items():
        d = make_suite.checkpoint_dir(root, hb.SUITE, BIN_SIZE, hb.VARIANT, step)
        weights = os.path.join(d, "pytorch_model.bin")
        source = os.path.join(st, "model.safetensors")
        if not (os.path.exists(weights) and
                os.path.getmtime(weights) >= os.path.getmtime(source)):
            hb.log(f"writing step {step} with torch.save into {d}")
            os.makedirs(d, exist_ok=True)
            for f in ("config.json", "model.safetensors"):
                shutil.copyfile(os.path.join(st, f), os.path.join(d, f))
            make_suite.save_as_torch(d)
        dirs[step] = d
    return dirs


def needed_bytes(path, tensor):
    """What reading one tensor must cost: the tensor, data.pkl, the central
    directory and the tail searched for the end record."""
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        pkl = next(i for i in infos if i.filename.endswith("/data.pkl"))
        cd_start = z.start_dir
    size = os.path.getsize(path)
    tail = min(size, 22 + 65535)
    import torch  # only for the tensor's size
    sd = torch.load(path, map_location="cpu")
    t = sd[tensor]
    return {"tensor": t.numel() * t.element_size(), "data.pkl": pkl.file_size,
            "central directory": size - cd_start, "tail": tail}


def rchar(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def run_hist(bin_dir, port, size, bins, stdout):
    cmd = [os.path.join(bin_dir, "garden"), "--server", f"127.0.0.1:{port}", "hist",
           "--suite", hb.SUITE, "--size", size, "--variant", hb.VARIANT, "--steps", "all",
           "--bins", str(bins), "--format", "jsonl", "--no-progress"]
    r = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.decode(errors='replace')}")
    return r.stdout


def time_load(bin_dir, checkpoint, threads):
    cmd = [os.path.join(bin_dir, "gpt_neox_tool"), "--checkpoint", checkpoint,
           "--ids", "1", "--threads", str(threads)]
    return hb.best_of(3, lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    hb.add_suite_arguments(p)
    p.add_argument("--bins", type=int, default=64)
    p.add_argument("--load-steps", type=int, default=4)
    a = p.parse_args()
    steps = hb.bench_steps(a.steps)
    st_dirs = hb.ensure_suite(a.keep, steps)
    bin_root = a.keep + "-bin"
    bin_dirs = ensure_bin_suite(st_dirs, bin_root)
    files = [os.path.join(d, "model.safetensors") for d in st_dirs.values()]
    files += [os.path.join(d, "pytorch_model.bin") for d in bin_dirs.values()]
    hb.warm_page_cache(files)

    workdir = os.path.join(a.keep, ".format-bench")
    os.makedirs(workdir, exist_ok=True)
    server = hb.Server(a.bin_dir, [a.keep, bin_root], a.threads, workdir)
    try:
        outputs, times, reads = {}, {}, {}
        for size in (hb.SIZE, BIN_SIZE):
            outputs[size] = run_hist(a.bin_dir, server.port, size, a.bins, subprocess.PIPE)
            before = rchar(server.proc.pid)
            run_hist(a.bin_dir, server.port, size, a.bins, subprocess.DEVNULL)
            reads[size] = (rchar(server.proc.pid) - before) / len(steps)
            times[size] = hb.best_of(3, lambda: run_hist(a.bin_dir, server.port, size,
                                                         a.bins, subprocess.DEVNULL))
    finally:
        server.stop()
    same = outputs[hb.SIZE] == outputs[BIN_SIZE]

    load_steps = steps[-a.load_steps:]
    t_load_st = sum(time_load(a.bin_dir, st_dirs[s], a.threads) for s in load_steps)
    t_load_pt = sum(time_load(a.bin_dir, bin_dirs[s], a.threads) for s in load_steps)

    need = needed_bytes(os.path.join(bin_dirs[steps[0]], "pytorch_model.bin"), hb.TENSOR)
    print(f"format_bench: {len(steps)} steps of a pythia-70m-shaped suite (F16), "
          f"{a.bins} bins, --threads {a.threads}")
    print(f"{'measurement':58} {'seconds':>9} {'ratio':>7}")
    print(f"{'(a) hist sweep, safetensors':58} {times[hb.SIZE]:9.3f} {1.0:7.2f}")
    print(f"{'(a) hist sweep, pytorch_model.bin':58} {times[BIN_SIZE]:9.3f} "
          f"{times[BIN_SIZE] / times[hb.SIZE]:7.2f}")
    print(f"{'(c) model load + 1 token, safetensors (' + str(len(load_steps)) + ' steps)':58} "
          f"{t_load_st:9.3f} {1.0:7.2f}")
    print(f"{'(c) model load + 1 token, pytorch_model.bin':58} {t_load_pt:9.3f} "
          f"{t_load_pt / t_load_st:7.2f}")
    print(f"(b) bytes read per step: safetensors {reads[hb.SIZE]:,.0f}, "
          f"pytorch_model.bin {reads[BIN_SIZE]:,.0f}")
    print("    needed for the .bin: " + ", ".join(f"{k} {v:,}" for k, v in need.items())
          + f" = {sum(need.values()):,} (file {os.path.getsize(files[-1]):,})")
    print(f"outputs identical: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
