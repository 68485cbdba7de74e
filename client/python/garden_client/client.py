"""Garden: the Python client of gardend, with the conventions of the ``garden`` CLI."""

import json
import math
import os
import re
import sys

import grpc
import numpy as np

from . import results as _results
from .errors import GardenError, from_rpc_error
from .results import (Attention, Histograms, Logits, Token, Tokens, Unmasking,
                      make_records, make_table)

try:
    from ._proto import garden_pb2 as pb
    from ._proto import garden_pb2_grpc as pb_grpc
    from ._proto import health_pb2
    from ._proto import health_pb2_grpc
except ImportError as _error:  # a source checkout that was never built
    raise ImportError(
        "garden_client's gRPC stubs are missing (garden_client/_proto is generated, never "
        "committed): use the package built into <build>/python by CMake (the target "
        "garden_python), or pip install client/python") from _error

try:
    from tqdm.auto import tqdm as _tqdm
except ImportError:  # progress bars are optional
    _tqdm = None

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_SUITE = "pythia"
DEFAULT_TENSOR = "embed_out.weight"
DEFAULT_BINS = 64
MAX_MESSAGE_BYTES = 64 << 20  # attention matrices, as the CLI allows

# Every Garden call only reads, so one that failed UNAVAILABLE before any answer
# came (a replica killed under it behind the proxy, a server restarting) is tried
# again, as the CLI's connection does; gRPC never retries a stream once a message
# has arrived.
SERVICE_CONFIG = {"methodConfig": [{
    "name": [{"service": "garden.v1.Garden"}, {"service": "grpc.health.v1.Health"}],
    "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.2s", "maxBackoff": "2s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}

# Training runs (PolyPythias): "seedN", "weight-seedN", "data-seedN".
_RUN = re.compile(r"(?:weight-|data-)?seed[0-9]{1,9}")
_VARIANTS = {"standard": "standard", "ndd": "standard", "deduped": "deduped",
             "dd": "deduped"}
_MSD_MODES = {"reference": pb.StreamMSDRequest.REFERENCE,
              "consecutive": pb.StreamMSDRequest.CONSECUTIVE,
              "lag": pb.StreamMSDRequest.LAG}
_TRENDS = {pb.MSDPeak.TREND_INCREASING: "increasing",
           pb.MSDPeak.TREND_DECREASING: "decreasing"}
_MAX_FILE_BYTES = 1 << 20  # tokens and PEM files are small
# What Garden.layers (StreamLayerStats) computes, in the CLI's order.
LAYER_METRICS = ("n", "mean", "std", "rms", "max_abs", "frobenius", "sparsity",
                 "spectral_norm", "stable_rank", "effective_rank", "alpha", "alpha_weighted",
                 "ks_distance", "xmin", "num_spikes")


def threshold_name(t):
    """A sparsity threshold as the CLI names it: 0.001 -> "1e-3"."""
    text = "%.0e" % t
    return text.replace("e-0", "e-", 1)


def _valid_name(name):
    """A name the server accepts: 1-256 characters of [A-Za-z0-9._-] without ".."."""
    return (isinstance(name, str) and 0 < len(name) <= 256 and name.isascii()
            and all(c.isalnum() or c in "._-" for c in name) and ".." not in name)


def _read_file(what, path):
    path = os.path.expanduser(os.fspath(path))
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ValueError(f"{what} {path}: {e.strerror or e}") from None
    if len(data) > _MAX_FILE_BYTES:
        raise ValueError(f"{what} {path}: over {_MAX_FILE_BYTES} bytes; not a {what} file")
    return data


def step_selection(steps):
    """A StepSelection from "all", "A:B" (inclusive), "0,1,2", an int, or an iterable of
    ints: the CLI's --steps syntax. Raises ValueError for anything else."""
    sel = pb.StepSelection()
    if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool):
        sel.list.steps.append(_step(steps))
        return sel
    if isinstance(steps, str):
        text = steps.strip()
        if text == "all":
            sel.all = True
            return sel
        if not text:
            raise ValueError(f'malformed steps "{steps}": expected all, a list 0,1,2 or a '
                             "range A:B")
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 2:
                raise ValueError(f'malformed steps "{steps}": a range is FIRST:LAST')
            first, last = (_parse_step(p, steps) for p in parts)
            if first > last:
                raise ValueError(f'malformed steps "{steps}": range start {first} is after '
                                 f"its end {last}")
            sel.range.first, sel.range.last = first, last
            return sel
        sel.list.steps.extend(_parse_step(p, steps) for p in text.split(","))
        return sel
    try:
        values = list(steps)
    except TypeError:
        raise TypeError(f'steps must be "all", "A:B", "0,1,2", an int or a list of ints, '
                        f"not {type(steps).__name__}") from None
    if not values:
        raise ValueError("the step list is empty")
    sel.list.steps.extend(_step(s) for s in values)
    return sel


def _parse_step(token, whole):
    token = token.strip()
    if not token:
        raise ValueError(f'malformed steps "{whole}": empty step')
    if not token.isdigit() or not token.isascii():
        raise ValueError(f'malformed steps "{whole}": "{token}" is not a non-negative '
                         "integer")
    return int(token)


def _step(s):
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
        raise TypeError(f"a step is an int, not {type(s).__name__} {s!r}")
    if s < 0:
        raise ValueError(f"step {s} is negative")
    return int(s)


def _span(name, span):
    """(begin, end) half-open, end None or 0 meaning the tensor's last; also a slice."""
    if span is None:
        return 0, 0
    if isinstance(span, slice):
        if span.step not in (None, 1):
            raise ValueError(f"{name}: a slice with a step is not a rectangle")
        begin, end = span.start, span.stop
    else:
        try:
            begin, end = span
        except (TypeError, ValueError):
            raise TypeError(f"{name} is (begin, end), not {span!r}") from None
    begin = 0 if begin is None else begin
    end = 0 if end is None else end
    if begin < 0 or (end and end <= begin):
        raise ValueError(f"{name} ({begin}, {end}) is not (BEGIN, END) with 0 <= BEGIN < END")
    return int(begin), int(end)


def _parse_config(text):
    """config.json parsed; the text itself where it is not JSON; None where absent."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class Stream:
    """An iterator over a streaming RPC's items that cancels the call when the loop is
    left early (``break``, an exception, or the iterator being dropped), when
    ``close()`` is called, or when a ``with`` block ends."""

    def __init__(self, call, items, address, method):
        self._call = call
        self._items = items
        self._address = address
        self._method = method
        self._done = False

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        try:
            return next(self._items)
        except StopIteration:
            self._done = True
            raise
        except grpc.RpcError as e:
            self._done = True
            raise from_rpc_error(e, self._address, self._method) from None
        except BaseException:
            self.close()
            raise

    def close(self):
        """Cancels the call if it is still running (the server stops its work)."""
        if not self._done:
            self._done = True
            self._call.cancel()
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    cancel = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class _Gathered:
    """What a generation has produced so far (kept apart from the Generation, so that
    its token generator holds no reference back to it: dropping the Generation then
    frees it at once, and that cancels the call)."""

    def __init__(self):
        self.prompt_ids = []
        self.ids = []
        self.logprobs = []
        self.text = ""


def _generated_tokens(call, gathered):
    for message in call:
        gathered.prompt_ids.extend(message.prompt_ids)
        t = message.token
        token = Token(id=t.id, text=t.text, logprob=t.logprob, index=t.index)
        gathered.ids.append(token.id)
        gathered.logprobs.append(token.logprob)
        gathered.text += token.text
        yield token


class Generation(Stream):
    """``Garden.generate``'s stream of ``Token``s. After (or during) the loop:
    ``prompt_ids``, ``ids``, ``logprobs`` and ``text`` hold what has come so far."""

    def __init__(self, call, address):
        self._gathered = _Gathered()
        super().__init__(call, _generated_tokens(call, self._gathered), address, "Generate")

    @property
    def prompt_ids(self):
        return self._gathered.prompt_ids

    @property
    def ids(self):
        return self._gathered.ids

    @property
    def logprobs(self):
        return self._gathered.logprobs

    @property
    def text(self):
        return self._gathered.text


class Garden:
    """A connection to gardend.

    ``Garden("lab-server:50051", token_file="~/.garden/token", tls_ca="ca.pem")``

    - ``address``: host:port (default ``$GARDEN_SERVER``, else 127.0.0.1:50051).
    - ``token`` or ``token_file``: sent as ``authorization: Bearer T`` on every call
      (default ``$GARDEN_TOKEN``).
    - ``tls_ca``: speak TLS, trusting certificates this PEM CA signed; ``tls_cert`` and
      ``tls_key`` add a client certificate (mutual TLS).
    - ``timeout``: a deadline in seconds for every call (None: none).
    - ``suite``: the default suite of every model call (``"pythia"``).
    - ``frames``: return pandas DataFrames (None: when pandas is installed); False gives
      ``Table``s (dicts of numpy columns) and ``Records`` (lists of dicts).
    - ``progress``: tqdm bars for sweeps (None: when tqdm is installed and stderr is a
      terminal; True: whenever tqdm is installed; False: never).

    Models are named as in the CLI: ``size`` ("70m"), ``variant`` "standard" or "deduped"
    (aliases "NDD", "DD"), ``suite=`` to override the default suite. Steps are ``"all"``,
    a list ``[0, 1000]`` (or "0,1000"), or an inclusive range ``"1000:5000"``.

    Every failed call raises ``GardenError`` (a ``grpc.RpcError``) whose ``code()`` is
    the ``grpc.StatusCode`` and whose ``details()`` is the server's message; arguments
    the client can check itself raise ValueError or TypeError before any call.
    Use it as a context manager, or call ``close()``.
    """

    def __init__(self, address=None, *, token=None, token_file=None, tls_ca=None,
                 tls_cert=None, tls_key=None, timeout=None, suite=DEFAULT_SUITE,
                 frames=None, progress=None, options=()):
        self.address = address or os.environ.get("GARDEN_SERVER") or DEFAULT_ADDRESS
        self.timeout = timeout
        self.suite = suite
        if frames and not _results.have_pandas():
            raise ImportError("frames=True needs pandas (Debian: python3-pandas)")
        self.frames = _results.have_pandas() if frames is None else bool(frames)
        self.progress = progress
        self._token = self._load_token(token, token_file)
        credentials = self._credentials(tls_ca, tls_cert, tls_key)
        channel_options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                           ("grpc.enable_retries", 1),
                           ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
                           *options]
        if credentials is None:
            self._channel = grpc.insecure_channel(self.address, options=channel_options)
        else:
            self._channel = grpc.secure_channel(self.address, credentials,
                                                options=channel_options)
        self._stub = pb_grpc.GardenStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    # ------------------------------------------------------------ connection

    @staticmethod
    def _load_token(token, token_file):
        if token is not None and token_file is not None:
            raise ValueError("give token or token_file, not both")
        if token_file is not None:
            token = _read_file("token_file", token_file).decode("utf-8", "replace").strip()
            if not token:
                raise ValueError(f"token_file {token_file}: the file is empty")
        elif token is None:
            token = os.environ.get("GARDEN_TOKEN", "").strip()
        token = token.strip()
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in token):
            raise ValueError("the token holds a control character; it is not one "
                             "`garden token new` made")
        return token or None

    @staticmethod
    def _credentials(tls_ca, tls_cert, tls_key):
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both, or neither")
        if tls_cert is not None and tls_ca is None:
            raise ValueError("tls_cert is for mutual TLS: give tls_ca too")
        if tls_ca is None:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=_read_file("tls_ca", tls_ca),
            private_key=_read_file("tls_key", tls_key) if tls_key else None,
            certificate_chain=_read_file("tls_cert", tls_cert) if tls_cert else None)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"Garden({self.address!r})"

    def _metadata(self, model_key=None):
        md = []
        if self._token:
            md.append(("authorization", f"Bearer {self._token}"))
        if model_key:
            # For routing proxies (deploy/nginx hashes on it), as the CLI sends it.
            md.append(("x-garden-model", "/".join(model_key)))
        return md

    def _unary(self, method, request, key=None):
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout,
                                               metadata=self._metadata(key))
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.address, method) from None

    def _stream(self, method, request, key=None):
        call = getattr(self._stub, method)(request, timeout=self.timeout,
                                           metadata=self._metadata(key))
        return Stream(call, iter(call), self.address, method)

    def _model(self, size, variant, suite, run=None):
        """(ModelRef, canonical (suite, size, variant[, run]) or None when the server
        will refuse the names and say why). ``run``: the training run ("seed3",
        "weight-seed2", "data-seed1"; None for the main run)."""
        suite = self.suite if suite is None else suite
        ref = pb.ModelRef(suite=suite or "", size=size, variant=variant, run=run or "")
        # What the server will make of the names, as the CLI's header says it; none for
        # names it will refuse (and say why).
        canonical = _VARIANTS.get(str(variant).lower())
        key = None
        if (canonical and all(_valid_name(n) for n in (suite or DEFAULT_SUITE, size, variant))
                and (not run or _RUN.fullmatch(str(run).lower()))):
            key = ((suite or DEFAULT_SUITE).lower(), str(size).lower(), canonical)
            if run:
                key += (str(run).lower(),)
        return ref, key

    @staticmethod
    def _name(key, size):
        if key is None:
            return size
        suite, size, variant, *run = key
        return (f"{suite}-{size}" + ("-deduped" if variant == "deduped" else "")
                + "".join(f"-{r}" for r in run if r))

    def _checkpoint(self, size, variant, step, suite, run=None):
        ref, key = self._model(size, variant, suite, run)
        return pb.CheckpointRef(model=ref, step=_step(step)), key

    def _bar(self, progress, desc):
        progress = self.progress if progress is None else progress
        if _tqdm is None or progress is False:
            return None
        if progress is None and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
            return None
        return _tqdm(desc=desc, unit="step", leave=False)

    # --------------------------------------------------------------- catalog

    def health(self, service=""):
        """The standard health service's status: "SERVING", "NOT_SERVING", ..."""
        try:
            r = self._health.Check(health_pb2.HealthCheckRequest(service=service),
                                   timeout=self.timeout, metadata=self._metadata())
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.address, "Health.Check") from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)

    def models(self, suite=None):
        """Suites, sizes, variants and the steps present: one row per model with the keys
        of ``garden models --format json`` (suite, size, variant, run, name, repo_id, layout,
        steps, missing_from_schedule). ``suite``: only that one (default: all)."""
        r = self._unary("ListModels", pb.ListModelsRequest(suite=suite or ""))
        rows = []
        for m in r.models:
            key = (m.model.suite, m.model.size, m.model.variant, m.model.run)
            rows.append({"suite": m.model.suite, "size": m.model.size,
                         "variant": m.model.variant, "run": m.model.run,
                         "name": self._name(key, m.model.size),
                         "repo_id": m.repo_id, "layout": m.layout, "steps": list(m.steps),
                         "missing_from_schedule": list(m.missing_from_schedule)})
        columns = ["suite", "size", "variant", "run", "name", "repo_id", "layout", "steps",
                   "missing_from_schedule"]
        return make_records(rows, columns, {}, self.frames)

    def steps(self, size, variant="standard", *, suite=None, run=None):
        """The steps present for one model, ascending (numpy int64)."""
        ref, key = self._model(size, variant, suite, run)
        wanted = self._name(key, size)
        for m in self._unary("ListModels", pb.ListModelsRequest(suite=ref.suite)).models:
            if self._name((m.model.suite, m.model.size, m.model.variant, m.model.run),
                          "") == wanted:
                return np.array(m.steps, dtype=np.int64)
        raise GardenError(self.address, "ListModels", grpc.StatusCode.NOT_FOUND,
                          f"no model {wanted} on this server")

    def tensors(self, size, variant="standard", step=0, *, suite=None, run=None):
        """The tensors of one checkpoint: name, dtype, shape, num_bytes, file per row;
        ``attrs``: "checkpoint" (suite, size, variant, step as the server names them) and
        "config" (the checkpoint's config.json, parsed; None without one)."""
        checkpoint, key = self._checkpoint(size, variant, step, suite, run)
        r = self._unary("ListTensors", pb.ListTensorsRequest(checkpoint=checkpoint), key)
        rows = [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape),
                 "num_bytes": t.num_bytes, "file": t.file} for t in r.tensors]
        c = r.checkpoint
        attrs = {"checkpoint": {"suite": c.model.suite, "size": c.model.size,
                                "variant": c.model.variant, "run": c.model.run,
                                "step": c.step},
                 "config": _parse_config(r.config_json)}
        return make_records(rows, ["name", "dtype", "shape", "num_bytes", "file"], attrs,
                            self.frames)

    def datasets(self):
        """Cloze datasets registered on the server: name, examples per row."""
        r = self._unary("ListDatasets", pb.ListDatasetsRequest())
        rows = [{"name": d.name, "examples": d.examples} for d in r.datasets]
        return make_records(rows, ["name", "examples"], {}, self.frames)

    # ---------------------------------------------------------- distribution

    def hist(self, size, variant="standard", steps="all", *, tensor=DEFAULT_TENSOR,
             bins=DEFAULT_BINS, range=None, exclude_flagged=False, suite=None, run=None,
             progress=None):
        """Histograms and moments of a tensor at each selected step (``garden hist``).

        ``range=(lo, hi)`` fixes the bins' range; by default one common range for every
        selected step ([min, max] of their finite values). Returns ``Histograms``:
        ``.steps``, ``.edges``, ``.counts`` (steps x bins), ``.moments`` and the
        out-of-range and non-finite counts."""
        ref, key = self._model(size, variant, suite, run)
        request = pb.StreamHistogramsRequest(model=ref, steps=step_selection(steps),
                                             tensor=tensor, bins=int(bins),
                                             exclude_flagged=exclude_flagged)
        if range is not None:
            lo, hi = range
            request.range.lo, request.range.hi = float(lo), float(hi)
        frames = []
        bar = self._bar(progress, f"{self._name(key, size)} hist")
        try:
            with self._stream("StreamHistograms", request, key) as stream:
                for message in stream:
                    if message.HasField("frame"):
                        f = message.frame
                        frames.append(f)
                        if bar is not None:
                            bar.total = f.total
                            bar.set_description(f"{self._name(key, size)} step {f.step}")
                            bar.n = f.index + 1
                            bar.refresh()
                    elif bar is not None:
                        p = message.progress
                        bar.total = p.total
                        bar.set_description("scanning for the common range")
                        bar.n = p.done
                        bar.refresh()
        finally:
            if bar is not None:
                bar.close()
        return self._histograms(frames, self._name(key, size), tensor)

    def _histograms(self, frames, model, tensor):
        n = len(frames)
        bins = len(frames[0].counts) if frames else 0
        lo = np.array([f.lo for f in frames], dtype=np.float64)
        hi = np.array([f.hi for f in frames], dtype=np.float64)
        if n and np.all(lo == lo[0]) and np.all(hi == hi[0]):
            edges = np.linspace(lo[0], hi[0], bins + 1)
        elif n:  # never from gardend, which bins every step over one range
            edges = np.stack([np.linspace(a, b, bins + 1) for a, b in zip(lo, hi)])
        else:
            edges = np.zeros(0)

        def column(name, dtype):
            return np.array([getattr(f, name) for f in frames], dtype=dtype)

        steps = column("step", np.int64)
        moments = {"step": steps, "n": column("n", np.uint64)}
        for name in ("mean", "std", "min", "max", "skewness", "kurtosis"):
            moments[name] = column(name, np.float64)
        counts = np.array([list(f.counts) for f in frames], dtype=np.uint64).reshape(n, bins)
        return Histograms(
            model=model, tensor=tensor, steps=steps, edges=edges, counts=counts,
            underflow=column("underflow", np.uint64), overflow=column("overflow", np.uint64),
            nan=column("nan", np.uint64), posinf=column("posinf", np.uint64),
            neginf=column("neginf", np.uint64), lo=lo, hi=hi,
            moments=make_table(moments, {"model": model, "tensor": tensor}, self.frames),
            dtype=frames[0].dtype if frames else "",
            shape=list(frames[0].shape) if frames else [])

    def bifurcation(self, size, variant="standard", steps="all", *, tensor=DEFAULT_TENSOR,
                    persist=None, min_dip=None, bins=None, exclude_flagged=False,
                    suite=None, run=None, progress=None):
        """Bimodality per step (``garden bifurcation``): step, bc, modes, mode_heights,
        dip, bimodal, bandwidth per row; ``attrs["onset"]``: the first step from which
        ``persist`` (2) consecutive steps are bimodal, or None."""
        ref, key = self._model(size, variant, suite, run)
        request = pb.StreamBifurcationRequest(model=ref, steps=step_selection(steps),
                                              tensor=tensor, exclude_flagged=exclude_flagged)
        if persist is not None:
            request.persist = int(persist)
        if min_dip is not None:
            request.min_dip = float(min_dip)
        if bins is not None:
            request.bins = int(bins)
        rows, onset = [], None
        bar = self._bar(progress, f"{self._name(key, size)} bifurcation")
        try:
            with self._stream("StreamBifurcation", request, key) as stream:
                for message in stream:
                    which = message.WhichOneof("payload")
                    if which == "step":
                        rows.append(message.step)
                        if bar is not None:
                            bar.update(1)
                    elif which == "summary":
                        if message.summary.HasField("onset"):
                            onset = message.summary.onset
                    elif bar is not None:
                        bar.total = message.progress.total
                        bar.n = message.progress.done
                        bar.refresh()
        finally:
            if bar is not None:
                bar.close()
        columns = {
            "step": np.array([s.step for s in rows], dtype=np.int64),
            "bc": np.array([s.bc for s in rows], dtype=np.float64),
            "modes": [np.array(s.mode_locations, dtype=np.float64) for s in rows],
            "mode_heights": [np.array(s.mode_heights, dtype=np.float64) for s in rows],
            "dip": np.array([s.dip for s in rows], dtype=np.float64),
            "bimodal": np.array([s.bimodal for s in rows], dtype=bool),
            "bandwidth": np.array([s.bandwidth for s in rows], dtype=np.float64),
        }
        attrs = {"onset": onset, "model": self._name(key, size), "tensor": tensor}
        return make_table(columns, attrs, self.frames)

    def matrix(self, size, variant="standard", step=0, *, tensor=DEFAULT_TENSOR, rows=None,
               cols=None, suite=None, run=None):
        """A rectangle of one tensor's values at one step, exactly as stored (float64,
        rows x cols; ``garden matrix``). ``rows=(a, b)`` and ``cols=(c, d)`` are half-open
        (b or d None: to the end; a slice works too); a 1-D tensor is one row. At most
        4,194,304 values a call (INVALID_ARGUMENT past it)."""
        checkpoint, key = self._checkpoint(size, variant, step, suite, run)
        (rb, re_), (cb, ce) = _span("rows", rows), _span("cols", cols)
        request = pb.MatrixRequest(checkpoint=checkpoint, tensor=tensor, row_begin=rb,
                                   row_end=re_, col_begin=cb, col_end=ce)
        shape = None
        parts = []
        with self._stream("StreamMatrix", request, key) as stream:
            for block in stream:
                if shape is None or len(block.shape):
                    shape = (block.row_end - block.row_begin, block.col_end - block.col_begin)
                parts.append(np.array(block.values, dtype=np.float64))
        if shape is None:
            return np.zeros((0, 0))
        values = np.concatenate(parts) if parts else np.zeros(0)
        return values.reshape(shape)

    def layers(self, size, variant="standard", steps="all", *, tensors=None, metrics=None,
               spectrum="auto", suite=None, run=None):
        """Per step and per matrix (every 2-D weight, or those the RE2 regex ``tensors``
        matches anywhere in their names): moments, norms, sparsity and spectral
        statistics (``garden layers``).

        A row per (step, tensor), steps ascending: step, tensor, layer (-1 for the
        embeddings), kind, shape, then each metric asked for (``metrics``: of
        LAYER_METRICS; None: all) with NaN where the server sent none (a power-law fit
        that does not exist), "sparsity" as one ``sparsity_1e-3``-style column per
        threshold (the fraction of entries with |w| < threshold × max_abs), and
        spectrum_method ("svd", "gram" or ""). ``spectrum``: "auto" (LAPACK's SVD up to
        65536 entries, the Gram matrix's eigenvalues above) or "exact" (the SVD always;
        RESOURCE_EXHAUSTED past 4194304 entries)."""
        ref, key = self._model(size, variant, suite, run)
        asked = list(metrics) if metrics else list(LAYER_METRICS)
        request = pb.LayerStatsRequest(model=ref, steps=step_selection(steps),
                                       tensors=tensors or "", metrics=list(metrics or ()),
                                       spectrum=spectrum)
        with self._stream("StreamLayerStats", request, key) as stream:
            records = list(stream)
        columns = {
            "step": np.array([r.step for r in records], dtype=np.int64),
            "tensor": np.array([r.tensor for r in records], dtype=object),
            "layer": np.array([r.layer for r in records], dtype=np.int32),
            "kind": np.array([r.kind for r in records], dtype=object),
            "shape": [list(r.shape) for r in records],
        }
        for m in asked:
            if m == "sparsity":
                thresholds = sorted({s.threshold for r in records for s in r.sparsity})
                for t in thresholds:
                    columns[f"sparsity_{threshold_name(t)}"] = np.array(
                        [next((s.fraction for s in r.sparsity if s.threshold == t), math.nan)
                         for r in records], dtype=np.float64)
            elif m in ("n", "num_spikes") and all(r.HasField(m) for r in records):
                columns[m] = np.array([getattr(r, m) for r in records], dtype=np.uint64)
            else:
                columns[m] = np.array([float(getattr(r, m)) if r.HasField(m) else math.nan
                                       for r in records], dtype=np.float64)
        columns["spectrum_method"] = np.array([r.spectrum_method for r in records],
                                              dtype=object)
        attrs = {"model": self._name(key, size), "metrics": asked}
        return make_table(columns, attrs, self.frames)

    # -------------------------------------------------------------- dynamics

    def msd(self, size, variant="standard", steps="all", *, tensor=DEFAULT_TENSOR,
            mode="reference", reference=None, exclude_flagged=False, suite=None, run=None):
        """Mean square displacement over training (``garden msd``), a row per step (per lag
        τ in mode "lag"): step, msd, from_step, rate, n; consecutive mode adds
        msd_before_previous and before_previous_step (NaN and -1 where absent); lag mode
        adds lag and pairs. ``attrs``: "peak" ({step, msd} of an interior maximum, else
        None), "largest" ({step, msd}), "monotonic" ("increasing", "decreasing" or None),
        as the CLI's JSON has them."""
        if mode not in _MSD_MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(_MSD_MODES)}")
        ref, key = self._model(size, variant, suite, run)
        request = pb.StreamMSDRequest(model=ref, steps=step_selection(steps), tensor=tensor,
                                      mode=_MSD_MODES[mode], exclude_flagged=exclude_flagged)
        if reference is not None:
            request.reference_step = _step(reference)
        points, peak = [], None
        with self._stream("StreamMSD", request, key) as stream:
            for message in stream:
                if message.HasField("peak"):
                    peak = message.peak
                else:
                    points.append(message.point)
        columns = {
            "step": np.array([p.step for p in points], dtype=np.int64),
            "msd": np.array([p.msd for p in points], dtype=np.float64),
            "from_step": np.array([p.from_step for p in points], dtype=np.int64),
            "rate": np.array([p.rate for p in points], dtype=np.float64),
            "n": np.array([p.n for p in points], dtype=np.uint64),
        }
        if mode == "consecutive":
            columns["msd_before_previous"] = np.array(
                [p.msd_before_previous if p.HasField("msd_before_previous") else math.nan
                 for p in points], dtype=np.float64)
            columns["before_previous_step"] = np.array(
                [p.before_previous_step if p.HasField("msd_before_previous") else -1
                 for p in points], dtype=np.int64)
        if mode == "lag":
            columns["lag"] = columns["step"].copy()
            columns["pairs"] = np.array([p.pairs for p in points], dtype=np.uint32)
        attrs = {"peak": None, "largest": None, "monotonic": None, "mode": mode,
                 "model": self._name(key, size), "tensor": tensor}
        if peak is not None:
            largest = {"step": int(peak.step), "msd": float(peak.msd)}
            attrs["largest"] = largest
            attrs["peak"] = dict(largest) if peak.interior else None
            attrs["monotonic"] = _TRENDS.get(peak.trend)
        return make_table(columns, attrs, self.frames)

    def audit(self, size, variant="standard", steps="all", *, tensor=DEFAULT_TENSOR,
              all_tensors=False, z=None, suite=None, run=None):
        """Defects of a suite (``garden audit``): a row per finding (kind "identical",
        "discontinuity" or "missing"; steps, tensor, detail, score); ``attrs``:
        "steps_checked", "tensors_checked"."""
        ref, key = self._model(size, variant, suite, run)
        request = pb.AuditRequest(model=ref, steps=step_selection(steps), tensor=tensor,
                                  all_tensors=all_tensors)
        if z is not None:
            request.z_threshold = float(z)
        r = self._unary("Audit", request, key)
        rows = [{"kind": f.kind, "steps": list(f.steps), "tensor": f.tensor,
                 "detail": f.detail, "score": f.score} for f in r.findings]
        attrs = {"steps_checked": r.steps_checked, "tensors_checked": r.tensors_checked}
        return make_records(rows, ["kind", "steps", "tensor", "detail", "score"], attrs,
                            self.frames)

    def ppl(self, size, variant="standard", steps="all", *, dataset, limit=None,
            suite=None, run=None):
        """Perplexity and accuracy on a registered cloze dataset at each step (``garden
        ppl``): step, perplexity, accuracy, n, mean_logprob, target_tokens, truncated."""
        ref, key = self._model(size, variant, suite, run)
        request = pb.StreamPerplexityRequest(model=ref, steps=step_selection(steps),
                                             dataset=dataset)
        if limit is not None:
            request.limit = int(limit)
        with self._stream("StreamPerplexity", request, key) as stream:
            points = list(stream)
        columns = {
            "step": np.array([p.step for p in points], dtype=np.int64),
            "perplexity": np.array([p.perplexity for p in points], dtype=np.float64),
            "accuracy": np.array([p.accuracy for p in points], dtype=np.float64),
            "n": np.array([p.n for p in points], dtype=np.uint32),
            "mean_logprob": np.array([p.mean_logprob for p in points], dtype=np.float64),
            "target_tokens": np.array([p.target_tokens for p in points], dtype=np.uint64),
            "truncated": np.array([p.truncated for p in points], dtype=np.uint32),
        }
        attrs = {"dataset": dataset, "model": self._name(key, size)}
        return make_table(columns, attrs, self.frames)

    # -------------------------------------------------------- language model

    def tokenize(self, size, variant="standard", step=0, text="", *, suite=None, run=None):
        """Token ids and pieces of a text under a checkpoint's tokenizer."""
        checkpoint, key = self._checkpoint(size, variant, step, suite, run)
        r = self._unary("Tokenize", pb.TokenizeRequest(checkpoint=checkpoint, text=text), key)
        return Tokens(ids=np.array(r.ids, dtype=np.int32), pieces=list(r.pieces))

    def generate(self, size, variant="standard", step=0, prompt="", *, max_new_tokens=32,
                 greedy=None, temperature=None, top_k=0, top_p=None, seed=None,
                 suite=None, run=None):
        """Continues a prompt, yielding each ``Token`` as the server produces it.

        Greedy unless temperature, top_k, top_p or seed is given (``greedy=True`` forces
        it), as ``garden generate``. Leaving the loop early cancels the call; the
        returned ``Generation`` also gathers ``.text``, ``.ids``, ``.prompt_ids`` and
        ``.logprobs``::

            for token in g.generate("70m", "deduped", 143000, "The garden"):
                print(token.text, end="", flush=True)
        """
        checkpoint, key = self._checkpoint(size, variant, step, suite, run)
        sampled = not greedy and (temperature is not None or top_p is not None
                                  or bool(top_k) or seed is not None)
        sampling = pb.Sampling(greedy=not sampled, top_k=int(top_k),
                               seed=int(seed or 0))
        if temperature is not None:
            sampling.temperature = float(temperature)
        if top_p is not None:
            sampling.top_p = float(top_p)
        request = pb.GenerateRequest(checkpoint=checkpoint, prompt=prompt,
                                     max_new_tokens=int(max_new_tokens), sampling=sampling)
        call = self._stub.Generate(request, timeout=self.timeout,
                                   metadata=self._metadata(key))
        return Generation(call, self.address)

    def unmask(self, size, variant="standard", steps="all", text="", *,
               prefix_lengths=None, suite=None, run=None):
        """The paper's causal unmasking (``garden unmask``): for each step and prefix
        length k, the greedy completion of the text's first k tokens. Returns
        ``Unmasking``: ``.frames`` (the CLI's frame keys), ``.recovered`` (steps x ks)."""
        ref, key = self._model(size, variant, suite, run)
        request = pb.CausalUnmaskRequest(model=ref, steps=step_selection(steps), text=text,
                                         prefix_lengths=[int(k) for k in prefix_lengths or ()])
        with self._stream("CausalUnmask", request, key) as stream:
            frames = list(stream)
        n, original = 0, np.zeros(0, dtype=np.int32)
        for f in frames:
            if len(f.original_ids):
                n, original = f.n, np.array(f.original_ids, dtype=np.int32)
                break
        rows = [{"step": f.step, "k": f.k, "n": f.n, "prefix": f.prefix_text,
                 "prefix_ids": list(f.prefix_ids), "generated": f.generated_text,
                 "generated_ids": list(f.generated_ids),
                 "generated_pieces": list(f.generated_pieces), "agree": list(f.agree),
                 "recovered": f.recovered}
                for f in frames]
        steps = np.array(sorted({f.step for f in frames}), dtype=np.int64)
        ks = np.array(sorted({f.k for f in frames}), dtype=np.int64)
        recovered = np.full((len(steps), len(ks)), np.nan)
        si = {s: i for i, s in enumerate(steps.tolist())}
        ki = {k: j for j, k in enumerate(ks.tolist())}
        for f in frames:
            recovered[si[f.step], ki[f.k]] = f.recovered
        columns = ["step", "k", "n", "prefix", "prefix_ids", "generated", "generated_ids",
                   "generated_pieces", "agree", "recovered"]
        return Unmasking(text=text, n=n, original_ids=original,
                         frames=make_records(rows, columns, {"model": self._name(key, size)},
                                             self.frames),
                         steps=steps, ks=ks, recovered=recovered)

    def logits(self, size, variant="standard", step=0, text="", *, top_k=10, full=True,
               suite=None, run=None):
        """Mean over positions of the next-token logits (``garden logits``): ``Logits``
        with ``.top`` (id, piece, logit) and ``.mean_logits`` (float32, vocab_size; None
        with ``full=False``, which spares sending it)."""
        checkpoint, key = self._checkpoint(size, variant, step, suite, run)
        r = self._unary("Logits", pb.LogitsRequest(checkpoint=checkpoint, text=text,
                                                   top_k=int(top_k), include_all=full), key)
        top = make_records([{"id": t.id, "piece": t.piece, "logit": t.logit} for t in r.top],
                           ["id", "piece", "logit"], {}, self.frames)
        mean = np.array(r.mean_logits, dtype=np.float32) if full else None
        return Logits(step=checkpoint.step, tokens=r.tokens, top=top, mean_logits=mean)

    def attention(self, size, variant="standard", step=0, text="", *, layer=0,
                  average_heads=False, suite=None, run=None):
        """One layer's attention probabilities (``garden attention``): ``Attention`` with
        ``.weights`` (float32, heads x tokens x tokens) and ``.pieces``."""
        checkpoint, key = self._checkpoint(size, variant, step, suite, run)
        r = self._unary("Attention", pb.AttentionRequest(checkpoint=checkpoint, text=text,
                                                         layer=int(layer),
                                                         average_heads=average_heads), key)
        weights = np.array(r.weights, dtype=np.float32).reshape(r.heads, r.tokens, r.tokens)
        return Attention(step=checkpoint.step, layer=int(layer), averaged=average_heads,
                         pieces=list(r.pieces), weights=weights)
