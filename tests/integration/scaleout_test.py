"""Scale-out: several gardend replicas behind nginx's consistent hash on
x-garden-model (deploy/nginx/garden.conf, deploy/k8s/).

ProxyTest renders deploy/nginx/garden.conf with deploy/nginx/render for three
loopback replicas (tokens on, TLS at nginx) and shows that every call about a
model lands on one replica, the one deploy/nginx/ring.py predicts, with the
same answer as a direct call; that tokens and TLS work through the proxy; and
that after a SIGKILL only the dead replica's models move, each to the replica
the ring names. KubernetesManifestTest parses deploy/k8s/*.yaml, checks that
they agree with each other and with the template, then runs gardend with the
StatefulSet's own arguments, its probe's command and nginx with the
ConfigMap's config (container paths mapped into a temporary folder), TLS and
tokens end to end.

Replicas are counted by their garden_requests_total{method="StreamHistograms",
code="OK"} (the metrics have no model label, so the counts are read before
and after each model's calls). After the SIGKILL a client may retry a call
once after UNAVAILABLE, as a real one must for a call the replica took down
with it; nginx itself moves every call that could not connect, and the test
checks that it did. Only loopback is used. Skips without nginx (Debian 12's
`nginx` package); the manifests' static checks need only python3-yaml.
"""

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import gardend_harness as harness

SOURCE = os.environ.get("GARDEN_SOURCE",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN = os.environ.get("GARDEN_BIN", os.path.join(SOURCE, "build", "bin"))
GARDEND = os.path.join(BIN, "gardend")
GARDEN = os.path.join(BIN, "garden")
DEPLOY = os.path.join(SOURCE, "deploy")
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
sys.path.insert(0, os.path.join(DEPLOY, "nginx"))
import make_suite  # noqa: E402
import ring  # noqa: E402

NO_NGINX = "nginx is not installed (Debian 12: apt-get install nginx)"
STEPS = [0, 1, 2]
# Enough models that each of three replicas owns some on any ports: a replica
# owns about a third of the ring, so it misses all 24 with probability
# ~(2/3)^24 = 6e-5, and the test asserts all three are used.
SIZES = ["micro"] + [f"m{i}" for i in range(1, 24)]
# The replica's certificate: the name the k8s proxy checks (grpc_ssl_name),
# the pods' names, and localhost for the probe.
REPLICA_SANS = ("DNS:gardend.garden.svc.cluster.local,DNS:*.gardend.garden.svc.cluster.local,"
                "DNS:localhost,IP:127.0.0.1")


def key(size):
    return f"pythia/{size}/standard"


def hist_args(size):
    return ["hist", "--size", size, "--variant", "standard", "--steps", "all",
            "--no-progress", "--format", "jsonl"]


def run(cmd, timeout=60, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def garden(addr, *args, globals_=(), token=None, timeout=60):
    """garden --server ADDR --timeout 30 [globals] ARGS, with GARDEN_TOKEN=token only."""
    env = {k: v for k, v in os.environ.items() if k != "GARDEN_TOKEN"}
    if token:
        env["GARDEN_TOKEN"] = token
    return run([GARDEN, "--server", addr, "--timeout", "30", *globals_, *args],
               timeout=timeout, env=env)


def openssl(*args):
    r = run(["openssl", *args])
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"


def make_pki(d):
    """ca.pem; proxy.{pem,key} (localhost, 127.0.0.1); replica.{pem,key}
    (REPLICA_SANS); other-ca.pem. P-256 keys: quicker to make than RSA."""
    p = functools.partial(os.path.join, d)  # a partial: no method binding as cls.pki
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", p(f"{ca}.key"), "-out", p(f"{ca}.pem"), "-days", "2",
                "-subj", f"/CN=Garden scale-out test {ca}")
    for name, sans in (("proxy", "DNS:localhost,IP:127.0.0.1"), ("replica", REPLICA_SANS)):
        with open(p(f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={sans}\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", p(f"{name}.key"), "-out", p(f"{name}.csr"), "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", p(f"{name}.csr"), "-CA", p("ca.pem"), "-CAkey",
                p("ca.key"), "-CAcreateserial", "-out", p(f"{name}.pem"), "-days", "2",
                "-extfile", p(f"{name}.ext"))
    return p


def new_token(name):
    r = run([GARDEN, "token", "new", name])
    assert r.returncode == 0, r.stderr
    token, line = r.stdout.splitlines()
    return token, line


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    """One gardend on loopback: its process, gRPC port, metrics port and log."""

    def __init__(self, args, base, name, env=None):
        self.log_path = os.path.join(base, f"{name}.log")
        self.port_file = os.path.join(base, f"{name}.port")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [GARDEND, "--port-file", self.port_file, *args], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.port = self.metrics_port = None

    def wait_ready(self, deadline):
        """Started replicas are waited for together: each takes ~1.5 s (libtorch)."""
        while time.monotonic() < deadline:
            if self.port is None and os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    text = f.read().strip()
                self.port = int(text) if text else None
            m = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", self.log())
            if m:
                self.metrics_port = int(m.group(1))
            if self.port and self.metrics_port:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"gardend did not start (exit {self.proc.poll()}):\n{self.log()}")

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def metric(self, name, **labels):
        """One sample of /metrics now (0 if absent), e.g.
        metric("garden_requests_total", method="StreamHistograms", code="OK")."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        want = set(labels.items())
        for line in text.splitlines():
            m = re.fullmatch(r'(\w+)(?:\{(.*)\})? (\S+)', line)
            if m and m.group(1) == name and set(
                    re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")) == want:
                return float(m.group(3))
        return 0.0

    def streams_ok(self):
        return self.metric("garden_requests_total", method="StreamHistograms", code="OK")

    def stop(self):
        """SIGTERM; the exit status (None if it had to be killed after 10 s)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        return harness.stop_server(self.proc, 10)[0]


def start_replicas(argss, base, prefix, env=None):
    replicas = [Replica(args, base, f"{prefix}{i}", env) for i, args in enumerate(argss)]
    deadline = time.monotonic() + 60
    try:
        for r in replicas:
            r.wait_ready(deadline)
    except BaseException:
        for r in replicas:
            r.stop()
        raise
    return replicas


class Nginx:
    """nginx in the foreground as our child: -p PREFIX -c CONF, 'daemon off'."""

    def __init__(self, prefix, conf, port):
        self.prefix, self.port = prefix, port
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(prefix, d), exist_ok=True)
        self.stdout_path = os.path.join(prefix, "nginx.out")
        with open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen([NGINX, "-p", prefix + "/", "-c", conf,
                                          "-g", "daemon off;"],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nginx did not start (exit {self.proc.poll()}):\n{self.output()}")

    def output(self):
        """nginx's stdout and stderr (the k8s config logs access lines here)."""
        with open(self.stdout_path, errors="replace") as f:
            return f.read()

    def file(self, name):
        path = os.path.join(self.prefix, name)
        if not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def access_lines(text):
    """The `garden` log_format's lines as dicts (model, upstream, status, grpc_status)."""
    out = []
    for line in text.splitlines():
        m = re.search(r'"([^"]*)" upstream=(.*) status=(\d+) grpc_status=(\S+) '
                      r'request_id=(\S+)', line)
        if m:
            out.append({"model": m.group(1), "upstream": m.group(2).split(", "),
                        "status": m.group(3), "grpc_status": m.group(4),
                        "request_id": m.group(5)})
    return out


@unittest.skipUnless(NGINX, NO_NGINX)
class ProxyTest(unittest.TestCase):
    """deploy/nginx/garden.conf over three loopback replicas with tokens.

    The tests are numbered because test_3 kills a replica for good; each one
    still checks its own premises and passes alone."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="garden-scaleout-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.base = os.path.realpath(cls._tmp.name)
        cls.pki = make_pki(cls.base)
        cls.root = os.path.join(cls.base, "root")
        for size in SIZES:
            make_suite.write_suite(cls.root, "pythia", size, "standard", STEPS, dtype="F16")
        cls.alice, alice_line = new_token("alice")
        cls.tokens = os.path.join(cls.base, "tokens")
        with open(cls.tokens, "w") as f:
            f.write(alice_line + "\n")
        # Plaintext on loopback with tokens: gardend takes tokens only from
        # loopback peers, which nginx on the same host is.
        cls.replicas = start_replicas(
            [["--listen", "127.0.0.1:0", "--threads", "1", "--checkpoints", cls.root,
              "--auth-tokens", cls.tokens, "--metrics-listen", "127.0.0.1:0",
              "--log-format", "json"]] * 3, cls.base, "replica")
        for r in cls.replicas:
            cls.addClassCleanup(r.stop)
        cls.by_addr = {r.addr: r for r in cls.replicas}

        # The template, filled in by the script users run.
        cls.nginx_port = free_port()
        prefix = os.path.join(cls.base, "nginx")
        os.makedirs(prefix)
        rendered = run(["sh", os.path.join(DEPLOY, "nginx", "render"),
                        f"127.0.0.1:{cls.nginx_port}", cls.pki("proxy.pem"),
                        cls.pki("proxy.key"), *[r.addr for r in cls.replicas]])
        assert rendered.returncode == 0, rendered.stderr
        cls.conf = os.path.join(prefix, "garden.conf")
        with open(cls.conf, "w") as f:
            f.write(rendered.stdout)
        cls.nginx = Nginx(prefix, cls.conf, cls.nginx_port)
        cls.addClassCleanup(cls.nginx.stop)
        cls.proxy = f"localhost:{cls.nginx_port}"
        cls.tls = ["--tls-ca", cls.pki("ca.pem")]
        # The ring as ring.py reads it from the rendered config.
        cls.ring = ring.Ring(ring.servers_of_config(rendered.stdout))
        assert cls.ring.servers == [r.addr for r in cls.replicas], cls.ring.servers

        # What each model's sweep is, asked of one replica directly.
        cls.expected = {}
        for size in SIZES:
            r = garden(cls.replicas[0].addr, *hist_args(size), token=cls.alice)
            assert r.returncode == 0 and r.stdout.count("\n") == len(STEPS), r.stderr
            cls.expected[size] = r.stdout

    killed = None  # the replica test_3 kills

    @classmethod
    def tearDownClass(cls):
        cls.nginx.stop()
        exits = {r.addr: (r.proc.poll(), r.stop()) for r in cls.replicas if r is not cls.killed}
        died = {a: e for a, e in exits.items() if e[0] is not None}
        failed = {a: e for a, e in exits.items() if e[1] != 0}
        if died or failed:
            raise AssertionError(f"replicas that died during the tests: {died}; that did not "
                                 f"exit 0 within 10 s of SIGTERM: {failed}")

    def setUp(self):
        for r in self.replicas:
            if r is not self.killed and r.proc.poll() is not None:
                self.fail(f"gardend {r.addr} died (exit {r.proc.returncode}):\n{r.log()[-3000:]}")

    def via_proxy(self, *args, token="alice", retry=False):
        """garden through nginx with TLS; with retry, one more try after
        UNAVAILABLE (what a client does when a replica dies under a call)."""
        token = self.alice if token == "alice" else token
        r = garden(self.proxy, *args, globals_=self.tls, token=token)
        if retry and r.returncode != 0 and r.stderr.startswith("garden: UNAVAILABLE"):
            self.retried = getattr(self, "retried", []) + [(args, r.stderr)]
            r = garden(self.proxy, *args, globals_=self.tls, token=token)
        return r

    def live(self):
        return [r for r in self.replicas if r.proc.poll() is None]

    def counts(self):
        return {r.addr: r.streams_ok() for r in self.live()}

    def served_by(self, size, calls, retry=False):
        """Runs `calls` sweeps of the model through nginx, checks each answer
        against the direct one, and returns {replica: streams it served}."""
        before = self.counts()
        for _ in range(calls):
            r = self.via_proxy(*hist_args(size), retry=retry)
            self.assertEqual(r.returncode, 0,
                             f"{size}: {r.stderr}\n{self.nginx.file('logs/error.log')}")
            self.assertEqual(r.stdout, self.expected[size], size)
        after = self.counts()
        return {a: after[a] - before[a] for a in after if after[a] != before[a]}

    def test_1_each_model_lands_on_one_replica_the_ring_predicts(self):
        owners = {}
        for size in SIZES:
            moved = self.served_by(size, 3)
            self.assertEqual(len(moved), 1, f"{key(size)} was served by {moved}")
            (owner, n), = moved.items()
            self.assertEqual(n, 3, f"{key(size)}: {moved}")
            owners[size] = owner
        # nginx's choice is the ketama ring ring.py computes from the config...
        self.assertEqual(owners, {s: self.ring.owner(key(s)) for s in SIZES})
        # ...which spreads the models over every replica.
        self.assertEqual(set(owners.values()), set(self.by_addr), owners)

        # The replica saw the caller's token (its user) and the routing header,
        # and nginx gave the call an x-request-id (its 32-hex $request_id).
        lines = [json.loads(x) for x in self.by_addr[owners["micro"]].log().splitlines()]
        calls = [x for x in lines if x.get("method") == "StreamHistograms"
                 and x.get("model") == key("micro")]
        self.assertGreaterEqual(len(calls), 3)
        for call in calls[-3:]:
            self.assertEqual((call["user"], call["code"]), ("alice", "OK"))
            self.assertRegex(call["request_id"], r"^[0-9a-f]{32}$")
            self.assertIn("ipv4:127.0.0.1:", call["peer"])
        logged = [x for x in access_lines(self.nginx.file("logs/access.log"))
                  if x["model"] == key("micro")]
        self.assertGreaterEqual(len(logged), 3)
        self.assertEqual({x["request_id"] for x in logged[-3:]},
                         {c["request_id"] for c in calls[-3:]})

    def test_2_tls_and_tokens_through_the_proxy(self):
        r = self.via_proxy("models", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        models = json.loads(r.stdout)["models"]
        self.assertEqual(sorted(m["size"] for m in models), sorted(SIZES))
        self.assertTrue(all(m["steps"] == STEPS for m in models))
        r = self.via_proxy("health")
        self.assertEqual((r.returncode, r.stdout), (0, "SERVING\n"), r.stderr)

        # gardend refuses (its refusal counter moves), and nginx passes the
        # status and message through.
        refused_before = sum(rep.metric("garden_auth_refused_total") for rep in self.live())
        for args in (hist_args("micro"), ["models"], ["health"]):
            r = self.via_proxy(*args, token=None)
            self.assertEqual(r.returncode, 1, args)
            self.assertTrue(r.stderr.startswith("garden: UNAUTHENTICATED: "), r.stderr)
            self.assertIn("needs a token", r.stderr)
        r = self.via_proxy(*hist_args("micro"), token="gdn_" + "0" * 64)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("garden: UNAUTHENTICATED: "), r.stderr)
        self.assertIn("not one this server accepts", r.stderr)
        self.assertEqual(r.stdout, "")

        # nginx's side: TLS only, with the certificate the CA signed.
        r = garden(f"127.0.0.1:{self.nginx_port}", "models", token=self.alice)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("garden: UNAVAILABLE: "), r.stderr)
        r = garden(self.proxy, "models", globals_=["--tls-ca", self.pki("other-ca.pem")],
                   token=self.alice)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("garden: UNAVAILABLE: "), r.stderr)
        refused = sum(rep.metric("garden_auth_refused_total") for rep in self.live())
        self.assertEqual(refused - refused_before, 4)

    def test_3_a_dead_replicas_models_move_and_no_other_model_does(self):
        victim = self.ring.owner(key("micro"))
        self.assertEqual(self.served_by("micro", 1), {victim: 1})
        before = {s: self.ring.owner(key(s)) for s in SIZES}
        staying = [s for s in SIZES if before[s] != victim]
        self.assertTrue(staying, "every model on one replica")  # see SIZES

        log_mark = len(self.nginx.file("logs/access.log"))
        error_mark = len(self.nginx.file("logs/error.log"))
        type(self).killed = self.by_addr[victim]
        self.killed.proc.send_signal(signal.SIGKILL)
        self.killed.proc.wait(timeout=10)

        # The clients may retry once after UNAVAILABLE: a call nginx had already
        # sent to the victim on a kept-alive connection it had not yet seen
        # close cannot be re-sent by nginx (see garden.conf). Expected: none.
        self.retried = []
        started = time.monotonic()
        for size in SIZES:
            moved = self.served_by(size, 1, retry=True)
            want = self.ring.owner(key(size), down={victim})
            self.assertEqual(moved, {want: 1}, f"{key(size)} (was on {before[size]})")
            if size in staying:
                self.assertEqual(want, before[size])  # consistent: the rest stay put
        took = time.monotonic() - started
        self.assertLessEqual(len(self.retried), 1, self.retried)

        # nginx itself moved the first call that met the dead replica on to the
        # next one, within the call: its access line names both.
        after = access_lines(self.nginx.file("logs/access.log")[log_mark:])
        self.assertEqual(len(after), len(SIZES) + len(self.retried))
        after = [x for x in after if x["grpc_status"] == "0"]  # without a retried failure
        self.assertEqual([x["model"] for x in after], [key(s) for s in SIZES])
        self.assertTrue(all(x["upstream"][-1] != victim for x in after), after)
        failovers = [x for x in after if len(x["upstream"]) > 1]
        errors = self.nginx.file("logs/error.log")[error_mark:]
        if self.retried:
            # Only a call already sent to the victim may need the client's retry;
            # one that could not connect must have been moved on by nginx.
            self.assertNotIn("connect() failed", errors, self.retried)
        else:
            self.assertGreaterEqual(len(failovers), 1, after)
            self.assertIn("connect() failed (111: Connection refused)", errors)
        for x in failovers:
            self.assertEqual(x["upstream"][0], victim, x)
            self.assertEqual((x["status"], x["grpc_status"]), ("200", "0"), x)
        # Once one call failed on it, the victim is skipped outright
        # (max_fails=1) until fail_timeout (10 s) has passed, then tried by one
        # call again: at most one failover per 10 s of calls.
        self.assertLessEqual(len(failovers), 1 + int(took // 10), after)


def load_yaml_documents(path):
    import yaml
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def has_yaml():
    try:
        import yaml  # noqa: F401
        return True
    except ImportError:
        return False


def flag_value(args, name):
    values = [a.split("=", 1)[1] for a in args if a.startswith(name + "=")]
    return values[-1] if values else None


# Directives both proxy configs must agree on (the rest differs by design:
# addresses, paths, TLS to the replicas, re-resolving names).
SHARED_DIRECTIVES = ("hash", "max_fails", "keepalive", "keepalive_timeout",
                     "grpc_read_timeout", "grpc_send_timeout", "send_timeout",
                     "client_body_timeout", "grpc_connect_timeout", "grpc_next_upstream",
                     "grpc_next_upstream_tries", "grpc_next_upstream_timeout", "error_page",
                     "add_header", "grpc_set_header", "client_max_body_size", "log_format")


def directives(conf):
    """{directive: sorted [arguments]} of the SHARED_DIRECTIVES, comments dropped."""
    text = "\n".join(line.split("#", 1)[0] if not line.strip().startswith("'") else line
                     for line in conf.splitlines())
    out = {}
    for m in re.finditer(r"(?m)^\s*(\w+)\s+([^;{]*);", text):
        if m.group(1) in SHARED_DIRECTIVES:
            out.setdefault(m.group(1), []).append(" ".join(m.group(2).split()))
    for m in re.finditer(r"server\s+\S+(?:\s+resolve)?\s+(max_fails=\S+\s+fail_timeout=\S+);",
                         text):
        out.setdefault("max_fails", []).append(m.group(1))
    return {k: sorted(set(v)) for k, v in out.items()}


@unittest.skipUnless(has_yaml(), "no python3 yaml module (Debian: python3-yaml, which "
                                 "python3-torch in scripts/setup pulls in)")
class ClientRetryTest(unittest.TestCase):
    """garden tries a call again after UNAVAILABLE when no answer had come (a
    replica that died under it, a server restarting), at most 3 attempts; any
    other code, or UNAVAILABLE after an answer began, ends the call."""

    def serve(self, failures, code="UNAVAILABLE"):
        """A loopback gRPC server whose ListModels fails `failures` times with
        `code`, then answers an empty list; the attempts it saw."""
        from concurrent import futures
        import grpc
        seen = []

        def list_models(request, context):
            seen.append(time.monotonic())
            if len(seen) <= failures:
                context.abort(getattr(grpc.StatusCode, code), f"attempt {len(seen)} failed")
            return b""

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.method_handlers_generic_handler("garden.v1.Garden", {
            "ListModels": grpc.unary_unary_rpc_method_handler(
                list_models, request_deserializer=bytes, response_serializer=bytes)})
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.addCleanup(server.stop, None)
        return f"127.0.0.1:{port}", seen

    def test_unavailable_is_tried_again(self):
        for failures, rc in ((2, 0), (3, 1)):
            addr, seen = self.serve(failures)
            r = garden(addr, "models", "--format", "json")
            self.assertEqual(r.returncode, rc, r.stderr)
            self.assertEqual(len(seen), 3, failures)
            if rc == 0:
                self.assertEqual(json.loads(r.stdout), {"models": []})
            else:
                self.assertEqual(r.stderr, "garden: UNAVAILABLE: attempt 3 failed\n")

    def test_other_codes_are_not(self):
        addr, seen = self.serve(1, code="INTERNAL")
        r = garden(addr, "models")
        self.assertEqual((r.returncode, len(seen)), (1, 1), r.stderr)
        self.assertEqual(r.stderr, "garden: INTERNAL: attempt 1 failed\n")


class KubernetesManifestTest(unittest.TestCase):
    """deploy/k8s/*.yaml: parsed, cross-checked, and run as far as one host allows."""

    @classmethod
    def setUpClass(cls):
        k8s = os.path.join(DEPLOY, "k8s")
        docs = (load_yaml_documents(os.path.join(k8s, "gardend-statefulset.yaml"))
                + load_yaml_documents(os.path.join(k8s, "garden-proxy.yaml")))
        cls.objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
        cls.sts = cls.objects[("StatefulSet", "gardend")]
        cls.pod = cls.sts["spec"]["template"]["spec"]
        cls.gardend = cls.pod["containers"][0]
        cls.proxy = cls.objects[("Deployment", "garden-proxy")]["spec"]["template"]["spec"]
        cls.nginx_container = cls.proxy["containers"][0]
        cls.nginx_conf = cls.objects[("ConfigMap", "garden-proxy")]["data"]["nginx.conf"]
        with open(os.path.join(DEPLOY, "nginx", "garden.conf")) as f:
            cls.template = f.read()

    def test_manifests_agree_with_each_other_and_the_template(self):
        ns = self.sts["metadata"]["namespace"]
        self.assertEqual({d["metadata"].get("namespace", ns) for d in self.objects.values()
                          if d["kind"] != "Namespace"}, {ns})
        headless = self.objects[("Service", self.sts["spec"]["serviceName"])]
        self.assertEqual(headless["spec"]["clusterIP"], "None")
        self.assertEqual(headless["spec"]["selector"],
                         self.sts["spec"]["template"]["metadata"]["labels"])
        ports = {p["name"]: p["containerPort"] for p in self.gardend["ports"]}
        self.assertEqual(flag_value(self.gardend["args"], "--listen"),
                         f"0.0.0.0:{ports['grpc']}")
        # GPU, per-replica cache, read-only checkpoints.
        res = self.gardend["resources"]
        self.assertEqual((res["requests"]["nvidia.com/gpu"], res["limits"]["nvidia.com/gpu"]),
                         (1, 1))
        claims = {c["metadata"]["name"]: c for c in self.sts["spec"]["volumeClaimTemplates"]}
        mounts = {m["name"]: m for m in self.gardend["volumeMounts"]}
        self.assertIn("storage", claims["hf-cache"]["spec"]["resources"]["requests"])
        self.assertTrue(flag_value(self.gardend["args"], "--hub-cache").startswith(
            mounts["hf-cache"]["mountPath"] + "/"))
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        self.assertTrue(mounts["checkpoints"]["readOnly"])
        self.assertTrue(volumes["checkpoints"]["persistentVolumeClaim"]["readOnly"])
        self.assertEqual(flag_value(self.gardend["args"], "--checkpoints"),
                         mounts["checkpoints"]["mountPath"])
        # TLS with tokens (gardend refuses tokens over plaintext off loopback),
        # so the probes are `garden health` with the probe's token, not grpc:.
        for flag in ("--tls-cert", "--tls-key", "--auth-tokens"):
            self.assertIsNotNone(flag_value(self.gardend["args"], flag), flag)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            command = self.gardend[probe]["exec"]["command"]
            self.assertEqual(command[-1], "health", probe)
            self.assertIn("--token-file", command)
            self.assertIn("--tls-ca", command)
            self.assertIn(f"localhost:{ports['grpc']}", command)

        # The proxy's upstreams are the StatefulSet's pods, by stable DNS name.
        servers = ring.servers_of_config(self.nginx_conf)
        svc = self.sts["spec"]["serviceName"]
        self.assertEqual([s for s, _ in servers],
                         [f"{self.sts['metadata']['name']}-{i}.{svc}.{ns}.svc.cluster.local:"
                          f"{ports['grpc']}" for i in range(self.sts["spec"]["replicas"])])
        self.assertIn("grpc_pass grpcs://garden;", self.nginx_conf)
        self.assertIn("grpc_ssl_verify on;", self.nginx_conf)
        self.assertRegex(self.nginx_conf,
                         r"grpc_ssl_name gardend\." + ns + r"\.svc\.cluster\.local;")
        # Same routing, timeouts, failover and error answers as the template.
        self.assertEqual(directives(self.nginx_conf), directives(self.template))
        self.assertEqual(directives(self.template)["hash"], ["$http_x_garden_model consistent"])
        # nginx is started on the ConfigMap's file, and reads what is mounted.
        command = self.nginx_container["command"]
        conf_path = command[command.index("-c") + 1]
        config_mount = next(m for m in self.nginx_container["volumeMounts"]
                            if m["name"] == "config")
        self.assertEqual(conf_path, config_mount["mountPath"] + "/nginx.conf")
        listen = re.search(r"listen (\d+) ssl http2;", self.nginx_conf).group(1)
        self.assertEqual([p["containerPort"] for p in self.nginx_container["ports"]],
                         [int(listen)])
        front = self.objects[("Service", "garden-proxy")]["spec"]
        self.assertEqual(front["selector"], {"app": "garden-proxy"})
        self.assertEqual(front["ports"][0]["targetPort"], self.nginx_container["ports"][0]["name"])

    @unittest.skipUnless(NGINX, NO_NGINX)
    def test_the_pods_as_configured_serve_through_the_proxy(self):
        tmp = tempfile.TemporaryDirectory(prefix="garden-k8s-")
        self.addCleanup(tmp.cleanup)
        base = os.path.realpath(tmp.name)
        pki = make_pki(base)
        podfs = os.path.join(base, "pod")  # container paths live under here

        def host(path):
            return podfs + path

        # The Secrets and volumes the manifests name, holding test files.
        probe_token, probe_line = new_token("probe")
        alice, alice_line = new_token("alice")
        with open(pki("probe.token"), "w") as f:
            f.write(probe_token + "\n")
        with open(pki("tokens"), "w") as f:
            f.write(f"{probe_line}\n{alice_line}\n")
        secrets = {"gardend-tls": {"tls.crt": "replica.pem", "tls.key": "replica.key"},
                   "garden-ca": {"ca.crt": "ca.pem"},
                   "garden-tokens": {"tokens": "tokens"},
                   "garden-probe-token": {"token": "probe.token"},
                   "garden-proxy-tls": {"tls.crt": "proxy.pem", "tls.key": "proxy.key"}}

        def mount(pod, container):
            volumes = {v["name"]: v for v in pod["volumes"]}
            for m in container["volumeMounts"]:
                d = host(m["mountPath"])
                os.makedirs(d, exist_ok=True)
                v = volumes.get(m["name"], {})
                for k, src in secrets.get(v.get("secret", {}).get("secretName"), {}).items():
                    shutil.copy(pki(src), os.path.join(d, k))

        mount(self.pod, self.gardend)
        checkpoints = host(next(m["mountPath"] for m in self.gardend["volumeMounts"]
                                if m["name"] == "checkpoints"))
        for size in ("micro", "m1", "m2", "m3", "m4", "m5"):
            make_suite.write_suite(checkpoints, "pythia", size, "standard", STEPS, dtype="F16")
        mount_paths = sorted((m["mountPath"] for m in self.gardend["volumeMounts"]),
                             key=len, reverse=True)

        def to_host(value):
            for m in mount_paths:
                if value == m or value.startswith(m + "/"):
                    return host(value)
            return value

        # The StatefulSet's arguments, with what cannot be had here changed:
        # loopback for 0.0.0.0 (this host's rule), no Hub (no network), the CPU
        # for the GPU, one thread. Everything else, flag names included, as is.
        replaced = {"--listen": "127.0.0.1:0", "--metrics-listen": "127.0.0.1:0",
                    "--device": "cpu", "--threads": "1"}
        args = []
        for a in self.gardend["args"]:
            name, eq, value = a.partition("=")
            if name in ("--hub-repo", "--dtype"):  # float16 is for CUDA only
                continue
            args.append(f"{name}={to_host(replaced.get(name, value))}" if eq else a)
        env = dict(os.environ)
        env.update({e["name"]: to_host(e["value"]) for e in self.gardend["env"] if "value" in e})
        replicas = start_replicas([args] * self.sts["spec"]["replicas"], base, "pod", env)
        for r in replicas:
            self.addCleanup(r.stop)

        # The probe's own command: SERVING with its token; what the kubelet's
        # native grpc probe would get (no token, here even over TLS): refused.
        grpc_port = next(p["containerPort"] for p in self.gardend["ports"] if p["name"] == "grpc")
        for r in replicas:
            command = [GARDEN if c.endswith("/garden") else to_host(c).replace(
                f"localhost:{grpc_port}", f"localhost:{r.port}")
                for c in self.gardend["readinessProbe"]["exec"]["command"]]
            p = run(command)
            self.assertEqual((p.returncode, p.stdout), (0, "SERVING\n"), p.stderr)
            i = command.index("--token-file")
            p = run(command[:i] + command[i + 2:])
            self.assertTrue(p.stderr.startswith("garden: UNAUTHENTICATED: "), p.stderr)

        # nginx on the ConfigMap's config. Changed: addresses (loopback ports
        # for the pods' names and the listen port), the mounted paths, and what
        # Debian 12's nginx 1.22 lacks: `resolve` on upstream servers (1.27.3)
        # and a cluster DNS to name in `resolver`.
        mount(self.proxy, self.nginx_container)
        port = free_port()
        conf = self.nginx_conf
        names = [s for s, _ in ring.servers_of_config(conf)]
        for name, r in zip(names, replicas):
            conf = conf.replace(f"server {name} ", f"server {r.addr} ")
        conf = conf.replace(" resolve ", " ")
        conf = re.sub(r"resolver \S+", "resolver 127.0.0.1", conf)
        conf = re.sub(r"listen \d+ ", f"listen 127.0.0.1:{port} ", conf)
        # One pass, so that a mapped path (under /tmp here) is not mapped again.
        mounted = sorted((m["mountPath"] for m in self.nginx_container["volumeMounts"]),
                         key=len, reverse=True)
        conf = re.sub(r"(?<=\s)(%s)(?=/)" % "|".join(map(re.escape, mounted)),
                      lambda m: host(m.group(1)), conf)
        conf_path = host(self.nginx_container["command"][
            self.nginx_container["command"].index("-c") + 1])
        with open(conf_path, "w") as f:
            f.write(conf)
        nginx = Nginx(os.path.join(base, "nginx"), conf_path, port)
        self.addCleanup(nginx.stop)

        proxy, tls = f"localhost:{port}", ["--tls-ca", pki("ca.pem")]
        routes = ring.Ring(ring.servers_of_config(conf))
        by_addr = {r.addr: r for r in replicas}
        for size in ("micro", "m1", "m2", "m3", "m4", "m5"):
            direct = garden(replicas[0].addr, *hist_args(size), globals_=tls, token=alice)
            self.assertEqual(direct.returncode, 0, direct.stderr)
            before = {a: r.streams_ok() for a, r in by_addr.items()}
            for _ in range(2):
                r = garden(proxy, *hist_args(size), globals_=tls, token=alice)
                self.assertEqual(r.returncode, 0, r.stderr + nginx.output())
                self.assertEqual(r.stdout, direct.stdout)
            after = {a: r.streams_ok() for a, r in by_addr.items()}
            moved = {a: after[a] - before[a] for a in after if after[a] != before[a]}
            self.assertEqual(moved, {routes.owner(key(size)): 2}, size)
        r = garden(proxy, *hist_args("micro"), globals_=tls)
        self.assertTrue(r.stderr.startswith("garden: UNAUTHENTICATED: "), r.stderr)
        self.assertIn(f'"{key("micro")}" upstream=', nginx.output())  # access_log /dev/stdout

        # nginx does check the replicas' certificate: by another name, refused.
        wrong_port = free_port()
        wrong = re.sub(r"grpc_ssl_name \S+;", "grpc_ssl_name gardend.elsewhere.example;", conf)
        wrong = wrong.replace(f"listen 127.0.0.1:{port} ", f"listen 127.0.0.1:{wrong_port} ")
        wrong = wrong.replace(f"pid {host('/tmp')}/nginx.pid", f"pid {base}/wrong-nginx.pid")
        wrong_path = os.path.join(base, "wrong.conf")
        with open(wrong_path, "w") as f:
            f.write(wrong)
        wrong_nginx = Nginx(os.path.join(base, "wrong-nginx"), wrong_path, wrong_port)
        self.addCleanup(wrong_nginx.stop)
        r = garden(f"localhost:{wrong_port}", *hist_args("micro"), globals_=tls, token=alice)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.strip(),
                         "garden: UNAVAILABLE: no gardend replica could be reached (nginx)")
        self.assertIn("upstream SSL certificate does not match", wrong_nginx.output())


if __name__ == "__main__":
    unittest.main()
