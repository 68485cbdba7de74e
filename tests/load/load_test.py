#!/usr/bin/python3
"""Load and fault tests of gardend, driven through the garden CLI on loopback.

  test_concurrent_load     GARDEN_LOAD_CLIENTS clients (default 32) for GARDEN_LOAD_SECONDS
                           (default 60) mixing hist, msd, ppl and generate with
                           cancellations (a client SIGKILLed mid-stream, or given
                           --timeout 0.05) against one gardend --threads 2 with a model
                           cache that holds two models: no unexpected outcome, every
                           completed output equal to the serial reference, p50/p99 per
                           method printed, gardend's RSS bounded.
  test_kill9_and_restart   kill -9 mid-load, restart on the same roots and port: the
                           fixed requests give the same bytes as before the kill and the
                           checkpoint files are unchanged.
  test_sigterm_drains      SIGTERM with streams in flight: exit 0 within DRAIN_LIMIT_S,
                           every client ends with its complete output or one clean
                           `garden: CANCELLED|UNAVAILABLE: message` line, port file removed.

Run (scripts/test-load does this; --short is the CI size):
  cd tests/load && GARDEN_BIN=<build>/bin GARDEN_LOAD_CLIENTS=8 GARDEN_LOAD_SECONDS=10 \
      /usr/bin/python3 -m unittest -v load_test

Needs the real Pythia tokenizer, <shared>/pythia/tokenizer.json (<shared> is
$GARDEN_SHARED, else ../shared beside the repository): ppl and generate need a tokenizer
whose ids fit the model. Without it the tests are skipped, as lm_test does.

Fixtures (scripts/make_suite.py, plain layout, in a temporary directory; the tokenizer is
copied beside each step's weights as Pythia's revisions hold it):
  pythia-load-deduped  12 steps 0..1000, F16, hidden 64, 2 layers, 4 heads, vocab 50304
  pythia-load          steps 0, 64, 1000, F32 (the two-pass histogram path), seed 1
and cloze.jsonl, registered as `--dataset cloze`.
"""

import collections
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("GARDEN_SOURCE") or os.path.normpath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("GARDEN_BIN") or os.path.join(SOURCE, "build", "bin")
SHARED = os.environ.get("GARDEN_SHARED") or os.path.normpath(os.path.join(SOURCE, "..",
                                                                          "shared"))
TOKENIZER = os.path.join(SHARED, "pythia", "tokenizer.json")
GARDEN = os.path.join(BIN, "garden")
GARDEND = os.path.join(BIN, "gardend")

sys.path.insert(0, os.path.join(SOURCE, "scripts"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
import gardend_harness as harness  # noqa: E402
import make_suite  # noqa: E402

CLIENTS = int(os.environ.get("GARDEN_LOAD_CLIENTS", "32"))
SECONDS = float(os.environ.get("GARDEN_LOAD_SECONDS", "60"))
SEED = int(os.environ.get("GARDEN_LOAD_SEED", "1"))  # client i draws from Random(SEED + i)

DEDUPED_STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000]
STANDARD_STEPS = [0, 64, 1000]
SHAPE = dict(hidden=64, layers=2, heads=4, vocab=50304, intermediate=256)
# Parameters of one fixture model: embeddings in and out, two layers (norms, qkv, dense,
# mlp in and out, with biases), final norm; gardend logs the same count when it loads one.
MODEL_PARAMS = (2 * 50304 * 64 + 2 * (4 * 64 + 3 * 64 * 65 + 64 * 65 + 256 * 65 + 64 * 257)
                + 2 * 64)
MODEL_BYTES = MODEL_PARAMS * 4  # the cache counts parameters as loaded: float32
# Room for two models and not three: with 15 (model, step) pairs in the mix, ppl and
# generate evict and reload all the time, which is the memory path worth loading.
CACHE_BUDGET = 64 << 20
MAX_NEW_TOKENS = 256   # gardend --max-new-tokens (generate-long asks for all of it)
THREADS = 2

# gardend's RSS bound: idle RSS (measured at start) + the cache budget + FIXED_ALLOWANCE
# + PER_MODEL_RPC x the most ppl/generate calls the clients had in flight at once. The
# last term is there because the cache budget alone does not bound gardend's memory:
# model RPCs run on gRPC's handler threads with no limit (not on the --threads pool),
# and each keeps the model it loaded alive after the cache evicts it (model_cache.h:
# "Requests keep the model they got alive even after it is evicted").
# Measured on the 2-core VM (idle ~166 MB; /metrics shows the cache itself <= 50 MiB):
# - heaptrack over 2 x 15 s of 8 clients: no leak (42 MB never freed, all libtorch's
#   start-up registrations), peak live heap 345 MB, 288 MB of it tensors;
# - 1, 4, 8, 16 concurrent ppl-all: peak idle + 146, 241, 370, 540 MB, i.e. ~25-35 MB per
#   call in flight (its 26 MB model, activations and logits);
# - the mix: 8 clients x 10 s peaked at idle + cache + ~450 MB, 32 x 20 s (32 model calls
#   in flight) at idle + cache + ~1120 MB.
# FIXED_ALLOWANCE covers libtorch's pages touched by the first forward (~50 MB), hist/msd
# working sets (4 MiB chunk buffers per worker, a 13 MB msd reference, the lag Gram) and
# what glibc's per-thread malloc arenas keep after frees: with default arenas RSS creeps
# up ~60-80 MB per 15 s round of 8 clients (586, 638, 698, 776 MB after rounds 1-4), with
# MALLOC_ARENA_MAX=2 (gardend's default now, common/base/process.h) it does not. PER_MODEL_RPC is ~2x the per-call figure. A model
# leaked per call (26 MB) crosses the bound within a few dozen calls.
FIXED_ALLOWANCE = 384 << 20
PER_MODEL_RPC = 64 << 20
RSS_PERIOD_S = 0.2
CLIENT_LIMIT_S = 120   # one garden call running longer than this is a hang
DRAIN_LIMIT_S = 5      # SIGTERM to exit; gardend gives streams 200 ms, then cancels
KILL_AFTER_S = (0.02, 0.4)  # a SIGKILLed client dies this long after it started
DEADLINE_S = 0.05

# The cloze dataset: ordinary sentences, a multi-byte target, a double space before the
# last word and a text without a space (context <|endoftext|>).
CLOZE_TEXTS = [
    "The quick brown fox jumps over the lazy dog",
    "She opened the door and saw her old friend standing in the rain",
    "über naïve café résumé façade",
    "He said it twice  loudly",
    "Hello",
    "It costs 1234567",
    "A watched pot never boils",
    "The early bird catches the worm",
    "All that glitters is not gold",
    "When in Rome do as the Romans do",
    "Every cloud has a silver lining",
    "The pen is mightier than the sword",
    "Actions speak louder than words",
    "Fortune favours the bold and the brave",
    "Time and tide wait for no man",
    "You can lead a horse to water but you cannot make it drink",
]

DEDUPED = ["--size", "load", "--variant", "deduped"]
STANDARD = ["--size", "load", "--variant", "standard"]
QUIET = ["--no-progress"]

# Every request the tests send: name -> (command, arguments). Each is deterministic
# (generate-sampled has a seed), so every completed call must print the bytes the serial
# reference run printed.
REQUESTS = {
    "hist-common": ("hist", [*DEDUPED, "--steps", "all", "--format", "jsonl", *QUIET]),
    "hist-range": ("hist", [*DEDUPED, "--steps", "0:128", "--bins", "32", "--range=-0.5:0.5",
                            "--tensor", "gpt_neox.layers.1.mlp.dense_h_to_4h.weight",
                            "--format", "csv", *QUIET]),
    "hist-f32": ("hist", [*STANDARD, "--steps", "all", "--format", "jsonl", *QUIET]),
    "msd-reference": ("msd", [*DEDUPED, "--steps", "all", "--format", "jsonl", *QUIET]),
    "msd-lag": ("msd", [*DEDUPED, "--steps", "all", "--mode", "lag", "--format", "json",
                        *QUIET]),
    "msd-consecutive": ("msd", [*DEDUPED, "--steps", "0:512", "--mode", "consecutive",
                                "--tensor", "gpt_neox.embed_in.weight", "--format", "csv",
                                *QUIET]),
    "ppl-late": ("ppl", [*DEDUPED, "--steps", "256,512,1000", "--dataset", "cloze",
                         "--format", "jsonl", *QUIET]),
    "ppl-limit": ("ppl", [*STANDARD, "--steps", "all", "--dataset", "cloze", "--limit", "6",
                          "--format", "csv", *QUIET]),
    "ppl-all": ("ppl", [*DEDUPED, "--steps", "all", "--dataset", "cloze", "--format",
                        "jsonl", *QUIET]),
    "generate-greedy": ("generate", [*DEDUPED, "--step", "1000", "--prompt",
                                     "The garden of forking paths", "--max-new-tokens", "48",
                                     "--format", "json"]),
    "generate-sampled": ("generate", [*DEDUPED, "--step", "8", "--prompt", "Once upon a time",
                                      "--seed", "7", "--temperature", "0.8", "--top-k", "40",
                                      "--top-p", "0.95", "--max-new-tokens", "32",
                                      "--format", "json"]),
    "generate-standard": ("generate", [*STANDARD, "--step", "64", "--prompt", "Hello world!",
                                       "--max-new-tokens", "24", "--format", "text"]),
    "generate-long": ("generate", [*DEDUPED, "--step", "512", "--prompt", "In the beginning",
                                   "--max-new-tokens", str(MAX_NEW_TOKENS), "--format",
                                   "text"]),
}
METHODS = ["hist", "msd", "ppl", "generate"]
LONG = ["ppl-all", "generate-long", "hist-common", "msd-lag"]  # streams worth cancelling

# The load's mix: (weight, how, requests). "plain" must complete; "kill" is SIGKILLed
# after KILL_AFTER_S; "deadline" runs with --timeout 0.05.
MIX = [
    (26, "plain", ["hist-common", "hist-range", "hist-f32"]),
    (20, "plain", ["msd-reference", "msd-lag", "msd-consecutive"]),
    (17, "plain", ["ppl-late", "ppl-limit", "ppl-all"]),
    (21, "plain", ["generate-greedy", "generate-sampled", "generate-standard",
                   "generate-long"]),
    (8, "kill", LONG),
    (8, "deadline", LONG),
]

STATUS_LINE = re.compile(r"garden: ([A-Z_]+): \S.*")
# What gardend may log as an RPC's outcome under this load: killed clients and expired
# deadlines are CANCELLED or DEADLINE_EXCEEDED on its side.
SERVER_CODES = {"OK", "CANCELLED", "DEADLINE_EXCEEDED"}


def rss_kb(pid, field="VmRSS"):
    """A /proc/PID/status memory field in kB, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def mb(kb):
    return kb / 1024.0


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def tree_digest(root):
    """{relative path: sha256} of every file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for name in files:
            path = os.path.join(d, name)
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            out[os.path.relpath(path, root)] = h.hexdigest()
    return out


def write_fixtures(base):
    """The checkpoint root and the dataset file; returns (root, cloze path)."""
    root = os.path.join(base, "root")
    dirs = list(make_suite.write_suite(root, "pythia", "load", "deduped", DEDUPED_STEPS,
                                       dtype="F16", seed=0, **SHAPE).values())
    dirs += make_suite.write_suite(root, "pythia", "load", "standard", STANDARD_STEPS,
                                   dtype="F32", seed=1, **SHAPE).values()
    for d in dirs:
        shutil.copyfile(TOKENIZER, os.path.join(d, "tokenizer.json"))
    cloze = os.path.join(base, "cloze.jsonl")
    with open(cloze, "w", encoding="utf-8") as f:
        for text in CLOZE_TEXTS:
            f.write(json.dumps({"text": text}) + "\n")
    return root, cloze


class Gardend:
    """One gardend process on loopback, logging JSON lines to its own file."""

    def __init__(self, base, root, cloze, name):
        self.root, self.cloze = root, cloze
        self.log_path = os.path.join(base, f"{name}.log")
        self.port_file = os.path.join(base, f"{name}.port")
        self.proc = None
        self.port = None

    def start(self, port=0, timeout=30):
        """Starts gardend (on `port`, 0 picks one) and waits until its port file names
        it: a stale file left by a killed server must be replaced, not read."""
        stale = os.stat(self.port_file).st_ino if os.path.exists(self.port_file) else None
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [GARDEND, "--listen", f"127.0.0.1:{port}", "--port-file", self.port_file,
             "--checkpoints", self.root, "--dataset", f"cloze={self.cloze}",
             "--threads", str(THREADS), "--model-cache-bytes", str(CACHE_BUDGET),
             "--max-new-tokens", str(MAX_NEW_TOKENS), "--log-format", "json",
             "--metrics-listen", "127.0.0.1:0"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.stat(self.port_file).st_ino != stale:
                    with open(self.port_file) as f:
                        text = f.read().strip()
                    if text:
                        self.port = int(text)
                        return self.port
            except FileNotFoundError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait(timeout=10)
        raise RuntimeError(f"gardend did not start (rc {self.proc.returncode}):\n"
                           f"{self.log_tail()}")

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def metrics_url(self):
        """The /metrics address the latest start logged."""
        url = None
        with open(self.log_path, errors="replace") as f:
            for line in f:
                m = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", line)
                if m:
                    url = m.group(1)
        return url

    def terminate(self, timeout):
        """SIGTERM; (exit status or None if it overstayed and was killed, seconds)."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None, time.monotonic() - start
        return rc, time.monotonic() - start

    def ensure_stopped(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, lines=30):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def log_problems(self, codes=SERVER_CODES):
        """Log lines that report an RPC ending with a code outside `codes`, an error,
        or anything that is not a JSON log line (a crash message, a sanitizer report)."""
        bad = []
        with open(self.log_path, errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    bad.append(line.rstrip())
                    continue
                if ("code" in rec and rec["code"] not in codes) or \
                        rec.get("level") in ("error", "critical"):
                    bad.append(line.rstrip())
        return bad


CACHE_BYTES = re.compile(r'^garden_cache_bytes\{[^}]*cache="models"[^}]*\} (\S+)$', re.M)


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every RSS_PERIOD_S until stopped, and every
    METRICS_EVERY samples the model cache's own count of its bytes from /metrics."""
    METRICS_EVERY = 5

    def __init__(self, pid, metrics_url=None):
        super().__init__(daemon=True)
        self.pid, self.metrics_url = pid, metrics_url
        self.samples = []  # kB
        self.cache_bytes = []  # garden_cache_bytes{cache="models"}
        self.scrape_failures = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            kb = rss_kb(self.pid)
            if kb is None:
                return
            self.samples.append(kb)
            if self.metrics_url and len(self.samples) % self.METRICS_EVERY == 1:
                self._scrape()
            self._halt.wait(RSS_PERIOD_S)

    def _scrape(self):
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
                m = CACHE_BYTES.search(r.read().decode())
            if m:
                self.cache_bytes.append(float(m.group(1)))
                return
        except OSError:
            pass
        self.scrape_failures += 1

    def stop(self):
        self._halt.set()
        self.join()
        return max(self.samples) if self.samples else 0


Outcome = collections.namedtuple("Outcome", "name how rc seconds stdout stderr hung")


def call(addr, name, how="plain", kill_after=None):
    """Runs one garden request to its end; `how` is plain, kill (SIGKILL after
    kill_after seconds) or deadline (--timeout DEADLINE_S)."""
    command, args = REQUESTS[name]
    cmd = [GARDEN, "--server", addr]
    if how == "deadline":
        cmd += ["--timeout", str(DEADLINE_S)]
    cmd += [command, *args]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    hung = False
    try:
        if how == "kill":
            try:
                out, err = proc.communicate(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                out, err = proc.communicate(timeout=CLIENT_LIMIT_S)
        else:
            out, err = proc.communicate(timeout=CLIENT_LIMIT_S)
    except subprocess.TimeoutExpired:
        hung = True
        proc.kill()
        out, err = proc.communicate()
    return Outcome(name, how, proc.returncode, time.monotonic() - start, out, err, hung)


def judge(outcome, references, codes=()):
    """(category, problem): the category names an expected outcome ("ok", "killed",
    a status code); problem is None or says what is wrong. A completed call must print
    exactly the reference bytes and nothing on stderr; a failed one exactly one
    `garden: CODE: message` line with CODE in `codes` (plus DEADLINE_EXCEEDED for
    --timeout calls); a SIGKILLed one is just dead."""
    o = outcome
    what = f"{o.how} {o.name} (rc {o.rc}, {o.seconds:.2f} s)"
    err = o.stderr.decode("utf-8", "replace")
    if o.hung:
        return "hung", f"{what}: no exit within {CLIENT_LIMIT_S} s; stderr {err[-300:]!r}"
    if o.rc == 0:
        if o.stdout != references[o.name]:
            return "wrong", (f"{what}: output differs from the serial reference:\n"
                             f"  got  {o.stdout[:300]!r}\n"
                             f"  want {references[o.name][:300]!r}")
        if err:
            return "wrong", f"{what}: completed but wrote to stderr: {err[-300:]!r}"
        return "ok", None
    if o.rc == -signal.SIGKILL and o.how == "kill":
        return "killed", None
    allowed = set(codes) | ({"DEADLINE_EXCEEDED"} if o.how == "deadline" else set())
    lines = err.splitlines()
    m = STATUS_LINE.fullmatch(lines[0]) if len(lines) == 1 else None
    if o.rc == 1 and m and m.group(1) in allowed:
        return m.group(1), None
    return "error", f"{what}: unexpected end; stderr {err[-500:]!r}"


def status_lines(outcomes):
    """The distinct `garden: CODE: message` lines of failed calls, for the record."""
    return sorted({o.stderr.decode("utf-8", "replace").strip() for o in outcomes
                   if o.rc == 1 and not o.hung})


def fixed_set(addr):
    """Every request once, in order: {name: stdout}; raises on any failure."""
    out = {}
    for name in REQUESTS:
        o = call(addr, name)
        if o.rc != 0 or o.hung:
            raise AssertionError(f"{name} failed (rc {o.rc}): {o.stderr[-500:]!r}")
        out[name] = o.stdout
    return out


class Load:
    """CLIENTS threads, each calling garden back to back until `seconds` have passed
    or stop() is called; outcomes collects every call."""

    def __init__(self, addr, clients, seconds):
        self.addr, self.clients, self.seconds = addr, clients, seconds
        self.outcomes = []
        self.in_flight = 0
        self.model_in_flight = 0  # ppl and generate calls running now
        self.max_model_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                         for i in range(clients)]
        self._weights = [w for w, _, _ in MIX]

    def start(self):
        self._end = time.monotonic() + self.seconds
        for t in self._threads:
            t.start()

    def stop(self):
        """No new calls; returns the number of calls then in flight."""
        with self._lock:
            self._stop.set()
            return self.in_flight

    def join(self, timeout):
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _client(self, i):
        rng = random.Random(SEED + i)
        while time.monotonic() < self._end:
            _, how, names = rng.choices(MIX, weights=self._weights)[0]
            name = rng.choice(names)
            model = REQUESTS[name][0] in ("ppl", "generate")
            with self._lock:
                if self._stop.is_set():
                    return
                self.in_flight += 1
                self.model_in_flight += model
                self.max_model_in_flight = max(self.max_model_in_flight, self.model_in_flight)
            try:
                o = call(self.addr, name, how, kill_after=rng.uniform(*KILL_AFTER_S))
            finally:
                with self._lock:
                    self.in_flight -= 1
                    self.model_in_flight -= model
            with self._lock:
                self.outcomes.append(o)


def latency_table(outcomes, judged):
    """The per-method latency table (completed plain calls) and the cancellations."""
    rows = ["method     calls   p50 ms   p99 ms   max ms"]
    for method in METHODS:
        times = [o.seconds * 1000 for o, (cat, _) in zip(outcomes, judged)
                 if cat == "ok" and o.how == "plain" and REQUESTS[o.name][0] == method]
        if times:
            rows.append(f"{method:<9} {len(times):6d} {percentile(times, 50):8.0f} "
                        f"{percentile(times, 99):8.0f} {max(times):8.0f}")
        else:
            rows.append(f"{method:<9} {0:6d}        -        -        -")
    counts = collections.Counter((o.how, cat) for o, (cat, _) in zip(outcomes, judged))
    rows.append(f"cancelled: {counts[('kill', 'killed')]} SIGKILLed mid-stream "
                f"({counts[('kill', 'ok')]} had already completed), "
                f"{counts[('deadline', 'DEADLINE_EXCEEDED')]} DEADLINE_EXCEEDED at "
                f"--timeout {DEADLINE_S} ({counts[('deadline', 'ok')]} completed in time)")
    return "\n".join(rows), counts


@unittest.skipUnless(os.path.isfile(TOKENIZER), f"{TOKENIZER} is missing (set GARDEN_SHARED "
                     "to the folder holding pythia/tokenizer.json)")
class GardendLoadTest(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        harness.skip_unless_built(GARDEN, GARDEND)
        cls._tmp = tempfile.TemporaryDirectory(prefix="garden-load-")
        cls.base = os.path.realpath(cls._tmp.name)
        try:
            cls.root, cls.cloze = write_fixtures(cls.base)
            # The references: every request once, serially, on a server of its own.
            server = Gardend(cls.base, cls.root, cls.cloze, "reference")
            server.start()
            try:
                cls.references = fixed_set(server.addr)
            finally:
                rc, _ = server.terminate(10)
            if rc != 0:
                raise AssertionError(f"reference gardend exited {rc}:\n{server.log_tail()}")
        except BaseException:
            cls._tmp.cleanup()
            raise
        print(f"\nload: {CLIENTS} clients, {SECONDS:g} s, seed {SEED}; gardend --threads "
              f"{THREADS} --model-cache-bytes {CACHE_BUDGET} (a model is {MODEL_BYTES} B)",
              flush=True)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def server(self, name):
        s = Gardend(self.base, self.root, self.cloze, name)
        self.addCleanup(s.ensure_stopped)
        s.start()
        return s

    def assert_no_problems(self, problems, context):
        if problems:
            self.fail(f"{len(problems)} unexpected outcomes ({context}); the first:\n" +
                      "\n".join(problems[:15]))

    def test_concurrent_load(self):
        s = self.server("load")
        idle_kb = rss_kb(s.proc.pid)
        sampler = RssSampler(s.proc.pid, s.metrics_url())
        sampler.start()
        load = Load(s.addr, CLIENTS, SECONDS)
        started = time.monotonic()
        load.start()
        finished = load.join(SECONDS + CLIENT_LIMIT_S + 30)
        took = time.monotonic() - started
        hwm_kb = rss_kb(s.proc.pid, "VmHWM")  # the kernel's own peak, between samples too
        peak_kb = sampler.stop()
        self.assertTrue(finished, "load clients still running past their limit")
        self.assertIsNone(s.proc.poll(), f"gardend died under load:\n{s.log_tail()}")

        judged = [judge(o, self.references) for o in load.outcomes]
        table, counts = latency_table(load.outcomes, judged)
        models = load.max_model_in_flight
        bound_kb = idle_kb + (CACHE_BUDGET + FIXED_ALLOWANCE + models * PER_MODEL_RPC) // 1024
        print(f"\n{len(load.outcomes)} calls in {took:.1f} s\n{table}\n"
              f"gardend RSS: idle {mb(idle_kb):.0f} MB, peak {mb(peak_kb):.0f} MB sampled "
              f"every {RSS_PERIOD_S} s ({len(sampler.samples)} samples), VmHWM "
              f"{mb(hwm_kb):.0f} MB = idle + cache budget {CACHE_BUDGET >> 20} MiB + "
              f"{mb(hwm_kb - idle_kb) - (CACHE_BUDGET >> 20):.0f} MB\n"
              f"bound {mb(bound_kb):.0f} MB = idle + cache budget + fixed "
              f"{FIXED_ALLOWANCE >> 20} MiB + {models} ppl/generate calls in flight at most "
              f"x {PER_MODEL_RPC >> 20} MiB\n"
              f"model cache by its own count (/metrics, {len(sampler.cache_bytes)} scrapes, "
              f"{sampler.scrape_failures} failed): at most "
              f"{max(sampler.cache_bytes, default=0) / 2**20:.1f} MiB", flush=True)

        self.assert_no_problems([p for _, p in judged if p], "clients")
        self.assert_no_problems(s.log_problems(), "gardend's log")
        for method in METHODS:
            self.assertTrue(any(c == "ok" and REQUESTS[o.name][0] == method and o.how == "plain"
                                for o, (c, _) in zip(load.outcomes, judged)),
                            f"no {method} call completed")
        self.assertGreater(counts[("kill", "killed")], 0, "no client was killed mid-stream")
        self.assertGreater(counts[("deadline", "DEADLINE_EXCEEDED")], 0,
                           "no call hit its deadline")
        self.assertLess(peak_kb, bound_kb, "sampled RSS over the bound")
        self.assertLess(hwm_kb, bound_kb, "peak RSS (VmHWM) over the bound")
        # The cache itself keeps to its budget: the excess above is what requests hold.
        self.assertTrue(sampler.cache_bytes, "no /metrics scrape succeeded")
        self.assertLessEqual(max(sampler.cache_bytes), CACHE_BUDGET)
        self.assertGreater(max(sampler.cache_bytes), MODEL_BYTES)  # it did cache models
        # The load left nothing behind that changes an answer.
        self.assertEqual(fixed_set(s.addr), self.references)
        rc, stop_s = s.terminate(10)
        self.assertEqual(rc, 0, f"exit after SIGTERM ({stop_s:.1f} s):\n{s.log_tail()}")

    def test_kill9_and_restart(self):
        s = self.server("kill9")
        before = fixed_set(s.addr)
        self.assertEqual(before, self.references)
        files = tree_digest(self.root)
        load = Load(s.addr, CLIENTS, CLIENT_LIMIT_S)
        load.start()
        time.sleep(min(3.0, max(1.0, SECONDS / 3)))  # mid-load: every client is busy
        in_flight = load.stop()
        s.proc.send_signal(signal.SIGKILL)
        s.proc.wait(timeout=10)
        self.assertTrue(load.join(CLIENT_LIMIT_S + 10), "clients hang after kill -9")
        # Calls cut by the kill end UNAVAILABLE (the connection went away), never hang.
        judged = [judge(o, self.references, codes={"UNAVAILABLE"}) for o in load.outcomes]
        cut = sum(1 for c, _ in judged if c == "UNAVAILABLE")
        print(f"\nkill -9 with {in_flight} calls in flight: {cut} ended UNAVAILABLE, "
              f"{len(load.outcomes)} calls in all; {status_lines(load.outcomes)}", flush=True)
        self.assert_no_problems([p for _, p in judged if p], "clients at kill -9")
        self.assertGreater(in_flight, 0)
        self.assertGreater(cut, 0, "the kill cut no call: it was not mid-load")
        self.assertTrue(os.path.exists(s.port_file))  # nothing could remove it: stale

        port = s.port
        s.start(port=port)  # same roots, same address; replaces the stale port file
        self.assertEqual(s.port, port)
        after = fixed_set(s.addr)
        for name in REQUESTS:
            self.assertEqual(after[name], before[name], f"{name} changed across kill -9")
        self.assertEqual(tree_digest(self.root), files, "checkpoint files changed")
        rc, _ = s.terminate(10)
        self.assertEqual(rc, 0, s.log_tail())
        self.assert_no_problems(s.log_problems(), "gardend's log")

    def test_sigterm_drains(self):
        s = self.server("sigterm")
        clients = max(8, CLIENTS // 2)
        names = [LONG[i % len(LONG)] for i in range(clients)]
        results = [None] * clients

        def run(i):
            results[i] = call(s.addr, names[i])

        threads = [threading.Thread(target=run, args=(i,), daemon=True)
                   for i in range(clients)]
        for t in threads:
            t.start()
        time.sleep(0.5)  # the streams are open and gardend is busy with them
        running = sum(1 for r in results if r is None)
        rc, took = s.terminate(DRAIN_LIMIT_S)
        for t in threads:
            t.join(CLIENT_LIMIT_S + 10)
        self.assertFalse(any(t.is_alive() for t in threads), "a client hangs after SIGTERM")
        judged = [judge(o, self.references, codes={"CANCELLED", "UNAVAILABLE"})
                  for o in results]
        counts = collections.Counter(c for c, _ in judged)
        print(f"\nSIGTERM with {running} of {clients} streams in flight: gardend exited "
              f"{rc} after {took:.2f} s; clients: {dict(counts)} {status_lines(results)}",
              flush=True)
        self.assertEqual(rc, 0, f"no exit 0 within {DRAIN_LIMIT_S} s of SIGTERM:\n"
                                f"{s.log_tail()}")
        self.assertLess(took, DRAIN_LIMIT_S)
        self.assertGreater(running, 0, "every stream ended before SIGTERM: nothing drained")
        self.assert_no_problems([p for _, p in judged if p], "clients at SIGTERM")
        self.assertFalse(os.path.exists(s.port_file), "port file left after exit")
        self.assert_no_problems(s.log_problems(), "gardend's log")


if __name__ == "__main__":
    unittest.main()
