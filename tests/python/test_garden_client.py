"""garden_client against a real gardend on loopback: every method's numbers equal to
the garden CLI's JSON output (exactly: both print what the server sent), errors,
tokens, TLS, the x-garden-model header, stream cancellation, plots, pip install.

Run by ctest (tests/python/run_pytest.py); by hand:
  GARDEN_BIN=<build>/bin PYTHONPATH=<build>/python /usr/bin/python3 -m pytest tests/python
"""

import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import DD_STEPS, GARDEN, MAX_NEW, SOURCE, STD_STEPS, Cli, Server

grpc = pytest.importorskip("grpc")

DD = ("--size", "micro", "--variant", "deduped")
STD = ("--size", "micro", "--variant", "standard")
TEXT = "the garden of forking paths in a maze"


def nan_to_none(x):
    """The CLI's JSON spelling of a double (NaN and infinities are null)."""
    x = float(x)
    return None if not math.isfinite(x) else x


def rows_of(result):
    """A DataFrame, Table or Records as a list of dicts of Python values."""
    if hasattr(result, "to_dict") and hasattr(result, "iloc"):
        rows = result.to_dict("records")
    elif hasattr(result, "to_records"):
        rows = result.to_records()
    else:
        rows = list(result)
    out = []
    for r in rows:
        out.append({k: (v.tolist() if isinstance(v, np.ndarray) else
                        v.item() if isinstance(v, np.generic) else v) for k, v in r.items()})
    return out


def normalise(value):
    """NaN -> None recursively, so records compare with the CLI's JSON."""
    if isinstance(value, float):
        return nan_to_none(value)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


def log_records(server, method):
    return [r for r in server.log_lines() if r.get("method") == method]


# ----------------------------------------------------------------------- catalog


def test_models_equal_the_cli(g, g_plain, cli):
    want = cli.json("models")["models"]
    assert rows_of(g.models()) == want
    assert list(g_plain.models()) == want
    assert rows_of(g.models(suite="pythia")) == cli.json("models", "--suite", "pythia")["models"]
    assert g.steps("micro", "DD").tolist() == DD_STEPS
    assert g.steps("micro").tolist() == STD_STEPS


def test_tensors_and_datasets_equal_the_cli(g, g_plain, cli):
    want = cli.json("tensors", *DD, "--step", "1000")
    t = g.tensors("micro", "deduped", 1000)
    assert rows_of(t) == want["tensors"]
    assert t.attrs["checkpoint"] == {k: want[k] for k in ("suite", "size", "variant", "run", "step")}
    assert t.attrs["config"]["hidden_size"] == 32
    assert list(g_plain.tensors("micro", "DD", 1000)) == want["tensors"]
    assert rows_of(g.datasets()) == cli.json("datasets")["datasets"]
    assert rows_of(g.datasets()) == [{"name": "cloze", "examples": 5}]


def test_training_runs(g, cli, garden_client):
    models = rows_of(g.models())
    assert [(m["name"], m["run"]) for m in models if m["size"] == "micro"] == [
        ("pythia-micro-deduped", ""), ("pythia-micro", ""), ("pythia-micro-seed2", "seed2")]
    assert g.steps("micro", run="seed2").tolist() == [0, 1000]
    want = cli.jsonl("hist", *STD, "--run", "seed2", "--steps", "all", "--no-progress")
    h = g.hist("micro", steps="all", run="Seed2")
    assert h.records() == want
    assert h.records() != g.hist("micro", steps=[0, 1000]).records()
    m = g.msd("micro", run="seed2")
    assert rows_of(m) == cli.jsonl("msd", *STD, "--run", "seed2")
    with pytest.raises(garden_client.GardenError) as e:
        g.hist("micro", run="seedling")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "seedN, weight-seedN or data-seedN" in e.value.details()


def test_health(g):
    assert g.health() == "SERVING"


# ------------------------------------------------------------------ distribution


@pytest.mark.parametrize("steps,cli_steps,extra", [
    ("all", "all", {}),
    ([0, 4, 1000], "0,4,1000", {"bins": 16}),
    ("2:64", "2:64", {"bins": 7, "range": (-0.25, 0.3)}),
])
def test_hist_equals_the_cli(g, cli, steps, cli_steps, extra):
    args = [*DD, "--steps", cli_steps, "--no-progress"]
    if "bins" in extra:
        args += ["--bins", str(extra["bins"])]
    if "range" in extra:
        args += [f"--range={extra['range'][0]}:{extra['range'][1]}"]
    want = cli.jsonl("hist", *args)
    h = g.hist("micro", "DD", steps=steps, **extra)
    assert h.records() == want
    bins = extra.get("bins", 64)
    assert h.counts.shape == (len(want), bins) and h.counts.dtype == np.uint64
    assert h.steps.tolist() == [w["step"] for w in want]
    assert np.array_equal(h.edges, np.linspace(want[0]["lo"], want[0]["hi"], bins + 1))
    assert np.asarray(h.moments["mean"]).tolist() == [w["mean"] for w in want]
    assert h.dtype == "F16" and h.shape == [512, 32]
    d = h.density()
    assert np.allclose((d * np.diff(h.edges)).sum(axis=1)[h.counts.sum(axis=1) > 0], 1.0)


def test_hist_other_tensor_and_variant_aliases(g, g_plain, cli):
    tensor = "gpt_neox.layers.1.mlp.dense_h_to_4h.weight"
    want = cli.jsonl("hist", *STD, "--steps", "all", "--tensor", tensor, "--no-progress")
    for variant in ("standard", "NDD", "ndd"):
        assert g.hist("micro", variant, tensor=tensor).records() == want
    h = g_plain.hist("micro", tensor=tensor)
    assert h.records() == want
    assert isinstance(h.moments, dict) and h.moments.attrs["tensor"] == tensor


def test_hist_with_progress_bars(g, cli, garden_client):
    pytest.importorskip("tqdm")
    want = cli.jsonl("hist", *DD, "--steps", "all", "--no-progress")
    assert g.hist("micro", "DD", progress=True).records() == want


def test_bifurcation_equals_the_cli(g, g_plain, cli):
    want = cli.json("bifurcation", *DD, "--steps", "all", "--no-progress")
    b = g.bifurcation("micro", "DD")
    assert normalise(rows_of(b)) == want["steps"]
    assert b.attrs["onset"] == want["onset"]
    want = cli.json("bifurcation", *DD, "--steps", "0:256", "--persist", "3", "--min-dip",
                    "0.1", "--bins", "256", "--no-progress")
    b = g_plain.bifurcation("micro", "DD", "0:256", persist=3, min_dip=0.1, bins=256)
    assert normalise(b.to_records()) == want["steps"]
    assert b.attrs["onset"] == want["onset"]


def test_matrix_equals_the_cli(g, cli):
    if not any(line.split()[:1] == ["matrix"] for line in cli.ok("--help").splitlines()):
        pytest.skip("this garden has no matrix command")
    for variant, step, rows, cols, args in (
            ("deduped", 1000, (0, 5), (3, 9), ["--rows", "0:5", "--cols", "3:9"]),
            ("standard", 2000, (500, None), None, ["--rows", "500:"]),
            ("standard", 0, None, None, [])):
        want = cli.json("matrix", "--size", "micro", "--variant", variant, "--step", str(step),
                        *args)
        m = g.matrix("micro", variant, step, rows=rows, cols=cols)
        assert m.dtype == np.float64
        assert m.tolist() == want["steps"][0]["values"]
        assert m.shape == (want["rows"][1] - want["rows"][0], want["cols"][1] - want["cols"][0])
    # A 1-D tensor is one row; a slice works as rows.
    bias = "gpt_neox.layers.0.attention.dense.bias"
    want = cli.json("matrix", *STD, "--step", "1000", "--tensor", bias)
    assert g.matrix("micro", step=1000, tensor=bias).tolist() == want["steps"][0]["values"]
    assert g.matrix("micro", "DD", 8, rows=slice(2, 4)).tolist() == \
        cli.json("matrix", *DD, "--step", "8", "--rows", "2:4")["steps"][0]["values"]


def cli_has(cli, command):
    return any(line.split()[:1] == [command] for line in cli.ok("--help").splitlines())


@pytest.mark.parametrize("kw,args", [
    ({}, []),
    ({"tensors": r"attention\..*weight", "metrics": ["mean", "sparsity", "alpha", "n"],
      "steps": [0, 1000]},
     ["--tensors", r"attention\..*weight", "--metrics", "mean,sparsity,alpha,n", "--steps",
      "0,1000"]),
    ({"spectrum": "exact", "steps": [0]}, ["--spectrum", "exact", "--steps", "0"]),
])
def test_layers_equal_the_cli(g, g_plain, cli, kw, args, garden_client):
    if not cli_has(cli, "layers"):
        pytest.skip("this garden has no layers command")
    want = cli.jsonl("layers", *DD, *args)
    assert want
    for client in (g, g_plain):
        t = client.layers("micro", "DD", **kw)
        rows = rows_of(t)
        assert len(rows) == len(want)
        for r, w in zip(rows, want):
            for k in ("step", "tensor", "layer", "kind", "shape"):
                assert r[k] == w[k], k
            assert r["spectrum_method"] == w.get("spectrum_method", "")
            for m in kw.get("metrics", garden_client.LAYER_METRICS):
                if m == "sparsity":
                    got = {c[len("sparsity_"):]: nan_to_none(v) for c, v in r.items()
                           if c.startswith("sparsity_")}
                    assert got == w["sparsity"]
                else:
                    assert nan_to_none(r[m]) == w[m], m
    # The server checks the method too.
    with pytest.raises(garden_client.GardenError) as e:
        g.layers("micro", "DD", steps=[0], spectrum="svd")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert 'spectrum "svd" is unknown; use auto or exact' in e.value.details()


# ---------------------------------------------------------------------- dynamics


@pytest.mark.parametrize("mode,steps,reference", [
    ("reference", "all", None), ("reference", [1, 4, 64, 1000], 4),
    ("consecutive", "all", None), ("lag", "0:512", None)])
def test_msd_equals_the_cli(g, g_plain, cli, mode, steps, reference):
    args = [*DD, "--mode", mode, "--steps",
            steps if isinstance(steps, str) else ",".join(map(str, steps))]
    if reference is not None:
        args += ["--reference", str(reference)]
    want = cli.json("msd", *args)
    for client in (g, g_plain):
        m = client.msd("micro", "DD", steps, mode=mode, reference=reference)
        got = normalise(rows_of(m))
        if mode == "consecutive":  # the CLI leaves these keys out where absent
            for r in got:
                if r["before_previous_step"] == -1:
                    del r["msd_before_previous"], r["before_previous_step"]
        assert got == want["points"]
        for key in ("peak", "largest", "monotonic"):
            assert m.attrs[key] == want[key], key


def test_msd_peak_is_only_an_interior_maximum(g, cli):
    # The synthetic drift grows with the step: no interior peak over all steps...
    m = g.msd("micro", "DD")
    assert m.attrs["peak"] is None and m.attrs["monotonic"] == "increasing"
    assert m.attrs["largest"]["step"] == 1000
    # From a reference in the middle the displacement falls then rises: neither
    # monotonic nor peaked, the largest at an end.
    want = cli.json("msd", *DD, "--steps", "all", "--reference", "64")
    m = g.msd("micro", "DD", reference=64)
    assert m.attrs["peak"] == want["peak"] is None
    assert m.attrs["monotonic"] == want["monotonic"] is None
    assert m.attrs["largest"] == want["largest"]


def test_audit_equals_the_cli(g, g_plain, cli):
    for args, kw in (([], {}), (["--all-tensors", "--z", "2"], {"all_tensors": True, "z": 2})):
        want = cli.json("audit", *DD, "--steps", "all", *args)
        a = g.audit("micro", "DD", **kw)
        assert normalise(rows_of(a)) == want["findings"]
        assert a.attrs == {"steps_checked": want["steps_checked"],
                           "tensors_checked": want["tensors_checked"]}
        p = g_plain.audit("micro", "DD", **kw)
        assert normalise(list(p)) == want["findings"]
        assert p.attrs["tensors_checked"] == want["tensors_checked"]
    # The standard model's schedule misses steps: findings there too.
    want = cli.json("audit", *STD, "--steps", "all")
    assert normalise(rows_of(g.audit("micro"))) == want["findings"]
    assert want["findings"], "expected the missing steps of pythia-micro"


def test_ppl_equals_the_cli(g, g_plain, cli):
    want = cli.json("ppl", *DD, "--steps", "0,512,1000", "--dataset", "cloze")["steps"]
    p = g.ppl("micro", "DD", [0, 512, 1000], dataset="cloze")
    assert normalise(rows_of(p)) == want
    assert p.attrs["dataset"] == "cloze"
    want = cli.json("ppl", *STD, "--steps", "all", "--dataset", "cloze", "--limit",
                    "2")["steps"]
    assert normalise(g_plain.ppl("micro", dataset="cloze", limit=2).to_records()) == want


# ---------------------------------------------------------------- language model


def test_tokenize_equals_the_cli(g, cli):
    want = cli.json("tokenize", *DD, "--step", "0", "--text", TEXT)
    t = g.tokenize("micro", "DD", 0, TEXT)
    assert t.ids.tolist() == want["ids"] and t.pieces == want["pieces"]
    assert np.asarray(t).dtype == np.int32


@pytest.mark.parametrize("kw,args", [
    ({}, []),
    ({"max_new_tokens": 20, "temperature": 0.8, "top_k": 50, "top_p": 0.9, "seed": 7},
     ["--max-new-tokens", "20", "--temperature", "0.8", "--top-k", "50", "--top-p", "0.9",
      "--seed", "7"]),
    ({"seed": 3, "greedy": True}, ["--seed", "3", "--greedy"]),
])
def test_generate_streams_what_the_cli_prints(g, cli, kw, args):
    want = cli.json("generate", *DD, "--step", "1000", "--prompt", TEXT, *args)
    gen = g.generate("micro", "DD", 1000, TEXT, **kw)
    tokens = []
    for token in gen:
        tokens.append(token)
    assert [t.index for t in tokens] == list(range(len(want["ids"])))
    assert [t.id for t in tokens] == want["ids"] == gen.ids
    assert [t.logprob for t in tokens] == want["logprobs"] == gen.logprobs
    assert "".join(t.text for t in tokens) == want["text"] == gen.text
    assert gen.prompt_ids == want["prompt_ids"]


def test_leaving_a_stream_cancels_the_call(g, server):
    before = len(log_records(server, "Generate"))
    for token in g.generate("micro", "DD", 1000, TEXT, max_new_tokens=MAX_NEW):
        assert token.index == 0
        break
    # The server logs the call's end as CANCELLED, long before 64 tokens would take.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = log_records(server, "Generate")[before:]
        if done:
            break
        time.sleep(0.05)
    assert [r["code"] for r in done] == ["CANCELLED"], done
    # close() and `with` cancel a stream held by name as well.
    with g.generate("micro", "DD", 1000, TEXT, max_new_tokens=MAX_NEW) as gen:
        next(gen)
    gen2 = g.generate("micro", "DD", 0, TEXT, max_new_tokens=MAX_NEW)
    next(gen2)
    gen2.close()
    assert list(gen2) == []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = log_records(server, "Generate")[before:]
        if len(done) == 3:
            break
        time.sleep(0.05)
    assert [r["code"] for r in done] == ["CANCELLED"] * 3, done


def test_unmask_equals_the_cli(g, g_plain, cli):
    want = cli.json("unmask", *DD, "--steps", "0,1000", "--text", TEXT)
    u = g.unmask("micro", "DD", [0, 1000], TEXT)
    got = rows_of(u.frames)
    if "generated_pieces" not in want["frames"][0]:  # a CLI from before they were printed
        for r in got:
            del r["generated_pieces"]
    assert normalise(got) == want["frames"]
    assert u.n == want["n"] and u.original_ids.tolist() == want["original_ids"]
    assert u.steps.tolist() == [0, 1000]
    for f in want["frames"]:
        j = u.ks.tolist().index(f["k"])
        assert u.recovered[u.steps.tolist().index(f["step"]), j] == f["recovered"]
    want = cli.json("unmask", *DD, "--steps", "1000", "--text", TEXT, "--prefix-lengths",
                    "1,3,5")
    p = g_plain.unmask("micro", "DD", 1000, TEXT, prefix_lengths=[1, 3, 5])
    assert [f["generated_ids"] for f in p.frames] == \
        [f["generated_ids"] for f in want["frames"]]
    assert p.ks.tolist() == [1, 3, 5] and p.recovered.shape == (1, 3)


def test_logits_equal_the_cli(g, g_plain, cli):
    want = cli.json("logits", *DD, "--step", "512", "--text", TEXT, "--all", "--top-k", "5")
    lg = g.logits("micro", "DD", 512, TEXT, top_k=5)
    assert lg.tokens == want["tokens"]
    assert normalise(rows_of(lg.top)) == want["top"]
    assert lg.mean_logits.dtype == np.float32 and lg.mean_logits.shape == (512,)
    assert lg.mean_logits.tolist() == want["mean_logits"]
    assert np.asarray(lg).tolist() == want["mean_logits"]
    want = cli.json("logits", *STD, "--step", "2000", "--text", TEXT)
    lg = g_plain.logits("micro", step=2000, text=TEXT, full=False)
    assert list(lg.top) == want["top"] and lg.mean_logits is None


@pytest.mark.parametrize("layer,average", [(0, False), (1, True)])
def test_attention_equals_the_cli(g, cli, layer, average):
    args = ["--layer", str(layer)] + (["--average-heads"] if average else [])
    want = cli.json("attention", *DD, "--step", "1000", "--text", TEXT, *args)
    a = g.attention("micro", "DD", 1000, TEXT, layer=layer, average_heads=average)
    assert a.weights.dtype == np.float32
    assert (a.heads, a.tokens) == (want["heads"], want["tokens"])
    assert a.pieces == want["pieces"]
    assert a.weights.tolist() == want["weights"]
    assert np.asarray(a).shape == (want["heads"], want["tokens"], want["tokens"])


# ----------------------------------------------------------------------- headers


def test_every_model_call_sends_x_garden_model(g, server):
    g.models()
    g.tokenize("micro", "DD", 0, "hi")
    g.hist("micro", "dd", steps=[0])
    g.msd("MICRO", "deduped", steps=[0, 1], suite="Pythia")
    g.tensors("micro", "NDD", 0)
    by_method = {}
    for r in server.log_lines():
        if "method" in r:
            by_method.setdefault(r["method"], []).append(r)
    assert "model" not in by_method["ListModels"][-1]
    assert by_method["Tokenize"][-1]["model"] == "pythia/micro/deduped"
    assert by_method["StreamHistograms"][-1]["model"] == "pythia/micro/deduped"
    assert by_method["StreamMSD"][-1]["model"] == "pythia/micro/deduped"
    assert by_method["ListTensors"][-1]["model"] == "pythia/micro/standard"


def test_the_channel_retries_unavailable_as_the_cli_does(garden_client):
    config = garden_client.SERVICE_CONFIG["methodConfig"][0]
    assert {"service": "garden.v1.Garden"} in config["name"]
    assert config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert config["retryPolicy"]["maxAttempts"] == 3


# ------------------------------------------------------------------------ errors


def test_server_errors_carry_the_code_and_the_servers_message(g, cli, garden_client):
    for call, args in (
            (lambda: g.hist("micro", "DD", steps=[7]), ("hist", *DD, "--steps", "7")),
            (lambda: g.msd("nope", "DD"), ("msd", "--size", "nope", "--variant", "DD")),
            (lambda: g.hist("micro", "DD", bins=0), ("hist", *DD, "--bins", "0")),
            (lambda: g.tokenize("micro", "DD", 3, "x"),
             ("tokenize", *DD, "--step", "3", "--text", "x")),
            (lambda: g.ppl("micro", "DD", dataset="absent"),
             ("ppl", *DD, "--dataset", "absent")),
            (lambda: g.hist("micro", "sideways"), ("hist", "--size", "micro", "--variant",
                                                   "sideways")),
            (lambda: list(g.generate("micro", "DD", 0, "x", max_new_tokens=MAX_NEW + 1)),
             ("generate", *DD, "--step", "0", "--prompt", "x", "--max-new-tokens",
              str(MAX_NEW + 1)))):
        code, message = cli.error(*args)
        with pytest.raises(garden_client.GardenError) as e:
            call()
        assert e.value.code().name == code, e.value
        assert e.value.details() == message
        assert isinstance(e.value, grpc.RpcError)
        assert str(e.value).startswith(f"garden {g.address} ")
        assert f": {code}: {message}" in str(e.value)


def test_bad_arguments_are_refused_before_any_call(g):
    for bad in ("", "1:2:3", "5:1", "a,b", "-1", "1,,2"):
        with pytest.raises(ValueError):
            g.hist("micro", "DD", steps=bad)
    with pytest.raises(TypeError):
        g.hist("micro", "DD", steps=1.5)
    with pytest.raises(ValueError):
        g.msd("micro", "DD", mode="sideways")
    with pytest.raises(ValueError):
        g.matrix("micro", "DD", 0, rows=(5, 2))


def test_a_server_that_is_down_names_the_address_and_unavailable(garden_client, base):
    import socket
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with garden_client.Garden(f"127.0.0.1:{port}", timeout=10) as g:
        started = time.monotonic()
        with pytest.raises(garden_client.GardenError) as e:
            g.models()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert f"127.0.0.1:{port}" in str(e.value) and "UNAVAILABLE" in str(e.value)
        assert time.monotonic() - started < 10
        with pytest.raises(garden_client.GardenError) as e:
            g.hist("micro", "DD")
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE


# -------------------------------------------------------------- tokens and TLS


def new_token(name):
    r = subprocess.run([GARDEN, "token", "new", name], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    token, line = r.stdout.splitlines()
    return token, line


@pytest.fixture(scope="module")
def token_server(base, fixtures):
    root = fixtures[0]
    alice, line = new_token("alice")
    tokens = os.path.join(base, "tokens")
    with open(tokens, "w") as f:
        f.write(line + "\n")
    alice_file = os.path.join(base, "alice.token")
    with open(alice_file, "w") as f:
        f.write(alice + "\n")
    s = Server(base, "tokens", ["--checkpoints", root, "--threads", "2",
                                "--auth-tokens", tokens])
    yield s, alice, alice_file
    assert s.stop() == 0


def test_tokens_by_argument_file_and_environment(token_server, garden_client, monkeypatch):
    s, alice, alice_file = token_server
    want = Cli(s.addr).json("models", globals_=["--token-file", alice_file])["models"]
    with garden_client.Garden(s.addr, token_file=alice_file, frames=False) as g:
        assert list(g.models()) == want
        assert g.hist("micro", "DD", [0]).steps.tolist() == [0]
    with garden_client.Garden(s.addr, token=alice, frames=False) as g:
        assert list(g.models()) == want
    monkeypatch.setenv("GARDEN_TOKEN", alice)
    with garden_client.Garden(s.addr, frames=False) as g:
        assert list(g.models()) == want


def test_a_refused_token_is_unauthenticated(token_server, garden_client, monkeypatch, base):
    s, _, _ = token_server
    monkeypatch.delenv("GARDEN_TOKEN", raising=False)
    code, message = Cli(s.addr).error("models")
    for kw in ({}, {"token": "gdn_00"}):
        with garden_client.Garden(s.addr, **kw) as g:
            with pytest.raises(garden_client.GardenError) as e:
                g.models()
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert s.addr in str(e.value) and "UNAUTHENTICATED" in str(e.value)
            if not kw:
                assert e.value.details() == message
            with pytest.raises(garden_client.GardenError) as e:
                list(g.generate("micro", "DD", 0, "x"))
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    empty = os.path.join(base, "empty.token")
    open(empty, "w").close()
    with pytest.raises(ValueError, match="empty"):
        garden_client.Garden(s.addr, token_file=empty)
    with pytest.raises(ValueError, match="control character"):
        garden_client.Garden(s.addr, token="a\nb")
    with pytest.raises(ValueError):
        garden_client.Garden(s.addr, token_file=os.path.join(base, "absent"))


def make_pki(d):
    """ca.pem, server.{pem,key} for 127.0.0.1 and client.{pem,key}, with openssl."""
    def openssl(*args):
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr

    p = lambda name: os.path.join(d, name)  # noqa: E731
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out",
            p("ca.pem"), "-days", "2", "-subj", "/CN=Garden py test ca")
    with open(p("san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, cn, ext in (("server", "localhost", ["-extfile", p("san.ext")]),
                          ("client", "alice", [])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p(f"{name}.key"), "-out",
                p(f"{name}.csr"), "-subj", f"/CN={cn}")
        openssl("x509", "-req", "-in", p(f"{name}.csr"), "-CA", p("ca.pem"), "-CAkey",
                p("ca.key"), "-CAcreateserial", "-out", p(f"{name}.pem"), "-days", "2", *ext)
    return p


def test_tls_and_mutual_tls(base, fixtures, garden_client):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = os.path.join(base, "pki")
    os.makedirs(d, exist_ok=True)
    p = make_pki(d)
    root = fixtures[0]
    s = Server(base, "mtls", ["--checkpoints", root, "--threads", "2", "--tls-cert",
                              p("server.pem"), "--tls-key", p("server.key"),
                              "--tls-client-ca", p("ca.pem")])
    try:
        want = Cli(s.addr).json("models", globals_=["--tls-ca", p("ca.pem"), "--tls-cert",
                                                    p("client.pem"), "--tls-key",
                                                    p("client.key")])["models"]
        with garden_client.Garden(s.addr, tls_ca=p("ca.pem"), tls_cert=p("client.pem"),
                                  tls_key=p("client.key"), frames=False) as g:
            assert list(g.models()) == want
            assert g.health() == "SERVING"
        # Without a client certificate the handshake fails: UNAVAILABLE, naming the address.
        with garden_client.Garden(s.addr, tls_ca=p("ca.pem"), timeout=10) as g:
            with pytest.raises(garden_client.GardenError) as e:
                g.models()
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE and s.addr in str(e.value)
        with pytest.raises(ValueError, match="together"):
            garden_client.Garden(s.addr, tls_ca=p("ca.pem"), tls_cert=p("client.pem"))
        with pytest.raises(ValueError, match="tls_ca"):
            garden_client.Garden(s.addr, tls_cert=p("client.pem"), tls_key=p("client.key"))
    finally:
        assert s.stop() == 0


# ---------------------------------------------------------------- without pandas


def test_without_pandas_tables_are_dicts_of_numpy_columns(g_plain, garden_client):
    m = g_plain.msd("micro", "DD")
    assert isinstance(m, garden_client.Table) and isinstance(m["msd"], np.ndarray)
    assert m["step"].tolist() == DD_STEPS and "largest" in m.attrs
    assert isinstance(g_plain.models(), garden_client.Records)
    h = g_plain.hist("micro", "DD")
    assert isinstance(h.moments, garden_client.Table)


def test_without_pandas_matplotlib_and_tqdm_installed(server):
    """In a process where pandas, matplotlib and tqdm do not import, as without the
    Debian packages: Tables and Records, no progress bars, and a plot module that says
    what it needs."""
    code = f"""
import sys
for name in ("pandas", "matplotlib", "tqdm"):
    sys.modules[name] = None
import garden_client
g = garden_client.Garden("{server.addr}", progress=True)
assert not g.frames
m = g.msd("micro", "DD")
assert isinstance(m, garden_client.Table) and m.attrs["largest"]["step"] == 1000, m
assert isinstance(g.models(), garden_client.Records)
assert g.hist("micro", "DD").counts.shape == ({len(DD_STEPS)}, 64)
try:
    garden_client.Garden("{server.addr}", frames=True)
    raise SystemExit("frames=True without pandas")
except ImportError as e:
    assert "python3-pandas" in str(e)
try:
    import garden_client.plot
    raise SystemExit("plot imported without matplotlib")
except ImportError as e:
    assert "python3-matplotlib" in str(e)
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout == "ok\n", r.stdout + r.stderr


def test_with_pandas_tables_are_dataframes(g):
    pd = pytest.importorskip("pandas", reason="pandas (python3-pandas) is not installed")
    m = g.msd("micro", "DD")
    assert isinstance(m, pd.DataFrame) and list(m.columns[:4]) == ["step", "msd", "from_step",
                                                                   "rate"]
    assert isinstance(g.models(), pd.DataFrame)
    assert isinstance(g.hist("micro", "DD").moments, pd.DataFrame)


# ------------------------------------------------------------------------- plots


@pytest.fixture(scope="module")
def plot():
    pytest.importorskip("matplotlib", reason="matplotlib (python3-matplotlib) is not installed")
    import matplotlib
    matplotlib.use("Agg")
    import garden_client.plot as plot
    return plot


def test_density_plot_holds_the_histograms(g, plot, base):
    from matplotlib.figure import Figure
    h = g.hist("micro", "DD")
    b = g.bifurcation("micro", "DD")
    fig = plot.density(h, branches=b)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    mesh = ax.collections[0]
    shown = np.ma.masked_invalid(mesh.get_array()).reshape(h.bins, len(h.steps))
    with np.errstate(divide="ignore"):
        logd = np.log10(h.density()).T
    top = np.nanmax(logd[np.isfinite(logd)])
    keep = np.isfinite(logd) & (logd >= top - 4)
    assert np.allclose(shown[keep], logd[keep])
    assert shown.mask[~keep].all()
    modes = ax.collections[1].get_offsets()
    assert len(modes) == sum(len(m) for m in b["modes"])
    assert any(line.get_linestyle() == "--" for line in ax.lines) == (b.attrs["onset"]
                                                                      is not None)
    fig.savefig(os.path.join(base, "density.png"))
    assert os.path.getsize(os.path.join(base, "density.png")) > 1000


def test_msd_ppl_attention_matrix_logits_unmask_plots(g, g_plain, plot):
    from matplotlib.figure import Figure
    m = g.msd("micro", "DD", reference=64)
    fig = plot.msd(m)
    line = fig.axes[0].lines[0]
    assert np.allclose(line.get_xdata(), np.log1p(np.asarray(m["step"], dtype=float)))
    assert np.array_equal(line.get_ydata(), np.asarray(m["msd"]))
    dashed = [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "--"]
    assert len(dashed) == (m.attrs["peak"] is not None)
    for client in (g, g_plain):
        p = client.ppl("micro", "DD", dataset="cloze", steps=[0, 1000])
        fig = plot.ppl(p)
        assert isinstance(fig, Figure) and len(fig.axes) == 2
        assert [ax.get_yscale() for ax in fig.axes] == ["linear", "log"]
        for ax in fig.axes:
            assert np.array_equal(ax.lines[0].get_ydata(), np.asarray(p["perplexity"]))
    a = g.attention("micro", "DD", 1000, TEXT)
    fig = plot.attention(a)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == a.heads
    assert all(np.array_equal(im.get_array(), a.weights[h]) for h, im in enumerate(images))
    values = g.matrix("micro", "DD", 1000, rows=(0, 16)) if _has_matrix(g) else \
        np.arange(12.0).reshape(3, 4)
    fig = plot.matrix(values)
    assert np.array_equal(fig.axes[0].images[0].get_array(), values)
    ls = [g.logits("micro", "DD", s, TEXT) for s in (0, 1000)]
    fig = plot.logits(ls)
    assert [np.array_equal(ln.get_ydata(), l.mean_logits) for ln, l in
            zip(fig.axes[0].lines, ls)] == [True, True]
    u = g.unmask("micro", "DD", [0, 1000], TEXT)
    fig = plot.unmask(u)
    assert np.array_equal(fig.axes[0].images[0].get_array(), u.recovered)


def _has_matrix(g):
    """Whether this gardend has StreamMatrix (an older one answers UNIMPLEMENTED)."""
    try:
        g.matrix("micro", "DD", 0, rows=(0, 1), cols=(0, 1))
        return True
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED:
            return False
        raise


# ------------------------------------------------------------------ installation


def test_pip_install_builds_its_own_stubs(base, tmp_path):
    """`pip install client/python`, offline, with Debian's setuptools: a copy of the
    package and proto/ so the checkout stays clean; the installed package imports."""
    r = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("pip (python3-pip) is not installed")
    src = tmp_path / "src"
    shutil.copytree(os.path.join(SOURCE, "client", "python"), src / "client" / "python",
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "_proto",
                                                  "__pycache__"))
    shutil.copytree(os.path.join(SOURCE, "proto"), src / "proto")
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                        "--no-index", "--no-deps", "--target", str(target),
                        str(src / "client" / "python")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (target / "garden_client" / "_proto" / "garden_pb2_grpc.py").is_file()
    assert not (src / "client" / "python" / "garden_client" / "_proto").exists()
    r = subprocess.run([sys.executable, "-c",
                        "import garden_client, sys; print(garden_client.__file__); "
                        "from garden_client._proto import garden_pb2; "
                        "print(garden_pb2.DESCRIPTOR.name)"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(target)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(target / "garden_client" / "__init__.py"),
                                     "garden/v1/garden.proto"]
