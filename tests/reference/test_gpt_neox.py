"""Checks Garden's C++ GPT-NeoX (through gpt_neox_tool) against gpt_neox_ref.py.

Needs GARDEN_BIN (the build's bin directory) and Debian's python3-torch; skips
cleanly without torch.
"""

import json
import os
import subprocess
import tempfile
import unittest

try:
    import torch
    from gpt_neox_ref import (GptNeoxRef, make_config, random_weights,
                              write_checkpoint)
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

BIN = os.environ.get("GARDEN_BIN", os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin"))
TOOL = os.path.join(BIN, "gpt_neox_tool")
THREADS = "2"
LOGIT_TOL = 1e-4
NEW_TOKENS = 32

# (name, config kwargs, stored dtype). Head dims 8, 10, 9, 9: odd ones with
# rotary dims int(9 * 0.25) = 2 and int(9 * 0.5) = 4; vocabularies prime.
CASES = [
    ("parallel_rot025", dict(hidden_size=32, num_attention_heads=4,
                             num_hidden_layers=2, intermediate_size=80,
                             vocab_size=1009, rotary_pct=0.25,
                             use_parallel_residual=True), "F32"),
    ("sequential_rot100", dict(hidden_size=40, num_attention_heads=4,
                               num_hidden_layers=3, intermediate_size=72,
                               vocab_size=997, rotary_pct=1.0,
                               use_parallel_residual=False), "F32"),
    ("odd_head_dim_sequential", dict(hidden_size=36, num_attention_heads=4,
                                     num_hidden_layers=2, intermediate_size=100,
                                     vocab_size=331, rotary_pct=0.25,
                                     use_parallel_residual=False,
                                     hidden_act="gelu_new"), "F32"),
    ("odd_head_dim_parallel_f16", dict(hidden_size=27, num_attention_heads=3,
                                       num_hidden_layers=2,
                                       intermediate_size=61, vocab_size=503,
                                       rotary_pct=0.5,
                                       use_parallel_residual=True), "F16"),
    ("sequential_bf16", dict(hidden_size=32, num_attention_heads=2,
                             num_hidden_layers=2, intermediate_size=50,
                             vocab_size=211, rotary_pct=0.25,
                             use_parallel_residual=False), "BF16"),
]


def run_tool(*args, check=True):
    proc = subprocess.run([TOOL, "--threads", THREADS, *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"gpt_neox_tool {args} failed ({proc.returncode}):"
                             f" {proc.stderr}")
    return proc


def read_floats(path, shape):
    with open(path, "rb") as f:
        data = f.read()
    return torch.frombuffer(bytearray(data), dtype=torch.float32).view(*shape)


@unittest.skipUnless(HAVE_TORCH, "python3-torch is not installed "
                     "(apt-get install python3-torch)")
class GptNeoxReferenceTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(TOOL):
            raise unittest.SkipTest(f"{TOOL} not built")
        torch.set_num_threads(int(THREADS))
        cls.tmp = tempfile.TemporaryDirectory(prefix="gpt_neox_test_")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def checkpoint(self, name, config, weights, dtype=None, **kw):
        d = os.path.join(self.tmp.name, name)
        dtype = dtype or torch.float32
        decoded = write_checkpoint(d, config, weights, dtype=dtype, **kw)
        return d, decoded

    def test_matches_reference(self):
        max_diff_seen = 0.0
        for seed, (name, kwargs, stored) in enumerate(CASES):
            with self.subTest(case=name):
                config = make_config(**kwargs)
                weights = random_weights(config, seed=100 + seed)
                dtype = {"F32": torch.float32, "F16": torch.float16,
                         "BF16": torch.bfloat16}[stored]
                d, decoded = self.checkpoint(name, config, weights, dtype,
                                             align=(seed % 2 == 0))
                ref = GptNeoxRef(config, decoded)
                g = torch.Generator().manual_seed(seed)
                prompt = torch.randint(0, config["vocab_size"], (12,),
                                       generator=g).tolist()
                ids = ",".join(map(str, prompt))
                full = os.path.join(d, "logits.bin")
                cached = os.path.join(d, "cached.bin")
                attn = os.path.join(d, "attn.bin")
                out = json.loads(run_tool(
                    "--checkpoint", d, "--ids", ids, "--logits_out", full,
                    "--cached_logits_out", cached, "--greedy", NEW_TOKENS,
                    "--attention_layer", 1, "--attention_out", attn).stdout)
                no_cache = json.loads(run_tool(
                    "--checkpoint", d, "--ids", ids, "--greedy", NEW_TOKENS,
                    "--no_cache").stdout)

                want, _, want_attn = ref.forward([prompt], attention_layer=1)
                want = want[0]
                shape = (len(prompt), config["vocab_size"])
                got = read_floats(full, shape)
                diff = float((got - want).abs().max())
                max_diff_seen = max(max_diff_seen, diff)
                self.assertLess(diff, LOGIT_TOL, "logits")
                got_cached = read_floats(cached, shape)
                self.assertLess(float((got_cached - got).abs().max()), 1e-5,
                                "KV-cache logits differ from full forward")
                heads = config["num_attention_heads"]
                got_attn = read_floats(attn, (heads, len(prompt), len(prompt)))
                self.assertLess(float((got_attn - want_attn[0]).abs().max()),
                                1e-5, "attention probabilities")

                want_tokens, want_lp = ref.greedy(prompt, NEW_TOKENS)
                self.assertEqual(out["greedy"]["tokens"], want_tokens)
                self.assertEqual(no_cache["greedy"]["tokens"], want_tokens)
                for a, b in zip(out["greedy"]["logprobs"], want_lp):
                    self.assertAlmostEqual(a, b, delta=1e-4)
                # The reference's own cache agrees with its no-cache path.
                self.assertEqual(ref.greedy(prompt, 8, use_cache=False)[0],
                                 want_tokens[:8])
        print(f"\nmax |logit difference| vs reference: {max_diff_seen:.3g}")

    def test_torch_bin_checkpoint_matches_reference(self):
        # Pythia's step revisions are torch.save files: the same weights read
        # from pytorch_model.bin give the reference's logits, and exactly the
        # logits of their safetensors copy.
        config = make_config(hidden_size=32, num_attention_heads=4,
                             num_hidden_layers=2, intermediate_size=64,
                             vocab_size=300)
        weights = random_weights(config, seed=11)
        prompt = [7, 250, 3, 99, 42, 1]
        ids = ",".join(map(str, prompt))
        logits = {}
        for fmt in ("bin", "safetensors"):
            d, decoded = self.checkpoint(f"format-{fmt}", config, weights,
                                         torch.float16, fmt=fmt)
            out = os.path.join(d, "logits.bin")
            run_tool("--checkpoint", d, "--ids", ids, "--logits_out", out)
            logits[fmt] = read_floats(out, (len(prompt), config["vocab_size"]))
        self.assertTrue(os.path.exists(os.path.join(
            self.tmp.name, "format-bin", "pytorch_model.bin")))
        want, _, _ = GptNeoxRef(config, decoded).forward([prompt])
        self.assertLess(float((logits["bin"] - want[0]).abs().max()), LOGIT_TOL)
        self.assertTrue(torch.equal(logits["bin"], logits["safetensors"]))

    def test_sampling(self):
        config = make_config(hidden_size=32, num_attention_heads=4,
                             num_hidden_layers=2, intermediate_size=64,
                             vocab_size=257)
        weights = random_weights(config, seed=7)
        d, decoded = self.checkpoint("sampling", config, weights)
        ref = GptNeoxRef(config, decoded)
        prompt = [5, 17, 33, 2]
        ids = ",".join(map(str, prompt))

        def sample(seed, *extra):
            return json.loads(run_tool(
                "--checkpoint", d, "--ids", ids, "--sample", 24,
                "--temperature", 2.0, "--seed", seed, *extra).stdout)["sample"]

        a, b, c = sample(1), sample(1), sample(2)
        self.assertEqual(a["tokens"], b["tokens"])
        self.assertNotEqual(a["tokens"], c["tokens"])
        # Log-probabilities are the model's own (temperature 1, unfiltered).
        logits, _, _ = ref.forward([prompt + a["tokens"]])
        lp = torch.log_softmax(logits[0].double(), -1)
        for i, (t, got) in enumerate(zip(a["tokens"], a["logprobs"])):
            self.assertAlmostEqual(got, float(lp[len(prompt) - 1 + i, t]),
                                   delta=1e-4)
        # top_k = 1 is greedy whatever the seed and temperature.
        greedy, _ = ref.greedy(prompt, 24)
        self.assertEqual(sample(3, "--top_k", 1)["tokens"], greedy)
        # A tiny nucleus keeps only the likeliest token: greedy again.
        self.assertEqual(sample(4, "--top_p", 1e-6)["tokens"], greedy)

    def test_missing_weight(self):
        config = make_config(hidden_size=16, num_attention_heads=2,
                             num_hidden_layers=2, intermediate_size=32,
                             vocab_size=50)
        weights = random_weights(config, seed=3)
        missing = "gpt_neox.layers.1.mlp.dense_4h_to_h.bias"
        d, _ = self.checkpoint("missing", config, weights, drop=(missing,))
        proc = run_tool("--checkpoint", d, "--ids", "1,2,3", "--greedy", 2,
                        check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("FAILED_PRECONDITION", proc.stderr)
        self.assertIn(missing, proc.stderr)

        bad = "gpt_neox.layers.0.attention.query_key_value.weight"
        d, _ = self.checkpoint("misshaped", config, weights,
                               replace={bad: torch.zeros(48, 15)})
        proc = run_tool("--checkpoint", d, "--ids", "1", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("FAILED_PRECONDITION", proc.stderr)
        self.assertIn(bad, proc.stderr)
        self.assertIn("[48, 15]", proc.stderr)
        self.assertIn("[48, 16]", proc.stderr)

    def test_bad_inputs(self):
        config = make_config(hidden_size=16, num_attention_heads=2,
                             num_hidden_layers=1, intermediate_size=32,
                             vocab_size=50, max_position_embeddings=16)
        weights = random_weights(config, seed=4)
        d, _ = self.checkpoint("limits", config, weights)
        proc = run_tool("--checkpoint", d, "--ids", "1,2,3,4,5,6,7,8,9,10",
                        "--greedy", 7, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("INVALID_ARGUMENT", proc.stderr)
        self.assertIn("max_position_embeddings = 16", proc.stderr)
        proc = run_tool("--checkpoint", d, "--ids", "1,50", "--greedy", 1,
                        check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("INVALID_ARGUMENT", proc.stderr)
        # Exactly at the limit is fine.
        run_tool("--checkpoint", d, "--ids", "1,2,3,4,5,6,7,8,9,10",
                 "--greedy", 6)

        tied = dict(config, tie_word_embeddings=True)
        d, _ = self.checkpoint("tied", tied, weights)
        proc = run_tool("--checkpoint", d, "--ids", "1", check=False)
        self.assertIn("FAILED_PRECONDITION", proc.stderr)
        self.assertIn("tie_word_embeddings", proc.stderr)

        odd = dict(config, rotary_pct=0.4)  # int(8 * 0.4) = 3 rotary dims
        d, _ = self.checkpoint("odd_rotary", odd, weights)
        proc = run_tool("--checkpoint", d, "--ids", "1", check=False)
        self.assertIn("INVALID_ARGUMENT", proc.stderr)
        self.assertIn("rotary_pct", proc.stderr)


if __name__ == "__main__":
    unittest.main()
