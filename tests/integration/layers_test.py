"""garden layers against an independent numpy computation: moments, norms and
sparsity of every matrix, its singular values (numpy.linalg.svd) and the spectral
statistics defined in common/stats/spectrum.h, the power-law fit written here from
its definition. Fixtures: matrices built from chosen singular values, heavy-tailed
(Student-t) entries, an F16 embedding, one matrix large enough that gardend takes
its spectrum from the Gram matrix, and a step that repeats another's bytes."""
import json
import math
import os
import sys
import unittest

import numpy as np

import gardend_harness as harness
from integration_test import write_safetensors

SOURCE = os.environ.get("GARDEN_SOURCE",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("GARDEN_BIN", os.path.join(SOURCE, "build", "bin"))
GARDEND = os.path.join(BIN, "gardend")
GARDEN = os.path.join(BIN, "garden")
MODEL = ["--suite", "pythia", "--size", "spec", "--variant", "standard"]
METRICS = ["n", "mean", "std", "rms", "max_abs", "frobenius", "sparsity", "spectral_norm",
           "stable_rank", "effective_rank", "alpha", "alpha_weighted", "ks_distance", "xmin",
           "num_spikes"]


def power_law(eigenvalues):
    """The fit as specified: candidates every eigenvalue but the largest, the MLE alpha
    of the tail, the KS distance, the smallest distance (ties: the smaller x_min)."""
    x = np.sort(np.asarray([v for v in eigenvalues if v > 0], dtype=np.float64))
    best = None
    for i in range(len(x) - 1):
        if i > 0 and x[i] == x[i - 1]:
            continue
        tail = x[i:]
        s = np.sum(np.log(tail / x[i]))
        if not s > 0:
            continue
        k = len(tail)
        alpha = 1 + k / s
        d = np.max(np.abs(np.arange(1, k + 1) / k - (1 - (tail / x[i]) ** (1 - alpha))))
        if best is None or d < best[2]:
            best = (alpha, x[i], d)
    return best


def reference(w):
    """Every metric of matrix w (float64), from numpy."""
    w = np.asarray(w, dtype=np.float64)
    rows, cols = w.shape
    big, small = max(rows, cols), min(rows, cols)
    a = np.abs(w)
    out = {"n": w.size, "mean": w.mean(), "std": w.std(), "rms": math.sqrt(np.mean(w * w)),
           "max_abs": a.max(), "frobenius": math.sqrt(np.sum(w * w)),
           "sparsity": {"1e-3": np.mean(a < 1e-3 * a.max()),
                        "1e-2": np.mean(a < 1e-2 * a.max())}}
    sigma = np.linalg.svd(w, compute_uv=False)
    out["spectral_norm"] = sigma.max()
    out["stable_rank"] = np.sum(w * w) / sigma.max() ** 2
    p = sigma / sigma.sum()
    out["effective_rank"] = math.exp(-np.sum(p[p > 0] * np.log(p[p > 0])))
    lam = sigma ** 2 / big
    alpha, xmin, d = power_law(lam)
    out.update(alpha=alpha, xmin=xmin, ks_distance=d, alpha_weighted=alpha * math.log10(lam.max()))
    edge = w.var() * (1 + math.sqrt(small / big)) ** 2
    out["num_spikes"] = int(np.sum(lam > edge))
    return out


def with_singular_values(rng, rows, cols, sigma):
    u, _ = np.linalg.qr(rng.standard_normal((rows, len(sigma))))
    v, _ = np.linalg.qr(rng.standard_normal((cols, len(sigma))))
    return (u * sigma) @ v.T


class LayersTest(harness.GardendTestCase):
    @classmethod
    def setUpClass(cls):
        harness.skip_unless_built(GARDEND, GARDEN)
        cls.set_up_server(GARDEND, "garden-layers-", lambda: [
            "--threads", "2", "--checkpoints", cls.root])

    @classmethod
    def _write_fixtures(cls):
        cls.root = os.path.join(cls.base, "root")
        rng = np.random.default_rng(14)
        sigma = np.concatenate([[9.0, 7.0, 5.0], np.geomspace(2.0, 0.01, 29)])
        qkv = with_singular_values(rng, 96, 32, sigma).astype("<f4")
        mlp = (rng.standard_t(2.5, size=(128, 32)) * 0.02).astype("<f4")
        embed = (rng.standard_normal((200, 32)) * 0.05).astype("<f2")
        out0 = (rng.standard_normal((32, 200)) * 0.03).astype("<f4")
        big = (rng.standard_normal((4100, 1024)) * 0.01).astype("<f2")  # > 4 Mi entries
        mid = (rng.standard_normal((512, 256)) * 0.02).astype("<f4")  # > 64 Ki: auto's Gram
        norm = np.ones(32, dtype="<f4")
        cls.matrices = {0: {}, 1: {}}
        for step in (0, 1):
            out = out0 if step == 0 else (out0 + 0.01 * rng.standard_normal(out0.shape)).astype("<f4")
            tensors = [("embed_out.weight", "F32", out.shape, out),
                       ("gpt_neox.embed_in.weight", "F16", embed.shape, embed),
                       ("gpt_neox.layers.0.attention.query_key_value.weight", "F32", qkv.shape, qkv),
                       ("gpt_neox.layers.0.input_layernorm.weight", "F32", norm.shape, norm),
                       ("gpt_neox.layers.1.mlp.dense_h_to_4h.weight", "F32", mlp.shape, mlp),
                       ("gpt_neox.layers.2.mlp.dense_4h_to_h.weight", "F16", big.shape, big),
                       ("gpt_neox.layers.3.attention.dense.weight", "F32", mid.shape, mid)]
            write_safetensors(os.path.join(cls.root, "pythia-spec", f"step{step}",
                                           "model.safetensors"),
                              [(n, d, s, a.tobytes()) for n, d, s, a in tensors])
            cls.matrices[step] = {n: a for n, _, s, a in tensors if len(s) == 2}

    def garden(self, *args):
        import subprocess
        return subprocess.run([GARDEN, "--server", self.addr, *args], capture_output=True,
                              text=True, timeout=300)

    def records(self, *args):
        r = self.garden("layers", *MODEL, *args, "--format", "jsonl")
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines()]

    def assert_close(self, got, want, rel, what):
        if isinstance(want, dict):
            self.assertEqual(set(got), set(want), what)
            for k in want:
                self.assert_close(got[k], want[k], rel, f"{what}.{k}")
        elif isinstance(want, int):
            self.assertEqual(got, want, what)
        else:
            self.assertTrue(math.isclose(got, want, rel_tol=rel, abs_tol=1e-300),
                            f"{what}: {got!r} != {want!r}")

    def test_every_metric_matches_numpy(self):
        records = self.records("--steps", "all")
        kinds = {"embed_out.weight": (-1, "embed_out"), "gpt_neox.embed_in.weight": (-1, "embed_in"),
                 "gpt_neox.layers.0.attention.query_key_value.weight": (0, "qkv"),
                 "gpt_neox.layers.1.mlp.dense_h_to_4h.weight": (1, "mlp_in"),
                 "gpt_neox.layers.2.mlp.dense_4h_to_h.weight": (2, "mlp_out"),
                 "gpt_neox.layers.3.attention.dense.weight": (3, "attn_out")}
        # Steps ascending, tensors by name; the 1-D layer norm left out.
        self.assertEqual([(r["step"], r["tensor"]) for r in records],
                         [(s, n) for s in (0, 1) for n in sorted(kinds)])
        for r in records:
            w = self.matrices[r["step"]][r["tensor"]]
            what = f"step {r['step']} {r['tensor']}"
            self.assertEqual((r["layer"], r["kind"]), kinds[r["tensor"]], what)
            self.assertEqual(r["shape"], list(w.shape), what)
            want = reference(w)
            gram = w.size > 1 << 16
            self.assertEqual(r["spectrum_method"], "gram" if gram else "svd", what)
            for m in METRICS:
                # Exact accumulations agree to rounding; an SVD to LAPACK's accuracy; the
                # Gram matrix squares the condition number.
                rel = 1e-12 if m in ("n", "mean", "std", "rms", "max_abs", "frobenius",
                                     "sparsity") else (1e-7 if gram else 1e-9)
                self.assert_close(r[m], want[m], rel, f"{what} {m}")
        # The planted spectrum: three spikes above the bulk, the rank of the decay.
        qkv = next(r for r in records if r["kind"] == "qkv")
        self.assertAlmostEqual(qkv["spectral_norm"], 9.0, places=5)
        self.assertEqual(qkv["num_spikes"], 3)

    def test_exact_spectrum(self):
        # The matrix auto takes from the Gram matrix, by LAPACK's SVD.
        tensor = "gpt_neox.layers.3.attention.dense.weight"
        for step in (0, 1):
            [r] = self.records("--steps", str(step), "--tensors", r"layers\.3\.",
                               "--spectrum", "exact")
            self.assertEqual(r["spectrum_method"], "svd")
            want = reference(self.matrices[step][tensor])
            for m in ("spectral_norm", "stable_rank", "effective_rank", "alpha", "xmin",
                      "ks_distance", "alpha_weighted", "num_spikes"):
                self.assert_close(r[m], want[m], 1e-9, f"exact {m}")
        # Past the exact method's limit: refused, naming the tensor, its size and the limit.
        r = self.garden("layers", *MODEL, "--steps", "0", "--tensors", "dense_4h_to_h",
                        "--spectrum", "exact")
        self.assertEqual(r.returncode, 1)
        self.assertIn("RESOURCE_EXHAUSTED", r.stderr)
        for part in ("gpt_neox.layers.2.mlp.dense_4h_to_h.weight", "4100 x 1024", "4198400",
                     "4194304"):
            self.assertIn(part, r.stderr)
        # Without spectral metrics nothing is refused.
        self.assertEqual(len(self.records("--steps", "0", "--tensors", "dense_4h_to_h",
                                          "--spectrum", "exact", "--metrics", "std")), 1)
        self.assertEqual(self.garden("layers", *MODEL, "--spectrum", "svd").returncode, 2)

    def test_metrics_and_tensors_select(self):
        # "layers.[0-2]" also matches the layer norm, which is left out.
        self.assertEqual(len(self.records("--steps", "0", "--tensors", r"layers\.[0-2]\.")), 3)
        records = self.records("--steps", "0", "--tensors", "mlp", "--metrics", "mean,std")
        self.assertEqual([r["tensor"] for r in records],
                         ["gpt_neox.layers.1.mlp.dense_h_to_4h.weight",
                          "gpt_neox.layers.2.mlp.dense_4h_to_h.weight"])
        for r in records:
            self.assertEqual(set(r), {"step", "tensor", "layer", "kind", "shape", "mean", "std"})
        r = self.garden("layers", *MODEL, "--steps", "0", "--tensors", "embed_out",
                        "--metrics", "n,sparsity,alpha", "--format", "csv")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "step,tensor,layer,kind,rows,cols,n,sparsity_1e-3,"
                                   "sparsity_1e-2,alpha,spectrum_method")
        cells = lines[1].split(",")
        want = reference(self.matrices[0]["embed_out.weight"])
        self.assertEqual(cells[:7], ["0", "embed_out.weight", "-1", "embed_out", "32", "200",
                                     "6400"])
        self.assertAlmostEqual(float(cells[9]), want["alpha"], places=9)

    def test_compare_names_each_model(self):
        r = self.garden("layers", *MODEL, "--steps", "0", "--tensors", "embed_out",
                        "--metrics", "mean", "--compare", "spec:standard", "--format", "jsonl")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([x["model"] for x in rows], ["pythia-spec", "pythia-spec"])

    def test_plot(self):
        for ext in ("png", "svg"):
            path = os.path.join(self.base, f"layers.{ext}")
            r = self.garden("layers", *MODEL, "--steps", "all", "--metrics", "alpha,stable_rank",
                            "--plot", path, "--plot-metric", "stable_rank")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertGreater(os.path.getsize(path), 1000)
        r = self.garden("layers", *MODEL, "--steps", "0", "--metrics", "mean",
                        "--plot", os.path.join(self.base, "x.png"))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("--plot-metric alpha must be one of the metrics asked for", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.base, "x.png")))

    def test_esd_gives_the_eigenvalues_and_draws_them(self):
        name = "gpt_neox.layers.0.attention.query_key_value.weight"
        path = os.path.join(self.base, "esd.png")
        records = self.records("--steps", "all", "--esd", name, "--plot", path)
        self.assertEqual([(r["step"], r["tensor"]) for r in records], [(0, name), (1, name)])
        for r in records:
            w = self.matrices[r["step"]][name].astype(np.float64)
            want = np.linalg.svd(w, compute_uv=False) ** 2 / max(w.shape)
            self.assertEqual(len(r["eigenvalues"]), len(want))
            for got, exp in zip(r["eigenvalues"], want):
                self.assertTrue(math.isclose(got, exp, rel_tol=1e-9, abs_tol=1e-15), (got, exp))
        self.assertGreater(os.path.getsize(path), 1000)
        r = self.garden("layers", *MODEL, "--steps", "0", "--esd", name, "--tensors", "mlp")
        self.assertEqual(r.returncode, 1)
        self.assertIn("give --esd or --tensors", r.stderr)

    def test_a_repeated_request_is_cached(self):
        import time
        self.records("--steps", "all")
        start = time.monotonic()
        again = self.records("--steps", "all")
        self.assertEqual(len(again), 12)
        self.assertLess(time.monotonic() - start, 2.0)

    def test_bad_input(self):
        for args, code, words in (
                (["--tensors", "("], "INVALID_ARGUMENT", 'is not a regular expression'),
                (["--tensors", "nothing_like_this"], "NOT_FOUND", "the closest:"),
                (["--tensors", "atention.dense"], "NOT_FOUND",
                 "the closest: gpt_neox.layers.3.attention.dense.weight"),
                (["--tensors", "layernorm"], "FAILED_PRECONDITION", "matches no 2-D float matrix"),
                (["--metrics", "mean,beauty"], "INVALID_ARGUMENT", 'unknown metric "beauty"'),
                (["--steps", "7"], "NOT_FOUND", "7")):
            steps = [] if "--steps" in args else ["--steps", "0"]
            r = self.garden("layers", *MODEL, *steps, *args)
            self.assertEqual(r.returncode, 1, (args, r.stdout))
            self.assertTrue(r.stderr.startswith(f"garden: {code}: "), (args, r.stderr))
            self.assertIn(words, r.stderr)
        self.assertIsNone(self.server.poll())


if __name__ == "__main__":
    unittest.main()
