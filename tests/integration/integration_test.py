#!/usr/bin/python3
"""Integration tests: a real gardend, driven through the garden CLI, checked against numpy.

Run as ctest does:
  cd tests/integration && GARDEN_BIN=<build>/bin GARDEN_SOURCE=<repo> \
      /usr/bin/python3 -m unittest -v integration_test

Fixtures (synthetic checkpoint suites written by scripts/make_suite.py, plus a few
hand-written safetensors files) live in a temporary directory made in setUpClass:

  root A: pythia-micro-deduped   F16  plain  bifurcate  steps 0,1,2,4,...,512,1000
          models--EleutherAI--pythia-micro  BF16  hf-cache  steps 0,1000,2000
          pythia-escaped -> rootA-outside/pythia-escaped (a model outside every root)
          pythia-micro-deduped/step99 -> rootA-outside/pythia-escaped/step7
  root B: pythia-small   F32  plain  3 shards  steps 0,512
          pythia-broken  F16  plain  steps 0..3; steps 1, 2, 3 damaged (json, truncate, header)
          pythia-big     F32  plain  vocab 50304 x hidden 256, steps 0..11 (~52 MB a tensor)
          pythia-odd     hand-written step 0: every F16 and BF16 bit pattern, NaN/inf, F64,
                         I64, an empty, a constant and a large-mean tensor
          pythia-leak    step0/model.safetensors -> a file outside every root
          neox-tiny      F16  plain  step 0 (a suite other than pythia)

The suite takes about 10-16 s on 2 cores (writing pythia-big, ~1.2 GB, is most of it).
"""

import json
import math
import os
import re
import select
import signal
import struct
import subprocess
import sys
import time
import unittest

import gardend_harness as harness

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("GARDEN_SOURCE") or os.path.normpath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("GARDEN_BIN") or os.path.join(SOURCE, "build", "bin")
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
import make_suite  # noqa: E402

GARDEN = os.path.join(BIN, "garden")
GARDEND = os.path.join(BIN, "gardend")

DD_STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000]
HF_STEPS = [0, 1000, 2000]
SMALL_STEPS = [0, 512]
BROKEN_STEPS = [0, 1, 2, 3]
BIG_STEPS = list(range(12))
BIG_SHAPE = {"vocab": 50304, "hidden": 256, "layers": 1, "heads": 4}
DEFAULT_TENSOR = "embed_out.weight"

# Pythia's published checkpoints: 0, 1, 2, 4, ..., 512, then every 1000 to 143000.
PYTHIA_SCHEDULE = [0] + [2 ** k for k in range(10)] + list(range(1000, 143001, 1000))
SPLIT_SCHEDULE = {0: 0.0, 1: 0.3, 2: 0.6, 4: 0.8, 8: 0.9, 16: 1.4, 32: 1.6, 64: 1.9, 128: 2.2}

CSV_FIELDS = ["step", "lo", "hi", "n", "mean", "std", "min", "max", "skewness", "kurtosis",
              "underflow", "overflow", "nan", "posinf", "neginf"]


# ---------------------------------------------------------------------------------------
# Independent references


def exact_text(x):
    """The CLI's CSV rendering of a double: the shortest %.Ng (N >= 6) that reads back."""
    if x is None or math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    for precision in range(6, 18):
        text = "%.*g" % (precision, x)
        if float(text) == x:
            return text
    return text


def sparkline(counts):
    blocks = [" ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587",
              "\u2588"]
    bins = len(counts)
    columns = min(bins, 64)
    grouped = [0] * columns
    for i, c in enumerate(counts):
        grouped[i * columns // bins] += c
    peak = max(grouped)
    out = ""
    for c in grouped:
        level = math.ceil(8.0 * c / peak) if peak else 0
        out += blocks[min(max(level, 0), 8)]
    return out


def moments(x):
    """n, mean, std, min, max, skewness, excess kurtosis of the finite values, float64."""
    x = np.asarray(x, dtype=np.float64).ravel()
    f = x[np.isfinite(x)]
    n = int(f.size)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None,
                "skewness": None, "kurtosis": None}
    mean = float(f.mean())
    d = f - mean
    d2 = d * d
    m2 = float(d2.mean())
    m3 = float((d2 * d).mean())
    m4 = float((d2 * d2).mean())
    skew = m3 / m2 ** 1.5 if m2 > 0 else None
    kurt = m4 / (m2 * m2) - 3.0 if m2 > 0 else None
    return {"n": n, "mean": mean, "std": math.sqrt(m2), "min": float(f.min()),
            "max": float(f.max()), "skewness": skew, "kurtosis": kurt}


def auto_range(arrays):
    lo, hi = math.inf, -math.inf
    for x in arrays:
        f = x[np.isfinite(x)]
        if f.size:
            lo = min(lo, float(f.min()))
            hi = max(hi, float(f.max()))
    if lo > hi:
        return 0.0, 1.0
    if lo == hi:
        return lo - 0.5, hi + 0.5
    return lo, hi


def reference_frame(x, bins, lo, hi):
    x = np.asarray(x, dtype=np.float64).ravel()
    finite = x[np.isfinite(x)]
    counts = np.histogram(finite, bins=bins, range=(lo, hi))[0]
    ref = moments(x)
    ref.update({
        "lo": lo, "hi": hi, "counts": [int(c) for c in counts],
        "underflow": int(np.count_nonzero(x < lo)),
        "overflow": int(np.count_nonzero(x > hi)),
        "nan": int(np.count_nonzero(np.isnan(x))),
        "posinf": int(np.count_nonzero(x == np.inf)),
        "neginf": int(np.count_nonzero(x == -np.inf)),
    })
    return ref


def write_safetensors(path, tensors):
    """tensors: [(name, dtype, shape, raw bytes)] written in order, contiguously."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, _, _, data in tensors:
            f.write(data)


class LineReader:
    """Lines from a pipe with a timeout (select + os.read, no blocking readline)."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        self.buf = b""

    def read_line(self, timeout):
        """The next line, or None after `timeout` seconds or at end of file."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()


def start_server(roots, log_path, port_file, threads=2):
    args = ["--threads", str(threads)]
    for root in roots:
        args += ["--checkpoints", root]
    return harness.start_server(GARDEND, args, log_path, port_file, timeout=20)


# ---------------------------------------------------------------------------------------


class GardenIntegrationTest(harness.GardendTestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls._tensor_cache = {}
        cls.set_up_server(GARDEND, "garden-it-", lambda: [
            "--threads", "2", "--checkpoints", cls.root_a, "--checkpoints", cls.root_b])

    @classmethod
    def _write_fixtures(cls):
        base = cls.base
        cls.root_a = os.path.join(base, "rootA")
        cls.root_b = os.path.join(base, "rootB")
        # Outside every root, though its path starts with root A's (a prefix trap).
        outside = os.path.join(base, "rootA-outside")
        for d in (cls.root_a, cls.root_b, outside):
            os.makedirs(d)

        cls.dirs = {}  # (size, variant) -> {step: checkpoint dir}
        ws = make_suite.write_suite
        cls.dirs[("micro", "deduped")] = ws(cls.root_a, "pythia", "micro", "deduped", DD_STEPS,
                                            layout="plain", dtype="F16", bifurcate=True)
        cls.dirs[("micro", "standard")] = ws(cls.root_a, "pythia", "micro", "standard",
                                             HF_STEPS, layout="hf", dtype="BF16", seed=1)
        cls.dirs[("small", "standard")] = ws(cls.root_b, "pythia", "small", "standard",
                                             SMALL_STEPS, dtype="F32", shards=3, seed=2)
        cls.dirs[("broken", "standard")] = ws(cls.root_b, "pythia", "broken", "standard",
                                              BROKEN_STEPS, dtype="F16", seed=3)
        cls.dirs[("big", "standard")] = ws(cls.root_b, "pythia", "big", "standard", BIG_STEPS,
                                           dtype="F32", seed=4, **BIG_SHAPE)
        ws(cls.root_b, "neox", "tiny", "standard", [0], dtype="F16")

        # Damaged checkpoints: step -> (damaged file, words its DATA_LOSS message holds).
        broken = cls.dirs[("broken", "standard")]
        cls.damaged = {
            1: (make_suite.corrupt_file(broken[1], "json"), "header must start with"),
            2: (make_suite.corrupt_file(broken[2], "truncate"), "truncated"),
            3: (make_suite.corrupt_file(broken[3], "header"), "header length"),
        }

        # Symlinks that leave every root: a whole model and one step.
        ws(outside, "pythia", "escaped", "standard", [0, 7])
        os.symlink(os.path.join(outside, "pythia-escaped"),
                   os.path.join(cls.root_a, "pythia-escaped"))
        os.symlink(os.path.join(outside, "pythia-escaped", "step7"),
                   os.path.join(cls.root_a, "pythia-micro-deduped", "step99"))

        cls._write_odd_model()

        # A planted bifurcation: an equal mixture of N(-mu, 1) and N(mu, 1) with
        # mu below 0.9 before step 16 and at least 1.4 from it on.
        rng = np.random.default_rng(77)
        for step, mu in SPLIT_SCHEDULE.items():
            signs = np.where(np.arange(400_000) % 2 == 0, -1.0, 1.0)
            values = (rng.standard_normal(400_000) + signs * mu).astype("<f2")
            d = os.path.join(cls.root_b, "pythia-split", f"step{step}")
            write_safetensors(os.path.join(d, "model.safetensors"),
                              [("embed_out.weight", "F16", [800, 500], values.tobytes())])
            cls.dirs.setdefault(("split", "standard"), {})[step] = d

        # A trajectory with planted defects: a random walk with constant speed,
        # step 16 an excursion (step 32 goes on from step 8), step 64 a byte
        # copy of step 32, and step 4 of the schedule missing.
        rng = np.random.default_rng(5)
        sigma = 0.01
        walk = {0: rng.standard_normal(10_000)}
        for prev, step in ((0, 1), (1, 2), (2, 8)):
            walk[step] = walk[prev] + sigma * np.sqrt(step - prev) * rng.standard_normal(10_000)
        walk[16] = walk[8] + 20 * sigma * np.sqrt(8) * rng.standard_normal(10_000)
        walk[32] = walk[8] + sigma * np.sqrt(24) * rng.standard_normal(10_000)
        walk[64] = walk[32]
        for step, w in walk.items():
            d = os.path.join(cls.root_b, "pythia-audit", f"step{step}")
            write_safetensors(os.path.join(d, "model.safetensors"),
                              [("embed_out.weight", "F32", [200, 50],
                                w.astype("<f4").tobytes())])
            cls.dirs.setdefault(("audit", "standard"), {})[step] = d

        # A model whose unembedding changes shape between steps (MSD refuses).
        for step, rows in ((0, 4), (1, 5)):
            d = os.path.join(cls.root_b, "pythia-shifty", f"step{step}")
            values = np.arange(rows * 8, dtype="<f4")
            write_safetensors(os.path.join(d, "model.safetensors"),
                              [("embed_out.weight", "F32", [rows, 8], values.tobytes())])

        # A step folder inside root B whose weights file is a symlink out of the roots.
        leak = os.path.join(cls.root_b, "pythia-leak", "step0")
        os.makedirs(leak)
        os.symlink(os.path.join(outside, "pythia-escaped", "step0", "model.safetensors"),
                   os.path.join(leak, "model.safetensors"))

    @classmethod
    def _write_odd_model(cls):
        rng = np.random.default_rng(1234)
        every = np.arange(65536, dtype=np.uint16)
        f32 = rng.standard_normal(4000).astype(np.float32) * np.float32(0.02)
        f32 = np.concatenate([f32, np.array(
            [np.nan, np.nan, np.nan, np.inf, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-40,
             0.25, -0.125], dtype=np.float32)])
        rng.shuffle(f32)
        f64 = np.concatenate([rng.standard_normal(3000) * 1e-3 + 0.5, [np.nan, 1.0 / 3.0]])
        # Large mean, tiny spread, several scan chunks: naive one-pass moments fail here.
        offset = (100.0 + 1e-3 * rng.standard_normal(20000)).astype(np.float32)
        tensors = [
            ("bf16_all", "BF16", [65536], every.astype("<u2").tobytes()),
            ("const", "F32", [7], np.full(7, 3.25, dtype="<f4").tobytes()),
            ("empty", "F32", [0, 4], b""),
            ("f16_all", "F16", [256, 256], every.astype("<u2").tobytes()),
            ("f32_special", "F32", [len(f32)], f32.astype("<f4").tobytes()),
            ("f64_vals", "F64", [len(f64)], f64.astype("<f8").tobytes()),
            ("ids", "I64", [3], np.array([1, 2, 3], dtype="<i8").tobytes()),
            ("tiny", "F64", [3], np.array([0.0, 0.0, 5e-324], dtype="<f8").tobytes()),
            ("offset", "F32", [100, 200], offset.astype("<f4").tobytes()),
        ]
        d = os.path.join(cls.root_b, "pythia-odd", "step0")
        write_safetensors(os.path.join(d, "model.safetensors"), tensors)
        cls.dirs[("odd", "standard")] = {0: d}

    # --------------------------------------------------------------------- helpers

    def garden(self, *args, timeout=30, server=None):
        return subprocess.run([GARDEN, "--server", server or self.addr, *args],
                              capture_output=True, text=True, timeout=timeout)

    def ok(self, *args, **kwargs):
        r = self.garden(*args, **kwargs)
        self.assertEqual(r.returncode, 0, f"garden {' '.join(args)} failed:\n{r.stderr}")
        return r.stdout

    def hist(self, size, variant="standard", *extra, **kwargs):
        out = self.ok("hist", "--size", size, "--variant", variant, "--format", "jsonl",
                      "--no-progress", *extra, **kwargs)
        return [json.loads(line) for line in out.splitlines()]

    def assert_error(self, args, code, *substrings):
        r = self.garden(*args)
        self.assertEqual(r.returncode, 1, f"garden {' '.join(args)}: rc {r.returncode}, "
                                          f"stdout {r.stdout!r}, stderr {r.stderr!r}")
        self.assertEqual(r.stdout, "")
        prefix = f"garden: {code}: "
        self.assertTrue(r.stderr.startswith(prefix),
                        f"garden {' '.join(args)}: expected {prefix!r}, got {r.stderr!r}")
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        for s in substrings:
            self.assertIn(s, r.stderr, f"garden {' '.join(args)}")
        # Clients never see where the server keeps its files.
        self.assertNotIn(self.base, r.stderr)
        return r.stderr

    def client_path(self, path):
        """How clients see a server path: relative to its checkpoint root."""
        for root in (self.root_a, self.root_b):
            if path.startswith(root + os.sep):
                return os.path.relpath(path, root)
        raise AssertionError(f"{path} is under no root")

    def tensor(self, size, variant, step, name=DEFAULT_TENSOR):
        key = (size, variant, step, name)
        if key not in self._tensor_cache:
            path = self.dirs[(size, variant)][step]
            x = make_suite.read_tensor(path, name)
            with np.errstate(invalid="ignore"):  # NaN codes widen to NaN
                self._tensor_cache[key] = np.asarray(x).astype(np.float64).ravel()
        return self._tensor_cache[key]

    def assert_close(self, got, want, rel, what, scale=None):
        if want is None:
            self.assertIsNone(got, what)
            return
        self.assertIsNotNone(got, what)
        tol = rel * max(abs(want), scale or 0.0)
        self.assertLessEqual(abs(got - want), tol, f"{what}: got {got!r}, want {want!r}")

    def assert_frame(self, frame, ref, what):
        for key in ("lo", "hi", "underflow", "overflow", "n", "nan", "posinf", "neginf",
                    "min", "max"):
            self.assertEqual(frame[key], ref[key], f"{what}: {key}")
        self.assertEqual(len(frame["counts"]), len(ref["counts"]), f"{what}: bins")
        if frame["counts"] != ref["counts"]:
            diff = [(i, a, b) for i, (a, b) in enumerate(zip(frame["counts"], ref["counts"]))
                    if a != b]
            self.fail(f"{what}: counts differ from numpy at (bin, got, want) {diff[:10]}")
        std = ref["std"] or 0.0
        self.assert_close(frame["mean"], ref["mean"], 1e-12, f"{what}: mean", scale=std)
        self.assert_close(frame["std"], ref["std"], 1e-12, f"{what}: std")
        self.assert_close(frame["skewness"], ref["skewness"], 1e-9, f"{what}: skewness",
                          scale=1.0)
        self.assert_close(frame["kurtosis"], ref["kurtosis"], 1e-9, f"{what}: kurtosis",
                          scale=1.0)
        self.assertEqual(sum(frame["counts"]) + frame["underflow"] + frame["overflow"],
                         frame["n"] + frame["posinf"] + frame["neginf"], what)

    def check_hist(self, size, variant, steps, tensor=DEFAULT_TENSOR, bins=64, rng=None,
                   extra=()):
        """Runs hist and compares every frame with numpy. Returns the frames."""
        args = ["--steps", ",".join(map(str, steps)) if isinstance(steps, list) else steps]
        if tensor != DEFAULT_TENSOR:
            args += ["--tensor", tensor]
        if bins != 64:
            args += ["--bins", str(bins)]
        if rng is not None:
            args.append(f"--range={rng[0]!r}:{rng[1]!r}")
        frames = self.hist(size, variant, *args, *extra)
        present = sorted(self.dirs[(size, variant)])
        if isinstance(steps, list):
            want_steps = steps
        elif steps == "all":
            want_steps = present
        else:
            first, last = map(int, steps.split(":"))
            want_steps = [s for s in present if first <= s <= last]
        self.assertEqual([f["step"] for f in frames], sorted(set(want_steps)))
        xs = [self.tensor(size, variant, f["step"], tensor) for f in frames]
        lo, hi = rng if rng is not None else auto_range(xs)
        header = make_suite.read_header(self.dirs[(size, variant)][frames[0]["step"]])[tensor]
        for frame, x in zip(frames, xs):
            what = f"{size}/{variant} {tensor} step {frame['step']} bins {bins}"
            self.assertEqual(frame["dtype"], header["dtype"], what)
            self.assertEqual(frame["shape"], header["shape"], what)
            self.assert_frame(frame, reference_frame(x, bins, lo, hi), what)
        return frames

    # --------------------------------------------------------------------- models

    def test_models_lists_every_model_with_its_steps(self):
        listing = json.loads(self.ok("models", "--format", "json"))
        self.assertEqual(list(listing), ["models"])
        models = {m["name"]: m for m in listing["models"]}
        want = {
            "pythia-micro-deduped": ("pythia", "micro", "deduped", "plain", DD_STEPS,
                                     "EleutherAI/pythia-micro-deduped"),
            "pythia-micro": ("pythia", "micro", "standard", "hf-cache", HF_STEPS,
                             "EleutherAI/pythia-micro"),
            "pythia-small": ("pythia", "small", "standard", "plain", SMALL_STEPS,
                             "EleutherAI/pythia-small"),
            "pythia-broken": ("pythia", "broken", "standard", "plain", BROKEN_STEPS,
                              "EleutherAI/pythia-broken"),
            "pythia-big": ("pythia", "big", "standard", "plain", BIG_STEPS,
                           "EleutherAI/pythia-big"),
            "pythia-odd": ("pythia", "odd", "standard", "plain", [0], "EleutherAI/pythia-odd"),
            "pythia-shifty": ("pythia", "shifty", "standard", "plain", [0, 1],
                              "EleutherAI/pythia-shifty"),
            "pythia-audit": ("pythia", "audit", "standard", "plain",
                             [0, 1, 2, 8, 16, 32, 64], "EleutherAI/pythia-audit"),
            "pythia-split": ("pythia", "split", "standard", "plain",
                             sorted(SPLIT_SCHEDULE), "EleutherAI/pythia-split"),
            "neox-tiny": ("neox", "tiny", "standard", "plain", [0], None),
        }
        # The symlinked model and step resolve outside every root: never listed. (Whether
        # pythia-leak, a step folder inside a root whose weights file escapes, is listed
        # is left open; reading it is refused, see test_escaping_weights_file.)
        models.pop("pythia-leak", None)
        self.assertEqual(sorted(models), sorted(want))
        self.assertNotIn("pythia-escaped", models)
        for name, (suite, size, variant, layout, steps, repo) in want.items():
            m = models[name]
            self.assertEqual(sorted(m), sorted(["suite", "size", "variant", "run", "name", "repo_id",
                                                "layout", "steps", "missing_from_schedule"]))
            self.assertEqual((m["suite"], m["size"], m["variant"], m["layout"]),
                             (suite, size, variant, layout), name)
            self.assertEqual(m["steps"], steps, name)
            if suite == "pythia":
                self.assertEqual(m["repo_id"], repo, name)
                missing = [s for s in PYTHIA_SCHEDULE if s not in steps]
                self.assertEqual(m["missing_from_schedule"], missing, name)
                self.assertEqual(len(PYTHIA_SCHEDULE), 154)
            else:
                self.assertEqual(m["missing_from_schedule"], [], name)
        self.assertEqual(len(models["pythia-micro-deduped"]["missing_from_schedule"]), 154 - 12)

    def test_models_suite_filter(self):
        only = json.loads(self.ok("models", "--format", "json", "--suite", "neox"))
        self.assertEqual([m["name"] for m in only["models"]], ["neox-tiny"])
        none = json.loads(self.ok("models", "--format", "json", "--suite", "gpt2"))
        self.assertEqual(none, {"models": []})

    # --------------------------------------------------------------------- tensors

    def check_tensors(self, size, variant, step, cli_size=None, cli_variant=None):
        out = json.loads(self.ok("tensors", "--size", cli_size or size, "--variant",
                                 cli_variant or variant, "--step", str(step), "--format",
                                 "json"))
        self.assertEqual((out["suite"], out["size"], out["variant"], out["step"]),
                         ("pythia", size, variant, step))
        header = make_suite.read_header(self.dirs[(size, variant)][step])
        want = sorted(
            ({"name": name, "dtype": e["dtype"], "shape": e["shape"],
              "num_bytes": e["data_offsets"][1] - e["data_offsets"][0],
              "file": os.path.basename(e["file"])} for name, e in header.items()),
            key=lambda t: t["name"])
        self.assertEqual(sorted(out["tensors"], key=lambda t: t["name"]), want)
        return out["tensors"]

    def test_tensors_match_safetensors_headers(self):
        tensors = self.check_tensors("micro", "deduped", 512)
        self.assertEqual(len(tensors), 4 + 2 * 12)  # 2 layers of 12 tensors
        self.check_tensors("micro", "standard", 1000)  # hf-cache layout, BF16
        odd = {t["name"]: t for t in self.check_tensors("odd", "standard", 0)}
        self.assertEqual(odd["ids"]["dtype"], "I64")
        self.assertEqual(odd["empty"]["shape"], [0, 4])
        self.assertEqual(odd["empty"]["num_bytes"], 0)

    def test_tensors_of_sharded_model_name_their_shards(self):
        tensors = self.check_tensors("small", "standard", 512)
        files = {t["file"] for t in tensors}
        self.assertEqual(files, {f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)})
        by_name = {t["name"]: t["file"] for t in tensors}
        self.assertEqual(by_name["gpt_neox.embed_in.weight"], "model-00001-of-00003.safetensors")
        self.assertEqual(by_name["embed_out.weight"], "model-00003-of-00003.safetensors")

    def test_tensors_accepts_aliases_and_upper_case(self):
        self.check_tensors("micro", "deduped", 0, cli_size="MICRO", cli_variant="DD")
        self.check_tensors("micro", "standard", 2000, cli_variant="NDD")

    # --------------------------------------------------------------------- matrix

    def matrix(self, size, variant, *args):
        return json.loads(self.ok("matrix", "--size", size, "--variant", variant, *args,
                                  "--format", "json"))

    def expect_region(self, size, variant, step, tensor, rows, cols):
        """The region as numpy reads it, JSON-style: NaN and infinities as None."""
        a = make_suite.read_tensor(self.dirs[(size, variant)][step], tensor)
        a = a.reshape(1, -1) if a.ndim == 1 else a
        region = a[rows[0]:rows[1], cols[0]:cols[1]].astype(np.float64)
        return [[float(v) if np.isfinite(v) else None for v in row] for row in region]

    def test_matrix_is_the_tensors_region_exactly(self):
        # F16 plain at two steps, the region only.
        out = self.matrix("micro", "deduped", "--steps", "0,1000", "--rows", "3:11",
                          "--cols", "5:20")
        self.assertEqual((out["model"], out["tensor"], out["dtype"]),
                         ("pythia-micro-deduped", "embed_out.weight", "F16"))
        self.assertEqual((out["rows"], out["cols"]), ([3, 11], [5, 20]))
        self.assertEqual([s["step"] for s in out["steps"]], [0, 1000])
        for s in out["steps"]:
            self.assertEqual(s["values"], self.expect_region("micro", "deduped", s["step"],
                                                             "embed_out.weight", (3, 11), (5, 20)))
        shape = out["shape"]
        # BF16 in the Hugging Face cache layout, rows to the end; a sharded checkpoint.
        out = self.matrix("micro", "standard", "--step", "1000", "--rows", f"{shape[0] - 2}:")
        self.assertEqual(out["rows"], [shape[0] - 2, shape[0]])
        self.assertEqual(out["dtype"], "BF16")
        self.assertEqual(out["steps"][0]["values"],
                         self.expect_region("micro", "standard", 1000, "embed_out.weight",
                                            (shape[0] - 2, shape[0]), (0, shape[1])))
        out = self.matrix("small", "standard", "--step", "512", "--rows", "0:4")
        self.assertEqual(out["steps"][0]["values"],
                         self.expect_region("small", "standard", 512, "embed_out.weight",
                                            (0, 4), (0, out["shape"][1])))
        # Every F16 bit pattern (NaN and infinities null) and a 1-D tensor as one row.
        out = self.matrix("odd", "standard", "--step", "0", "--tensor", "f16_all",
                          "--rows", "120:136")
        self.assertEqual(out["steps"][0]["values"],
                         self.expect_region("odd", "standard", 0, "f16_all", (120, 136),
                                            (0, 256)))
        out = self.matrix("odd", "standard", "--step", "0", "--tensor", "f64_vals",
                          "--cols", "2990:")
        self.assertEqual((out["rows"], out["shape"]), ([0, 1], [3002]))
        self.assertEqual(out["steps"][0]["values"],
                         self.expect_region("odd", "standard", 0, "f64_vals", (0, 1),
                                            (2990, 3002)))
        # CSV: one value a line, in the tensor's coordinates.
        csv_text = self.ok("matrix", "--size", "micro", "--variant", "deduped", "--step", "0",
                           "--rows", "1:3", "--cols", "2:4", "--format", "csv")
        want = self.expect_region("micro", "deduped", 0, "embed_out.weight", (1, 3), (2, 4))
        lines = csv_text.splitlines()
        self.assertEqual(lines[0], "step,row,col,value")
        self.assertEqual([(int(r), int(c), float(v)) for _, r, c, v in
                          (l.split(",") for l in lines[1:])],
                         [(1 + i, 2 + j, want[i][j]) for i in range(2) for j in range(2)])

    def test_matrix_plots_and_bad_input(self):
        for ext in ("png", "svg"):
            path = os.path.join(self.base, f"matrix.{ext}")
            self.ok("matrix", "--size", "micro", "--variant", "deduped", "--steps", "0,1000",
                    "--rows", "0:16", "--plot", path)
            self.assertGreater(os.path.getsize(path), 1000)
        self.assert_error(["matrix", "--size", "big", "--step", "0"], "INVALID_ARGUMENT",
                          "rows [0, 50304) x columns [0, 256) is 12877824 values; at most "
                          "4194304 per request")
        self.assert_error(["matrix", "--size", "micro", "--variant", "dd", "--step", "0",
                           "--rows", "0:100000"], "INVALID_ARGUMENT", "rows [0, 100000) is not")
        self.assert_error(["matrix", "--size", "odd", "--step", "0", "--tensor", "ids"],
                          "FAILED_PRECONDITION", "I64")
        self.assert_error(["matrix", "--size", "odd", "--step", "0", "--tensor", "nope"],
                          "NOT_FOUND", "nope")
        self.assert_error(["matrix", "--size", "micro", "--variant", "dd", "--step", "7"],
                          "NOT_FOUND")
        for args, words in ((["--step", "0", "--rows", "5:2"], "--rows \"5:2\""),
                            ([], "--step N or --steps"),
                            (["--step", "0", "--steps", "0,1"], "one of them")):
            self.assert_error(["matrix", "--size", "micro", "--variant", "dd", *args],
                              "INVALID_ARGUMENT", words)

    # --------------------------------------------------------------------- hist, numbers

    def test_hist_auto_range_f16_plain(self):
        frames = self.check_hist("micro", "deduped", "all")
        self.assertEqual(len(frames), len(DD_STEPS))
        self.assertEqual(frames[0]["shape"], [512, 32])
        for f in frames:
            self.assertEqual((f["underflow"], f["overflow"]), (0, 0))
        # lo and hi are the extremes over all steps, each reached by some step.
        self.assertEqual(frames[0]["lo"], min(f["min"] for f in frames))
        self.assertEqual(frames[0]["hi"], max(f["max"] for f in frames))

    def test_hist_auto_range_bf16_hf_cache(self):
        self.check_hist("micro", "standard", "all")
        self.check_hist("micro", "standard", "all", bins=100,
                        tensor="gpt_neox.layers.1.mlp.dense_4h_to_h.weight")

    def test_hist_auto_range_f32_sharded(self):
        self.check_hist("small", "standard", "all")
        self.check_hist("small", "standard", "all", tensor="gpt_neox.embed_in.weight", bins=33)
        self.check_hist("small", "standard", [512], tensor="gpt_neox.layers.0.attention.dense.bias",
                        bins=5)

    def test_hist_zero_width_range_is_widened(self):
        # Layernorm weights are exactly 1 at step 0: numpy's range is [0.5, 1.5].
        frames = self.check_hist("micro", "deduped", [0],
                                 tensor="gpt_neox.layers.0.input_layernorm.weight")
        f = frames[0]
        self.assertEqual((f["lo"], f["hi"], f["mean"], f["std"]), (0.5, 1.5, 1.0, 0.0))
        self.assertEqual(f["counts"][32], 32)
        self.assertIsNone(f["skewness"])
        self.assertIsNone(f["kurtosis"])
        self.check_hist("odd", "standard", [0], tensor="const")

    def test_hist_every_16_bit_pattern(self):
        # All 65536 codes: subnormals, +-0, +-inf and the NaNs of F16 and BF16.
        for tensor, nan in (("f16_all", 2 * 1023), ("bf16_all", 2 * 127)):
            for bins in (64, 65536):
                f = self.check_hist("odd", "standard", [0], tensor=tensor, bins=bins)[0]
                self.assertEqual((f["nan"], f["posinf"], f["neginf"]), (nan, 1, 1), tensor)
                self.assertEqual((f["underflow"], f["overflow"]), (1, 1), tensor)
            self.check_hist("odd", "standard", [0], tensor=tensor, bins=7, rng=(-0.05, 0.05))

    def test_hist_non_finite_f32_and_f64(self):
        f = self.check_hist("odd", "standard", [0], tensor="f32_special")[0]
        self.assertEqual((f["nan"], f["posinf"], f["neginf"]), (3, 2, 1))
        self.assertEqual((f["lo"], f["hi"]), (float(f["min"]), float(f["max"])))
        self.check_hist("odd", "standard", [0], tensor="f32_special", bins=9, rng=(-0.01, 0.02))
        f = self.check_hist("odd", "standard", [0], tensor="f64_vals", bins=1000)[0]
        self.assertEqual((f["dtype"], f["nan"]), ("F64", 1))

    def test_hist_moments_are_numerically_stable(self):
        f = self.check_hist("odd", "standard", [0], tensor="offset", bins=50)[0]
        self.assertAlmostEqual(f["mean"], 100.0, delta=1e-3)
        self.assertLess(f["std"], 2e-3)
        # Layernorm weights: exactly 1 at step 0 (no skewness), spread out later.
        for size, variant in (("micro", "deduped"), ("micro", "standard"), ("small", "standard")):
            frames = self.check_hist(size, variant, "all", bins=16,
                                     tensor="gpt_neox.final_layer_norm.weight")
            self.assertEqual((frames[0]["std"], frames[0]["skewness"]), (0.0, None))
            self.assertGreater(frames[-1]["std"], 0.0)

    def test_hist_empty_tensor(self):
        f = self.check_hist("odd", "standard", [0], tensor="empty", bins=4)[0]
        self.assertEqual((f["lo"], f["hi"], f["n"], f["counts"]), (0.0, 1.0, 0, [0, 0, 0, 0]))
        for key in ("mean", "std", "min", "max", "skewness", "kurtosis"):
            self.assertIsNone(f[key], key)

    def test_hist_explicit_range(self):
        for bins in (7, 1, 65536):
            frames = self.check_hist("micro", "deduped", [0, 8, 1000], bins=bins,
                                     rng=(-0.05, 0.05))
            for f in frames:
                self.assertEqual((f["lo"], f["hi"]), (-0.05, 0.05))
            # The late, bimodal steps spill out of the range on both sides.
            self.assertGreater(frames[-1]["underflow"], 0)
            self.assertGreater(frames[-1]["overflow"], 0)
        self.check_hist("micro", "standard", [0, 2000], bins=7, rng=(-0.05, 0.05))
        self.check_hist("small", "standard", [0, 512], bins=65536, rng=(-0.05, 0.05))
        # A range above every value: all underflow.
        f = self.check_hist("small", "standard", [0], bins=3, rng=(10.0, 20.0))[0]
        self.assertEqual((f["underflow"], f["counts"]), (f["n"], [0, 0, 0]))

    def test_hist_range_edges_follow_numpy(self):
        # Values that sit exactly on bin edges: every F16 code with [-1, 1] in 2048 bins,
        # and BF16 codes with a range whose edges are not exact in binary.
        self.check_hist("odd", "standard", [0], tensor="f16_all", bins=2048, rng=(-1.0, 1.0))
        self.check_hist("odd", "standard", [0], tensor="f16_all", bins=10, rng=(-0.3, 0.7))
        self.check_hist("odd", "standard", [0], tensor="bf16_all", bins=3, rng=(-0.1, 0.1))

    # --------------------------------------------------------------------- formats

    def test_csv_and_table_agree_with_jsonl(self):
        common = ["hist", "--size", "micro", "--variant", "deduped", "--steps", "0,64,1000",
                  "--bins", "80", "--range=-0.2:0.2", "--no-progress"]
        frames = [json.loads(line) for line in self.ok(*common, "--format", "jsonl").splitlines()]
        self.assertEqual(len(frames), 3)
        self.assertGreater(frames[-1]["underflow"] + frames[-1]["overflow"], 0)

        csv = self.ok(*common, "--format", "csv").splitlines()
        self.assertEqual(csv[0], ",".join(CSV_FIELDS + [f"bin{i}" for i in range(80)]))
        self.assertEqual(len(csv), 1 + len(frames))
        for row, f in zip(csv[1:], frames):
            want = [str(f["step"])]
            for key in CSV_FIELDS[1:]:
                v = f[key]
                want.append(str(v) if isinstance(v, int) else exact_text(v))
            want += [str(c) for c in f["counts"]]
            self.assertEqual(row, ",".join(want))
            cells = row.split(",")
            for key, cell in zip(CSV_FIELDS, cells):
                self.assertEqual(float(cell), float(f[key]), key)  # round trips exactly

        table = self.ok(*common, "--format", "table").splitlines()
        self.assertEqual(len(table), 1 + len(frames))
        self.assertTrue(table[0].startswith("    STEP"), table[0])
        self.assertEqual(table[0].split(), ["STEP", "N", "MEAN", "STD", "MIN", "MAX", "SKEW",
                                            "KURT", "HISTOGRAM"])
        for row, f in zip(table[1:], frames):
            want = "%8d %11d %11.4g %11.4g %11.4g %11.4g %9.3f %9.3f  %s" % (
                f["step"], f["n"], f["mean"], f["std"], f["min"], f["max"], f["skewness"],
                f["kurtosis"], sparkline(f["counts"]))
            if f["underflow"] or f["overflow"] or f["nan"]:
                want += "  (under %d, over %d, nan %d)" % (f["underflow"], f["overflow"],
                                                           f["nan"])
            self.assertEqual(row, want)

    def test_csv_of_empty_tensor_prints_nan(self):
        out = self.ok("hist", "--size", "odd", "--tensor", "empty", "--bins", "2", "--format",
                      "csv", "--no-progress").splitlines()
        self.assertEqual(out[1], "0,0,1,0,nan,nan,nan,nan,nan,nan,0,0,0,0,0,0,0")

    # --------------------------------------------------------------------- steps

    def test_step_selection(self):
        frames = self.hist("micro", "deduped", "--steps", "0,4,1000")
        self.assertEqual([f["step"] for f in frames], [0, 4, 1000])
        frames = self.hist("micro", "deduped", "--steps", "1000,0,4,4")
        self.assertEqual([f["step"] for f in frames], [0, 4, 1000])
        frames = self.check_hist("micro", "deduped", "2:100")
        self.assertEqual([f["step"] for f in frames], [2, 4, 8, 16, 32, 64])
        frames = self.hist("micro", "deduped", "--steps", "1000:999999")
        self.assertEqual([f["step"] for f in frames], [1000])
        frames = self.hist("micro", "standard")  # --steps defaults to all
        self.assertEqual([f["step"] for f in frames], HF_STEPS)

    def test_auto_range_covers_only_selected_steps(self):
        few = self.check_hist("micro", "deduped", [0, 1])
        every = self.hist("micro", "deduped")
        lo, hi = auto_range([self.tensor("micro", "deduped", s) for s in DD_STEPS])
        self.assertEqual((every[0]["lo"], every[0]["hi"]), (lo, hi))
        # The bimodal late steps reach further than steps 0 and 1 do.
        self.assertLess(lo, few[0]["lo"])
        self.assertGreater(hi, few[0]["hi"])

    # --------------------------------------------------------------------- errors

    def test_unknown_model(self):
        base = ["hist", "--variant", "deduped"]
        self.assert_error(base + ["--suite", "pythoa", "--size", "micro"], "NOT_FOUND",
                          "pythoa-micro-deduped", "pythia-micro-deduped")
        self.assert_error(base + ["--size", "micr"], "NOT_FOUND", "pythia-micro-deduped")
        self.assert_error(["tensors", "--size", "mikro", "--step", "0"], "NOT_FOUND",
                          "pythia-micro")
        self.assert_error(["hist", "--size", "micro", "--variant", "xyz"], "INVALID_ARGUMENT",
                          '"xyz"', "deduped")

    def test_unknown_steps(self):
        base = ["hist", "--size", "micro", "--variant", "deduped"]
        self.assert_error(base + ["--steps", "3"], "NOT_FOUND", "step 3", "2, 4")
        self.assert_error(base + ["--steps", "0,3,4"], "NOT_FOUND", "step 3", "2, 4")
        self.assert_error(base + ["--steps", "3:3"], "NOT_FOUND", "3:3", "2, 4")
        self.assert_error(base + ["--steps", "1001:1999"], "NOT_FOUND", "1001:1999")
        self.assert_error(["tensors", "--size", "micro", "--variant", "deduped", "--step", "3"],
                          "NOT_FOUND", "2, 4")
        # The escaping symlinked step is not a step of the model.
        self.assert_error(base + ["--steps", "99"], "NOT_FOUND", "step 99")

    def test_unknown_tensor(self):
        self.assert_error(["hist", "--size", "micro", "--variant", "deduped", "--tensor",
                           "embed_out.weigth"], "NOT_FOUND", '"embed_out.weigth"',
                          "embed_out.weight")
        # Sharded models look the tensor up in the index.
        self.assert_error(["hist", "--size", "small", "--tensor", "embed_out.weigth"],
                          "NOT_FOUND", "embed_out.weight")

    def test_bad_bins(self):
        base = ["hist", "--size", "micro", "--variant", "deduped"]
        self.assert_error(base + ["--bins", "0"], "INVALID_ARGUMENT", "65536")
        self.assert_error(base + ["--bins", "65537"], "INVALID_ARGUMENT", "65536", "65537")
        self.assert_error(base + ["--bins", "-3"], "INVALID_ARGUMENT", "65536")

    def test_bad_ranges(self):
        base = ["hist", "--size", "micro", "--variant", "deduped"]
        for rng in ("1:1", "0.5:-0.5", "nan:1", "-inf:1", "0:inf", "-1e308:1e308"):
            self.assert_error(base + [f"--range={rng}"], "INVALID_ARGUMENT", "range")
        for rng in ("abc", "1:2:3", "1", ":1"):
            self.assert_error(base + [f"--range={rng}"], "INVALID_ARGUMENT", f'"{rng}"')

    # ------------------------------------------------------------------- MSD

    def msd(self, size, variant, *extra):
        out = self.ok("msd", "--size", size, "--variant", variant, "--format", "jsonl",
                      *extra)
        return [json.loads(line) for line in out.splitlines()]

    def test_msd_reference_matches_numpy(self):
        for size, variant in (("micro", "deduped"), ("micro", "standard"),
                              ("small", "standard")):
            steps = sorted(self.dirs[(size, variant)])
            for t0 in (steps[0], steps[len(steps) // 2]):
                rows = self.msd(size, variant, "--reference", str(t0))
                self.assertEqual([r["step"] for r in rows], steps)
                w0 = self.tensor(size, variant, t0)
                for r in rows:
                    w = self.tensor(size, variant, r["step"])
                    want = float(np.mean((w - w0) ** 2))
                    self.assertEqual(r["from_step"], t0)
                    self.assertEqual(r["n"], w.size)
                    if want == 0:
                        self.assertEqual(r["msd"], 0.0)
                    else:
                        self.assertLess(abs(r["msd"] - want) / want, 1e-6,
                                        f"{size} {variant} step {r['step']}")

    def test_msd_consecutive_matches_numpy(self):
        size, variant = "micro", "deduped"
        steps = sorted(self.dirs[(size, variant)])
        rows = self.msd(size, variant, "--mode", "consecutive")
        self.assertEqual([r["step"] for r in rows], steps)
        self.assertEqual((rows[0]["msd"], rows[0]["from_step"]), (0.0, steps[0]))
        for prev, r in zip(steps, rows[1:]):
            want = float(np.mean((self.tensor(size, variant, r["step"]) -
                                  self.tensor(size, variant, prev)) ** 2))
            self.assertEqual(r["from_step"], prev)
            self.assertLess(abs(r["msd"] - want) / want, 1e-6)
            self.assertLess(abs(r["rate"] - want / (r["step"] - prev)) / (want / (r["step"] - prev)), 1e-6)

    def test_msd_lag_matches_numpy(self):
        for size, variant in (("micro", "deduped"), ("small", "standard")):
            steps = sorted(self.dirs[(size, variant)])
            rows = self.msd(size, variant, "--mode", "lag")
            tensors = {t: self.tensor(size, variant, t) for t in steps}
            want = {}
            for i, a in enumerate(steps):
                for b in steps[i + 1:]:
                    want.setdefault(b - a, []).append(
                        float(np.mean((tensors[b] - tensors[a]) ** 2)))
            self.assertEqual([r["step"] for r in rows], sorted(want))
            for r in rows:
                tau = r["step"]
                expect = float(np.mean(want[tau]))
                self.assertEqual((r["lag"], r["pairs"]), (tau, len(want[tau])))
                self.assertEqual(r["n"], tensors[steps[0]].size)
                self.assertLess(abs(r["msd"] - expect) / expect, 1e-6,
                                f"{size} {variant} lag {tau}")
        self.assert_error(["msd", "--size", "micro", "--variant", "dd", "--steps", "0",
                           "--mode", "lag"], "INVALID_ARGUMENT", "at least 2 steps")

    # ----------------------------------------------------------- plots

    @staticmethod
    def png_size(path):
        with open(path, "rb") as f:
            head = f.read(24)
        assert head[:8] == b"\x89PNG\r\n\x1a\n", head[:8]
        return struct.unpack(">II", head[16:24])

    def test_plots_are_written_for_each_command(self):
        out = os.path.join(self.base, "plots")
        os.makedirs(out, exist_ok=True)
        one = os.path.join(out, "hist1.png")
        self.ok("hist", "--size", "split", "--plot", one, "--branches", "--format", "csv")
        two = os.path.join(out, "hist2.png")
        rows = self.ok("hist", "--size", "micro", "--variant", "dd", "--compare",
                       "micro:standard", "--plot", two, "--format", "jsonl").splitlines()
        models = {json.loads(r)["model"] for r in rows}
        self.assertEqual(models, {"pythia-micro-deduped", "pythia-micro"})
        w1, h1 = self.png_size(one)
        w2, h2 = self.png_size(two)
        # --compare adds a row: same width, nearly twice the height (one title).
        self.assertEqual(w1, w2)
        self.assertGreater(h2, 1.5 * h1)
        svg = os.path.join(out, "msd.svg")
        self.ok("msd", "--size", "small", "--plot", svg, "--format", "json")
        with open(svg, encoding="utf-8") as f:
            text = f.read()
        self.assertIn("<svg", text)

    def test_unwritable_plot_is_reported_before_any_rpc(self):
        # No server listens at this address: the plot path fails first.
        dead = ["--server", "127.0.0.1:1"]
        for cmd in (["hist", "--size", "micro"], ["msd", "--size", "micro"],
                    ["ppl", "--size", "micro", "--dataset", "x"]):
            r = subprocess.run([GARDEN, *dead, *cmd, "--plot", "/nonexistent/dir/f.png"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertTrue(r.stderr.startswith("garden: NOT_FOUND: /nonexistent/dir/f.png"),
                            r.stderr)
            r = subprocess.run([GARDEN, *dead, *cmd, "--plot", os.path.join(self.base, "f.gif")],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("INVALID_ARGUMENT", r.stderr)
            self.assertIn(".png or .svg", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.base, "f.gif")))

    def test_msd_json_reports_the_peak(self):
        def expected(points):
            msd = [p["msd"] for p in points]
            i = msd.index(max(msd))
            largest = {"step": points[i]["step"], "msd": msd[i]}
            ups = any(b > a for a, b in zip(msd, msd[1:]))
            downs = any(b < a for a, b in zip(msd, msd[1:]))
            trend = ("increasing" if ups and not downs else
                     "decreasing" if downs and not ups else None)
            return {"peak": largest if 0 < i < len(msd) - 1 else None,
                    "largest": largest, "monotonic": trend}

        out = json.loads(self.ok("msd", "--size", "small", "--steps", "all",
                                 "--format", "json"))
        steps = [p["step"] for p in out["points"]]
        best = max(out["points"], key=lambda r: r["msd"])
        # Cut the selection at the largest step: its maximum is then the last point.
        upto = steps[:steps.index(best["step"]) + 1]
        seen_none = False
        for selection in ("all", ",".join(map(str, upto)), ",".join(map(str, upto + steps[-1:]))):
            out = json.loads(self.ok("msd", "--size", "small", "--steps", selection,
                                     "--format", "json"))
            want = expected(out["points"])
            self.assertEqual({k: out[k] for k in want}, want, selection)
            table = self.ok("msd", "--size", "small", "--steps", selection, "--format", "table")
            if want["peak"]:
                self.assertIn(f"peak: step {want['peak']['step']}, msd", table)
            else:
                seen_none = True
                self.assertRegex(table, rf"no peak(, \w+)?: the largest msd \S+ is at the "
                                        rf"(first|last) step {want['largest']['step']}\n")
        self.assertTrue(seen_none)

    def test_msd_bad_input(self):
        self.assert_error(["msd", "--size", "micro", "--variant", "dd", "--steps", "0,1",
                           "--reference", "2"], "INVALID_ARGUMENT",
                          "reference step 2 is not among the selected steps")
        self.assert_error(["msd", "--size", "shifty"], "FAILED_PRECONDITION",
                          "shape [5, 8] at step 1 but [4, 8] at step 0")
        self.assert_error(["msd", "--size", "micro", "--variant", "dd", "--mode",
                           "consecutive", "--reference", "0"], "INVALID_ARGUMENT",
                          "reference mode only")
        self.assert_error(["msd", "--size", "odd", "--tensor", "ids"],
                          "FAILED_PRECONDITION", "I64")

    # ----------------------------------------------------------- bifurcation

    def test_bifurcation_finds_the_planted_onset(self):
        out = json.loads(self.ok("bifurcation", "--size", "split", "--format", "json"))
        self.assertEqual(sorted(out), ["onset", "steps"])
        self.assertEqual(out["onset"], 16)
        steps = out["steps"]
        self.assertEqual([s["step"] for s in steps], sorted(SPLIT_SCHEDULE))
        for s in steps:
            self.assertEqual(sorted(s), sorted(["step", "bc", "modes", "mode_heights", "dip",
                                                "bimodal", "bandwidth"]))
            mu = SPLIT_SCHEDULE[s["step"]]
            self.assertEqual(s["bimodal"], mu >= 1.4, s)
            # Sarle's coefficient from the stored values, as numpy computes it.
            x = self.tensor("split", "standard", s["step"])
            n = x.size
            d = x - x.mean()
            m2, m3, m4 = (d ** 2).mean(), (d ** 3).mean(), (d ** 4).mean()
            g, k = m3 / m2 ** 1.5, m4 / m2 ** 2 - 3
            bc = (g * g + 1) / (k + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
            self.assertAlmostEqual(s["bc"], bc, places=9)
            if mu >= 1.4:
                top = sorted(zip(s["mode_heights"], s["modes"]), reverse=True)[:2]
                left, right = sorted(loc for _, loc in top)
                self.assertLess(abs(left + mu), 0.35 * mu, s)
                self.assertLess(abs(right - mu), 0.35 * mu, s)
        # A longer persistence moves nothing here; a strict dip finds no onset.
        self.assertEqual(json.loads(self.ok("bifurcation", "--size", "split", "--persist",
                                            "4", "--format", "json"))["onset"], 16)
        strict = json.loads(self.ok("bifurcation", "--size", "split", "--min-dip", "0.99",
                                    "--format", "json"))
        self.assertIsNone(strict["onset"])
        table = self.ok("bifurcation", "--size", "split", "--steps", "8:32")
        self.assertIn("onset: step 16", table)

    def test_bifurcation_bad_input(self):
        base = ["bifurcation", "--size", "split"]
        self.assert_error(base + ["--persist", "0"], "INVALID_ARGUMENT", "persist", "0")
        self.assert_error(base + ["--min-dip", "1.5"], "INVALID_ARGUMENT", "min_dip")
        self.assert_error(base + ["--bins", "0"], "INVALID_ARGUMENT", "65536")
        self.assert_error(base + ["--steps", "3"], "NOT_FOUND", "nearest present: 2, 4")

    # ----------------------------------------------------------------- audit

    def test_audit_finds_the_planted_defects(self):
        for extra in ([], ["--all-tensors"]):
            out = json.loads(self.ok("audit", "--size", "audit", "--format", "json", *extra))
            self.assertEqual(out["steps_checked"], 7)
            self.assertEqual(out["tensors_checked"], 1)
            found = sorted((f["kind"], tuple(f["steps"])) for f in out["findings"])
            self.assertEqual(found, sorted([
                ("identical", (32, 64)),
                ("discontinuity", (8, 16)),
                ("discontinuity", (16, 32)),
                ("discontinuity", (8, 16, 32)),
                ("missing", (4,)),
            ]), out)
            for f in out["findings"]:
                self.assertEqual(sorted(f), ["detail", "kind", "score", "steps", "tensor"])
                if f["kind"] == "discontinuity" and len(f["steps"]) == 2:
                    self.assertGreater(f["score"], 3.5)
        # The consecutive MSD the audit reads, checked against numpy.
        rows = self.msd("audit", "standard", "--mode", "consecutive")
        by_step = {r["step"]: r for r in rows}
        r32 = by_step[32]
        self.assertEqual(r32["before_previous_step"], 8)
        want = float(np.mean((self.tensor("audit", "standard", 32) -
                              self.tensor("audit", "standard", 8)) ** 2))
        self.assertLess(abs(r32["msd_before_previous"] - want) / want, 1e-6)
        # A range without the defects has no findings but the missing step.
        out = json.loads(self.ok("audit", "--size", "audit", "--steps", "0:8",
                                 "--format", "json"))
        self.assertEqual([(f["kind"], f["steps"]) for f in out["findings"]],
                         [("missing", [4])])
        table = self.ok("audit", "--size", "audit")
        self.assertIn("identical", table)
        self.assertIn("jumped away and back", table)

    def test_exclude_flagged_leaves_out_copies_and_excursions(self):
        hist = self.hist("audit", "standard", "--exclude-flagged")
        self.assertEqual([f["step"] for f in hist], [0, 1, 2, 8, 32])
        rows = self.msd("audit", "standard", "--exclude-flagged")
        self.assertEqual([r["step"] for r in rows], [0, 1, 2, 8, 32])
        bif = json.loads(self.ok("bifurcation", "--size", "audit", "--exclude-flagged",
                                 "--format", "json"))
        self.assertEqual([s["step"] for s in bif["steps"]], [0, 1, 2, 8, 32])
        # Without the flag nothing is left out; a clean model loses nothing.
        self.assertEqual(len(self.hist("audit", "standard")), 7)
        clean = self.hist("micro", "deduped", "--exclude-flagged")
        self.assertEqual([f["step"] for f in clean], DD_STEPS)

    def test_audit_bad_input(self):
        self.assert_error(["audit", "--size", "audit", "--z", "0"], "INVALID_ARGUMENT",
                          "z_threshold")
        self.assert_error(["audit", "--size", "audit", "--tensor", "nope"], "NOT_FOUND",
                          "nope")

    def test_ranges_too_narrow_for_their_bins(self):
        base = ["hist", "--size", "odd", "--tensor", "tiny", "--bins", "4"]
        self.assert_error(base + ["--range=0:1e-320"], "INVALID_ARGUMENT",
                          "too narrow for 4 bins")
        # The automatic range over [0, 5e-324] is widened as a zero-width one.
        frame = json.loads(self.ok(*base, "--format", "jsonl").splitlines()[0])
        x = np.array([0.0, 0.0, 5e-324])
        lo, hi = -0.5, 0.5 + 5e-324
        self.assertEqual((frame["lo"], frame["hi"]), (lo, hi))
        self.assertEqual(frame["counts"],
                         np.histogram(x, bins=4, range=(lo, hi))[0].tolist())
        self.assertEqual(frame["underflow"] + frame["overflow"], 0)

    def test_tensors_step_is_validated(self):
        base = ["tensors", "--size", "micro", "--variant", "dd"]
        self.assert_error(base + ["--step=-1"], "INVALID_ARGUMENT", '"-1"')
        self.assert_error(base + ["--step", "99999999999999999999"], "INVALID_ARGUMENT",
                          "exceeds the limit")
        self.assert_error(base + ["--step", "0,1"], "INVALID_ARGUMENT", "one step")

    def test_malformed_steps(self):
        base = ["hist", "--size", "micro", "--variant", "deduped"]
        for steps in ("1,,2", "abc", "5:3", "-1", "1:2:3", "1.5", "all,1"):
            self.assert_error(base + [f"--steps={steps}"], "INVALID_ARGUMENT",
                              f'malformed steps "{steps}"')
        self.assert_error(base + ["--steps= "], "INVALID_ARGUMENT", "malformed steps")
        self.assert_error(base + ["--steps", "1099511627777"], "INVALID_ARGUMENT",
                          "exceeds the limit 1099511627776")

    def test_bad_names(self):
        self.assert_error(["hist", "--size", "../etc"], "INVALID_ARGUMENT", "size",
                          '"../etc"')
        self.assert_error(["hist", "--size", "micro", "--tensor", "a/b"], "INVALID_ARGUMENT",
                          "tensor", '"a/b"')
        self.assert_error(["hist", "--suite", "py..thia", "--size", "micro"],
                          "INVALID_ARGUMENT", "suite", '".."')
        self.assert_error(["hist", "--size", "micro", "--tensor", "../model"],
                          "INVALID_ARGUMENT", "tensor")
        self.assert_error(["tensors", "--size", "mi/cro", "--step", "0"], "INVALID_ARGUMENT",
                          "size")
        self.assert_error(["models", "--suite", "a b"], "INVALID_ARGUMENT", "suite")

    def test_usage_errors_exit_2(self):
        for args in (["hist", "--size", "micro", "--format", "xml"],
                     ["models", "--format", "yaml"],
                     ["hist", "--variant", "deduped"],          # --size is required
                     ["tensors", "--size", "micro"],            # --step is required
                     ["hist", "--size", "micro", "--bins", "many"],
                     ["frobnicate"]):
            r = self.garden(*args)
            self.assertEqual(r.returncode, 2, f"{args}: {r.stderr}")
            self.assertEqual(r.stdout, "", args)

    def test_corrupt_checkpoints_are_data_loss(self):
        for step, (path, words) in sorted(self.damaged.items()):
            self.assert_error(["hist", "--size", "broken", "--steps", str(step)], "DATA_LOSS",
                              self.client_path(path), words)
            self.assert_error(["tensors", "--size", "broken", "--step", str(step)],
                              "DATA_LOSS", self.client_path(path), words)
        first = self.client_path(self.damaged[1][0])
        self.assert_error(["hist", "--size", "broken"], "DATA_LOSS", first)
        self.assert_error(["hist", "--size", "broken", "--steps", "1:3", "--range=-1:1"],
                          "DATA_LOSS", first)
        # With an explicit range frames stream as they are ready: step 0 comes out whole,
        # then the error.
        r = self.garden("hist", "--size", "broken", "--range=-1:1", "--format", "jsonl")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(r.stderr.startswith("garden: DATA_LOSS: "), r.stderr)
        self.assertIn(first, r.stderr)
        self.assertEqual([json.loads(l)["step"] for l in r.stdout.splitlines()], [0])
        # The healthy step of that model and the other models still answer.
        self.check_hist("broken", "standard", [0])
        self.check_hist("micro", "deduped", [0, 1])
        listing = json.loads(self.ok("models", "--format", "json"))
        self.assertIn("pythia-broken", [m["name"] for m in listing["models"]])

    def test_escaping_weights_file(self):
        path = os.path.join(self.root_b, "pythia-leak", "step0", "model.safetensors")
        # Clients see the file relative to its root and neither the root nor where
        # the link points; the server's log has both.
        self.assert_error(["hist", "--size", "leak"], "PERMISSION_DENIED",
                          "pythia-leak/step0/model.safetensors resolves to <server path>, "
                          "outside the checkpoint root <root>")
        self.assert_error(["tensors", "--size", "leak", "--step", "0"], "PERMISSION_DENIED",
                          "pythia-leak/step0/model.safetensors")
        self.assertIn(f"{path} resolves to", self.log_tail(200))

    def test_gardend_rejects_bad_roots(self):
        missing = os.path.join(self.base, "no-such-root")
        for args, words in ((["--checkpoints", missing], "is not an existing folder"),
                            ([], "no --checkpoints root given")):
            r = subprocess.run([GARDEND, "--listen", "127.0.0.1:0", *args],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(words, r.stderr)

    def test_non_float_tensor(self):
        self.assert_error(["hist", "--size", "odd", "--tensor", "ids"], "FAILED_PRECONDITION",
                          '"ids"', "I64")
        self.assert_error(["hist", "--size", "odd", "--tensor", "ids", "--range=0:4"],
                          "FAILED_PRECONDITION", "I64")

    # --------------------------------------------------------------------- streams

    def test_cancelled_stream_leaves_server_healthy(self):
        with open(self.log_path, "rb") as f:
            log_start = len(f.read())
        client = subprocess.Popen(
            [GARDEN, "--server", self.addr, "hist", "--size", "big", "--range=-1:1",
             "--bins", "65536", "--format", "jsonl", "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            line = LineReader(client.stdout).read_line(20)
            self.assertIsNotNone(line, "no first frame within 20 s")
            self.assertEqual(json.loads(line)["step"], 0)
        finally:
            client.kill()
            client.communicate(timeout=10)
        start = time.monotonic()
        listing = json.loads(self.ok("models", "--format", "json", timeout=10))
        self.assertLess(time.monotonic() - start, 3.0)
        self.assertIn("pythia-big", [m["name"] for m in listing["models"]])

        pattern = re.compile(r"StreamHistograms pythia-big .*CANCELLED")
        deadline = time.monotonic() + 5
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(log_start)
                new = f.read().decode(errors="replace")
            lines = [l for l in new.splitlines() if "StreamHistograms pythia-big" in l]
            if lines or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), 1, new)
        self.assertRegex(lines[0], pattern)
        # And the next stream on that model runs to the end.
        frames = self.hist("big", "standard", "--steps", "11", "--range=-1:1", "--bins", "8")
        self.assertEqual([f["step"] for f in frames], [11])
        self.assertEqual(frames[0]["n"], 50304 * 256)

    def test_concurrent_clients_agree(self):
        cmd = [GARDEN, "--server", self.addr, "hist", "--size", "big", "--steps", "0:3",
               "--bins", "256", "--format", "jsonl", "--no-progress"]
        outs = []
        for rc, out, err in harness.run_concurrently(cmd, 4, timeout=40):
            self.assertEqual(rc, 0, err)
            outs.append(out)
        self.assertEqual(len(outs[0].splitlines()), 4)
        for out in outs[1:]:
            self.assertEqual(out, outs[0])
        # ... and they are right: the last step against numpy, range over steps 0..3.
        frames = [json.loads(l) for l in outs[0].decode().splitlines()]
        lo = min(float(self.tensor("big", "standard", s).min()) for s in range(4))
        hi = max(float(self.tensor("big", "standard", s).max()) for s in range(4))
        self.assert_frame(frames[3], reference_frame(self.tensor("big", "standard", 3), 256,
                                                     lo, hi), "big step 3")
        for s in range(3):
            self._tensor_cache.pop(("big", "standard", s, DEFAULT_TENSOR), None)

    def test_sigterm_with_open_stream(self):
        log_path = os.path.join(self.base, "gardend-sigterm.log")
        server, port = start_server([self.root_b], log_path,
                                    os.path.join(self.base, "port-sigterm"), threads=1)
        client = None
        try:
            client = subprocess.Popen(
                [GARDEN, "--server", f"127.0.0.1:{port}", "hist", "--size", "big",
                 "--range=-1:1", "--bins", "65536", "--format", "jsonl", "--no-progress"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            reader = LineReader(client.stdout)
            line = reader.read_line(20)
            self.assertIsNotNone(line, "no first frame within 20 s")
            rc, took = harness.stop_server(server, 5)
            self.assertEqual(rc, 0, f"gardend: exit {rc} after {took:.1f} s")
            self.assertLess(took, 5.0)
            out, err = client.communicate(timeout=10)
            lines = 1 + len((reader.buf + out).decode().splitlines())
            if client.returncode == 0:
                self.assertEqual(lines, len(BIG_STEPS))  # it had finished
            else:
                self.assertEqual(client.returncode, 1, err)
                self.assertRegex(err.decode(), r"^garden: [A-Z_]+: ")
                self.assertLess(lines, len(BIG_STEPS))
            with open(log_path, errors="replace") as f:
                log = f.read()
            self.assertIn("shutting down", log)
            self.assertIn("stopped", log)
        finally:
            if client is not None and client.poll() is None:
                client.kill()
                client.wait(timeout=10)
            if server.poll() is None:
                server.kill()
                server.wait(timeout=10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
