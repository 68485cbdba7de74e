"""Fixtures of garden_client's tests: a real gardend on 127.0.0.1 (port 0) over suites
written by scripts/make_suite.py, the garden CLI to compare with, and clients.

Environment (ctest sets them): GARDEN_BIN (gardend, garden), GARDEN_SOURCE (the
repository), PYTHONPATH=<build>/python (garden_client with its generated stubs).

Fixtures, in one temporary root:
  pythia-micro-deduped  F16  steps 0,1,...,512,1000  bifurcated embed_out
  pythia-micro          F32  steps 0,1000,2000
each step with a small byte-level tokenizer.json written here (257 byte-level pieces
and specials, a few merges), so the synthetic weights also serve the model RPCs
(generate, unmask, logits, attention, ppl on a cloze dataset written here).
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("GARDEN_SOURCE") or os.path.normpath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("GARDEN_BIN") or os.path.join(SOURCE, "build", "bin")
GARDEN = os.path.join(BIN, "garden")
GARDEND = os.path.join(BIN, "gardend")
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
import gardend_harness as harness  # noqa: E402
import make_suite  # noqa: E402
from lm_test import bytes_to_unicode  # noqa: E402  (one copy of GPT-2's byte table)

DD_STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000]
STD_STEPS = [0, 1000, 2000]
SEED_STEPS = [0, 1000]
MAX_NEW = 1024  # gardend --max-new-tokens; long enough that a cancelled generation is cut short
CLOZE_TEXTS = [
    "The quick brown fox jumps over the lazy dog",
    "She opened the door and saw her old friend standing in the rain",
    "He said it twice  loudly",
    "Hello",
    "the garden of forking paths",
]


def tokenizer_json():
    """A byte-level BPE tokenizer.json of Pythia's kind: <|endoftext|> = 0,
    <|padding|> = 1, the 256 bytes, and merges for " t", "he", " the", "in", " a"."""
    byte_piece = bytes_to_unicode()
    vocab = {"<|endoftext|>": 0, "<|padding|>": 1}
    for b in range(256):
        vocab[byte_piece[b]] = len(vocab)
    merges = []
    for a, b in (("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a")):
        merges.append(f"{a} {b}")
        vocab[a + b] = len(vocab)
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True}
             for i, c in enumerate(("<|endoftext|>", "<|padding|>"))]
    return json.dumps({
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None, "pre_tokenizer": byte_level, "post_processor": None,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": merges}})


def write_fixtures(base):
    root = os.path.join(base, "root")
    tok = tokenizer_json()
    dirs = {}
    dirs["deduped"] = make_suite.write_suite(root, "pythia", "micro", "deduped", DD_STEPS,
                                             dtype="F16", bifurcate=True)
    dirs["standard"] = make_suite.write_suite(root, "pythia", "micro", "standard",
                                              STD_STEPS, dtype="F32", seed=3)
    # A second training run of the standard model (PolyPythias' -seedN).
    seed_root = os.path.join(base, "seed2")
    by_step = make_suite.write_suite(seed_root, "pythia", "micro", "standard", SEED_STEPS,
                                     dtype="F32", seed=7)
    os.rename(os.path.join(seed_root, "pythia-micro"), os.path.join(root, "pythia-micro-seed2"))
    dirs["seed2"] = {step: d.replace(os.path.join(seed_root, "pythia-micro"),
                                     os.path.join(root, "pythia-micro-seed2"))
                     for step, d in by_step.items()}
    for by_step in dirs.values():
        for d in by_step.values():
            with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
                f.write(tok)
    cloze = os.path.join(base, "cloze.jsonl")
    with open(cloze, "w", encoding="utf-8") as f:
        for text in CLOZE_TEXTS:
            f.write(json.dumps({"text": text}) + "\n")
    return root, cloze, dirs


class Server:
    """A running gardend: addr, port, log_path, proc."""

    def __init__(self, base, name, args):
        self.log_path = os.path.join(base, f"{name}.log")
        self.proc, self.port = harness.start_server(GARDEND, args, self.log_path,
                                                    os.path.join(base, f"{name}.port"))
        self.addr = f"127.0.0.1:{self.port}"

    def log_lines(self):
        """The JSON log's records (--log-format json)."""
        out = []
        with open(self.log_path, errors="replace") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def stop(self):
        if self.proc.poll() is not None:
            return self.proc.returncode
        rc, _ = harness.stop_server(self.proc, 10)
        return rc


@pytest.fixture(scope="session")
def base(tmp_path_factory):
    for path in (GARDEN, GARDEND):
        if not os.path.isfile(path):
            pytest.skip(f"{path} is not built")
    return str(tmp_path_factory.mktemp("garden-py"))


@pytest.fixture(scope="session")
def fixtures(base):
    return write_fixtures(base)


@pytest.fixture(scope="session")
def server(base, fixtures):
    root, cloze, _ = fixtures
    s = Server(base, "gardend", ["--checkpoints", root, "--threads", "2",
                                 "--max-new-tokens", str(MAX_NEW),
                                 "--dataset", f"cloze={cloze}", "--log-format", "json"])
    yield s
    alive = s.proc.poll() is None
    rc = s.stop()
    assert alive, f"gardend died during the tests (exit {rc})"
    assert rc == 0, f"gardend exited {rc} after SIGTERM"


@pytest.fixture(scope="session")
def garden_client():
    try:
        import garden_client
    except ImportError as e:
        pytest.fail(f"garden_client does not import (PYTHONPATH=<build>/python?): {e}")
    return garden_client


@pytest.fixture()
def g(server, garden_client):
    with garden_client.Garden(server.addr, timeout=120) as client:
        yield client


@pytest.fixture()
def g_plain(server, garden_client):
    """A client that returns Tables and Records, as without pandas."""
    with garden_client.Garden(server.addr, timeout=120, frames=False) as client:
        yield client


class Cli:
    def __init__(self, addr):
        self.addr = addr

    def run(self, *args, globals_=(), env=None, timeout=120):
        e = {k: v for k, v in os.environ.items() if k != "GARDEN_TOKEN"}
        e.update(env or {})
        return subprocess.run([GARDEN, "--server", self.addr, *globals_, *args],
                              capture_output=True, text=True, timeout=timeout, env=e)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"garden {' '.join(args)}: {r.stderr}"
        return r.stdout

    def json(self, *args, fmt="json", **kw):
        return json.loads(self.ok(*args, "--format", fmt, **kw))

    def jsonl(self, *args, **kw):
        return [json.loads(line) for line in self.ok(*args, "--format", "jsonl",
                                                     **kw).splitlines() if line]

    def error(self, *args, **kw):
        """(CODE, message) of a command that fails as `garden: CODE: message`."""
        r = self.run(*args, **kw)
        assert r.returncode == 1, f"garden {' '.join(args)}: rc {r.returncode} {r.stderr}"
        line = r.stderr.strip().splitlines()[-1]
        assert line.startswith("garden: "), line
        code, _, message = line[len("garden: "):].partition(": ")
        return code, message


@pytest.fixture()
def cli(server):
    return Cli(server.addr)
