#!/usr/bin/python3
"""Integration tests of garden-train: the command-line contract, a run killed with
SIGKILL and resumed (the same bytes as an uninterrupted run), bad input, and gardend
serving what it wrote.

Run as ctest does:
  cd tests/integration && GARDEN_BIN=<build>/bin /usr/bin/python3 -m unittest -v train_test

Trains micro models on the fortunes corpus (/usr/share/games/fortunes, or
$GARDEN_FORTUNES); skips without it. About 15-25 s on 2 cores.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from gardend_harness import start_server, stop_server

BIN = os.environ.get("GARDEN_BIN", os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin"))
TRAIN = os.path.join(BIN, "garden-train")
GARDEND = os.path.join(BIN, "gardend")
GARDEN = os.path.join(BIN, "garden")
CORPUS = os.environ.get("GARDEN_FORTUNES", "/usr/share/games/fortunes")
MODEL = "fortune-micro-deduped"


def train(out, *args, check=True, timeout=120):
    cmd = [TRAIN, "--preset", "micro", "--variant", "deduped", "--seed", "5",
           "--out", out, "--corpus", CORPUS, "--threads", "1", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def tree(root):
    """{relative path: bytes} of every file under root."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


@unittest.skipUnless(os.path.isdir(CORPUS), f"no fortunes corpus at {CORPUS}")
class GardenTrainTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="garden_train_test.")
        self.base = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def test_micro_preset_writes_a_servable_suite(self):
        out = os.path.join(self.base, "out")
        proc = train(out)
        self.assertIn("trained to step 32", proc.stderr)
        model = os.path.join(out, MODEL)
        steps = sorted(int(d[4:]) for d in os.listdir(model) if d.startswith("step"))
        self.assertEqual(steps, [0, 1, 2, 4, 8, 16, 24, 32])
        for step in steps:
            self.assertEqual(sorted(os.listdir(os.path.join(model, f"step{step}"))),
                             ["config.json", "model.safetensors", "tokenizer.json"])
        with open(os.path.join(model, "train.json")) as f:
            record = json.load(f)
        self.assertTrue(record["complete"])
        losses = [c["heldout_loss"] for c in record["checkpoints"]]
        self.assertLess(losses[-1], losses[0] - 0.5)
        self.assertTrue(os.path.exists(os.path.join(out, "fortune-lambada.jsonl")))

        # gardend serves it as any other suite.
        log = os.path.join(self.base, "gardend.log")
        lambada = os.path.join(out, "fortune-lambada.jsonl")
        server, port = start_server(GARDEND, ["--checkpoints", out, "--threads", "1",
                                              "--dataset", f"lambada={lambada}"],
                                    log, os.path.join(self.base, "port"))
        try:
            addr = f"127.0.0.1:{port}"
            listing = json.loads(subprocess.run(
                [GARDEN, "--server", addr, "models", "--suite", "fortune", "--format",
                 "json"], capture_output=True, text=True, check=True,
                timeout=60).stdout)
            self.assertEqual([m["name"] for m in listing["models"]], [MODEL])
            self.assertEqual(listing["models"][0]["steps"], steps)
            gen = json.loads(subprocess.run(
                [GARDEN, "--server", addr, "generate", "--suite", "fortune", "--size",
                 "micro", "--variant", "deduped", "--step", "32", "--prompt", "The cat",
                 "--max-new-tokens", "5", "--greedy", "--format", "json"],
                capture_output=True, text=True, check=True, timeout=60).stdout)
            self.assertEqual(len(gen["ids"]), 5)
            # ... and analysable: MSD, perplexity on its held-out cloze file.
            model_flags = ["--suite", "fortune", "--size", "micro", "--variant", "deduped"]
            msd = [json.loads(line) for line in subprocess.run(
                [GARDEN, "--server", addr, "msd", *model_flags, "--format", "jsonl"],
                capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()]
            self.assertEqual([r["step"] for r in msd], steps)
            self.assertGreater(msd[-1]["msd"], 0)
            ppl = [json.loads(line) for line in subprocess.run(
                [GARDEN, "--server", addr, "ppl", *model_flags, "--steps", "0,32",
                 "--dataset", "lambada", "--limit", "8", "--format", "jsonl"],
                capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()]
            self.assertEqual([(r["step"], r["n"]) for r in ppl], [(0, 8), (32, 8)])
            self.assertLess(ppl[1]["perplexity"], ppl[0]["perplexity"])
        finally:
            rc, _ = stop_server(server, 10)
            self.assertEqual(rc, 0)

    def test_both_variants_in_one_call_then_confirmed_without_changes(self):
        out = os.path.join(self.base, "out")
        train(out, "--variant", "standard,deduped")
        names = ["fortune-micro", "fortune-micro-deduped"]
        self.assertTrue(all(os.path.isdir(os.path.join(out, n)) for n in names))
        tokenizers = set()
        for n in names:
            with open(os.path.join(out, n, "step32", "tokenizer.json"), "rb") as f:
                tokenizers.add(f.read())
        self.assertEqual(len(tokenizers), 1, "both variants share the suite's tokenizer")
        before = tree(out)
        proc = train(out, "--variant", "standard,deduped")
        for n in names:
            self.assertIn(f"{n}: already trained to step 32", proc.stderr)
        self.assertEqual(tree(out), before)

    def test_recipe_flags_are_recorded_and_shape_the_run(self):
        extra = os.path.join(self.base, "licenses")
        os.makedirs(extra)
        with open(os.path.join(extra, "words"), "w") as f:
            f.write("sublicensable indemnification\n" * 20000)
        out = os.path.join(self.base, "out")
        recipe = ["--weight-decay", "0.5", "--warmup", "0.25", "--final-lr", "0.5",
                  "--tokenizer-corpus", extra, "--join-lines", "yes"]
        train(out, *recipe)
        model = os.path.join(out, MODEL)
        with open(os.path.join(model, "train.json")) as f:
            record = json.load(f)
        settings = record["settings"]
        self.assertEqual(settings["optimizer"]["weight_decay"], 0.5)
        self.assertEqual(settings["optimizer"]["warmup_steps"], 8)  # 0.25 of 32
        self.assertEqual(settings["optimizer"]["final_lr_fraction"], 0.5)
        self.assertEqual(settings["tokenizer_corpus"]["dir"], extra)
        self.assertEqual(settings["tokenizer_corpus"]["documents"], 1)
        self.assertTrue(settings["join_lines"])
        rates = {c["step"]: c["learning_rate"] for c in record["checkpoints"]}
        self.assertAlmostEqual(rates[4], 0.003 * 4 / 8)
        self.assertAlmostEqual(rates[8], 0.003)
        self.assertAlmostEqual(rates[32], 0.0015)
        with open(os.path.join(model, "step0", "tokenizer.json")) as f:
            vocab = json.load(f)["model"]["vocab"]
        self.assertIn("\u0120indemnification", vocab)
        # The same flags again: nothing to do. Other flags: other settings.
        proc = train(out, *recipe)
        self.assertIn("already trained to step 32", proc.stderr)
        proc = train(out, *recipe[:-2], check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("FAILED_PRECONDITION", proc.stderr)
        # --help shows the flags and every preset's values.
        help_text = subprocess.run([TRAIN, "--help"], capture_output=True, text=True,
                                   check=True).stdout
        for flag in ("--weight-decay", "--warmup", "--final-lr", "--tokenizer-corpus",
                     "--join-lines"):
            self.assertIn(flag, help_text)
        self.assertIn("--tokenizer-corpus none --join-lines no", help_text)  # micro

    def test_killed_run_resumes_to_the_same_bytes(self):
        args = ["--steps", 400, "--checkpoint-every", 50]
        whole = os.path.join(self.base, "whole")
        train(whole, *args)

        killed = os.path.join(self.base, "killed")
        cmd = [TRAIN, "--preset", "micro", "--variant", "deduped", "--seed", "5",
               "--out", killed, "--corpus", CORPUS, "--threads", "1", *map(str, args)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        marker = os.path.join(killed, MODEL, "step64")
        deadline = time.monotonic() + 60
        while not os.path.exists(marker) and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.assertEqual(proc.returncode, -signal.SIGKILL, "finished before the kill")
        self.assertFalse(os.path.exists(os.path.join(killed, MODEL, "step400")))

        resumed = train(killed, *args)
        self.assertIn("resuming from step", resumed.stderr)
        self.assertEqual(tree(killed), tree(whole))

    def test_bad_input_fails_with_a_message_and_writes_nothing(self):
        out = os.path.join(self.base, "out")
        cases = [
            (["--corpus", os.path.join(self.base, "none")], 1, "NOT_FOUND"),
            (["--vocab-size", "100"], 2, "100 is below the minimum 258"),
            (["--checkpoint-steps", "40"], 2, "checkpoint step 40 is outside [0, steps = 32]"),
            (["--heads", "3"], 2, "not divisible by --heads 3"),
            (["--preset", "huge"], 2, "unknown preset"),
            (["--variant", "both"], 2, "variant"),
            (["--weight-decay", "-1"], 2, "--weight-decay -1 must be in [0, 1)"),
            (["--warmup", "1"], 2, "--warmup 1 must be in [0, 1)"),
            (["--final-lr", "2"], 2, "--final-lr 2 must be in [0, 1]"),
            (["--join-lines", "maybe"], 2, '--join-lines "maybe" is not yes or no'),
            (["--tokenizer-corpus", os.path.join(self.base, "none")], 1,
             "NOT_FOUND: --tokenizer-corpus"),
        ]
        for args, rc, message in cases:
            proc = train(out, *args, check=False)
            self.assertEqual(proc.returncode, rc, (args, proc.stderr))
            self.assertIn(message, proc.stderr, args)
            self.assertFalse(os.path.exists(out), args)

        train(out)
        before = tree(out)
        proc = train(out, "--steps", 40, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("FAILED_PRECONDITION", proc.stderr)
        self.assertIn("steps: 40 here, 32 there", proc.stderr)
        self.assertEqual(tree(out), before)
        proc = train(out, "--steps", 40, "--overwrite")
        self.assertTrue(os.path.isdir(os.path.join(out, MODEL, "step40")))


if __name__ == "__main__":
    unittest.main()
