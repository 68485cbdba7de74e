#!/usr/bin/python3
"""Integration tests of gardend's model RPCs (Tokenize, Generate, CausalUnmask, Logits,
Attention), driven through the garden CLI and checked against independent computations:
the golden tokenizations in ../shared/golden, a byte-level decoder written here from
tokenizer.json, and the PyTorch GPT-NeoX reference in tests/reference/gpt_neox_ref.py
run on the weights as stored (decoded to float32).

Run as ctest does:
  cd tests/integration && GARDEN_BIN=<build>/bin GARDEN_SOURCE=<repo> \
      /usr/bin/python3 -m unittest -v lm_test

Needs Debian's python3-torch and the real Pythia tokenizer, <shared>/pythia/tokenizer.json
(<shared> is $GARDEN_SHARED, else ../shared beside the repository); without either the
whole class is skipped. The tokenizer is copied into the temporary checkpoints, never
into the repository.

Fixtures (one checkpoint root in a temporary directory, plain layout):
  pythia-lm-deduped   steps 0 (F16), 1000 (F32), 2000 (F16): hidden 64, 4 heads, 2 layers,
                      intermediate 256, vocab 50304, context 128, different weights each
  pythia-lm           step 0: the weights of pythia-lm-deduped step 0; only the model-cache
                      test touches it, so its first load happens there
  pythia-notok        step 0 without tokenizer.json
  pythia-nokey        step 0 whose config.json lacks "num_attention_heads"
  pythia-notensor     step 0 whose weights lack gpt_neox.layers.1.attention.dense.weight
  pythia-smallvocab   step 0 with vocab_size 1000 (the tokenizer's ids go beyond it)
  pythia-badjson      step 0 whose config.json is cut short (not JSON)
  pythia-zeroheads, pythia-neglayers  step 0 whose config.json has 0 heads, -2 layers
gardend runs with --threads 2 --max-new-tokens 64. About 15-25 s on 2 cores.
"""

import json
import math
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
import unittest

import gardend_harness as harness

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("GARDEN_SOURCE") or os.path.normpath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("GARDEN_BIN") or os.path.join(SOURCE, "build", "bin")
SHARED = os.environ.get("GARDEN_SHARED") or os.path.normpath(os.path.join(SOURCE, "..",
                                                                          "shared"))
TOKENIZER = os.path.join(SHARED, "pythia", "tokenizer.json")
GOLDEN = os.path.join(SHARED, "golden", "tokenizer-cases.jsonl")
GARDEN = os.path.join(BIN, "garden")
GARDEND = os.path.join(BIN, "gardend")

sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "reference"))

try:
    import torch
    from gpt_neox_ref import GptNeoxRef, make_config, random_weights, write_checkpoint
    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

MAX_NEW = 64                 # gardend --max-new-tokens
CONTEXT = 128                # max_position_embeddings of the fixtures
MAX_TEXT = 1 << 20           # gardend's text limit, bytes
LOGIT_TOL = 1e-4
ATTN_TOL = 1e-5
LM_STEPS = {0: (10, "F16"), 1000: (11, "F32"), 2000: (12, "F16")}  # step -> (seed, dtype)
MISSING_TENSOR = "gpt_neox.layers.1.attention.dense.weight"
MISSING_KEY = "num_attention_heads"

# Golden tokenizer cases (indexes into tokenizer-cases.jsonl): whitespace runs, tabs and
# newlines, contractions, digits, code, special tokens, accents, CJK, Cyrillic, Arabic,
# emoji, NFC normalisation, no-break spaces, prose.
TOKENIZE_CASES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 17, 20, 21, 22, 23, 25, 26,
                  27, 28, 29, 30, 31, 32, 36, 38, 43, 51]
HELLO = 11        # 'Hello world!' (3 tokens)
CONTRACTIONS = 14  # "don't won't it's ..." (16 tokens)
ACCENTS = 25      # 'über naïve café résumé façade' (9 tokens)
POLITICAL = 46    # 14 tokens of prose
STAY = 56         # 'Stay together, drag each other down.' (8 tokens)


# The perplexity dataset: ordinary sentences, a multi-byte target, a double space before
# the last word, a text without a space (its context is <|endoftext|>), and one longer
# than the fixtures' 128-token context (cut on the left).
CLOZE_TEXTS = [
    "The quick brown fox jumps over the lazy dog",
    "She opened the door and saw her old friend standing in the rain",
    "über naïve café résumé façade",
    "He said it twice  loudly",
    "Hello",
    " ".join(["the garden of forking paths"] * 30) + " ends",
    "It costs 1234567",
]


# ---------------------------------------------------------------------------------------
# Independent helpers


def bytes_to_unicode():
    """GPT-2's byte <-> printable character table of byte-level BPE."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
          + list(range(ord("\xae"), ord("\xff") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class TokenizerView:
    """Pieces and decoding from tokenizer.json (Hugging Face's ByteLevel decoder)."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        self.piece = {i: p for p, i in spec["model"]["vocab"].items()}
        for t in spec["added_tokens"]:
            self.piece[t["id"]] = t["content"]
        self.byte_of = {c: b for b, c in bytes_to_unicode().items()}

    def piece_of(self, i):
        """tokenizer.json's spelling of a token; for an id it lacks (Pythia's embedding
        has rows 50281..50303 beyond the tokenizer), Garden's documented placeholder."""
        return self.piece.get(i, f"<|unk:{i}|>")

    def decode(self, ids):
        """Hugging Face's decode, except that an unknown id gives Garden's placeholder
        (Hugging Face drops it)."""
        out = bytearray()
        for i in ids:
            p = self.piece.get(i)
            if p is None:
                out.extend(self.piece_of(i).encode())
            elif all(c in self.byte_of for c in p):
                out.extend(self.byte_of[c] for c in p)
            else:
                out.extend(p.encode("utf-8"))
        return out.decode("utf-8", errors="replace")


def write_cloze(path, texts=CLOZE_TEXTS):
    """A cloze dataset as gardend --dataset reads it (one {"text"} a line); the path."""
    with open(path, "w", encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps({"text": text}) + "\n")
    return path


def pb_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_bytes(field, data):
    return pb_varint(field << 3 | 2) + pb_varint(len(data)) + data


def pb_uint(field, value):
    return pb_varint(field << 3) + pb_varint(value)


def pb_checkpoint(size, variant, step):
    model = pb_bytes(1, b"pythia") + pb_bytes(2, size.encode()) + pb_bytes(3, variant.encode())
    return pb_bytes(1, model) + pb_uint(2, step)


def raw_grpc_call(port, path, message, timeout=30):
    """One unary-request gRPC call over plaintext HTTP/2, by hand.

    For requests the CLI cannot send: Linux limits one argv string to 128 KiB
    (MAX_ARG_STRLEN), so a text over 1 MiB cannot go through --text. Sends the request
    with HTTP/2 flow control, waits for the end of the response stream and returns; the
    result is read from gardend's log (decoding the response's HPACK headers would need
    Huffman tables)."""
    def frame(kind, flags, stream, payload=b""):
        return (struct.pack(">I", len(payload))[1:] + bytes([kind, flags])
                + struct.pack(">I", stream) + payload)

    def literal(name, value):  # HPACK literal header field without indexing, new name
        assert len(name) < 127 and len(value) < 127
        return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value

    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        # A large receive window (SETTINGS_INITIAL_WINDOW_SIZE and the connection's), so
        # that a large response never waits for WINDOW_UPDATEs from this side.
        big = (1 << 31) - 1
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                     + frame(4, 0, 0, struct.pack(">HI", 4, big))
                     + frame(8, 0, 0, struct.pack(">I", big - 65535)))
        headers = b"".join(literal(n, v) for n, v in (
            (b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
            (b":authority", f"127.0.0.1:{port}".encode()),
            (b"content-type", b"application/grpc"), (b"te", b"trailers")))
        sock.sendall(frame(1, 0x4, 1, headers))  # END_HEADERS
        data = b"\x00" + struct.pack(">I", len(message)) + message
        conn_window = stream_window = initial = 65535
        max_frame = 16384
        sent, buf, done = 0, b"", False
        while not done:
            while sent < len(data) and min(conn_window, stream_window) > 0:
                n = min(max_frame, conn_window, stream_window, len(data) - sent)
                last = sent + n == len(data)
                sock.sendall(frame(0, 0x1 if last else 0, 1, data[sent:sent + n]))
                sent += n
                conn_window -= n
                stream_window -= n
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 9:
                length = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + length:
                    break
                kind, flags = buf[3], buf[4]
                stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                payload, buf = buf[9:9 + length], buf[9 + length:]
                if kind == 4 and not flags & 1:  # SETTINGS
                    for i in range(0, len(payload) - 5, 6):
                        ident, value = struct.unpack(">HI", payload[i:i + 6])
                        if ident == 4:
                            stream_window += value - initial
                            initial = value
                        elif ident == 5:
                            max_frame = value
                    sock.sendall(frame(4, 1, 0))
                elif kind == 8:  # WINDOW_UPDATE
                    inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                    if stream == 0:
                        conn_window += inc
                    elif stream == 1:
                        stream_window += inc
                elif kind == 6 and not flags & 1:  # PING
                    sock.sendall(frame(6, 1, 0, payload))
                elif kind in (0, 1) and stream == 1 and flags & 1:  # END_STREAM
                    done = True
                elif (kind == 3 and stream == 1) or kind == 7:  # RST_STREAM, GOAWAY
                    done = True
    finally:
        sock.close()


# ---------------------------------------------------------------------------------------


@unittest.skipUnless(HAVE_TORCH, "python3-torch is not installed (apt-get install "
                     "python3-torch): the model tests need the PyTorch reference")
class GardenLmTest(harness.GardendTestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        for path in (TOKENIZER, GOLDEN):
            if not os.path.isfile(path):
                raise unittest.SkipTest(f"{path} is missing (set GARDEN_SHARED to the folder "
                                        "holding pythia/tokenizer.json and golden/)")
        harness.skip_unless_built(GARDEN, GARDEND)
        torch.set_num_threads(2)
        with open(GOLDEN, encoding="utf-8") as f:
            cls.golden = [json.loads(line) for line in f]
        cls.tok = TokenizerView(TOKENIZER)
        cls.set_up_server(GARDEND, "garden-lm-", lambda: [
            "--checkpoints", cls.root, "--threads", "2", "--max-new-tokens", str(MAX_NEW),
            "--dataset", f"cloze={cls.cloze_path}"])

    @classmethod
    def _write_fixtures(cls):
        cls.cloze_path = write_cloze(os.path.join(cls.base, "cloze.jsonl"))
        cls.root = os.path.join(cls.base, "root")
        cls.config = make_config(hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
                                 intermediate_size=256, vocab_size=50304,
                                 max_position_embeddings=CONTEXT)
        dtypes = {"F16": torch.float16, "F32": torch.float32}
        cls.refs = {}
        for step, (seed, dtype) in LM_STEPS.items():
            weights = random_weights(cls.config, seed=seed)
            decoded = cls._checkpoint("pythia-lm-deduped", step, cls.config, weights,
                                      dtypes[dtype])
            cls.refs[step] = GptNeoxRef(cls.config, decoded)
            # The same weights as torch.save files, as Pythia's steps hold them.
            cls._checkpoint("pythia-lmbin-deduped", step, cls.config, weights,
                            dtypes[dtype], fmt="bin")
            if step == 0:
                cls._checkpoint("pythia-lm", 0, cls.config, weights, dtypes[dtype])
        small = make_config(hidden_size=16, num_attention_heads=2, num_hidden_layers=2,
                            intermediate_size=32, vocab_size=1000,
                            max_position_embeddings=CONTEXT)
        weights = random_weights(small, seed=20)
        cls._checkpoint("pythia-notok", 0, small, weights, tokenizer=False)
        cls._checkpoint("pythia-smallvocab", 0, small, weights)
        cls._checkpoint("pythia-notensor", 0, small, weights, drop=(MISSING_TENSOR,))
        d = cls._checkpoint_dir("pythia-nokey", 0)
        write_checkpoint(d, {k: v for k, v in small.items() if k != MISSING_KEY}, weights)
        shutil.copyfile(TOKENIZER, os.path.join(d, "tokenizer.json"))
        # config.json damaged, and one describing no model.
        cls._checkpoint("pythia-badjson", 0, small, weights)
        with open(os.path.join(cls._checkpoint_dir("pythia-badjson", 0), "config.json"),
                  "w") as f:
            f.write('{"hidden_size": 16, ')
        cls._checkpoint("pythia-zeroheads", 0, {**small, "num_attention_heads": 0}, weights)
        cls._checkpoint("pythia-neglayers", 0, {**small, "num_hidden_layers": -2}, weights)

    @classmethod
    def _checkpoint_dir(cls, model, step):
        return os.path.join(cls.root, model, f"step{step}")

    @classmethod
    def _checkpoint(cls, model, step, config, weights, dtype=torch.float32, tokenizer=True,
                    **kwargs):
        d = cls._checkpoint_dir(model, step)
        decoded = write_checkpoint(d, config, weights, dtype=dtype, **kwargs)
        if tokenizer:
            shutil.copyfile(TOKENIZER, os.path.join(d, "tokenizer.json"))
        return decoded

    # --------------------------------------------------------------------- helpers

    def garden(self, *args, timeout=60):
        return subprocess.run([GARDEN, "--server", self.addr, *args], capture_output=True,
                              text=True, timeout=timeout)

    def ok(self, *args, **kwargs):
        r = self.garden(*args, **kwargs)
        self.assertEqual(r.returncode, 0, f"garden {shorten(args)} failed:\n{r.stderr}")
        return r.stdout

    def json(self, *args, **kwargs):
        return json.loads(self.ok(*args, "--format", "json", **kwargs))

    def assert_error(self, args, code, *substrings):
        r = self.garden(*args)
        what = f"garden {shorten(args)}"
        self.assertEqual(r.returncode, 1, f"{what}: rc {r.returncode}, stdout "
                                          f"{r.stdout[:300]!r}, stderr {r.stderr!r}")
        self.assertEqual(r.stdout, "", what)
        prefix = f"garden: {code}: "
        self.assertTrue(r.stderr.startswith(prefix),
                        f"{what}: expected {prefix!r}, got {r.stderr!r}")
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        for s in substrings:
            self.assertIn(s, r.stderr, what)
        # Clients never see where the server keeps its files.
        self.assertNotIn(self.root, r.stderr, what)
        return r.stderr

    @staticmethod
    def at(step, size="lm", variant="deduped"):
        return ["--size", size, "--variant", variant, "--step", str(step)]

    @staticmethod
    def opt(name, value):
        """--name=value (values may start with '-'); CLI11 reads "--name=" as no value."""
        return [f"--{name}={value}"] if value else [f"--{name}", ""]

    def case(self, i):
        return self.golden[i]["text"], self.golden[i]["ids"]

    def generate(self, prompt, step, new, *extra, size="lm", variant="deduped"):
        out = self.json("generate", *self.at(step, size, variant), f"--prompt={prompt}",
                        "--max-new-tokens", str(new), *extra)
        self.assertEqual(sorted(out), ["ids", "logprobs", "prompt_ids", "text"])
        self.assertEqual(len(out["ids"]), new)
        self.assertEqual(len(out["logprobs"]), new)
        self.assertIsInstance(out["text"], str)
        self.assertEqual(out["text"], self.tok.decode(out["ids"]), "text of the new ids")
        return out

    def log_offset(self):
        return os.path.getsize(self.log_path)

    def log_since(self, offset):
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def wait_log(self, offset, pattern, timeout=10, count=1):
        """Lines logged since `offset` that match `pattern`, once there are `count`."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [l for l in self.log_since(offset).splitlines() if re.search(pattern, l)]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def reference_rows(self, step, prompt_ids, new_ids):
        """Reference logits [len(new_ids), vocab] predicting each new id (teacher forcing)."""
        logits, _, _ = self.refs[step].forward([list(prompt_ids) + list(new_ids)])
        p = len(prompt_ids)
        return logits[0, p - 1:p - 1 + len(new_ids)].double()

    def assert_greedy(self, step, prompt_ids, ids, logprobs=None, what=""):
        """Each id is the reference's argmax given everything before it (a near-tie,
        top-2 gap < LOGIT_TOL, may go either way); logprobs are the reference's."""
        rows = self.reference_rows(step, prompt_ids, ids)
        for i, t in enumerate(ids):
            row = rows[i]
            best = int(torch.argmax(row))
            if t != best:
                self.assertLess(float(row[best] - row[t]), LOGIT_TOL,
                                f"{what}: token {i} is {t}, the reference's argmax is {best}")
        if logprobs is not None:
            self.assert_logprobs(rows, ids, logprobs, what)
        return rows

    def assert_logprobs(self, rows, ids, logprobs, what):
        want = torch.log_softmax(rows, dim=-1)[torch.arange(len(ids)), torch.tensor(ids)]
        diff = max(abs(a - float(b)) for a, b in zip(logprobs, want))
        self.assertLess(diff, LOGIT_TOL, f"{what}: logprobs {logprobs[:4]} vs "
                                         f"{want[:4].tolist()}")

    # --------------------------------------------------------------------- tokenize

    def test_reference_decoder_matches_golden(self):
        # The decoder these tests check texts with reproduces the golden decodings.
        for c in self.golden:
            self.assertEqual(self.tok.decode(c["ids"]), c["decoded"], c["text"][:60])

    def test_tokenize_golden(self):
        steps = [0, 1000, 2000]
        for n, i in enumerate(TOKENIZE_CASES):
            text, ids = self.case(i)
            if len(text.encode()) > MAX_TEXT:
                continue
            with self.subTest(case=i, text=text[:40]):
                out = self.json("tokenize", *self.at(steps[n % 3]), *self.opt("text", text))
                self.assertEqual(out["ids"], ids)
                self.assertEqual(out["pieces"], [self.tok.piece_of(t) for t in ids])
        # The table format: one "%8d  piece" row per token.
        text, ids = self.case(HELLO)
        rows = self.ok("tokenize", *self.at(0), f"--text={text}").splitlines()
        self.assertEqual(rows, ["%8d  %s" % (t, self.tok.piece_of(t)) for t in ids])

    def test_invalid_utf8_in_a_text_becomes_u_fffd(self):
        # Protobuf strings must be UTF-8: the client repairs the text before
        # sending it, as the tokenizer would, one U+FFFD per maximal invalid
        # sequence (here "\xff" and the truncated "\xe2\x82").
        raw = b"caf\xff and \xe2\x82 euro"
        r = subprocess.run([GARDEN, "--server", self.addr, "tokenize", *self.at(0),
                            b"--text=" + raw, "--format", "json"], capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        repaired = raw.decode("utf-8", errors="replace")
        self.assertEqual(repaired, "caf\ufffd and \ufffd euro")
        self.assertEqual(json.loads(r.stdout)["ids"],
                         self.json("tokenize", *self.at(0), f"--text={repaired}")["ids"])

    def test_a_server_answers_a_request_it_cannot_parse_with_invalid_argument(self):
        import grpc
        # TokenizeRequest{checkpoint{model{size "lm", variant "deduped"}}, text "\xff"},
        # written by hand: a client that does not check its strings.
        model = b"\x12\x02lm\x1a\x07deduped"
        checkpoint = b"\x0a" + bytes([len(model)]) + model
        request = b"\x0a" + bytes([len(checkpoint)]) + checkpoint + b"\x12\x01\xff"
        with grpc.insecure_channel(self.addr) as channel:
            call = channel.unary_unary("/garden.v1.Garden/Tokenize")
            with self.assertRaises(grpc.RpcError) as e:
                call(request, timeout=20)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                         e.exception.details())
        self.assertIn("UTF-8", e.exception.details())

    # --------------------------------------------------------------------- generate

    def test_generate_greedy(self):
        for step, case, new in ((0, HELLO, 24), (1000, CONTRACTIONS, 24), (2000, ACCENTS, 24),
                                (1000, HELLO, MAX_NEW)):
            prompt, prompt_ids = self.case(case)
            with self.subTest(step=step, prompt=prompt[:30], new=new):
                out = self.generate(prompt, step, new, "--greedy")
                self.assertEqual(out["prompt_ids"], prompt_ids)
                self.assert_greedy(step, prompt_ids, out["ids"], out["logprobs"], "greedy")
                want, want_lp = self.refs[step].greedy(prompt_ids, new)
                self.assertEqual(out["ids"], want)
                # Without --greedy and sampling options the CLI asks for greedy too.
                plain = self.generate(prompt, step, new)
                self.assertEqual(plain["ids"], out["ids"])
                # --format text streams the same text, then a newline.
                text = self.ok("generate", *self.at(step), f"--prompt={prompt}",
                               "--max-new-tokens", str(new), "--greedy")
                self.assertEqual(text, out["text"] + "\n")
        # The CLI's default --max-new-tokens is 32.
        out = self.json("generate", *self.at(0), "--prompt=Hello world!")
        self.assertEqual(len(out["ids"]), 32)

    def test_generate_fills_the_context_exactly(self):
        prompt, prompt_ids = self.case(POLITICAL)
        prompt = " ".join([prompt] * 5)
        n = len(self.json("tokenize", *self.at(0), f"--text={prompt}")["ids"])
        self.assertGreater(n, CONTEXT - MAX_NEW)
        out = self.generate(prompt, 2000, CONTEXT - n, "--greedy")
        self.assertEqual(len(out["prompt_ids"]), n)
        self.assert_greedy(2000, out["prompt_ids"], out["ids"], out["logprobs"], "full context")
        self.assert_error(["generate", *self.at(2000), f"--prompt={prompt}",
                           "--max-new-tokens", str(CONTEXT - n + 1)], "INVALID_ARGUMENT",
                          str(CONTEXT), f"{n} tokens", str(CONTEXT - n + 1))

    # --------------------------------------------------------------------- sampling

    def test_sampling(self):
        prompt, prompt_ids = self.case(HELLO)
        step, new = 1000, 16

        def sample(*extra):
            return self.generate(prompt, step, new, *extra)

        a = sample("--temperature", "1", "--seed", "7")
        b = sample("--temperature", "1", "--seed", "7")
        self.assertEqual(a, b, "same seed, different output")
        self.assertEqual(a["prompt_ids"], prompt_ids)
        others = [sample("--seed", str(s))["ids"] for s in (8, 9)]
        for ids in others:
            self.assertNotEqual(ids, a["ids"], "different seeds, same 16 sampled tokens")
        # --seed alone samples at temperature 1: same as above.
        self.assertEqual(sample("--seed", "7")["ids"], a["ids"])
        # Logprobs are the model's at temperature 1, for whichever token was drawn.
        self.assert_logprobs(self.reference_rows(step, prompt_ids, a["ids"]), a["ids"],
                             a["logprobs"], "sampled logprobs")
        greedy = sample("--greedy")["ids"]
        self.assertNotEqual(a["ids"], greedy)
        # Degenerate samplers are greedy.
        for extra in (("--top-k", "1", "--seed", "3"), ("--temperature", "0", "--seed", "4"),
                      ("--top-k", "1", "--temperature", "5", "--top-p", "0.9"),
                      ("--top-p", "1e-9", "--seed", "5"),
                      ("--greedy", "--seed", "6", "--temperature", "2")):
            with self.subTest(extra=extra):
                out = sample(*extra)
                self.assertEqual(out["ids"], greedy)
                self.assert_greedy(step, prompt_ids, out["ids"], out["logprobs"], str(extra))

        # Top-k: every token is among the k likeliest under the reference.
        for k, seed in ((5, 1), (40, 2)):
            out = sample("--top-k", str(k), "--seed", str(seed), "--temperature", "3")
            rows = self.reference_rows(step, prompt_ids, out["ids"])
            self.assert_logprobs(rows, out["ids"], out["logprobs"], f"top-k {k}")
            for i, t in enumerate(out["ids"]):
                kth = float(torch.topk(rows[i], k).values[-1])
                self.assertGreaterEqual(float(rows[i][t]), kth - LOGIT_TOL,
                                        f"top-k {k}: token {i} ({t}) is not in the top {k}")
            if k == 40:
                self.assertGreater(len(set(out["ids"]) - set(greedy)), 0)

        # Top-p: every token is in the nucleus, the shortest prefix of the tokens by
        # probability (at the temperature) whose mass reaches p.
        for p, temperature, seed in ((0.3, 0.7, 2), (0.9, 1.5, 3)):
            out = sample("--top-p", str(p), "--temperature", str(temperature), "--seed",
                         str(seed))
            rows = self.reference_rows(step, prompt_ids, out["ids"])
            self.assert_logprobs(rows, out["ids"], out["logprobs"], f"top-p {p}")
            for i, t in enumerate(out["ids"]):
                probs = torch.softmax(rows[i] / temperature, dim=-1)
                before = float(probs[probs > probs[t]].sum())  # mass of likelier tokens
                self.assertLess(before, p + 1e-6,
                                f"top-p {p}: token {i} ({t}) is outside the nucleus")

    # --------------------------------------------------------------------- unmask

    def check_unmask(self, out, text_ids, steps, ks, what):
        n = len(text_ids)
        self.assertEqual(out["n"], n, what)
        self.assertEqual(out["original_ids"], text_ids, what)
        frames = out["frames"]
        self.assertEqual([(f["step"], f["k"]) for f in frames],
                         [(s, k) for s in steps for k in ks], what)
        for f in frames:
            k, step = f["k"], f["step"]
            where = f"{what}: step {step} k {k}"
            self.assertEqual(f["n"], n, where)
            self.assertEqual(f["prefix_ids"], text_ids[:k], where)
            self.assertEqual(f["prefix"], self.tok.decode(text_ids[:k]), where)
            self.assertEqual(len(f["generated_ids"]), n - k, where)
            self.assertEqual(f["generated"], self.tok.decode(f["generated_ids"]), where)
            self.assert_greedy(step, text_ids[:k], f["generated_ids"], None, where)
            want, _ = self.refs[step].greedy(text_ids[:k], n - k)
            self.assertEqual(f["generated_ids"], want, where)
            agree = [g == o for g, o in zip(f["generated_ids"], text_ids[k:])]
            self.assertEqual(f["agree"], agree, where)
            self.assertAlmostEqual(f["recovered"], sum(agree) / (n - k), places=12, msg=where)

    def test_torch_bin_checkpoints_answer_exactly_as_safetensors(self):
        text, _ = self.case(HELLO)
        commands = [
            ["logits", "--step", "1000", f"--text={text}", "--top-k", "5"],
            ["logits", "--step", "0", f"--text={text}", "--top-k", "5"],
            ["attention", "--step", "2000", f"--text={text}", "--layer", "1"],
            ["generate", "--step", "2000", "--prompt=Hello world!",
             "--max-new-tokens", "8"],
            ["unmask", "--steps", "all", f"--text={text}"],
            ["ppl", "--dataset", "cloze", "--steps", "all"],
        ]
        for command in commands:
            with self.subTest(command=command[0], step=command[2]):
                st, pt = [self.json(command[0], "--size", size, "--variant", "deduped",
                                    *command[1:]) for size in ("lm", "lmbin")]
                for out in (st, pt):
                    for key in ("size", "model"):
                        out.pop(key, None)
                self.assertEqual(st, pt)

    def test_unmask_default_prefix_lengths(self):
        for case in (POLITICAL, STAY, HELLO, CONTRACTIONS):
            text, ids = self.case(case)
            n = len(ids)
            with self.subTest(text=text[:30], n=n):
                out = self.json("unmask", "--size", "lm", "--variant", "deduped",
                                f"--text={text}")  # --steps defaults to all
                ks = sorted({f["k"] for f in out["frames"]})
                if n - 1 <= 6:
                    self.assertEqual(ks, list(range(1, n)))
                else:
                    self.assertEqual(len(ks), 6)
                    self.assertEqual((ks[0], ks[-1]), (1, n - 1))
                    for i, k in enumerate(ks):  # evenly spaced: within 1/2 of 1 + i(n-2)/5
                        self.assertLessEqual(abs(k - (1 + i * (n - 2) / 5)), 0.5, ks)
                self.check_unmask(out, ids, sorted(LM_STEPS), ks, "default ks")

    def test_unmask_selections_and_formats(self):
        text, ids = self.case(POLITICAL)
        base = ["unmask", "--size", "lm", "--variant", "deduped", f"--text={text}"]
        out = self.json(*base, "--steps", "2000,0", "--prefix-lengths", "5,1,3,3,13")
        self.check_unmask(out, ids, [0, 2000], [1, 3, 5, 13], "list")
        out = self.json(*base, "--steps", "500:2500", "--prefix-lengths", "2")
        self.check_unmask(out, ids, [1000, 2000], [2], "range")

        # jsonl: the same frames, one per line; table: a header and a row per frame.
        args = [*base, "--steps", "0,1000", "--prefix-lengths", "4,9"]
        frames = self.json(*args)["frames"]
        lines = self.ok(*args, "--format", "jsonl").splitlines()
        self.assertEqual([json.loads(l) for l in lines], frames)
        rows = self.ok(*args, "--format", "table").splitlines()
        self.assertEqual(len(rows), 1 + len(frames))
        self.assertEqual(rows[0].split()[:4], ["STEP", "K", "N", "RECOVERED"])
        for row, f in zip(rows[1:], frames):
            self.assertEqual(row.split()[:4], [str(f["step"]), str(f["k"]), str(f["n"]),
                                               "%.3f" % f["recovered"]])

        self.assertGreaterEqual(len(ids), 3)
        n = len(ids)
        for k in (0, n, n + 5):
            self.assert_error([*base, "--steps", "0", "--prefix-lengths", str(k)],
                              "INVALID_ARGUMENT", f"prefix length {k}", f"[1, {n - 1}]")
        self.assert_error(["unmask", "--size", "lm", "--variant", "deduped", "--text=Hello"],
                          "INVALID_ARGUMENT", "at least 2")
        self.assert_error([*base, "--steps", "0,1500"], "NOT_FOUND", "1500")

    # --------------------------------------------------------------------- logits

    def test_logits(self):
        for step, case in ((0, POLITICAL), (2000, ACCENTS)):
            text, ids = self.case(case)
            with self.subTest(step=step):
                logits, _, _ = self.refs[step].forward([ids])
                mean = logits[0].double().mean(0)
                out = self.json("logits", *self.at(step), f"--text={text}", "--top-k", "12")
                self.assertEqual(out["tokens"], len(ids))
                self.assertNotIn("mean_logits", out)
                want = torch.topk(mean, 12)
                self.assertEqual([t["id"] for t in out["top"]], want.indices.tolist())
                for t, v in zip(out["top"], want.values.tolist()):
                    self.assertAlmostEqual(t["logit"], v, delta=LOGIT_TOL)
                    self.assertEqual(t["piece"], self.tok.piece_of(t["id"]))
                got = [t["logit"] for t in out["top"]]
                self.assertEqual(got, sorted(got, reverse=True))

                out = self.json("logits", *self.at(step), f"--text={text}", "--all")
                self.assertEqual(len(out["top"]), 10)  # the default --top-k
                self.assertEqual(len(out["mean_logits"]), self.config["vocab_size"])
                diff = float((torch.tensor(out["mean_logits"], dtype=torch.float64)
                              - mean).abs().max())
                self.assertLess(diff, LOGIT_TOL, "mean logits")
                # top_k 0 means the default 10.
                out = self.json("logits", *self.at(step), f"--text={text}", "--top-k", "0")
                self.assertEqual([t["id"] for t in out["top"]], want.indices[:10].tolist())

    # --------------------------------------------------------------------- perplexity

    def tokens(self, text):
        if not text:
            return []
        return self.json("tokenize", *self.at(0), f"--text={text}")["ids"]

    def reference_cloze(self, step, texts):
        """(perplexity, accuracy, truncated) as lm-evaluation-harness computes them for
        lambada_openai, with the PyTorch reference model."""
        with open(TOKENIZER, encoding="utf-8") as f:
            added = json.load(f)["added_tokens"]
        eot = next(t["id"] for t in added if t["content"] == "<|endoftext|>")
        logps, greedy, truncated = [], [], 0
        for text in texts:
            words = text.split(" ")
            context, target = " ".join(words[:-1]), " " + words[-1]
            if len(words) == 1:
                context, target = "", text
            spaces = len(context) - len(context.rstrip(" "))
            if spaces:
                context, target = context[:-spaces], context[-spaces:] + target
            if context == "":
                ctx, cont = [eot], self.tokens(target)
            else:
                ctx = self.tokens(context)
                cont = self.tokens(context + target)[len(ctx):]
            whole = ctx + cont
            if len(whole) - 1 > CONTEXT:
                truncated += 1
            inp = whole[-(CONTEXT + 1):][:-1]
            with torch.no_grad():
                logits, _, _ = self.refs[step].forward([inp])
            rows = logits[0, len(inp) - len(cont):].double()
            logp = torch.log_softmax(rows, -1)
            logps.append(sum(float(logp[i, t]) for i, t in enumerate(cont)))
            greedy.append(rows.argmax(-1).tolist() == cont)
        mean = sum(logps) / len(logps)
        return math.exp(-mean), sum(greedy) / len(greedy), truncated

    def test_perplexity_matches_reference(self):
        listed = self.json("datasets")["datasets"]
        self.assertEqual(listed, [{"name": "cloze", "examples": len(CLOZE_TEXTS)}])
        plot = os.path.join(self.base, "ppl.png")
        out = self.ok("ppl", "--size", "lm", "--variant", "deduped", "--dataset", "cloze",
                      "--steps", "all", "--format", "jsonl", "--plot", plot)
        with open(plot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        rows = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([r["step"] for r in rows], sorted(LM_STEPS))
        for row in rows:
            with self.subTest(step=row["step"]):
                ppl, acc, truncated = self.reference_cloze(row["step"], CLOZE_TEXTS)
                self.assertEqual(row["n"], len(CLOZE_TEXTS))
                self.assertLess(abs(row["perplexity"] - ppl) / ppl, 1e-4)
                self.assertAlmostEqual(row["accuracy"], acc, places=12)
                self.assertEqual(row["truncated"], truncated)
                self.assertEqual(truncated, 1)
        # --limit takes the first examples.
        out = self.ok("ppl", "--size", "lm", "--variant", "deduped", "--dataset", "cloze",
                      "--steps", "1000", "--limit", "2", "--format", "json")
        (row,) = json.loads(out)["steps"]
        ppl, _, _ = self.reference_cloze(1000, CLOZE_TEXTS[:2])
        self.assertEqual(row["n"], 2)
        self.assertLess(abs(row["perplexity"] - ppl) / ppl, 1e-4)

    def test_perplexity_bad_input(self):
        base = ["ppl", "--size", "lm", "--variant", "deduped", "--steps", "0"]
        self.assert_error(base + ["--dataset", "lambada"], "NOT_FOUND", '"lambada"',
                          "cloze")
        self.assert_error(base + ["--dataset", "cloze", "--limit", "0"],
                          "INVALID_ARGUMENT", "limit 0")
        self.assert_error(base + ["--dataset", "../cloze"], "INVALID_ARGUMENT", "dataset")
        self.assert_error(["ppl", "--size", "lm", "--variant", "deduped", "--steps", "7",
                           "--dataset", "cloze"], "NOT_FOUND", "7")

    # --------------------------------------------------------------------- attention

    def test_attention(self):
        text, ids = self.case(STAY)
        n = len(ids)
        for step, layer in ((1000, 0), (1000, 1), (0, 1)):
            with self.subTest(step=step, layer=layer):
                _, _, probs = self.refs[step].forward([ids], attention_layer=layer)
                want = probs[0]
                out = self.json("attention", *self.at(step), f"--text={text}", "--layer",
                                str(layer))
                self.assertEqual((out["heads"], out["tokens"]), (4, n))
                self.assertEqual(out["pieces"], [self.tok.piece_of(t) for t in ids])
                got = torch.tensor(out["weights"], dtype=torch.float32)
                self.assertEqual(tuple(got.shape), (4, n, n))
                self.assertLess(float((got - want).abs().max()), ATTN_TOL, "per head")
                upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
                self.assertTrue(bool((got[:, upper] == 0).all()), "weights above the diagonal")
                self.assertLess(float((got.double().sum(-1) - 1).abs().max()), 1e-5, "row sums")

                avg = self.json("attention", *self.at(step), f"--text={text}", "--layer",
                                str(layer), "--average-heads")
                self.assertEqual((avg["heads"], avg["tokens"]), (1, n))
                got = torch.tensor(avg["weights"], dtype=torch.float32)
                self.assertEqual(tuple(got.shape), (1, n, n))
                self.assertLess(float((got[0] - want.mean(0)).abs().max()), ATTN_TOL, "mean")
                self.assertTrue(bool((got[0][upper] == 0).all()))
                self.assertLess(float((got.double().sum(-1) - 1).abs().max()), 1e-5)

    # --------------------------------------------------------------------- figures

    def check_plot(self, path):
        """A non-empty PNG or SVG at `path`; a PNG's (width, height)."""
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".png"):
            self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n", path)
            return struct.unpack(">II", data[16:24])
        text = data.decode("utf-8")
        self.assertIn("<svg", text, path)
        self.assertIn("</svg>", text, path)
        return None

    def test_plots_of_attention_logits_and_unmask(self):
        text, ids = self.case(STAY)
        out = os.path.join(self.base, "lm-plots")
        os.makedirs(out, exist_ok=True)
        lm = ["--size", "lm", "--variant", "deduped"]
        runs = {
            "attention": ["attention", *self.at(1000), f"--text={text}", "--layer", "1"],
            "attention2": ["attention", *lm, "--steps", "0,2000", f"--text={text}",
                           "--layer", "1"],
            "attention_mean": ["attention", *lm, "--steps", "0,2000", f"--text={text}",
                               "--average-heads"],
            "logits": ["logits", *self.at(0), f"--text={text}", "--top-k", "3"],
            "logits2": ["logits", *lm, "--steps", "0,1000,2000", f"--text={text}",
                        "--top-k", "3"],
            "unmask": ["unmask", *lm, "--steps", "0,2000", "--prefix-lengths", "2,5",
                       f"--text={text}"],
        }
        sizes = {}
        for name, args in runs.items():
            plain = self.ok(*args, "--format", "json")
            for ext in ("png", "svg"):
                with self.subTest(command=name, ext=ext):
                    path = os.path.join(out, f"{name}.{ext}")
                    # The output is what it is without --plot.
                    self.assertEqual(self.ok(*args, "--format", "json", "--plot", path), plain)
                    size = self.check_plot(path)
                    if size:
                        sizes[name] = size
        # Attention: a panel per head (4), a row per step; the mean: one a step.
        (w1, h1), (w2, h2), (wm, hm) = (sizes["attention"], sizes["attention2"],
                                        sizes["attention_mean"])
        self.assertEqual(w1, w2)
        self.assertGreater(h2, 1.8 * h1)
        self.assertGreater(w1, 3.5 * wm)
        self.assertEqual(h2, hm)
        # Logits: one panel whatever the steps; unmask: a panel per step, stacked
        # (760 wide, at least 150 high, at 2 pixels a unit with 10 of margin and
        # 34 of title).
        self.assertEqual(sizes["logits"], sizes["logits2"])
        self.assertEqual(sizes["unmask"][0], 2 * (20 + 760))
        self.assertGreaterEqual(sizes["unmask"][1], 2 * (20 + 34 + 2 * 150))

        # --steps A,B: the --step outputs, one per line, in order.
        for command, extra in (("attention", ["--layer", "1"]), ("logits", ["--top-k", "4"])):
            with self.subTest(command=command, steps="2000,0"):
                many = self.ok(command, *lm, "--steps", "2000,0", f"--text={text}", *extra,
                               "--format", "json").splitlines()
                self.assertEqual(len(many), 2)
                for line, step in zip(many, (2000, 0)):
                    self.assertEqual(json.loads(line),
                                     self.json(command, *self.at(step), f"--text={text}",
                                               *extra))
                # The table prints one after the other too.
                table = self.ok(command, *lm, "--steps", "2000,0", f"--text={text}", *extra)
                self.assertEqual(table, "".join(
                    self.ok(command, *self.at(step), f"--text={text}", *extra)
                    for step in (2000, 0)))

    def test_plot_and_steps_errors(self):
        # No server listens at this address: the plot path fails first.
        dead = ["--server", "127.0.0.1:1"]
        commands = (["attention", *self.at(0), "--text=Hello world!"],
                    ["attention", "--size", "lm", "--steps", "0,1000", "--text=Hello world!"],
                    ["logits", *self.at(0), "--text=Hello world!"],
                    ["logits", "--size", "lm", "--steps", "0,1000", "--text=Hello world!"],
                    ["unmask", "--size", "lm", "--steps", "0", "--text=Hello world!"])
        gif = os.path.join(self.base, "f.gif")
        for cmd in commands:
            with self.subTest(command=cmd):
                r = subprocess.run([GARDEN, *dead, *cmd, "--plot", "/nonexistent/dir/f.png"],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertTrue(r.stderr.startswith("garden: NOT_FOUND: /nonexistent/dir/f.png"),
                                r.stderr)
                self.assertEqual(r.stdout, "")
                r = subprocess.run([GARDEN, *dead, *cmd, "--plot", gif],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertTrue(r.stderr.startswith("garden: INVALID_ARGUMENT: "), r.stderr)
                self.assertIn(".png or .svg", r.stderr)
        self.assertFalse(os.path.exists(gif))
        for command in ("attention", "logits"):
            with self.subTest(command=command):
                base = [command, "--size", "lm", "--variant", "deduped", "--text=Hello world!"]
                self.assert_error(base, "INVALID_ARGUMENT", "--step or --steps")
                self.assert_error([*base, "--steps", "0:2000"], "INVALID_ARGUMENT",
                                  "--steps", "0:2000", "1000,143000")
                self.assert_error([*base, "--steps", "1500,0"], "NOT_FOUND", "1500")
                # Both at once: a usage error, as CLI11 reports them.
                r = self.garden(*base, "--step", "0", "--steps", "0,1000")
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("excludes", r.stderr)

    # --------------------------------------------------------------------- errors

    def test_generate_argument_errors(self):
        base = ["generate", *self.at(0), "--prompt=Hello world!"]
        self.assert_error([*base, "--max-new-tokens", "0"], "INVALID_ARGUMENT",
                          f"[1, {MAX_NEW}]", "got 0")
        # Past the server's own limit: a resource it will not give one request.
        self.assert_error([*base, "--max-new-tokens", str(MAX_NEW + 1)], "RESOURCE_EXHAUSTED",
                          f"[1, {MAX_NEW}]", f"got {MAX_NEW + 1}", "--max-new-tokens")
        self.assert_error([*base, "--temperature=-1"], "INVALID_ARGUMENT", "temperature",
                          "-1")
        self.assert_error([*base, "--temperature=nan"], "INVALID_ARGUMENT", "temperature")
        for p in ("0", "1.5", "-0.5"):
            self.assert_error([*base, f"--top-p={p}"], "INVALID_ARGUMENT", "top_p",
                              "(0, 1]")
        # Printed with the digits that show why it is out of range.
        self.assert_error([*base, "--top-p=1.0000001"], "INVALID_ARGUMENT",
                          "top_p must be in (0, 1], got 1.0000001")
        self.assert_error([*base, "--top-k=-1"], "INVALID_ARGUMENT", "top_k")
        self.assert_error(["generate", *self.at(0), "--prompt", ""], "INVALID_ARGUMENT",
                          "empty")
        # Prompt + new tokens beyond the context of 128.
        prompt = " ".join([self.case(POLITICAL)[0]] * 5)
        n = len(self.json("tokenize", *self.at(0), f"--text={prompt}")["ids"])
        self.assert_error(["generate", *self.at(0), f"--prompt={prompt}", "--max-new-tokens",
                           str(MAX_NEW)], "INVALID_ARGUMENT", str(CONTEXT), f"{n} tokens")
        # A prompt longer than the context on its own.
        long_prompt = " ".join([self.case(POLITICAL)[0]] * 12)
        for args in (["generate", *self.at(0), f"--prompt={long_prompt}",
                      "--max-new-tokens", "1"],
                     ["logits", *self.at(0), f"--text={long_prompt}"],
                     ["attention", *self.at(0), f"--text={long_prompt}"],
                     ["unmask", "--size", "lm", "--variant", "deduped", "--steps", "0",
                      f"--text={long_prompt}"]):
            self.assert_error(args, "INVALID_ARGUMENT", str(CONTEXT),
                              "max_position_embeddings")

    def test_request_memory_budget(self):
        # A second server over the same root with a tiny working-memory budget: a
        # request whose estimate cannot fit is refused naming the budget; a big
        # enough budget serves the same answers as the unlimited server. Every
        # command that runs the model reserves its working memory.
        commands = (["logits", *self.at(0), "--text=Hello world!"],
                    ["attention", *self.at(0), "--text=Hello world!"],
                    ["generate", *self.at(0), "--prompt=Hello", "--max-new-tokens", "4"],
                    ["ppl", "--size", "lm", "--variant", "deduped", "--dataset", "cloze",
                     "--steps", "0"],
                    ["unmask", "--size", "lm", "--variant", "deduped", "--steps", "0",
                     "--text=Hello world, hello garden!"])
        wants = [self.json(*args) for args in commands]
        for budget, fits in (("1000", False), ("1000000000", True)):
            port_file = os.path.join(self.base, f"port-budget-{budget}")
            proc, port = harness.start_server(
                GARDEND, ["--checkpoints", self.root, "--threads", "2",
                          "--dataset", f"cloze={self.cloze_path}",
                          "--request-memory-bytes", budget],
                os.path.join(self.base, f"gardend-budget-{budget}.log"), port_file)
            try:
                for args, want in zip(commands, wants):
                    r = subprocess.run([GARDEN, "--server", f"127.0.0.1:{port}", *args,
                                        "--format", "json"],
                                       capture_output=True, text=True, timeout=60)
                    if fits:
                        self.assertEqual(r.returncode, 0, r.stderr)
                        self.assertEqual(json.loads(r.stdout), want, args)
                    else:
                        self.assertEqual(r.returncode, 1, r.stdout)
                        self.assertRegex(r.stderr, r"^garden: RESOURCE_EXHAUSTED: (.*: )?the "
                                                   r"request needs about \d+ bytes of working "
                                                   r"memory, more than this server's "
                                                   r"--request-memory-bytes 1000")
            finally:
                self.assertEqual(harness.stop_server(proc, 10)[0], 0)

    def test_text_over_one_mib(self):
        # The CLI cannot carry it (one argv string is at most 128 KiB on Linux), so the
        # requests go over HTTP/2 by hand and the outcome is read from gardend's log.
        big = ("lorem ipsum dolor sit amet " * 40000).encode()[:MAX_TEXT + 1]
        ckpt = pb_checkpoint("lm", "deduped", 0)
        cases = (("Tokenize", pb_bytes(1, ckpt) + pb_bytes(2, big), "text"),
                 ("Generate", pb_bytes(1, ckpt) + pb_bytes(2, big) + pb_uint(3, 4), "prompt"),
                 ("Logits", pb_bytes(1, ckpt) + pb_bytes(2, big), "text"),
                 ("Tokenize", pb_bytes(1, ckpt) + pb_bytes(2, big[:MAX_TEXT]), None))
        for method, message, what in cases:
            with self.subTest(method=method, what=what):
                offset = self.log_offset()
                raw_grpc_call(self.port, f"/garden.v1.Garden/{method}", message)
                lines = self.wait_log(offset, rf"\b{method} .* in [0-9.]+ ms")
                self.assertEqual(len(lines), 1, self.log_since(offset))
                if what is None:  # exactly 1 MiB is allowed
                    self.assertRegex(lines[0], r": OK in ")
                else:
                    self.assertIn(f"RESOURCE_EXHAUSTED: {what} is {MAX_TEXT + 1} bytes; "
                                  f"the limit is {MAX_TEXT} per request", lines[0])

    def test_missing_tokenizer(self):
        for args in (["tokenize", *self.at(0, "notok", "standard"), "--text=hi"],
                     ["generate", *self.at(0, "notok", "standard"), "--prompt=hi"],
                     ["logits", *self.at(0, "notok", "standard"), "--text=hi"],
                     ["attention", *self.at(0, "notok", "standard"), "--text=hi"],
                     ["unmask", "--size", "notok", "--text=hi there"]):
            self.assert_error(args, "FAILED_PRECONDITION", "tokenizer.json", "pythia-notok",
                              os.path.relpath(self._checkpoint_dir("pythia-notok", 0),
                                              self.root))

    def test_broken_models(self):
        for size, words in (("nokey", ["config.json", f'"{MISSING_KEY}"']),
                            ("notensor", [MISSING_TENSOR])):
            for args in (["generate", *self.at(0, size, "standard"), "--prompt=Hello"],
                         ["logits", *self.at(0, size, "standard"), "--text=Hello"],
                         ["attention", *self.at(0, size, "standard"), "--text=Hello"],
                         ["unmask", "--size", size, "--text=Hello world"]):
                with self.subTest(size=size, command=args[0]):
                    self.assert_error(args, "FAILED_PRECONDITION", *words)
            # Tokenize needs no model.
            self.assertEqual(self.json("tokenize", *self.at(0, size, "standard"),
                                       "--text=Hello world!")["ids"], self.case(HELLO)[1])
        # One rule for files on the server: damaged bytes are DATA_LOSS, files that
        # parse but describe no model FAILED_PRECONDITION; INVALID_ARGUMENT is for
        # what a request says.
        for size, code, words in (
                ("badjson", "DATA_LOSS", ["config.json", "pythia-badjson"]),
                ("zeroheads", "FAILED_PRECONDITION", ['"num_attention_heads" must be positive']),
                ("neglayers", "FAILED_PRECONDITION", ['"num_hidden_layers" must be positive',
                                                      "-2"])):
            with self.subTest(size=size):
                self.assert_error(["logits", *self.at(0, size, "standard"), "--text=Hello"],
                                  code, *words)
        # A tokenizer whose ids go beyond the model's vocabulary.
        self.assert_error(["generate", *self.at(0, "smallvocab", "standard"),
                           "--prompt=Hello world!"], "FAILED_PRECONDITION", "vocab_size 1000",
                          "12092")

    def test_unknown_checkpoints(self):
        for args in (["generate", *self.at(1500), "--prompt=Hello"],
                     ["tokenize", *self.at(1500), "--text=Hello"],
                     ["logits", *self.at(1500), "--text=Hello"],
                     ["attention", *self.at(1500), "--text=Hello"]):
            self.assert_error(args, "NOT_FOUND", "1500")
        self.assert_error(["generate", *self.at(0, "lx"), "--prompt=Hello"], "NOT_FOUND",
                          "pythia-lx-deduped")
        self.assert_error(["unmask", "--size", "lm", "--variant", "deduped", "--steps",
                           "3000:4000", "--text=Hello world"], "NOT_FOUND")

    def test_attention_layer_out_of_range(self):
        for layer in ("2", "5"):
            self.assert_error(["attention", *self.at(0), "--text=Hello world!", "--layer",
                               layer], "INVALID_ARGUMENT", layer)

    # --------------------------------------------------------------------- server

    def test_model_cache_loads_once(self):
        # pythia-lm step 0 is loaded by no other test.
        pattern = r"loaded pythia-lm step 0 "
        self.assertEqual(self.wait_log(0, pattern, timeout=0), [], "already loaded")
        offset = self.log_offset()
        prompt, prompt_ids = self.case(CONTRACTIONS)
        cmd = [GARDEN, "--server", self.addr, "generate", *self.at(0, "lm", "standard"),
               f"--prompt={prompt}", "--max-new-tokens", "20", "--greedy", "--format", "json"]
        outs = []
        for rc, out, err in harness.run_concurrently(cmd, 3, timeout=60, text=True):
            self.assertEqual(rc, 0, err)
            outs.append(json.loads(out))
        self.assertEqual(outs[1], outs[0])
        self.assertEqual(outs[2], outs[0])
        # Same weights as pythia-lm-deduped step 0.
        self.assert_greedy(0, prompt_ids, outs[0]["ids"], outs[0]["logprobs"], "cache")
        self.assertEqual(len(self.wait_log(offset, r"Generate pythia-lm step 0, .*: OK in", 5,
                                           count=3)), 3, self.log_since(offset))
        lines = [l for l in self.log_since(offset).splitlines() if re.search(pattern, l)]
        self.assertEqual(len(lines), 1, self.log_since(offset))
        # Later requests use the cached model.
        self.ok("generate", *self.at(0, "lm", "standard"), "--prompt=Hi",
                "--max-new-tokens", "2")
        lines = [l for l in self.log_since(offset).splitlines() if re.search(pattern, l)]
        self.assertEqual(len(lines), 1)

    def test_cancelled_generate_leaves_server_healthy(self):
        prompt, prompt_ids = self.case(HELLO)
        self.ok("generate", *self.at(2000), "--prompt=x", "--max-new-tokens", "1")  # loaded
        offset = self.log_offset()
        client = subprocess.Popen(
            [GARDEN, "--server", self.addr, "generate", *self.at(2000), f"--prompt={prompt}",
             "--max-new-tokens", str(MAX_NEW), "--format", "text", "--greedy"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            fd = client.stdout.fileno()
            ready, _, _ = select.select([fd], [], [], 20)
            self.assertTrue(ready, "no output within 20 s")
            self.assertNotEqual(os.read(fd, 1), b"", "stream closed before any byte")
        finally:
            client.kill()
            client.communicate(timeout=10)
        lines = self.wait_log(offset, r"Generate pythia-lm-deduped step 2000\b")
        self.assertEqual(len(lines), 1, self.log_since(offset))
        self.assertRegex(lines[0], r": (CANCELLED: .*|OK) in [0-9.]+ ms")
        # The server answers at once, and right.
        start = time.monotonic()
        out = self.generate(prompt, 2000, 8, "--greedy")
        self.assertLess(time.monotonic() - start, 5.0)
        self.assert_greedy(2000, prompt_ids, out["ids"], out["logprobs"], "after cancel")


def shorten(args):
    return " ".join(a if len(a) < 80 else a[:60] + f"...({len(a)} chars)" for a in args)


if __name__ == "__main__":
    unittest.main(verbosity=2)
