#!/usr/bin/python3
"""Integration tests of `garden prune` (StreamPrune), the sparsification experiment:
the smallest-magnitude fraction of chosen tensors zeroed in memory, then the cloze
dataset scored as `garden ppl` scores it. Checked against an independent computation:
the weights pruned in numpy (a magnitude threshold, ties at it taken in flat index
order, cross-checked with a stable argsort), then scored with the PyTorch reference
(tests/reference/gpt_neox_ref.py) exactly as lm_test's perplexity test does.

Run as ctest does:
  cd tests/integration && GARDEN_BIN=<build>/bin GARDEN_SOURCE=<repo> \\
      /usr/bin/python3 -m unittest -v prune_test

Needs what lm_test needs (python3-torch, numpy and <shared>/pythia/tokenizer.json);
skips without them. Fixtures (lm_test's configuration: hidden 64, 4 heads, 2 layers,
intermediate 256, vocab 50304, context 128), pythia-lm-deduped:
  step 0     stored F16 (float16 rounding makes many |w| ties)
  step 1000  stored F32
  step 2000  stored F32, every tensor rounded to multiples of half its standard
             deviation: thousands of exact ties at every threshold (and exact zeros),
             so that any other tie rule scores measurably differently
"""

import json
import math
import os
import shutil
import unittest

import gardend_harness as harness
import lm_test
from lm_test import CLOZE_TEXTS, GARDEN, GARDEND, HAVE_TORCH, TOKENIZER

if HAVE_TORCH:
    import numpy as np
    import torch
    from gpt_neox_ref import GptNeoxRef, make_config, random_weights, write_checkpoint

PPL_TOL = 1e-4  # relative, as lm_test's perplexity test
STEPS = {0: (10, "F16"), 1000: (11, "F32"), 2000: (12, "Q")}  # step -> (seed, storage)
DEFAULT_FRACTIONS = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9]


def numpy_prune(w, fraction):
    """`w` (a float32 tensor) with floor(fraction * numel) smallest |w| zeroed: every
    entry below the k-th smallest magnitude, then the entries equal to it in flat index
    order until k are zeroed. Returns (pruned tensor, zeroed flat indices)."""
    a = np.abs(w.numpy().astype(np.float32)).ravel()
    n = a.size
    k = int(math.floor(fraction * n))
    if k == 0:
        return w.clone(), np.zeros(0, dtype=np.int64)
    t = np.partition(a, k - 1)[k - 1]
    below = np.flatnonzero(a < t)
    at = np.flatnonzero(a == t)
    chosen = np.sort(np.concatenate([below, at[:k - below.size]]))
    assert chosen.size == k
    # The same set as a stable ascending sort of |w| takes.
    stable = np.sort(np.argsort(a, kind="stable")[:k])
    assert np.array_equal(chosen, stable)
    flat = w.numpy().astype(np.float32).ravel().copy()
    flat[chosen] = 0
    return torch.from_numpy(flat.reshape(tuple(w.shape))), chosen


def matrices(weights):
    """The default selection: 2-D '.weight' tensors."""
    return [n for n, t in weights.items() if n.endswith(".weight") and t.dim() == 2]


@unittest.skipUnless(HAVE_TORCH, "python3-torch is not installed")
class GardenPruneTest(harness.GardendTestCase):
    maxDiff = 4000

    # lm_test's helpers, as functions of this class (not its tests).
    garden = lm_test.GardenLmTest.garden
    ok = lm_test.GardenLmTest.ok
    json = lm_test.GardenLmTest.json
    assert_error = lm_test.GardenLmTest.assert_error
    reference_cloze = lm_test.GardenLmTest.reference_cloze

    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(TOKENIZER):
            raise unittest.SkipTest(f"{TOKENIZER} is missing (set GARDEN_SHARED to the "
                                    "folder holding pythia/tokenizer.json)")
        harness.skip_unless_built(GARDEN, GARDEND)
        torch.set_num_threads(2)
        cls.token_cache = {}
        cls.set_up_server(GARDEND, "garden-prune-", lambda: [
            "--checkpoints", cls.root, "--threads", "2",
            "--dataset", f"cloze={cls.cloze_path}"])

    @classmethod
    def _write_fixtures(cls):
        cls.cloze_path = lm_test.write_cloze(os.path.join(cls.base, "cloze.jsonl"))
        cls.root = os.path.join(cls.base, "root")
        cls.config = make_config(hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
                                 intermediate_size=256, vocab_size=50304,
                                 max_position_embeddings=lm_test.CONTEXT)
        cls.weights = {}  # step -> the float32 weights the stored ones decode to
        for step, (seed, storage) in STEPS.items():
            weights = random_weights(cls.config, seed=seed)
            if storage == "Q":
                weights = {n: torch.round(t / (t.std() / 2)) * (t.std() / 2)
                           if t.is_floating_point() and t.numel() > 1 else t
                           for n, t in weights.items()}
            dtype = torch.float16 if storage == "F16" else torch.float32
            d = os.path.join(cls.root, "pythia-lm-deduped", f"step{step}")
            cls.weights[step] = write_checkpoint(d, cls.config, weights, dtype=dtype)
            shutil.copyfile(TOKENIZER, os.path.join(d, "tokenizer.json"))

    # --------------------------------------------------------------------- helpers

    def tokens(self, text):
        """garden tokenize's ids (what reference_cloze needs), cached."""
        if not text:
            return []
        if text not in self.token_cache:
            self.token_cache[text] = self.json(
                "tokenize", "--size", "lm", "--variant", "deduped", "--step", "0",
                f"--text={text}")["ids"]
        return self.token_cache[text]

    def prune(self, *args, fmt="jsonl"):
        out = self.ok("prune", "--size", "lm", "--variant", "deduped", "--dataset", "cloze",
                      *args, "--format", fmt)
        if fmt == "jsonl":
            return [json.loads(line) for line in out.splitlines()]
        return out

    def reference(self, step, pruned, texts=CLOZE_TEXTS):
        """(perplexity, accuracy, truncated) of the weights of `step` with `pruned`
        (name -> tensor) substituted, as lm_test's reference computes them."""
        w = dict(self.weights[step])
        w.update(pruned)
        self.refs = {"x": GptNeoxRef(self.config, w)}
        return self.reference_cloze("x", texts)

    def check_point(self, row, step, fraction, names, what):
        """Counts of `row` against floor(fraction * numel), then its perplexity and
        accuracy against the reference on the numpy-pruned weights."""
        self.assertEqual(row["step"], step, what)
        self.assertEqual(row["fraction"], fraction, what)
        want = []
        pruned = {}
        for name in names:
            w = self.weights[step][name]
            p, chosen = numpy_prune(w, fraction)
            self.assertEqual(chosen.size, math.floor(fraction * w.numel()), name)
            pruned[name] = p
            want.append({"name": name, "numel": w.numel(),
                         "zeroed": math.floor(fraction * w.numel())})
        self.assertEqual(row["tensors"], want, what)
        self.assertEqual(row["zeroed"], sum(t["zeroed"] for t in want), what)
        self.assertEqual(row["matched_numel"], sum(t["numel"] for t in want), what)
        ppl, acc, truncated = self.reference(step, pruned)
        self.assertEqual(row["n"], len(CLOZE_TEXTS), what)
        self.assertLess(abs(row["perplexity"] - ppl) / ppl, PPL_TOL,
                        f"{what}: {row['perplexity']} vs reference {ppl}")
        self.assertAlmostEqual(row["accuracy"], acc, places=12, msg=what)
        self.assertEqual(row["truncated"], truncated, what)
        return pruned

    def checkpoint_files(self):
        out = {}
        for d, _, files in os.walk(self.root):
            for f in files:
                st = os.stat(os.path.join(d, f))
                out[os.path.join(d, f)] = (st.st_size, st.st_mtime_ns)
        return out

    # --------------------------------------------------------------------- tests

    def test_fraction_zero_equals_ppl_exactly(self):
        ppl = [json.loads(line) for line in self.ok(
            "ppl", "--size", "lm", "--variant", "deduped", "--dataset", "cloze",
            "--steps", "all", "--format", "jsonl").splitlines()]
        rows = self.prune("--steps", "all", "--fractions", "0.5")
        self.assertEqual([(r["step"], r["fraction"]) for r in rows],
                         [(s, f) for s in sorted(STEPS) for f in (0, 0.5)])
        unpruned = [r for r in rows if r["fraction"] == 0]
        for want, got in zip(ppl, unpruned):
            self.assertEqual(got["zeroed"], 0)
            self.assertTrue(all(t["zeroed"] == 0 for t in got["tensors"]))
            self.assertEqual({k: got[k] for k in want}, want)
        # 0 is always first, and not repeated when given.
        rows = self.prune("--steps", "1000", "--fractions", "0.2,0,0.1", "--limit", "2")
        self.assertEqual([r["fraction"] for r in rows], [0, 0.2, 0.1])

    def test_default_fractions_match_numpy_pruned_reference(self):
        before = self.checkpoint_files()
        rows = self.prune("--steps", "all")
        self.assertEqual([(r["step"], r["fraction"]) for r in rows],
                         [(s, f) for s in sorted(STEPS) for f in DEFAULT_FRACTIONS])
        for row in rows:
            step, f = row["step"], row["fraction"]
            with self.subTest(step=step, fraction=f):
                self.check_point(row, step, f, matrices(self.weights[step]),
                                 f"step {step} fraction {f}")
        # Every fraction scores a different model (the fixtures are random models,
        # so perplexity need not grow with the fraction)...
        for step in (0, 1000):
            curve = [r["perplexity"] for r in rows if r["step"] == step]
            self.assertEqual(len(set(curve)), len(curve), step)
        # ... except that entries already zero are among the smallest and count:
        # over 10% of step 2000's matrices round to 0, so 0.1 zeroes only zeros.
        curve = [r for r in rows if r["step"] == 2000]
        self.assertEqual(curve[1]["perplexity"], curve[0]["perplexity"])
        self.assertEqual(len(set(r["perplexity"] for r in curve)), len(curve) - 1)
        # Nothing was written beside the checkpoints.
        self.assertEqual(self.checkpoint_files(), before)

    def test_ties_are_broken_by_flat_index(self):
        # Step 2000 has thousands of exact ties at every threshold: the lowest flat
        # indices among them are zeroed. Zeroing the highest ones instead gives a
        # perplexity the test tells apart.
        names = matrices(self.weights[2000])
        (row,) = [r for r in self.prune("--steps", "2000", "--fractions", "0.3")
                  if r["fraction"] == 0.3]
        self.check_point(row, 2000, 0.3, names, "ties")
        reversed_ties = {}
        ties = 0
        for name in names:
            w = self.weights[2000][name]
            a = np.abs(w.numpy()).ravel()
            k = math.floor(0.3 * a.size)
            t = np.partition(a, k - 1)[k - 1]
            below, at = np.flatnonzero(a < t), np.flatnonzero(a == t)
            take = k - below.size
            ties += at.size - take
            flat = w.numpy().ravel().copy()
            flat[below] = 0
            flat[at[at.size - take:]] = 0
            reversed_ties[name] = torch.from_numpy(flat.reshape(tuple(w.shape)))
        self.assertGreater(ties, 1000, "the fixture has ties at the threshold")
        other, _, _ = self.reference(2000, reversed_ties)
        self.assertGreater(abs(row["perplexity"] - other) / other, 100 * PPL_TOL)

    def test_tensors_regex(self):
        # Matched anywhere in the name, biases included.
        rows = self.prune("--steps", "1000", "--fractions", "0.5",
                          "--tensors", r"attention\.dense")
        names = ["gpt_neox.layers.0.attention.dense.weight",
                 "gpt_neox.layers.0.attention.dense.bias",
                 "gpt_neox.layers.1.attention.dense.weight",
                 "gpt_neox.layers.1.attention.dense.bias"]
        self.check_point(rows[0], 1000, 0.0, names, "regex, unpruned")
        self.check_point(rows[1], 1000, 0.5, names, "regex")
        rows = self.prune("--steps", "0", "--fractions", "0.7", "--tensors", "embed_out")
        self.check_point(rows[1], 0, 0.7, ["embed_out.weight"], "embed_out")

    def test_formats_and_plot(self):
        plot = os.path.join(self.base, "prune.png")
        doc = json.loads(self.prune("--steps", "0,1000", "--fractions", "0.5,0.25",
                                    "--limit", "2", "--plot", plot, fmt="json"))
        self.assertEqual([(p["step"], p["fraction"]) for p in doc["points"]],
                         [(0, 0), (0, 0.5), (0, 0.25), (1000, 0), (1000, 0.5),
                          (1000, 0.25)])
        with open(plot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        svg = os.path.join(self.base, "prune.svg")
        self.prune("--steps", "0", "--fractions", "0.5", "--limit", "2", "--plot", svg)
        with open(svg, encoding="utf-8") as f:
            text = f.read()
        self.assertIn("<svg", text)
        self.assertIn("</svg>", text)
        csv = self.prune("--steps", "0", "--fractions", "0.5", "--limit", "2", fmt="csv")
        lines = csv.splitlines()
        self.assertEqual(lines[0], "step,fraction,perplexity,accuracy,n,mean_logprob,"
                                   "target_tokens,truncated,zeroed,matched_numel")
        self.assertEqual(len(lines), 3)
        self.assertEqual(lines[1].split(",")[:2], ["0", "0"])
        table = self.prune("--steps", "0", "--fractions", "0.5", "--limit", "2",
                           fmt="table")
        self.assertEqual(table.splitlines()[0].split(),
                         ["STEP", "FRACTION", "PERPLEXITY", "ACCURACY", "ZEROED", "N"])
        self.assertEqual(len(table.splitlines()), 3)

    def test_bad_input(self):
        base = ["prune", "--size", "lm", "--variant", "deduped", "--steps", "0",
                "--dataset", "cloze"]
        self.assert_error(base + ["--fractions", "1"], "INVALID_ARGUMENT", "fraction 1 ",
                          "[0, 1)")
        self.assert_error(base + ["--fractions=-0.1"], "INVALID_ARGUMENT", "fraction -0.1 ",
                          "[0, 1)")
        self.assert_error(base + ["--fractions", "0.5,1.5"], "INVALID_ARGUMENT",
                          "fraction 1.5 ")
        self.assert_error(base + ["--fractions", "0.5,0.5"], "INVALID_ARGUMENT",
                          "fraction 0.5 is given twice")
        self.assert_error(base + ["--fractions", "0.5,x"], "INVALID_ARGUMENT", '"x"')
        self.assert_error(base + ["--fractions", "nan"], "INVALID_ARGUMENT", "fraction nan")
        err = self.assert_error(base + ["--tensors", "attention_dense"], "NOT_FOUND",
                                '"attention_dense"', "closest")
        self.assertIn("attention.dense", err)
        err = self.assert_error(base + ["--tensors", "embed_outt"], "NOT_FOUND",
                                '"embed_outt"')
        self.assertIn("embed_out.weight", err)
        self.assert_error(base + ["--tensors", "(dense"], "INVALID_ARGUMENT",
                          "not a regular expression")
        self.assert_error(["prune", "--size", "lm", "--variant", "deduped", "--steps", "0",
                           "--dataset", "lambada"], "NOT_FOUND", '"lambada"')
        self.assert_error(base + ["--limit", "0"], "INVALID_ARGUMENT", "limit 0")
        self.assert_error(["prune", "--size", "lm", "--variant", "deduped", "--steps", "7",
                           "--dataset", "cloze"], "NOT_FOUND", "7")


if __name__ == "__main__":
    unittest.main(verbosity=2)
