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

  * gardend: the checkpoint, with the real Pythia tokenizer.json beside it
    (from ../shared/pythia, or $GARDEN_SHARED/pythia, when present), served
    by `gardend --threads T`; after one warm-up request (which loads the
    model) `garden generate --greedy --max-new-tokens 64 --prompt TEXT
    --format json` is timed. TEXT is a prose prompt cut to --prompt tokens by
    the tokenizer, and its ids are the prompt of the other rows too, so all
    of them do the same work. Two figures: the client's wall time (its
    process start-up, connection and JSON output included) and the server's
    own time from gardend's log line "Generate ... OK in X ms" (tokenizing,
    prefill, decoding and streaming; no client start-up).

Each is run --repeats times; the best run counts. Without the tokenizer (or
with --no-server) the gardend rows are left out and the prompt is --prompt
random ids.

OMP_WAIT_POLICY=PASSIVE is set for both sides (unless already set, or
--active-omp): libtorch's OpenMP workers otherwise spin between ops and fight
OpenBLAS's own threads for the cores. On a 2-core machine that costs the C++
side 5x at 2 threads (about 16 vs 80 tokens/s measured), and it must be in the
environment before libgomp loads, so no program can set it for itself.

Usage:
  /usr/bin/python3 bench/generate_bench.py [--bin build/bin] [--threads 1,2]
      [--no-server] [--shared DIR]
"""

import argparse
import json
import os
import re
import shutil
import signal
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

# The served checkpoint: ROOT/pythia-70m/step143000 (plain layout).
MODEL, SIZE, STEP = "pythia-70m", "70m", 143000
# Cut to --prompt tokens.
PROMPT_TEXT = (
    "The history of the printing press begins in the fifteenth century, when "
    "Johannes Gutenberg combined movable metal type, oil-based inks and a "
    "wooden screw press into a system that could produce books quickly and "
    "cheaply. Within fifty years presses were at work in more than two "
    "hundred cities across Europe, and the number of books in circulation "
    "grew from thousands to millions.")


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
    ap.add_argument("--no-server", action="store_true",
                    help="leave out the gardend rows")
    ap.add_argument("--shared", default=os.environ.get("GARDEN_SHARED") or
                    os.path.join(HERE, "..", "..", "shared"),
                    help="folder holding pythia/tokenizer.json")
    args = ap.parse_args()
    tokenizer = os.path.join(args.shared, "pythia", "tokenizer.json")
    serve = not args.no_server
    if serve and not os.path.isfile(tokenizer):
        print(f"note: {tokenizer} is missing: no gardend rows")
        serve = False
    for name in ("gardend", "garden"):
        if serve and not os.path.isfile(os.path.join(args.bin, name)):
            print(f"note: {args.bin}/{name} is not built: no gardend rows")
            serve = False

    config = make_config(hidden_size=512, num_attention_heads=8,
                         num_hidden_layers=6, intermediate_size=2048,
                         vocab_size=50304, rotary_pct=0.25,
                         use_parallel_residual=True,
                         max_position_embeddings=2048)
    weights = random_weights(config, seed=0, extra_buffers=False)
    prompt = torch.randint(0, config["vocab_size"], (args.prompt,),
                           generator=torch.Generator().manual_seed(1)).tolist()

    with tempfile.TemporaryDirectory(prefix="generate_bench_") as root:
        d = os.path.join(root, MODEL, f"step{STEP}")
        decoded = write_checkpoint(d, config, weights, dtype=torch.float16)
        del weights
        ref = GptNeoxRef(config, decoded)
        del decoded

        text = None
        if serve:
            shutil.copyfile(tokenizer, os.path.join(d, "tokenizer.json"))
            with Gardend(args.bin, root, 1) as server:
                text, prompt = server.cut_prompt(PROMPT_TEXT, args.prompt)

        print(f"pythia-70m shape, batch 1, {len(prompt)}-token prompt, "
              f"{args.new} greedy tokens, float32 CPU, OMP_WAIT_POLICY="
              f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
        if text is not None:
            print(f"prompt ({len(prompt)} tokens of the Pythia tokenizer): "
                  f"{text!r}")
        for threads in [int(t) for t in args.threads.split(",")]:
            bench_threads(args, root, d, ref, prompt, threads, text)


def write_served_model(root, tokenizer, **shape):
    """A random GPT-NeoX of `shape` (make_config's keyword arguments) written as
    ROOT/pythia-70m/step143000 in F16 with `tokenizer` beside it, as the benches
    that time gardend serve it."""
    config = make_config(**shape)
    weights = random_weights(config, seed=0, extra_buffers=False)
    d = os.path.join(root, MODEL, f"step{STEP}")
    write_checkpoint(d, config, weights, dtype=torch.float16)
    shutil.copyfile(tokenizer, os.path.join(d, "tokenizer.json"))


class Gardend:
    """gardend --threads T on a checkpoint root, stopped with SIGTERM."""

    def __init__(self, bin_dir, root, threads, extra=()):
        """extra: more gardend flags."""
        self.bin_dir, self.root, self.threads, self.extra = bin_dir, root, threads, extra

    def __enter__(self):
        self.log_path = os.path.join(self.root, f"gardend-{self.threads}.log")
        port_file = os.path.join(self.root, f"port-{self.threads}")
        if os.path.exists(port_file):  # a server before this one's
            os.unlink(port_file)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [os.path.join(self.bin_dir, "gardend"), "--listen",
                 "127.0.0.1:0", "--port-file", port_file, "--checkpoints",
                 self.root, "--threads", str(self.threads), *self.extra],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file)
                   and open(port_file).read().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("gardend did not start:\n" + self.log())
            time.sleep(0.02)
        self.addr = "127.0.0.1:" + open(port_file).read().strip()
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "killed"
        if rc != 0 and exc[0] is None:
            raise RuntimeError(f"gardend exited with {rc}:\n{self.log()}")

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def garden(self, *args):
        r = subprocess.run(
            [os.path.join(self.bin_dir, "garden"), "--server", self.addr,
             *args, "--size", SIZE, "--step", str(STEP), "--format", "json"],
            capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"garden {args[0]}: exit {r.returncode}: "
                               f"{r.stderr.strip()}")
        return r.stdout

    def cut_prompt(self, text, n):
        """The shortest word prefix of `text` with at least n tokens, and
        its ids (more than n only when its last word is several tokens)."""
        words = text.split(" ")
        for i in range(1, len(words) + 1):
            part = " ".join(words[:i])
            ids = json.loads(self.garden("tokenize", f"--text={part}"))["ids"]
            if len(ids) >= n:
                break
        if len(ids) != n:  # the last word split into several tokens
            print(f"note: the prompt has {len(ids)} tokens, not {n}")
        return part, ids

    def generate(self, text, new):
        """(ids, client wall seconds, server seconds from the log)."""
        with open(self.log_path, "rb") as f:
            offset = len(f.read())
        start = time.perf_counter()
        out = json.loads(self.garden("generate", f"--prompt={text}",
                                     "--greedy", "--max-new-tokens", str(new)))
        wall = time.perf_counter() - start
        pattern = re.compile(rf"Generate {MODEL} step {STEP}, {new} tokens "
                             r"from .*: OK in ([0-9.]+) ms")
        deadline = time.monotonic() + 5
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                match = pattern.search(f.read().decode(errors="replace"))
            if match or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if not match:
            raise RuntimeError("no Generate line in gardend's log:\n"
                               + self.log())
        return out["ids"], wall, float(match.group(1)) / 1000.0


def bench_threads(args, root, d, ref, prompt, threads, text):
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
    if text is None:
        print(f"  same tokens: {cpp_tokens == ref_tokens}", flush=True)
        return
    with Gardend(args.bin, root, threads) as server:
        server.generate(text, args.new)  # warm-up: loads the model
        wall_best = server_best = 0.0
        for _ in range(args.repeats):
            tokens, wall, served = server.generate(text, args.new)
            wall_best = max(wall_best, args.new / wall)
            server_best = max(server_best, args.new / served)
    for label, best in (("gardend, CLI wall (with start-up):", wall_best),
                        ("gardend, server-side (log OK in):", server_best)):
        print(f"  {label:36s} {best:8.1f} tok/s  "
              f"({best / ref_best:.2f}x reference)")
    print(f"  same tokens: C++ tool {cpp_tokens == ref_tokens}, "
          f"gardend {tokens == ref_tokens}", flush=True)

if __name__ == "__main__":
    main()
