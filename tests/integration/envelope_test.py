"""Training runs as a dimension (PolyPythias' pythia-160m-seedN): run names in
`garden models`, --run and --compare @RUN on the analyses, and `garden envelope`
against numpy over a model with a main run and three seeds, one of which lacks a
step. The runs' unembedding matrices are drawn here with numpy (F32), and the seeds
plant a bimodal split at different steps, so each run has its own onset."""
import json
import math
import os
import subprocess
import unittest

import numpy as np

import gardend_harness as harness
from integration_test import write_safetensors

SOURCE = os.environ.get("GARDEN_SOURCE",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("GARDEN_BIN", os.path.join(SOURCE, "build", "bin"))
GARDEND = os.path.join(BIN, "gardend")
GARDEN = os.path.join(BIN, "garden")
MODEL = ["--suite", "pythia", "--size", "env", "--variant", "standard"]
STEPS = [0, 1, 2, 4, 8, 16]
# run -> first step of its planted split (None: stays unimodal); seed3 lacks step 16.
RUNS = {"": None, "seed1": 4, "seed2": 8, "seed3": 2}


def moments(w):
    w = np.asarray(w, dtype=np.float64).ravel()
    m = w.mean()
    d = w - m
    m2, m3, m4 = np.mean(d ** 2), np.mean(d ** 3), np.mean(d ** 4)
    return {"mean": m, "std": math.sqrt(m2), "skewness": m3 / m2 ** 1.5,
            "kurtosis": m4 / m2 ** 2 - 3}


class EnvelopeTest(harness.GardendTestCase):
    @classmethod
    def setUpClass(cls):
        harness.skip_unless_built(GARDEND, GARDEN)
        cls.set_up_server(GARDEND, "garden-envelope-", lambda: [
            "--threads", "2", "--checkpoints", cls.root])

    @classmethod
    def _write_fixtures(cls):
        cls.root = os.path.join(cls.base, "root")
        cls.weights = {}
        for k, (run, split) in enumerate(RUNS.items()):
            rng = np.random.default_rng(100 + k)
            base = rng.standard_normal((400, 16))
            sign = np.where(rng.random(400) < 0.5, -1.0, 1.0)[:, None]
            name = "pythia-env" + (f"-{run}" if run else "")
            cls.weights[run] = {}
            for step in STEPS:
                if run == "seed3" and step == 16:
                    continue
                mu = 0.0 if split is None or step < split else 4.0 + step / 4
                w = (0.02 * (base + mu * sign + 0.1 * step * rng.standard_normal(base.shape))
                     ).astype("<f4")
                cls.weights[run][step] = w
                write_safetensors(os.path.join(cls.root, name, f"step{step}", "model.safetensors"),
                                  [("embed_out.weight", "F32", w.shape, w.tobytes())])

    def garden(self, *args):
        return subprocess.run([GARDEN, "--server", self.addr, *args], capture_output=True,
                              text=True, timeout=300)

    def ok(self, *args):
        r = self.garden(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def envelope(self, metric, *args):
        out = json.loads(self.ok("envelope", *MODEL, "--metric", metric, *args,
                                 "--format", "json"))
        self.assertEqual(out["metric"], metric)
        return out

    def expected(self, per_run):
        """numpy's envelope of {run: {step: value}}."""
        steps = sorted({s for values in per_run.values() for s in values})
        points = []
        for s in steps:
            v = np.array([values[s] for values in per_run.values() if s in values])
            points.append({"step": s, "mean": v.mean(), "min": v.min(), "max": v.max(),
                           "std": v.std(), "runs": len(v)})
        return points

    def assert_points(self, got, want, rel=1e-9, abs_tol=1e-12):
        self.assertEqual([p["step"] for p in got], [p["step"] for p in want])
        for g, w in zip(got, want):
            self.assertEqual(g["runs"], w["runs"], g)
            for key in ("mean", "min", "max", "std"):
                self.assertTrue(math.isclose(g[key], w[key], rel_tol=rel, abs_tol=abs_tol),
                                f"step {g['step']} {key}: {g[key]!r} != {w[key]!r}")

    def test_models_lists_every_run(self):
        models = json.loads(self.ok("models", "--format", "json"))["models"]
        names = {(m["size"], m["run"]) for m in models}
        self.assertEqual(names, {("env", run) for run in RUNS})
        table = self.ok("models")
        for name in ("pythia-env-seed1", "pythia-env-seed2", "pythia-env-seed3"):
            self.assertIn(name, table)

    def test_run_selects_that_run(self):
        frames = [json.loads(line) for line in self.ok(
            "hist", *MODEL, "--run", "seed2", "--steps", "0,8", "--format", "jsonl").splitlines()]
        self.assertEqual([f["step"] for f in frames], [0, 8])
        for f in frames:
            want = moments(self.weights["seed2"][f["step"]])
            self.assertTrue(math.isclose(f["std"], want["std"], rel_tol=1e-9), f)
        # The same checkpoint through --compare @RUN: one row per run.
        rows = [json.loads(line) for line in self.ok(
            "msd", *MODEL, "--steps", "0,4", "--compare", "env@seed1", "--format",
            "jsonl").splitlines()]
        self.assertEqual([r["model"] for r in rows],
                         ["pythia-env", "pythia-env", "pythia-env-seed1", "pythia-env-seed1"])
        w = self.weights["seed1"]
        want = np.mean((w[4].astype(np.float64) - w[0]) ** 2)
        self.assertTrue(math.isclose(rows[3]["msd"], want, rel_tol=1e-9), rows[3])

    def test_moment_envelopes_match_numpy(self):
        for metric in ("mean", "std", "skewness", "kurtosis"):
            with self.subTest(metric=metric):
                out = self.envelope(metric, "--steps", "all")
                want = self.expected({run: {s: moments(w)[metric] for s, w in steps.items()}
                                      for run, steps in self.weights.items()})
                self.assert_points(out["points"], want)
        # A step only some runs have: the point says how many.
        out = self.envelope("std", "--steps", "all")
        self.assertEqual(out["points"][-1], {**out["points"][-1], "step": 16, "runs": 3})

    def test_msd_is_each_runs_own_from_its_first_selected_step(self):
        out = self.envelope("msd", "--steps", "1:16")
        want = {}
        for run, steps in self.weights.items():
            first = min(s for s in steps if s >= 1)
            want[run] = {s: float(np.mean((w.astype(np.float64) - steps[first]) ** 2))
                         for s, w in steps.items() if s >= 1}
        self.assert_points(out["points"], self.expected(want))

    def test_onsets_and_bc_are_each_runs_bifurcation(self):
        out = self.envelope("bc", "--steps", "all")
        bc, onsets = {}, {}
        for run in RUNS:
            args = ["--run", run] if run else []
            b = json.loads(self.ok("bifurcation", *MODEL, *args, "--format", "json"))
            bc[run] = {s["step"]: s["bc"] for s in b["steps"]}
            onsets[run or "main"] = b["onset"]
        self.assert_points(out["points"], self.expected(bc))
        self.assertEqual({o["run"]: o["onset"] for o in out["onsets"]}, onsets)
        self.assertEqual([o["model"] for o in out["onsets"]],
                         ["pythia-env", "pythia-env-seed1", "pythia-env-seed2",
                          "pythia-env-seed3"])
        # The planted splits: the main run never, each seed from its own step.
        self.assertIsNone(onsets["main"])
        self.assertEqual({r: onsets[r] for r in ("seed1", "seed2", "seed3")},
                         {"seed1": 4, "seed2": 8, "seed3": 2})

    def test_formats_and_plot(self):
        rows = [json.loads(line) for line in self.ok(
            "envelope", *MODEL, "--metric", "std", "--format", "jsonl").splitlines()]
        self.assertEqual([r["step"] for r in rows[:len(STEPS)]], STEPS)
        self.assertEqual([r["run"] for r in rows[len(STEPS):]],
                         ["main", "seed1", "seed2", "seed3"])
        csv = self.ok("envelope", *MODEL, "--metric", "std", "--format", "csv")
        points, onsets = csv.split("\n\n")
        self.assertEqual(points.splitlines()[0], "step,mean,min,max,std,runs")
        self.assertEqual(len(points.splitlines()), 1 + len(STEPS))
        self.assertEqual(onsets.splitlines()[0], "run,model,onset")
        self.assertIn("seed2,pythia-env-seed2,8", onsets)
        self.assertIn("main,pythia-env,\n", onsets + "\n")
        plot = os.path.join(self.base, "band.png")
        self.ok("envelope", *MODEL, "--metric", "bc", "--plot", plot)
        with open(plot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(plot), 10000)

    def test_bad_input(self):
        r = self.garden("hist", *MODEL, "--run", "seedling")
        self.assertEqual(r.returncode, 1)
        self.assertIn("INVALID_ARGUMENT", r.stderr)
        self.assertIn("seedN, weight-seedN or data-seedN", r.stderr)
        r = self.garden("hist", *MODEL, "--run", "seed9")
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)
        r = self.garden("envelope", *MODEL, "--metric", "std", "--run", "seed1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("INVALID_ARGUMENT: --run seed1: envelope spans every run", r.stderr)
        r = self.garden("envelope", "--size", "nothing", "--metric", "std")
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND: no run of pythia-nothing", r.stderr)
        r = self.garden("envelope", *MODEL, "--metric", "alpha")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--metric", r.stderr)


if __name__ == "__main__":
    unittest.main()
