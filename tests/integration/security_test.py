"""gardend as a shared server: tokens, TLS and mutual TLS, the health service,
server reflection, signals, and the start-up errors of each.

Certificates are made here with openssl (a CA, a server certificate for localhost
and 127.0.0.1, client certificates from that CA and from another one). Reflection
is checked with python3-grpcio's generic calls, decoding the protobuf answers with
python3-protobuf, as grpcurl would use them.
"""

import functools
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import gardend_harness as harness

SOURCE = os.environ.get("GARDEN_SOURCE",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("GARDEN_BIN", os.path.join(SOURCE, "build", "bin"))
GARDEND = os.path.join(BIN, "gardend")
GARDEN = os.path.join(BIN, "garden")
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
import make_suite  # noqa: E402

STEPS = [0, 1, 2]
MODEL = ["--suite", "pythia", "--size", "micro", "--variant", "standard"]


def run(cmd, timeout=60, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def garden(addr, *args, globals_=(), env=None, timeout=60):
    """garden --server ADDR [global flags] ARGS..., without GARDEN_TOKEN from outside."""
    e = {k: v for k, v in os.environ.items() if k != "GARDEN_TOKEN"}
    e.update(env or {})
    return run([GARDEN, "--server", addr, *globals_, *args], timeout=timeout, env=e)


def new_token(name):
    r = run([GARDEN, "token", "new", name])
    assert r.returncode == 0, r.stderr
    token, line = r.stdout.splitlines()
    return token, line


def openssl(*args):
    r = run(["openssl", *args])
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"


def make_pki(d):
    """ca.pem, server.{pem,key} (localhost, 127.0.0.1), client.{pem,key} from the CA,
    other-ca.pem and stranger.{pem,key} from another CA."""
    p = functools.partial(os.path.join, d)  # a partial: no method binding as cls.pki
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p(f"{ca}.key"),
                "-out", p(f"{ca}.pem"), "-days", "2", "-subj", f"/CN=Garden test {ca}")
    with open(p("san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, ca, cn, ext in (("server", "ca", "localhost", ["-extfile", p("san.ext")]),
                              ("client", "ca", "alice", []),
                              ("stranger", "other-ca", "mallory", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p(f"{name}.key"),
                "-out", p(f"{name}.csr"), "-subj", f"/CN={cn}")
        openssl("x509", "-req", "-in", p(f"{name}.csr"), "-CA", p(f"{ca}.pem"), "-CAkey",
                p(f"{ca}.key"), "-CAcreateserial", "-out", p(f"{name}.pem"), "-days", "2",
                *ext)
    return p


# Protobuf's wire format, enough to read reflection's answers (whose .proto is
# not installed here): {field number: [values]}, length-delimited values as bytes.
def wire_fields(data):
    fields, i = {}, 0

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    while i < len(data):
        key = varint()
        number, kind = key >> 3, key & 7
        if kind == 0:
            value = varint()
        elif kind == 2:
            n = varint()
            value, i = data[i:i + n], i + n
        elif kind == 1:
            value, i = data[i:i + 8], i + 8
        elif kind == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {kind}")
        fields.setdefault(number, []).append(value)
    return fields


def wire_string(number, text):
    body = text.encode()
    assert len(body) < 128
    return bytes([number << 3 | 2, len(body)]) + body


REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def reflect(addr, request, token=None):
    """One ServerReflectionInfo exchange; the decoded response's fields."""
    import grpc
    with grpc.insecure_channel(addr) as channel:
        call = channel.stream_stream(REFLECTION)
        metadata = [("authorization", f"Bearer {token}")] if token else None
        answers = call(iter([request]), metadata=metadata, timeout=20)
        return wire_fields(next(answers))


def write_root_and_tokens(cls, tokens_text):
    """The fixture suite in cls.base/root (cls.root, cls.dirs) and a token file
    (cls.tokens) holding `tokens_text`."""
    cls.root = os.path.join(cls.base, "root")
    cls.dirs = make_suite.write_suite(cls.root, "pythia", "micro", "standard", STEPS,
                                      dtype="F16")
    cls.tokens = os.path.join(cls.base, "tokens")
    with open(cls.tokens, "w") as f:
        f.write(tokens_text)


def write_leaky_model(root):
    """pythia-leaky in `root`: damaged files whose bytes a client must not read
    back in an error (a header that is not JSON, a shape holding a string)."""
    for step, header in ((0, b'{"embed_out.weight": {"dtype": "F16", "SECRET-BYTES-0\x01'),
                         (1, b'{"embed_out.weight": {"dtype": "F16", "shape": '
                             b'[2, "SECRET-BYTES-1"], "data_offsets": [0, 2]}}')):
        d = os.path.join(root, "pythia-leaky", f"step{step}")
        os.makedirs(d)
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(len(header).to_bytes(8, "little") + header + b"\0\0")


class TokenServerTest(harness.GardendTestCase):
    """A loopback gardend with --auth-tokens."""

    @classmethod
    def setUpClass(cls):
        cls.alice, alice_line = new_token("alice")
        cls.bob, cls.bob_line = new_token("bob")
        cls.alice_line = alice_line
        cls.set_up_server(GARDEND, "garden-sec-", lambda: [
            "--threads", "2", "--checkpoints", cls.root, "--auth-tokens", cls.tokens])

    @classmethod
    def _write_fixtures(cls):
        write_root_and_tokens(cls, f"# the lab\n{cls.alice_line}\n")
        write_leaky_model(cls.root)
        cls.alice_file = os.path.join(cls.base, "alice.token")
        with open(cls.alice_file, "w") as f:
            f.write(cls.alice + "\n")

    def unauthenticated(self, r, *words):
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertTrue(r.stderr.startswith("garden: UNAUTHENTICATED: "), r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)
        # Nothing says who has tokens.
        self.assertNotIn("alice", r.stderr)
        self.assertNotIn("bob", r.stderr)

    def test_missing_and_unknown_tokens_are_unauthenticated(self):
        self.unauthenticated(garden(self.addr, "models"), "needs a token",
                             "authorization: Bearer", "--token-file")
        self.unauthenticated(garden(self.addr, "models", env={"GARDEN_TOKEN": "gdn_00"}),
                             "not one this server accepts")
        self.unauthenticated(garden(self.addr, "models", env={"GARDEN_TOKEN": self.bob}))
        # A stream is refused the same way, before any work.
        self.unauthenticated(garden(self.addr, "hist", *MODEL, "--steps", "all",
                                    "--no-progress"))

    def test_a_known_token_is_served_by_file_or_environment(self):
        by_file = garden(self.addr, "models", "--format", "json",
                         globals_=["--token-file", self.alice_file])
        self.assertEqual(by_file.returncode, 0, by_file.stderr)
        models = json.loads(by_file.stdout)["models"]
        self.assertEqual({m["name"]: m["steps"] for m in models},
                         {"pythia-micro": STEPS, "pythia-leaky": [0, 1]})
        by_env = garden(self.addr, "models", "--format", "json",
                        env={"GARDEN_TOKEN": self.alice})
        self.assertEqual(by_env.stdout, by_file.stdout)
        hist = garden(self.addr, "hist", *MODEL, "--steps", "all", "--no-progress",
                      "--format", "jsonl", env={"GARDEN_TOKEN": self.alice})
        self.assertEqual(hist.returncode, 0, hist.stderr)
        self.assertEqual([json.loads(x)["step"] for x in hist.stdout.splitlines()], STEPS)

    def test_log_names_the_user_never_the_token(self):
        r = garden(self.addr, "models", env={"GARDEN_TOKEN": self.alice})
        self.assertEqual(r.returncode, 0, r.stderr)
        garden(self.addr, "models", env={"GARDEN_TOKEN": self.bob})
        time.sleep(0.2)
        with open(self.log_path) as f:
            log = f.read()
        self.assertRegex(log, r"ListModels .* from alice at ipv4:127\.0\.0\.1:\d+: OK")
        for secret in (self.alice, self.bob):
            self.assertNotIn(secret, log)

    def test_health_needs_a_token_too(self):
        self.unauthenticated(garden(self.addr, "health"))
        r = garden(self.addr, "health", env={"GARDEN_TOKEN": self.alice})
        self.assertEqual((r.returncode, r.stdout), (0, "SERVING\n"), r.stderr)
        r = garden(self.addr, "health", "--format", "json", env={"GARDEN_TOKEN": self.alice})
        self.assertEqual(json.loads(r.stdout), {"status": "SERVING"})
        r = garden(self.addr, "health", "--service", "no.such.Service",
                   env={"GARDEN_TOKEN": self.alice})
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("garden: NOT_FOUND: "), r.stderr)

    def test_reflection_lists_and_describes_the_services(self):
        import grpc
        with self.assertRaises(grpc.RpcError) as refused:
            reflect(self.addr, wire_string(7, ""))
        self.assertEqual(refused.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        listed = reflect(self.addr, wire_string(7, ""), token=self.alice)
        services = {wire_fields(s)[1][0].decode()
                    for s in wire_fields(listed[6][0]).get(1, [])}
        self.assertLessEqual({"garden.v1.Garden", "grpc.health.v1.Health",
                              "grpc.reflection.v1alpha.ServerReflection"}, services)
        # The descriptor a tool like grpcurl builds its calls from.
        from google.protobuf import descriptor_pb2
        described = reflect(self.addr, wire_string(4, "garden.v1.Garden"), token=self.alice)
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in wire_fields(described[4][0])[1]]
        garden_file = next(f for f in files if f.package == "garden.v1")
        methods = {m.name for s in garden_file.service for m in s.method}
        self.assertLessEqual({"ListModels", "StreamHistograms", "Generate"}, methods)

    def test_sighup_rereads_the_tokens_and_keeps_them_if_the_file_is_bad(self):
        env_bob = {"GARDEN_TOKEN": self.bob}
        self.unauthenticated(garden(self.addr, "models", env=env_bob))
        with open(self.tokens, "a") as f:
            f.write(self.bob_line + "\n")
        self.server.send_signal(signal.SIGHUP)
        self.wait_for_log("SIGHUP: 2 tokens from")
        self.assertEqual(garden(self.addr, "models", env=env_bob).returncode, 0)
        # A broken file leaves the tokens in force, and says why.
        with open(self.tokens, "a") as f:
            f.write("carol\n")
        self.server.send_signal(signal.SIGHUP)
        self.wait_for_log(f"{self.tokens}:4: no ':' in the line")
        self.assertEqual(garden(self.addr, "models", env=env_bob).returncode, 0)
        with open(self.tokens, "w") as f:
            f.write(self.alice_line + "\n")
        self.server.send_signal(signal.SIGHUP)
        self.wait_for_log("SIGHUP: 1 tokens from")
        self.unauthenticated(garden(self.addr, "models", env=env_bob))
        self.assertEqual(garden(self.addr, "models", env={"GARDEN_TOKEN": self.alice})
                         .returncode, 0)

    def test_file_content_stays_in_the_server_log(self):
        for step in (0, 1):
            r = garden(self.addr, "hist", "--size", "leaky", "--steps", str(step),
                       env={"GARDEN_TOKEN": self.alice})
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertTrue(r.stderr.startswith("garden: DATA_LOSS: pythia-leaky/step"
                                                f"{step}/model.safetensors: "), r.stderr)
            self.assertIn("<file content>", r.stderr)
            self.assertNotIn("SECRET", r.stderr)
            self.wait_for_log(f"SECRET-BYTES-{step}")

    def test_sigusr1_is_logged_not_fatal(self):
        self.server.send_signal(signal.SIGUSR1)
        self.wait_for_log("signal 10 ignored")
        self.assertIsNone(self.server.poll())

    def wait_for_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                count = f.read().count(text)
            if count > getattr(self, "_seen", {}).get(text, 0):
                self._seen = {**getattr(self, "_seen", {}), text: count}
                return
            time.sleep(0.05)
        self.fail(f"no {text!r} in the log:\n{self.log_tail()}")


def scrape(port):
    """/metrics as {(name, frozenset(labels)): value}."""
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'(\w+)(?:\{(.*)\})? (\S+)', line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def wide_sweep_request(addr, token):
    """A StreamHistogramsRequest over every step of the 400-step "wide" model with
    65536 bins, built from the server's own reflection, as grpcurl would."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    described = reflect(addr, wire_string(4, "garden.v1.Garden"), token=token)
    pool = descriptor_pool.DescriptorPool()
    for b in wire_fields(described[4][0])[1]:
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(b))
    Request = message_factory.MessageFactory(pool).GetPrototype(
        pool.FindMessageTypeByName("garden.v1.StreamHistogramsRequest"))
    request = Request(bins=65536)
    request.model.size, request.model.variant, request.steps.all = "wide", "standard", True
    return request


def start_sweeps(channel, request, token, n):
    call = channel.unary_stream("/garden.v1.Garden/StreamHistograms",
                                request_serializer=lambda m: m.SerializeToString())
    metadata = [("authorization", f"Bearer {token}")] if token else None
    return [call(request, metadata=metadata, timeout=60) for _ in range(n)]


class HeldStreams:
    """`n` sweeps of the "wide" model whose client reads nothing: frames of 65536
    bins overflow every buffer on the way, so each handler waits in Write.
    Cancelled on exit."""

    def __init__(self, addr, token, n):
        self.addr, self.token, self.n = addr, token, n

    def __enter__(self):
        import grpc
        request = wide_sweep_request(self.addr, self.token)
        self.channel = grpc.insecure_channel(self.addr)
        self.calls = start_sweeps(self.channel, request, self.token, self.n)
        return self

    def __exit__(self, *exc):
        for c in self.calls:
            c.cancel()
        self.channel.close()


class DrainTest(unittest.TestCase):
    """SIGTERM with a stream in flight: --drain-seconds lets it finish; without, it
    is cancelled; either way gardend exits 0."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="garden-drain-")
        cls.base = cls._tmp.name
        cls.root = os.path.join(cls.base, "root")
        make_suite.write_suite(cls.root, "pythia", "wide", "standard", list(range(400)),
                               dtype="F16")

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def sweep_through_sigterm(self, flags):
        """(histogram frames read, final status) of a slowly read sweep during which
        gardend gets SIGTERM, and gardend's exit status."""
        import grpc
        proc, port = harness.start_server(
            GARDEND, ["--checkpoints", self.root, *flags], os.path.join(self.base, "log"),
            os.path.join(self.base, "port"))
        addr = f"127.0.0.1:{port}"
        frames, status = 0, None
        with grpc.insecure_channel(addr) as channel:
            (call,) = start_sweeps(channel, wide_sweep_request(addr, None), None, 1)
            try:
                for message in call:
                    if 1 not in wire_fields(message):
                        continue  # a progress message (field 2), not a frame (1)
                    frames += 1
                    if frames == 20:
                        proc.send_signal(signal.SIGTERM)
                    time.sleep(0.005)  # 400 frames take > 2 s to read
                status = grpc.StatusCode.OK
            except grpc.RpcError as e:
                status = e.code()
        rc, took = harness.stop_server(proc, 30)
        return frames, status, rc

    def test_drain_seconds_let_the_stream_finish(self):
        frames, status, rc = self.sweep_through_sigterm(["--drain-seconds", "20"])
        import grpc
        self.assertEqual((frames, status, rc), (400, grpc.StatusCode.OK, 0))

    def test_without_drain_the_stream_is_cancelled(self):
        import grpc
        frames, status, rc = self.sweep_through_sigterm([])
        self.assertLess(frames, 400)
        self.assertIn(status, (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED))
        self.assertEqual(rc, 0)


class MetricsAndJsonLogTest(harness.GardendTestCase):
    """--metrics-listen and --log-format json on a server with tokens."""

    @classmethod
    def setUpClass(cls):
        cls.alice, cls.alice_line = new_token("alice")
        cls.set_up_server(GARDEND, "garden-metrics-", lambda: [
            "--threads", "2", "--checkpoints", cls.root, "--auth-tokens", cls.tokens,
            "--metrics-listen", "127.0.0.1:0", "--log-format", "json",
            "--max-streams-per-user", "2"])
        with open(cls.log_path) as f:
            lines = [json.loads(line) for line in f]
        cls.metrics_port = next(int(re.search(r":(\d+)/metrics", x["msg"]).group(1))
                                for x in lines if "/metrics" in x["msg"])

    @classmethod
    def _write_fixtures(cls):
        write_root_and_tokens(cls, cls.alice_line + "\n")
        # Enough steps that a sweep's frames overflow every buffer between a
        # server and a client that does not read.
        make_suite.write_suite(cls.root, "pythia", "wide", "standard", list(range(400)),
                               dtype="F16")

    def log_lines(self):
        with open(self.log_path) as f:
            return [json.loads(line) for line in f]  # every line is one JSON object

    def test_requests_bytes_and_refusals_are_counted(self):
        before = scrape(self.metrics_port)
        env = {"GARDEN_TOKEN": self.alice}
        r = garden(self.addr, "hist", *MODEL, "--steps", "all", "--no-progress", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(garden(self.addr, "tensors", *MODEL, "--step", "99",
                                env=env).returncode, 1)
        self.assertEqual(garden(self.addr, "models").returncode, 1)  # no token
        after = scrape(self.metrics_port)

        def delta(name, **labels):
            key = (name, frozenset(labels.items()))
            return after.get(key, 0) - before.get(key, 0)

        self.assertEqual(delta("garden_requests_total", method="StreamHistograms", code="OK"), 1)
        self.assertEqual(delta("garden_requests_total", method="ListTensors", code="NOT_FOUND"),
                         1)
        self.assertEqual(delta("garden_request_duration_seconds_count",
                               method="StreamHistograms"), 1)
        self.assertEqual(delta("garden_auth_refused_total"), 1)
        self.assertEqual(after[("garden_active_streams", frozenset({("user", "alice")}))], 0)
        # The sweep read at least the tensor of every step from disk.
        header = make_suite.read_header(self.dirs[STEPS[0]])["embed_out.weight"]
        tensor_bytes = header["data_offsets"][1] - header["data_offsets"][0]
        self.assertGreaterEqual(delta("garden_disk_bytes_read_total"), len(STEPS) * tensor_bytes)
        self.assertEqual(after[("garden_pool_threads", frozenset())], 2)
        for name in ("garden_cache_hits_total", "garden_cache_bytes", "garden_pool_queue_length"):
            self.assertTrue(any(k[0] == name for k in after), name)

    def test_json_log_lines_carry_the_request(self):
        import grpc
        r = garden(self.addr, "hist", *MODEL, "--steps", "0", "--no-progress",
                   env={"GARDEN_TOKEN": self.alice})
        self.assertEqual(r.returncode, 0, r.stderr)
        # A caller's own request id is kept.
        with grpc.insecure_channel(self.addr) as channel:
            call = channel.unary_unary("/garden.v1.Garden/ListModels")
            call(b"", metadata=[("authorization", f"Bearer {self.alice}"),
                                ("x-request-id", "ci-run-42.7")], timeout=20)
        time.sleep(0.2)
        lines = self.log_lines()
        hist = [x for x in lines if x.get("method") == "StreamHistograms" and x["code"] == "OK"]
        self.assertTrue(hist, lines[-5:])
        x = hist[-1]
        self.assertRegex(x["request_id"], r"^[0-9a-f]{16}$")
        self.assertEqual((x["user"], x["model"], x["level"]),
                         ("alice", "pythia/micro/standard", "info"))
        self.assertRegex(x["peer"], r"^ipv4:127\.0\.0\.1:\d+$")
        self.assertIsInstance(x["duration_ms"], float)
        self.assertRegex(x["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        listed = [x for x in lines if x.get("method") == "ListModels"]
        self.assertEqual(listed[-1]["request_id"], "ci-run-42.7")
        self.assertNotIn("model", listed[-1])
        with open(self.log_path) as f:
            self.assertNotIn(self.alice, f.read())

    def test_streams_past_the_per_user_limit_are_resource_exhausted(self):
        with HeldStreams(self.addr, self.alice, 2):
            deadline = time.monotonic() + 20
            while (scrape(self.metrics_port).get(
                    ("garden_active_streams", frozenset({("user", "alice")})), 0) < 2
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            time.sleep(1)  # still both in flight a second later: held
            r = garden(self.addr, "models", env={"GARDEN_TOKEN": self.alice})
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertEqual(r.stderr.strip(),
                             "garden: RESOURCE_EXHAUSTED: alice already has 2 requests in "
                             "flight, the server's limit (--max-streams-per-user 2); retry "
                             "when one has finished")
        # Once they are gone, alice is served again.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = garden(self.addr, "models", env={"GARDEN_TOKEN": self.alice})
            if r.returncode == 0:
                break
            time.sleep(0.1)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_metrics_off_loopback_need_insecure(self):
        r = run([GARDEND, "--listen", "127.0.0.1:0", "--checkpoints", self.root,
                 "--metrics-listen", "0.0.0.0:0"], timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--metrics-listen 0.0.0.0:0 is reachable from other hosts", r.stderr)


class StreamIdleTimeoutTest(harness.GardendTestCase):
    """A client that reads nothing is cut off after --stream-idle-timeout."""

    @classmethod
    def setUpClass(cls):
        cls.set_up_server(GARDEND, "garden-idle-", lambda: [
            "--threads", "2", "--checkpoints", cls.root, "--stream-idle-timeout", "1",
            "--metrics-listen", "127.0.0.1:0"])
        with open(cls.log_path) as f:
            cls.metrics_port = int(re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics",
                                             f.read()).group(1))

    @classmethod
    def _write_fixtures(cls):
        cls.root = os.path.join(cls.base, "root")
        make_suite.write_suite(cls.root, "pythia", "wide", "standard", list(range(400)),
                               dtype="F16")

    def test_a_stream_nobody_reads_is_cancelled(self):
        import grpc
        active = ("garden_active_streams", frozenset({("user", "anonymous")}))
        with HeldStreams(self.addr, None, 1) as held:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with open(self.log_path) as f:
                    if "its client read nothing for 1000 ms" in f.read():
                        break
                time.sleep(0.1)
            else:
                self.fail(f"the stream was not cancelled:\n{self.log_tail()}")
            # The handler stopped and let go of its slot.
            while scrape(self.metrics_port).get(active, 0) > 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(scrape(self.metrics_port)[active], 0)
            with self.assertRaises(grpc.RpcError) as e:
                for _ in held.calls[0]:
                    pass
            self.assertEqual(e.exception.code(), grpc.StatusCode.CANCELLED)
        r = garden(self.addr, "models")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_deadline_stops_the_work(self):
        # The whole sweep takes ~0.5 s here; the deadline passes well before.
        r = garden(self.addr, "hist", "--size", "wide", "--variant", "standard", "--steps",
                   "all", "--bins", "65536", "--no-progress", "--format", "jsonl",
                   globals_=["--timeout", "0.2"])
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("garden: DEADLINE_EXCEEDED: "), r.stderr)
        deadline = time.monotonic() + 10
        pattern = re.compile(r"StreamHistograms pythia-wide embed_out\.weight all \(400 steps\), "
                             r"(\d+) sent from .*: DEADLINE_EXCEEDED: the client's deadline "
                             r"passed; the work stopped after ([0-9.]+) ms")
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                m = pattern.search(f.read())
            if m:
                break
            time.sleep(0.05)
        self.assertIsNotNone(m, self.log_tail())
        # Stopped, not finished: fewer than all 400 frames, soon after the deadline.
        self.assertLess(int(m.group(1)), 400)
        self.assertLess(float(m.group(2)), 2000)


class LimitsTest(harness.GardendTestCase):
    """--max-steps-per-request, oversized metadata, a flood of connections."""

    @classmethod
    def setUpClass(cls):
        cls.set_up_server(GARDEND, "garden-steps-", lambda: [
            "--threads", "2", "--checkpoints", cls.root, "--max-steps-per-request", "2"])

    @classmethod
    def _write_fixtures(cls):
        cls.root = os.path.join(cls.base, "root")
        make_suite.write_suite(cls.root, "pythia", "micro", "standard", STEPS, dtype="F16")

    def test_requests_over_the_step_limit_are_resource_exhausted(self):
        for command in ("hist", "msd", "bifurcation"):
            r = garden(self.addr, command, *MODEL, "--steps", "all", "--no-progress")
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertEqual(r.stderr.strip(),
                             "garden: RESOURCE_EXHAUSTED: the request selects 3 steps of "
                             "pythia-micro; this server allows at most 2 per request "
                             "(--max-steps-per-request): ask for a range or list")
        r = garden(self.addr, "hist", *MODEL, "--steps", "0,2", "--no-progress",
                   "--format", "jsonl")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([json.loads(x)["step"] for x in r.stdout.splitlines()], [0, 2])

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.server.pid}/fd"))

    def test_oversized_metadata_is_refused_and_the_server_lives_on(self):
        import grpc
        with grpc.insecure_channel(self.addr) as channel:
            call = channel.unary_unary("/garden.v1.Garden/ListModels")
            call(b"", metadata=[("x-note", "a" * 4000)], timeout=20)  # within gRPC's 8 KiB
            for size in (20000, 1000000):
                with self.assertRaises(grpc.RpcError) as e:
                    call(b"", metadata=[("x-note", "a" * size)], timeout=20)
                self.assertIn(e.exception.code(), (grpc.StatusCode.RESOURCE_EXHAUSTED,
                                                   grpc.StatusCode.UNAVAILABLE), size)
        self.assertEqual(garden(self.addr, "models").returncode, 0)

    def test_a_flood_of_connections_leaves_it_serving_and_leaks_nothing(self):
        import socket
        before = self.open_fds()
        flood = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(1000)]
        try:
            start = time.monotonic()
            r = garden(self.addr, "models", timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertLess(time.monotonic() - start, 10)
        finally:
            for sock in flood:
                sock.close()
        deadline = time.monotonic() + 20
        while self.open_fds() > before + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertLessEqual(self.open_fds(), before + 5)


class RpcThreadsTest(harness.GardendTestCase):
    """--max-rpc-threads bounds the threads calls in flight take."""

    @classmethod
    def setUpClass(cls):
        cls.set_up_server(GARDEND, "garden-threads-", lambda: [
            "--threads", "2", "--checkpoints", cls.root, "--max-rpc-threads", "8"])

    @classmethod
    def _write_fixtures(cls):
        cls.root = os.path.join(cls.base, "root")
        make_suite.write_suite(cls.root, "pythia", "wide", "standard", list(range(400)),
                               dtype="F16")

    def threads(self):
        return len(os.listdir(f"/proc/{self.server.pid}/task"))

    def test_calls_past_the_quota_are_refused_and_threads_stay_bounded(self):
        import grpc
        idle = self.threads()
        with HeldStreams(self.addr, None, 24) as held:
            deadline = time.monotonic() + 20
            refused = []
            while time.monotonic() < deadline:
                refused = [c for c in held.calls
                           if c.done() and c.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
                if len(refused) >= 16:
                    break
                time.sleep(0.05)
            # At most 8 gRPC threads, whatever the number of calls.
            self.assertLessEqual(self.threads(), idle + 8)
            self.assertGreaterEqual(len(refused), 16)
            self.assertEqual(refused[0].details(), "Server Threadpool Exhausted")
        # The held calls cancelled, it serves again.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = garden(self.addr, "models")
            if r.returncode == 0:
                break
            time.sleep(0.1)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsNone(self.server.poll())

    def test_too_few_threads_is_a_start_up_error(self):
        r = run([GARDEND, "--listen", "127.0.0.1:0", "--checkpoints", self.root,
                 "--max-rpc-threads", "2"], timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--max-rpc-threads 2 is below 4", r.stderr)


class TlsServerTest(harness.GardendTestCase):
    """gardend over mutual TLS with tokens, and what each missing piece gives."""

    @classmethod
    def setUpClass(cls):
        cls.alice, cls.alice_line = new_token("alice")
        cls.set_up_server(GARDEND, "garden-tls-", lambda: [
            "--threads", "2", "--checkpoints", cls.root, "--auth-tokens", cls.tokens,
            "--tls-cert", cls.pki("server.pem"), "--tls-key", cls.pki("server.key"),
            "--tls-client-ca", cls.pki("ca.pem")])

    @classmethod
    def _write_fixtures(cls):
        write_root_and_tokens(cls, cls.alice_line + "\n")
        cls.pki = make_pki(cls.base)

    def tls(self, *names):
        flags = {"ca": ["--tls-ca", self.pki("ca.pem")],
                 "other-ca": ["--tls-ca", self.pki("other-ca.pem")],
                 "client": ["--tls-cert", self.pki("client.pem"),
                            "--tls-key", self.pki("client.key")],
                 "stranger": ["--tls-cert", self.pki("stranger.pem"),
                              "--tls-key", self.pki("stranger.key")]}
        return [f for n in names for f in flags[n]]

    def test_mutual_tls_with_a_token_is_served_by_name_and_address(self):
        for host in ("localhost", "127.0.0.1"):
            r = garden(f"{host}:{self.port}", "models", "--format", "json",
                       globals_=self.tls("ca", "client"), env={"GARDEN_TOKEN": self.alice})
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["models"][0]["steps"], STEPS)
        r = garden(f"localhost:{self.port}", "health", globals_=self.tls("ca", "client"),
                   env={"GARDEN_TOKEN": self.alice})
        self.assertEqual((r.returncode, r.stdout), (0, "SERVING\n"), r.stderr)

    def test_each_missing_piece_is_refused(self):
        addr, env = f"localhost:{self.port}", {"GARDEN_TOKEN": self.alice}
        cases = {
            "plaintext": ([], "UNAVAILABLE"),
            "no client certificate": (self.tls("ca"), "UNAVAILABLE"),
            "a client certificate of another CA": (self.tls("ca", "stranger"), "UNAVAILABLE"),
            "a server the CA did not sign": (self.tls("other-ca", "client"), "UNAVAILABLE"),
        }
        for what, (flags, code) in cases.items():
            r = garden(addr, "models", globals_=["--timeout", "10", *flags], env=env)
            self.assertEqual(r.returncode, 1, what)
            self.assertTrue(r.stderr.startswith(f"garden: {code}: "), f"{what}: {r.stderr}")
        r = garden(addr, "models", globals_=self.tls("ca", "client"))
        self.assertTrue(r.stderr.startswith("garden: UNAUTHENTICATED: "), r.stderr)


class StartupTest(unittest.TestCase):
    """Mistakes in the security flags stop gardend at once, naming the file and why."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="garden-sec-start-")
        cls.base = cls._tmp.name
        cls.root = os.path.join(cls.base, "root")
        make_suite.write_suite(cls.root, "pythia", "micro", "standard", [0], dtype="F16")
        cls.pki = make_pki(cls.base)
        _, line = new_token("alice")
        cls.tokens = os.path.join(cls.base, "tokens")
        with open(cls.tokens, "w") as f:
            f.write(line + "\n")

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def refused(self, flags, *words, listen="127.0.0.1:0"):
        r = run([GARDEND, "--listen", listen, "--checkpoints", self.root, *flags], timeout=30)
        self.assertEqual(r.returncode, 2, f"{flags}: {r.stderr}")
        for w in words:
            self.assertIn(w, r.stderr)
        return r.stderr

    def test_bad_token_files(self):
        bad = os.path.join(self.base, "bad-tokens")
        with open(bad, "w") as f:
            f.write("# ok\nalice:" + "0" * 64 + "\nbob:gdn_secret\n")
        self.refused(["--auth-tokens", bad], f"{bad}:3: after the name", "64 hex digits")
        self.refused(["--auth-tokens", os.path.join(self.base, "absent")], "absent")

    def test_bad_certificates(self):
        p = self.pki
        self.refused(["--tls-cert", p("server.pem"), "--tls-key", p("client.key")],
                     f"--tls-key {p('client.key')} does not match the certificate in "
                     f"--tls-cert {p('server.pem')}")
        self.refused(["--tls-cert", p("absent.pem"), "--tls-key", p("server.key")],
                     "--tls-cert", "absent.pem")
        self.refused(["--tls-cert", p("san.ext"), "--tls-key", p("server.key")],
                     f"--tls-cert {p('san.ext')}: no PEM certificate")
        self.refused(["--tls-cert", p("server.pem"), "--tls-key", p("server.pem")],
                     "no unencrypted PEM private key")
        self.refused(["--tls-cert", p("server.pem")], "--tls-cert and --tls-key go together")
        self.refused(["--tls-client-ca", p("ca.pem")], "give --tls-cert and --tls-key too")
        self.refused(["--tls-cert", p("server.pem"), "--tls-key", p("server.key"),
                      "--tls-client-ca", p("server.key")], "--tls-client-ca", "no PEM certificate")

    def test_plaintext_off_loopback_needs_insecure_and_no_tokens(self):
        self.refused([], "--listen 0.0.0.0:0 is reachable from other hosts", "--insecure",
                     "--tls-cert", listen="0.0.0.0:0")
        self.refused(["--insecure", "--auth-tokens", self.tokens],
                     "tokens would cross the network in clear", listen="[::]:0")

    def test_port_file_is_removed_when_gardend_stops(self):
        port_file = os.path.join(self.base, "port")
        proc, port = harness.start_server(GARDEND, ["--checkpoints", self.root],
                                          os.path.join(self.base, "log"), port_file)
        self.assertTrue(os.path.exists(port_file))
        rc, _ = harness.stop_server(proc, 10)
        self.assertEqual(rc, 0)
        self.assertFalse(os.path.exists(port_file))


class TokenCommandTest(unittest.TestCase):
    def test_token_new_prints_a_token_and_the_line_that_admits_it(self):
        r = run([GARDEN, "token", "new", "ci-runner@lab"])
        self.assertEqual(r.returncode, 0, r.stderr)
        token, line = r.stdout.splitlines()
        self.assertRegex(token, r"^gdn_[0-9a-f]{64}$")
        self.assertEqual(line, "ci-runner@lab:" + hashlib.sha256(token.encode()).hexdigest())
        self.assertIn("--auth-tokens", r.stderr)
        self.assertNotEqual(new_token("x")[0], new_token("x")[0])
        j = json.loads(run([GARDEN, "token", "new", "bob", "--format", "json"]).stdout)
        self.assertEqual(j["line"], "bob:" + hashlib.sha256(j["token"].encode()).hexdigest())

    def test_bad_names_and_files_are_refused(self):
        r = run([GARDEN, "token", "new", "no spaces"])
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("garden: INVALID_ARGUMENT: the token name "
                                            "\"no spaces\""), r.stderr)
        r = run([GARDEN, "--token-file", "/nonexistent/token", "models"])
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("garden: NOT_FOUND: --token-file /nonexistent/token"),
                        r.stderr)
        r = run([GARDEN, "--tls-cert", "/x", "models"])
        self.assertIn("--tls-cert and --tls-key go together", r.stderr)


if __name__ == "__main__":
    unittest.main()
