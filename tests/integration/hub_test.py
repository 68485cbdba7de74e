"""The Hugging Face Hub as a checkpoint source, against a mock Hub on loopback.

tests/testing/mock_hub.py serves fixture suites as the real Hub does (refs, file
metadata, 302s to a signed CDN on a second port that refuses Authorization,
ranges, error codes, misbehaviour on demand). The same folders are served to
gardend as local roots, so every analysis over the Hub must equal the same
analysis over local files; the tests also count the bytes the mock sent.
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import unittest

import gardend_harness as harness
from gardend_harness import strip_names

SOURCE = os.environ.get("GARDEN_SOURCE",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("GARDEN_BIN", os.path.join(SOURCE, "build", "bin"))
GARDEND = os.path.join(BIN, "gardend")
GARDEN = os.path.join(BIN, "garden")
SHARED = os.environ.get("GARDEN_SHARED", os.path.join(SOURCE, "..", "shared"))
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "testing"))
import make_suite  # noqa: E402
import mock_hub  # noqa: E402

STEPS = [0, 1, 2, 4, 8, 16]
TOKEN = "hf_garden_test_token_0123456789"
TENSOR = "embed_out.weight"


def bytes_to_unicode():
    """GPT-2's byte-level alphabet: printable characters for every byte."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
            + list(range(ord("\xae"), ord("\xff") + 1)))
    chars, n = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


def byte_tokenizer_json():
    """A byte-level BPE tokenizer.json with no merges: ids 0..255 and <|endoftext|>."""
    alphabet = bytes_to_unicode()
    vocab = {alphabet[b]: b for b in range(256)}
    vocab["<|endoftext|>"] = 256
    return json.dumps({
        "version": "1.0",
        "added_tokens": [{"id": 256, "content": "<|endoftext|>", "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False,
                          "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                          "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": []},
    })




class HubTest(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        harness.skip_unless_built(GARDEN, GARDEND)
        import tempfile
        cls._tmp = tempfile.TemporaryDirectory(prefix="garden-hub-")
        cls.base = os.path.realpath(cls._tmp.name)
        cls.root = os.path.join(cls.base, "local")
        ws = make_suite.write_suite
        for d in ws(cls.root, "pythia", "twin", "standard", STEPS, dtype="F16", seed=5,
                    bifurcate=True).values():
            with open(os.path.join(d, "tokenizer.json"), "w") as f:
                f.write(byte_tokenizer_json())
        for d in ws(cls.root, "pythia", "twinbin", "standard", STEPS[:3], dtype="F16",
                    seed=6, shards=2).values():
            make_suite.save_as_torch(d)
        ws(cls.root, "pythia", "gated", "standard", [0], seed=7)
        repos = {"EleutherAI/pythia-hubtwin": os.path.join(cls.root, "pythia-twin"),
                 "EleutherAI/pythia-hubbin": os.path.join(cls.root, "pythia-twinbin"),
                 "EleutherAI/pythia-hubgated": os.path.join(cls.root, "pythia-gated")}
        cls.hub = mock_hub.MockHub(repos=repos, gated={"EleutherAI/pythia-hubgated"},
                                   token=TOKEN).start()
        cls.servers = []
        cls.token_file = os.path.join(cls.base, "token")
        with open(cls.token_file, "w") as f:
            f.write(TOKEN + "\n")

    @classmethod
    def tearDownClass(cls):
        for proc, _ in cls.servers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        cls.hub.stop()
        cls._tmp.cleanup()

    # --------------------------------------------------------------------- helpers

    def start(self, cache, *extra, local=True, repos=("hubtwin", "hubbin", "hubgated")):
        args = ["--threads", "2", "--hub-endpoint", self.hub.url, "--hub-cache", cache]
        if local:
            args += ["--checkpoints", self.root]
        for r in repos:
            args += ["--hub-repo", f"EleutherAI/pythia-{r}"]
        args += list(extra)
        n = len(self.servers)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env["HOME"] = self.base  # no real token file is ever read
        proc, port = self._start(args, os.path.join(self.base, f"gardend{n}.log"),
                                 os.path.join(self.base, f"port{n}"), env)
        self.servers.append((proc, port))
        return proc, f"127.0.0.1:{port}"

    def _start(self, args, log_path, port_file, env):
        old = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            return harness.start_server(GARDEND, args, log_path, port_file, timeout=30)
        finally:
            os.environ.clear()
            os.environ.update(old)

    def stop(self, proc):
        rc, _ = harness.stop_server(proc, 10)
        self.assertEqual(rc, 0)

    def garden(self, addr, *args, timeout=120):
        return subprocess.run([GARDEN, "--server", addr, *args], capture_output=True,
                              text=True, timeout=timeout)

    def out(self, addr, *args, fmt="json"):
        r = self.garden(addr, *args, "--format", fmt)
        self.assertEqual(r.returncode, 0, f"garden {' '.join(args)}:\n{r.stderr}")
        if fmt == "jsonl":
            return [json.loads(line) for line in r.stdout.splitlines()]
        return json.loads(r.stdout)

    def error(self, addr, args, code, *words):
        r = self.garden(addr, *args)
        self.assertEqual(r.returncode, 1, f"{args}: {r.stdout[:200]!r} {r.stderr!r}")
        self.assertTrue(r.stderr.startswith(f"garden: {code}: "), r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)
        self.assertNotIn(TOKEN, r.stderr)
        return r.stderr

    def hist(self, addr, size, steps="all", tensor=TENSOR):
        return self.out(addr, "hist", "--size", size, "--steps", steps, "--tensor",
                        tensor, "--no-progress", fmt="jsonl")

    def sent(self):
        b = self.hub.stats()["bytes_sent"]
        return b.get("hub", 0) + b.get("cdn", 0)

    def cache(self, name):
        return os.path.join(self.base, "cache-" + name)

    # ----------------------------------------------------------------------- tests

    def test_models_lists_hub_repos_with_their_step_branches(self):
        _, addr = self.start(self.cache("models"))
        models = {m["size"]: m for m in self.out(addr, "models")["models"]}
        self.assertEqual(models["hubtwin"]["layout"], "hub")
        self.assertEqual(models["hubtwin"]["repo_id"], "EleutherAI/pythia-hubtwin")
        self.assertEqual(models["hubtwin"]["steps"], STEPS)
        self.assertEqual(models["twin"]["layout"], "plain")

    def test_every_analysis_equals_local_files(self):
        _, addr = self.start(self.cache("equal"))
        pairs = [("twin", "hubtwin", ["hist", "--bins", "48", "--no-progress"], "jsonl"),
                 ("twin", "hubtwin", ["msd", "--mode", "reference", "--no-progress"], "json"),
                 ("twin", "hubtwin", ["msd", "--mode", "consecutive", "--no-progress"], "json"),
                 ("twin", "hubtwin", ["msd", "--mode", "lag", "--no-progress"], "json"),
                 ("twin", "hubtwin", ["bifurcation", "--no-progress"], "json"),
                 ("twin", "hubtwin", ["audit", "--all-tensors"], "json"),
                 ("twinbin", "hubbin", ["hist", "--no-progress"], "jsonl"),
                 ("twinbin", "hubbin", ["msd", "--no-progress"], "json")]
        for local, hub, args, fmt in pairs:
            with self.subTest(model=hub, command=args[:3]):
                want = strip_names(self.out(addr, args[0], "--size", local, *args[1:], fmt=fmt))
                got = strip_names(self.out(addr, args[0], "--size", hub, *args[1:], fmt=fmt))
                self.assertEqual(got, want)
        for local, hub in (("twin", "hubtwin"), ("twinbin", "hubbin")):
            want = strip_names(self.out(addr, "tensors", "--size", local, "--step", "0"))
            got = strip_names(self.out(addr, "tensors", "--size", hub, "--step", "0"))
            self.assertEqual(got, want)

    def test_a_sweep_moves_only_the_tensors_and_a_second_moves_nothing(self):
        _, addr = self.start(self.cache("bytes"), repos=("hubtwin",), local=False)
        header = make_suite.read_header(os.path.join(self.root, "pythia-twin", "step0"))
        tensor = header[TENSOR]["data_offsets"][1] - header[TENSOR]["data_offsets"][0]
        self.hub.reset_stats()
        first = self.hist(addr, "hubtwin")
        moved = self.sent()
        bound = 1.02 * tensor * len(STEPS) + 128 * 1024 * len(STEPS)
        print(f"\ncold sweep of {len(STEPS)} steps moved {moved:,} bytes; the tensors are "
              f"{tensor * len(STEPS):,}; the bound is {bound:,.0f}")
        self.assertLessEqual(moved, bound)
        self.assertGreaterEqual(moved, tensor * len(STEPS))
        self.hub.reset_stats()
        self.assertEqual(self.hist(addr, "hubtwin"), first)
        self.assertEqual(self.sent(), 0, self.hub.stats()["requests"])

    def test_misbehaving_hub_and_cdn_give_the_same_answers(self):
        _, addr = self.start(self.cache("faults"), repos=("hubtwin",), local=False)
        self.hub.misbehave("503", count=2)
        self.hub.misbehave("drop", count=1, port="cdn")
        self.hub.misbehave("ignore_range", count=1, port="cdn")
        got = self.hist(addr, "hubtwin")
        _, local = self.start(self.cache("faults-local"), repos=())
        self.assertEqual(strip_names(got), strip_names(self.hist(local, "twin")))
        self.hub.clear_misbehaviour()

    def test_a_cold_sweep_shows_the_bytes_it_waits_for(self):
        if shutil.which("script") is None:
            self.skipTest("util-linux's script (a terminal for the progress bar) is missing")
        _, addr = self.start(self.cache("progress"), repos=("hubtwin",), local=False)
        self.hub.misbehave("503", count=2, port="cdn")  # a wait of over a second
        command = " ".join(shlex.quote(a) for a in (
            GARDEN, "--server", addr, "hist", "--size", "hubtwin", "--steps", "all",
            "--format", "jsonl"))
        # The bar is drawn on a terminal only: run the client on one.
        r = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                           text=True, timeout=120)
        self.hub.clear_misbehaviour()
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        self.assertRegex(r.stdout, r"scanning for the common range \([0-9.]+ of "
                                   r"[0-9.]+ MB from the Hub\)")

    def test_kill_during_a_sweep_leaves_no_bad_cache_entry(self):
        cache = self.cache("kill")
        proc, addr = self.start(cache, repos=("hubtwin",), local=False)
        self.hub.misbehave("503", count=4, port="cdn")  # Retry-After: 1 slows it
        sweep = subprocess.Popen([GARDEN, "--server", addr, "hist", "--size", "hubtwin",
                                  "--steps", "all", "--no-progress", "--format", "jsonl"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        proc.kill()
        proc.wait()
        sweep.wait(timeout=30)
        self.hub.clear_misbehaviour()
        extracts = os.path.join(cache, "garden", "extracts")
        _, addr = self.start(cache, repos=("hubtwin",), local=False)
        got = self.hist(addr, "hubtwin")
        _, local = self.start(self.cache("kill-local"), repos=())
        self.assertEqual(strip_names(got), strip_names(self.hist(local, "twin")))
        for folder, _, files in os.walk(extracts):
            for name in files:
                if ".tmp." in name:  # the killed process's: never read
                    continue
                offset, size = map(int, name.split("-"))
                self.assertEqual(os.path.getsize(os.path.join(folder, name)), size + 8)

    def test_offline_serves_what_is_cached_and_names_what_is_not(self):
        cache = self.cache("offline")
        proc, addr = self.start(cache, repos=("hubtwin",), local=False)
        want = self.hist(addr, "hubtwin", steps="0,4")
        self.stop(proc)
        self.hub.reset_stats()
        _, addr = self.start(cache, "--offline", repos=("hubtwin",), local=False)
        self.assertEqual(self.hist(addr, "hubtwin", steps="0,4"), want)
        # Step 8 was never fetched: its file list is not in the cache.
        self.error(addr, ("hist", "--size", "hubtwin", "--steps", "8", "--no-progress"),
                   "UNAVAILABLE", "offline", "pythia-hubtwin", "the list of files")
        self.assertEqual(self.hub.stats()["requests"], [])

    def test_gated_repo_needs_the_token(self):
        _, anonymous = self.start(self.cache("gated-anon"), repos=("hubgated",), local=False)
        self.error(anonymous, ("hist", "--size", "hubgated", "--steps", "0", "--no-progress"),
                   "UNAUTHENTICATED", "EleutherAI/pythia-hubgated", "HF_TOKEN")
        wrong = os.path.join(self.base, "wrong-token")
        with open(wrong, "w") as f:
            f.write("hf_not_the_token\n")
        _, refused = self.start(self.cache("gated-wrong"), "--hf-token-file", wrong,
                                repos=("hubgated",), local=False)
        self.error(refused, ("hist", "--size", "hubgated", "--steps", "0", "--no-progress"),
                   "PERMISSION_DENIED", "EleutherAI/pythia-hubgated")
        _, allowed = self.start(self.cache("gated-ok"), "--hf-token-file", self.token_file,
                                repos=("hubgated",))
        self.assertEqual(strip_names(self.hist(allowed, "hubgated", steps="0")),
                         strip_names(self.hist(allowed, "gated", steps="0")))
        with open(os.path.join(self.base, f"gardend{len(self.servers) - 1}.log")) as f:
            self.assertNotIn(TOKEN, f.read())

    def test_model_rpcs_fill_a_cache_the_hub_cache_layout_reads(self):
        cache = self.cache("layout")
        proc, addr = self.start(cache, repos=("hubtwin",))
        args = ("--step", "16", "--text", "Garden of forking paths", "--top-k", "5")
        want = strip_names(self.out(addr, "logits", "--size", "twin", *args))
        self.assertEqual(strip_names(self.out(addr, "logits", "--size", "hubtwin", *args)),
                         want)
        text = "--text=The garden of forking paths"
        for command in (["attention", "--step", "16", text, "--layer", "1"],
                        ["generate", "--step", "16", "--prompt=Garden", "--max-new-tokens", "6"],
                        ["unmask", "--steps", "16", text]):
            with self.subTest(command=command[0]):
                self.assertEqual(
                    strip_names(self.out(addr, command[0], "--size", "hubtwin", *command[1:])),
                    strip_names(self.out(addr, command[0], "--size", "twin", *command[1:])))
        self.stop(proc)
        # The whole files a model load downloads are the Hugging Face cache's:
        # gardend reads that folder back as a local hub-cache root.
        repo = os.path.join(cache, "models--EleutherAI--pythia-hubtwin")
        with open(os.path.join(repo, "refs", "step16")) as f:
            commit = f.read().strip()
        link = os.path.join(repo, "snapshots", commit, "model.safetensors")
        self.assertTrue(os.path.islink(link))
        self.assertFalse(os.path.isabs(os.readlink(link)))
        self.assertEqual(os.path.basename(os.path.dirname(os.path.realpath(link))), "blobs")
        self.hub.reset_stats()
        proc, port = self._start(["--checkpoints", cache],
                                 os.path.join(self.base, "gardend-cache.log"),
                                 os.path.join(self.base, "port-cache"), dict(os.environ))
        self.servers.append((proc, port))
        local = f"127.0.0.1:{port}"
        models = {m["size"]: m for m in self.out(local, "models")["models"]}
        self.assertEqual(models["hubtwin"]["layout"], "hf-cache")
        self.assertEqual(models["hubtwin"]["steps"], [16])
        self.assertEqual(strip_names(self.out(local, "logits", "--size", "hubtwin", *args)),
                         want)
        self.assertEqual(self.hub.stats()["requests"], [])


if __name__ == "__main__":
    unittest.main()
