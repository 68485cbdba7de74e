"""Checkpoints as Pythia's step revisions hold them: torch.save files.

Every suite here is written twice from the same seed, once as safetensors and
once converted with torch.save (scripts/make_suite.py save_as_torch:
pytorch_model.bin, or shards + pytorch_model.bin.index.json, with Pythia's
uint8/F32 buffers and biases saved as views into one shared storage), in the
plain and the Hugging Face cache layouts. Every analysis must give the same
answer on both (histograms bit-identical, MSD within 1e-12 relative), and
damaged or hostile .bin files must be precise errors that leave the server
serving.

Needs Debian's python3-torch (skipped without it).
"""

import json
import os
import shutil
import subprocess
import sys
import unittest
import zipfile

import numpy as np

import gardend_harness as harness
from gardend_harness import strip_names

SOURCE = os.environ.get("GARDEN_SOURCE",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("GARDEN_BIN", os.path.join(SOURCE, "build", "bin"))
GARDEND = os.path.join(BIN, "gardend")
GARDEN = os.path.join(BIN, "garden")
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
import make_suite  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

STEPS = [0, 1, 2, 4, 8, 16, 32]
HF_STEPS = [0, 8, 64]
SHARED_BIAS = "gpt_neox.layers.1.mlp.dense_h_to_4h.bias"  # a view at an offset
# Keys that name the model rather than describe the result.




def close(a, b, rel=1e-12):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rel) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)):
        return a == b or abs(a - b) <= rel * max(abs(a), abs(b))
    return a == b


def rewrite_zip(path, change, add=None):
    """Rebuilds a torch.save zip with `change(name, data) -> data | None`
    (None drops the entry), stored entries, the original order; `add` maps
    entry names (after the prefix folder) to the bytes of new entries."""
    with zipfile.ZipFile(path) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    prefix = entries[0][0].split("/")[0]
    os.remove(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            data = change(name, data)
            if data is not None:
                z.writestr(name, data)
        for name, data in (add or {}).items():
            z.writestr(f"{prefix}/{name}", data)


class Hostile:
    """Pickles as a call of os.system: what a malicious checkpoint holds."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class TorchFormatTest(harness.GardendTestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        if torch is None:
            raise unittest.SkipTest("python3-torch is not installed (scripts/setup)")
        harness.skip_unless_built(GARDEN, GARDEND)
        cls.set_up_server(GARDEND, "garden-torch-", lambda: [
            "--threads", "2", "--checkpoints", cls.root])

    @classmethod
    def _write_fixtures(cls):
        cls.root = os.path.join(cls.base, "root")
        ws = make_suite.write_suite
        ws(cls.root, "pythia", "twin", "standard", STEPS, dtype="F16", seed=5,
           bifurcate=True)
        for d in ws(cls.root, "pythia", "twinbin", "standard", STEPS, dtype="F16",
                    seed=5, bifurcate=True).values():
            make_suite.save_as_torch(d)
        ws(cls.root, "pythia", "hftwin", "standard", HF_STEPS, layout="hf",
           dtype="BF16", seed=6, shards=2)
        for d in ws(cls.root, "pythia", "hftwinbin", "standard", HF_STEPS, layout="hf",
                    dtype="BF16", seed=6, shards=2).values():
            make_suite.save_as_torch(d)
        # A copied checkpoint (the defect the audit finds) in both formats.
        for name, weights in (("twin", "model.safetensors"), ("twinbin", "pytorch_model.bin")):
            base = os.path.join(cls.root, f"pythia-{name}")
            shutil.copyfile(os.path.join(base, "step8", weights),
                            os.path.join(base, "step16", weights))
        # Both formats in one checkpoint, with different values: safetensors wins.
        both = ws(cls.root, "pythia", "both", "standard", [0], seed=7)[0]
        other = ws(os.path.join(cls.base, "other"), "pythia", "both", "standard", [0],
                   seed=8)[0]
        make_suite.save_as_torch(other)
        shutil.copyfile(os.path.join(other, "pytorch_model.bin"),
                        os.path.join(both, "pytorch_model.bin"))
        cls._write_damaged()

    @classmethod
    def _write_damaged(cls):
        dirs = make_suite.write_suite(cls.root, "pythia", "badbin", "standard",
                                      [0, 1, 2, 3, 4, 5], seed=9)
        sharded = make_suite.write_suite(cls.root, "pythia", "badshard", "standard",
                                         [0, 1], seed=9, shards=2)
        for d in list(dirs.values()) + list(sharded.values()):
            make_suite.save_as_torch(d)
        cls.pwned = os.path.join(cls.base, "PWNED")
        bins = {s: os.path.join(d, "pytorch_model.bin") for s, d in dirs.items()}
        os.truncate(bins[1], os.path.getsize(bins[1]) // 2)
        hostile = torch.serialization.pickle.dumps(Hostile(f"touch {cls.pwned}"),
                                                   protocol=2)
        rewrite_zip(bins[2], lambda n, d: hostile if n.endswith("/data.pkl") else d)
        # torch 1.13 writes no byteorder entry (little-endian); newer ones do.
        rewrite_zip(bins[3], lambda n, d: d, add={"byteorder": b"big"})
        rewrite_zip(bins[4], lambda n, d: None if "/data/" in n and n.endswith("/0")
                    else d)
        torch.save({"w": torch.ones(2)}, bins[5], _use_new_zipfile_serialization=False)
        # The index puts embed_out.weight into the first shard, which lacks it.
        index_path = os.path.join(sharded[1], "pytorch_model.bin.index.json")
        with open(index_path) as f:
            index = json.load(f)
        index["weight_map"]["embed_out.weight"] = "pytorch_model-00001-of-00002.bin"
        with open(index_path, "w") as f:
            json.dump(index, f)

    # --------------------------------------------------------------------- helpers

    def garden(self, *args, timeout=120):
        return subprocess.run([GARDEN, "--server", self.addr, *args], capture_output=True,
                              text=True, timeout=timeout)

    def ok(self, *args):
        r = self.garden(*args)
        self.assertEqual(r.returncode, 0, f"garden {' '.join(args)}:\n{r.stderr}")
        return r.stdout

    def json(self, *args):
        return json.loads(self.ok(*args, "--format", "json"))

    def jsonl(self, *args):
        return [json.loads(line) for line in self.ok(*args, "--format", "jsonl").splitlines()]

    def error(self, args, code, *substrings):
        r = self.garden(*args)
        self.assertEqual(r.returncode, 1, f"{args}: {r.stdout[:200]!r} {r.stderr!r}")
        self.assertTrue(r.stderr.startswith(f"garden: {code}: "), r.stderr)
        for s in substrings:
            self.assertIn(s, r.stderr)
        return r.stderr

    def both(self, command, *args, sizes=("twin", "twinbin"), fmt="json"):
        get = self.json if fmt == "json" else self.jsonl
        quiet = () if command == "audit" else ("--no-progress",)
        return [strip_names(get(command, "--size", size, *quiet, *args))
                for size in sizes]

    # ----------------------------------------------------------------------- tests

    def test_tensors_list_the_bin_files_and_their_buffers(self):
        st = {t["name"]: t for t in self.json("tensors", "--size", "twin", "--step", "4")["tensors"]}
        pt = {t["name"]: t for t in self.json("tensors", "--size", "twinbin", "--step", "4")["tensors"]}
        for name, t in st.items():
            self.assertEqual((pt[name]["dtype"], pt[name]["shape"], pt[name]["num_bytes"]),
                             (t["dtype"], t["shape"], t["num_bytes"]), name)
            self.assertEqual(t["file"], "model.safetensors")
            self.assertEqual(pt[name]["file"], "pytorch_model.bin")
        extra = {n: (t["dtype"], t["shape"]) for n, t in pt.items() if n not in st}
        self.assertEqual(extra["gpt_neox.layers.0.attention.bias"], ("U8", [1, 1, 2048, 2048]))
        self.assertEqual(extra["gpt_neox.layers.1.attention.masked_bias"], ("F32", []))
        self.assertEqual(extra["gpt_neox.layers.0.attention.rotary_emb.inv_freq"][0], "F32")
        self.assertEqual(len(extra), 3 * 2)

    def test_sharded_hub_cache_bin_names_its_shards(self):
        tensors = self.json("tensors", "--size", "hftwinbin", "--step", "64")["tensors"]
        files = {t["file"] for t in tensors}
        self.assertEqual(files, {"pytorch_model-00001-of-00002.bin",
                                 "pytorch_model-00002-of-00002.bin"})
        models = {m["size"]: m for m in self.json("models")["models"]}
        self.assertEqual(models["hftwinbin"]["layout"], "hf-cache")
        self.assertEqual(models["hftwinbin"]["steps"], HF_STEPS)

    def test_safetensors_is_preferred_where_both_exist(self):
        tensors = self.json("tensors", "--size", "both", "--step", "0")["tensors"]
        self.assertEqual({t["file"] for t in tensors}, {"model.safetensors"})
        hist = self.jsonl("hist", "--size", "both", "--steps", "0", "--no-progress")
        want = make_suite.read_tensor(os.path.join(self.root, "pythia-both", "step0",
                                                   "model.safetensors"), "embed_out.weight")
        self.assertEqual(hist[0]["n"], want.size)
        self.assertAlmostEqual(hist[0]["mean"], float(want.astype(np.float64).mean()),
                               delta=1e-12)

    def test_histograms_are_bit_identical(self):
        for tensor in ("embed_out.weight", SHARED_BIAS):
            with self.subTest(tensor=tensor):
                st, pt = self.both("hist", "--tensor", tensor, fmt="jsonl")
                self.assertEqual(st, pt)
                self.assertEqual(len(st), len(STEPS))
        st, pt = self.both("hist", "--bins", "128", sizes=("hftwin", "hftwinbin"),
                           fmt="jsonl")
        self.assertEqual(st, pt)
        self.assertEqual(st[0]["dtype"], "BF16")

    def test_shared_storage_view_holds_its_own_values(self):
        hist = self.jsonl("hist", "--size", "twinbin", "--steps", "32", "--tensor",
                          SHARED_BIAS, "--no-progress")[0]
        want = make_suite.read_tensor(os.path.join(self.root, "pythia-twin", "step32"),
                                      SHARED_BIAS).astype(np.float64)
        self.assertEqual(hist["n"], want.size)
        self.assertEqual(hist["min"], float(want.min()))
        self.assertEqual(hist["max"], float(want.max()))
        self.assertAlmostEqual(hist["mean"], float(want.mean()), delta=1e-12)

    def test_msd_agrees_in_every_mode(self):
        for mode in ("reference", "consecutive", "lag"):
            with self.subTest(mode=mode):
                st, pt = self.both("msd", "--mode", mode)
                self.assertTrue(close(st, pt), f"{st}\n{pt}")

    def test_bifurcation_agrees(self):
        st, pt = self.both("bifurcation")
        self.assertEqual(st, pt)

    def test_audit_finds_the_copied_checkpoint_in_either_format(self):
        st, pt = self.both("audit")
        self.assertEqual(st, pt)
        copies = [f for f in pt["findings"] if f["kind"] == "identical"]
        self.assertEqual([(f["tensor"], f["steps"]) for f in copies],
                         [("embed_out.weight", [8, 16])])
        # Across the formats: the hash is of the tensor's bytes, not the file's.
        self.assertEqual(copies[0]["detail"],
                         [f for f in st["findings"] if f["kind"] == "identical"][0]["detail"])
        # Every parameter, not the buffers only the .bin holds (they never change).
        st, pt = self.both("audit", "--all-tensors")
        self.assertEqual(st, pt)
        copies = [f for f in pt["findings"] if f["kind"] == "identical"]
        self.assertEqual({tuple(f["steps"]) for f in copies}, {(8, 16)})
        self.assertEqual(pt["tensors_checked"],
                         len(make_suite.tensor_specs(make_suite.model_config("micro"))))

    def test_damaged_and_hostile_files_are_precise_errors(self):
        cases = [
            (1, "DATA_LOSS", ["pytorch_model.bin"]),
            (2, "FAILED_PRECONDITION", ["posix", "system", "data.pkl", "offset"]),
            (3, "FAILED_PRECONDITION", ["big-endian"]),
            (4, "DATA_LOSS", ["storage", "has no archive entry"]),
            (5, "FAILED_PRECONDITION", ["legacy", "not a zip"]),
        ]
        for step, code, words in cases:
            with self.subTest(step=step):
                self.error(("hist", "--size", "badbin", "--steps", str(step),
                            "--no-progress"), code, *words)
                self.error(("tensors", "--size", "badbin", "--step", str(step)), code)
        self.assertFalse(os.path.exists(self.pwned), "the pickle's os.system ran")
        # The rest is served.
        self.assertEqual(len(self.jsonl("hist", "--size", "badbin", "--steps", "0",
                                        "--no-progress")), 1)

    def test_index_naming_a_tensor_its_shard_lacks_is_data_loss(self):
        self.error(("hist", "--size", "badshard", "--steps", "1", "--no-progress"),
                   "DATA_LOSS", "pytorch_model.bin.index.json", "embed_out.weight",
                   "pytorch_model-00001-of-00002.bin")
        self.assertEqual(len(self.jsonl("hist", "--size", "badshard", "--steps", "0",
                                        "--no-progress")), 1)


if __name__ == "__main__":
    unittest.main()
