#!/usr/bin/python3
"""Writes synthetic, GPT-NeoX-shaped checkpoint suites for Garden's tests, demo and benchmark.

Every checkpoint carries Pythia's exact tensor names and shapes, but its values are
synthetic (config.json says "garden_synthetic": true). Values are deterministic from
(seed, step): each tensor has a base w0 and a drift direction d drawn once from
numpy's default_rng([seed, crc32(name)]), and

    w(step) = w0 * (1 + 0.5 t) + t * d,     t = log(1 + step) / log(1 + 143000)

so step 0 is the initialisation (layernorm weights exactly 1, biases exactly 0) and
the weights drift smoothly with the step. With bifurcate, the rows of
embed_out.weight are split into two groups whose means move apart by
+-mu(step), mu = 0.75 * sigma * log(1 + step), so that matrix turns bimodal late
in training.

Layouts:
  plain: OUT/<suite>-<size>[-deduped]/step<N>/{config.json, model.safetensors}
  hf:    OUT/models--<org>--<suite>-<size>[-deduped]/{blobs/<sha256>, refs/step<N>,
         refs/main, snapshots/<commit>/<file> -> ../../blobs/<sha256>}
With shards > 1, model.safetensors is replaced by model.safetensors.index.json and
model-0000i-of-0000K.safetensors.

Command line: make_suite.py --out DIR [--preset micro|pythia-70m] [--suite pythia]
  [--size NAME] [--variant standard|deduped] [--steps 0,1,2,4,8] [--layout plain|hf]
  [--dtype F16|BF16|F32] [--hidden H] [--layers L] [--heads A] [--vocab V]
  [--intermediate I] [--seed S] [--shards K] [--bifurcate] [--org ORG]
  [--format safetensors|bin]

Python API (sys.path.insert(0, "<repo>/scripts"); import make_suite):
  write_suite(out, suite, size, variant, steps, layout='plain', dtype='F16',
              preset='micro', seed=0, shards=1, bifurcate=False, **overrides)
      -> {step: checkpoint directory}
  read_tensor(path, name) -> np.ndarray     (independent pure-numpy reader)
  read_header(path) -> {name: {"dtype", "shape", "data_offsets", "file"}}
  tensor_names(path) -> [names in file order]
  checkpoint_dir(out, suite, size, variant, step, layout='plain', org=...) -> path
  corrupt_file(path, how)                   how in {"truncate", "header", "json"}
  save_as_torch(checkpoint_dir, keep_safetensors=False, share_storage=True)
      rewrites a checkpoint's weights as torch.save files (pytorch_model.bin, or
      pytorch_model-0000i-of-0000K.bin + pytorch_model.bin.index.json), as
      Pythia's step revisions hold them: same values, plus the buffers Pythia's
      files carry (uint8 attention.bias, F32 attention.masked_bias and
      rotary_emb.inv_freq). Needs Debian's python3-torch (imported only here).

--format bin on the command line writes the suite and then does save_as_torch.
"""

import argparse
import hashlib
import json
import math
import os
import struct
import sys
import time
import zlib

import numpy as np

PRESETS = {
    "micro": {"hidden": 32, "layers": 2, "heads": 4, "vocab": 512},
    "pythia-70m": {"hidden": 512, "layers": 6, "heads": 8, "vocab": 50304,
                   "intermediate": 2048},
}
DTYPES = {"F16": 2, "BF16": 2, "F32": 4}
TORCH_DTYPE = {"F16": "float16", "BF16": "bfloat16", "F32": "float32"}
DEFAULT_ORG = "EleutherAI"
FINAL_STEP = 143000  # Pythia's last checkpoint; t(FINAL_STEP) == 1
BIFURCATION_RATE = 0.75  # mu(step) = rate * sigma * log1p(step)
MAX_OPEN_FILES = 64  # checkpoints written at once; bases are regenerated per batch


# ---------------------------------------------------------------------------------
# Model description


def model_config(preset="micro", **overrides):
    """Resolves preset + explicit overrides into hidden/layers/heads/vocab/intermediate."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    cfg = dict(PRESETS[preset])
    for key in ("hidden", "layers", "heads", "vocab", "intermediate"):
        if overrides.get(key) is not None:
            cfg[key] = int(overrides[key])
    if overrides.get("hidden") is not None and overrides.get("intermediate") is None:
        cfg.pop("intermediate", None)  # an explicit hidden size re-derives 4H
    cfg.setdefault("intermediate", 4 * cfg["hidden"])
    for key, value in cfg.items():
        if value <= 0:
            raise ValueError(f"{key} must be positive, got {value}")
    if cfg["hidden"] % cfg["heads"]:
        raise ValueError(f"hidden {cfg['hidden']} is not a multiple of heads {cfg['heads']}")
    return cfg


def tensor_specs(cfg):
    """[(name, shape, kind, sigma)] in file order. kind: weight, ln_weight, bias."""
    h, inter, v, layers = cfg["hidden"], cfg["intermediate"], cfg["vocab"], cfg["layers"]
    small = math.sqrt(2.0 / (5.0 * h))  # GPT-NeoX "small_init"
    wang = 2.0 / (layers * math.sqrt(h))  # GPT-NeoX "wang_init" for output projections
    specs = [("gpt_neox.embed_in.weight", (v, h), "weight", small)]
    for i in range(layers):
        p = f"gpt_neox.layers.{i}."
        specs += [
            (p + "input_layernorm.weight", (h,), "ln_weight", 0.0),
            (p + "input_layernorm.bias", (h,), "bias", 0.0),
            (p + "post_attention_layernorm.weight", (h,), "ln_weight", 0.0),
            (p + "post_attention_layernorm.bias", (h,), "bias", 0.0),
            (p + "attention.query_key_value.weight", (3 * h, h), "weight", small),
            (p + "attention.query_key_value.bias", (3 * h,), "bias", 0.0),
            (p + "attention.dense.weight", (h, h), "weight", wang),
            (p + "attention.dense.bias", (h,), "bias", 0.0),
            (p + "mlp.dense_h_to_4h.weight", (inter, h), "weight", small),
            (p + "mlp.dense_h_to_4h.bias", (inter,), "bias", 0.0),
            (p + "mlp.dense_4h_to_h.weight", (h, inter), "weight", wang),
            (p + "mlp.dense_4h_to_h.bias", (h,), "bias", 0.0),
        ]
    specs += [
        ("gpt_neox.final_layer_norm.weight", (h,), "ln_weight", 0.0),
        ("gpt_neox.final_layer_norm.bias", (h,), "bias", 0.0),
        ("embed_out.weight", (v, h), "weight", small),
    ]
    return specs


def hf_config(cfg, dtype, seed, bifurcate):
    return {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "hidden_size": cfg["hidden"],
        "num_hidden_layers": cfg["layers"],
        "num_attention_heads": cfg["heads"],
        "intermediate_size": cfg["intermediate"],
        "vocab_size": cfg["vocab"],
        "rotary_pct": 0.25,
        "rotary_emb_base": 10000,
        "max_position_embeddings": 2048,
        "layer_norm_eps": 1e-5,
        "use_parallel_residual": True,
        "hidden_act": "gelu",
        "initializer_range": 0.02,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "use_cache": True,
        "tie_word_embeddings": False,
        "torch_dtype": TORCH_DTYPE[dtype],
        "garden_synthetic": True,
        "garden_synthetic_params": {"seed": seed, "bifurcate": bool(bifurcate)},
    }


def repo_name(suite, size, variant):
    if variant not in ("standard", "deduped"):
        raise ValueError(f"variant must be standard or deduped, got {variant!r}")
    return f"{suite}-{size}" + ("-deduped" if variant == "deduped" else "")


def checkpoint_dir(out, suite, size, variant, step, layout="plain", org=DEFAULT_ORG):
    """The directory holding config.json and the weights of one step."""
    name = repo_name(suite, size, variant)
    if layout == "plain":
        return os.path.join(out, name, f"step{int(step)}")
    if layout == "hf":
        repo = os.path.join(out, f"models--{org}--{name}")
        with open(os.path.join(repo, "refs", f"step{int(step)}")) as f:
            return os.path.join(repo, "snapshots", f.read().strip())
    raise ValueError(f"layout must be plain or hf, got {layout!r}")


# ---------------------------------------------------------------------------------
# Values


def drift_t(step):
    return math.log1p(step) / math.log1p(FINAL_STEP)


def bifurcation_mu(step, sigma):
    return BIFURCATION_RATE * sigma * math.log1p(step)


class _Tensor:
    """Step-independent randomness of one tensor; values(step) gives float32 data."""

    def __init__(self, spec, seed, bifurcate):
        self.name, self.shape, self.kind, self.sigma = spec
        n = int(np.prod(self.shape))
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        if self.kind == "weight":
            self.base = rng.standard_normal(n, dtype=np.float32)
            self.base *= np.float32(self.sigma)
            z = rng.standard_normal(n, dtype=np.float32)
            # Drift direction with heavier tails than a Gaussian: 0.4 z + 0.1 z^3.
            d = z * z
            d *= np.float32(0.1)
            d += np.float32(0.4)
            d *= z
            d *= np.float32(self.sigma)
            self.dir = d
        else:
            self.base = None  # ones (ln_weight) or zeros (bias)
            scale = 0.1 if self.kind == "ln_weight" else 0.02
            self.dir = rng.standard_normal(n, dtype=np.float32) * np.float32(scale)
        self.signs = None
        if bifurcate and self.name == "embed_out.weight":
            rows = self.shape[0]
            self.signs = np.where(rng.random(rows) < 0.5, -1.0, 1.0).astype(np.float32)
        self.buf = np.empty(n, dtype=np.float32)

    def values(self, step):
        t = np.float32(drift_t(step))
        out = self.buf
        if self.base is not None:
            np.multiply(self.base, np.float32(1.0 + 0.5 * t), out=out)
            if t:
                out += self.dir * t
        elif not t:
            out.fill(1.0 if self.kind == "ln_weight" else 0.0)  # exact, no -0.0
        else:
            np.multiply(self.dir, t, out=out)
            if self.kind == "ln_weight":
                out += np.float32(1.0)
        if self.signs is not None and step > 0:
            mu = np.float32(bifurcation_mu(step, self.sigma))
            out.reshape(self.shape[0], -1)[...] += (self.signs * mu)[:, None]
        return out


def encode(values, dtype):
    """float32 array -> bytes-like of the safetensors dtype (little endian)."""
    if dtype == "F32":
        return values
    if dtype == "F16":
        return values.astype(np.float16)
    if dtype == "BF16":
        bits = values.view(np.uint32)
        # Round to nearest even on the 16 dropped bits (values are finite).
        rounded = (bits >> 16) & 1
        rounded += np.uint32(0x7FFF)
        rounded += bits
        rounded >>= 16
        return rounded.astype(np.uint16)
    raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")


# ---------------------------------------------------------------------------------
# Files


def safetensors_header(entries, dtype):
    """entries: [(name, shape)] in data order. Returns (header bytes incl. length, data size)."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in entries:
        size = int(np.prod(shape)) * DTYPES[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, offset


def shard_plan(specs, shards, dtype):
    """Splits tensors, in order, into `shards` contiguous groups of about equal bytes."""
    if shards < 1:
        raise ValueError("shards must be >= 1")
    if shards > len(specs):
        raise ValueError(f"cannot split {len(specs)} tensors into {shards} shards")
    sizes = [int(np.prod(s[1])) * DTYPES[dtype] for s in specs]
    total = sum(sizes)
    plan, acc = [], 0
    for i, size in enumerate(sizes):
        remaining_tensors = len(specs) - i
        shard = min(int(acc * shards // total) if total else 0, shards - 1)
        # Never leave a later shard empty, never go back.
        shard = max(shard, plan[-1] if plan else 0)
        shard = max(shard, shards - remaining_tensors)
        if plan and shard > plan[-1] + 1:
            shard = plan[-1] + 1
        plan.append(shard)
        acc += size
    return plan


def shard_file_names(shards):
    if shards == 1:
        return ["model.safetensors"]
    return [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]


class _HashingFile:
    def __init__(self, path, want_hash):
        self.path = path
        self.f = open(path, "wb", buffering=1 << 20)
        self.h = hashlib.sha256() if want_hash else None

    def write(self, data):
        if self.h is not None:
            self.h.update(data)
        self.f.write(data)

    def close(self):
        self.f.close()
        return self.h.hexdigest() if self.h is not None else None


def _write_bytes_file(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _remove_stale(directory, keep):
    for entry in os.listdir(directory):
        if entry not in keep and (entry.endswith(".safetensors") or
                                  entry.endswith(".safetensors.index.json") or
                                  entry == "config.json" or ".tmp-" in entry):
            os.remove(os.path.join(directory, entry))


def write_suite(out, suite, size, variant, steps, layout="plain", dtype="F16",
                preset="micro", seed=0, shards=1, bifurcate=False, **overrides):
    """Writes one checkpoint per step. Returns {step: checkpoint directory}.

    overrides: hidden, layers, heads, vocab, intermediate (model shape; override the
    preset) and org (hf layout organisation, default EleutherAI).
    """
    org = overrides.pop("org", None) or DEFAULT_ORG
    unknown = set(overrides) - {"hidden", "layers", "heads", "vocab", "intermediate"}
    if unknown:
        raise TypeError(f"unknown overrides: {', '.join(sorted(unknown))}")
    if layout not in ("plain", "hf"):
        raise ValueError(f"layout must be plain or hf, got {layout!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    steps = sorted({int(s) for s in steps})
    if not steps or steps[0] < 0:
        raise ValueError("steps must be a non-empty list of non-negative integers")
    cfg = model_config(preset, **overrides)
    specs = tensor_specs(cfg)
    shards = int(shards)
    plan = shard_plan(specs, shards, dtype)
    files = shard_file_names(shards)
    headers = []
    for k in range(shards):
        headers.append(safetensors_header(
            [(s[0], s[1]) for s, p in zip(specs, plan) if p == k], dtype))
    config_bytes = (json.dumps(hf_config(cfg, dtype, seed, bifurcate), indent=2) + "\n").encode()
    index_bytes = None
    if shards > 1:
        index = {"metadata": {"total_size": sum(size for _, size in headers)},
                 "weight_map": {s[0]: files[p] for s, p in zip(specs, plan)}}
        index_bytes = (json.dumps(index, indent=2) + "\n").encode()

    name = repo_name(suite, size, variant)
    hf_repo = os.path.join(out, f"models--{org}--{name}")
    result = {}
    per_batch = max(1, MAX_OPEN_FILES // shards)
    for b in range(0, len(steps), per_batch):
        batch = steps[b:b + per_batch]
        # Open every output file of the batch; tensors are then generated once and
        # written to all steps, each file strictly sequentially (so hashing streams).
        outputs = {}
        for step in batch:
            if layout == "plain":
                d = os.path.join(out, name, f"step{step}")
                os.makedirs(d, exist_ok=True)
                paths = [os.path.join(d, f"{fn}.tmp-{os.getpid()}") for fn in files]
            else:
                d = os.path.join(hf_repo, "blobs")
                os.makedirs(d, exist_ok=True)
                paths = [os.path.join(d, f"incoming-{step}-{k}.tmp-{os.getpid()}")
                         for k in range(shards)]
            hs = [_HashingFile(p, layout == "hf") for p in paths]
            for k in range(shards):
                hs[k].write(headers[k][0])
            outputs[step] = hs
        for spec, shard in zip(specs, plan):
            tensor = _Tensor(spec, seed, bifurcate)
            for step in batch:
                outputs[step][shard].write(encode(tensor.values(step), dtype).data)
            del tensor
        for step in batch:
            digests = [hf.close() for hf in outputs[step]]
            if layout == "plain":
                d = os.path.join(out, name, f"step{step}")
                keep = set(files) | {"config.json"}
                if index_bytes is not None:
                    keep.add("model.safetensors.index.json")
                for hf, fn in zip(outputs[step], files):
                    os.replace(hf.path, os.path.join(d, fn))
                _write_bytes_file(os.path.join(d, "config.json"), config_bytes)
                if index_bytes is not None:
                    _write_bytes_file(os.path.join(d, "model.safetensors.index.json"),
                                      index_bytes)
                _remove_stale(d, keep)
            else:
                d = _finish_hf_step(hf_repo, step, files, outputs[step], digests,
                                    config_bytes, index_bytes)
            result[step] = d
    if layout == "hf":
        with open(os.path.join(hf_repo, "refs", f"step{steps[-1]}")) as f:
            commit = f.read()
        _write_bytes_file(os.path.join(hf_repo, "refs", "main"), commit.encode())
    return result


def _store_blob(repo, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(repo, "blobs", digest)
    if not os.path.exists(path):
        _write_bytes_file(path, data)
    return digest


def _finish_hf_step(repo, step, files, outputs, digests, config_bytes, index_bytes):
    blobs = {}
    for hf, fn, digest in zip(outputs, files, digests):
        os.replace(hf.path, os.path.join(repo, "blobs", digest))
        blobs[fn] = digest
    blobs["config.json"] = _store_blob(repo, config_bytes)
    if index_bytes is not None:
        blobs["model.safetensors.index.json"] = _store_blob(repo, index_bytes)
    desc = f"garden-synthetic\n{os.path.basename(repo)}\nstep{step}\n" + "".join(
        f"{fn} {digest}\n" for fn, digest in sorted(blobs.items()))
    commit = hashlib.sha1(desc.encode()).hexdigest()
    snap = os.path.join(repo, "snapshots", commit)
    os.makedirs(snap, exist_ok=True)
    for entry in os.listdir(snap):
        if entry not in blobs:
            os.remove(os.path.join(snap, entry))
    for fn, digest in blobs.items():
        link = os.path.join(snap, fn)
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(f"../../blobs/{digest}", link)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    _write_bytes_file(os.path.join(repo, "refs", f"step{step}"), commit.encode())
    return snap


# ---------------------------------------------------------------------------------
# Independent reader (shares nothing with the writer above but the format)

_NP_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}


def _weight_files(path):
    """Resolves a checkpoint dir / .safetensors / index.json path to its weight files."""
    if os.path.isdir(path):
        index = os.path.join(path, "model.safetensors.index.json")
        single = os.path.join(path, "model.safetensors")
        if os.path.exists(index):
            path = index
        elif os.path.exists(single):
            path = single
        else:
            found = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
            if not found:
                raise FileNotFoundError(f"no safetensors files in {path}")
            return [os.path.join(path, f) for f in found]
    if path.endswith(".json"):
        with open(path) as f:
            weight_map = json.load(f)["weight_map"]
        base = os.path.dirname(path)
        ordered = list(dict.fromkeys(weight_map.values()))
        return [os.path.join(base, f) for f in ordered]
    return [path]


def _file_header(path):
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: shorter than 8 bytes")
        (n,) = struct.unpack("<Q", raw)
        size = os.fstat(f.fileno()).st_size
        if n > size - 8:
            raise ValueError(f"{path}: header length {n} exceeds file size {size}")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    for entry in header.values():
        entry["file"] = path
        entry["data_start"] = 8 + n
    return header


def read_header(path):
    """{name: {"dtype", "shape", "data_offsets", "file", "data_start"}} over all shards."""
    merged = {}
    for f in _weight_files(path):
        merged.update(_file_header(f))
    return merged


def tensor_names(path):
    return list(read_header(path))


def read_tensor(path, name):
    """Reads one tensor as a numpy array (F16 -> float16, BF16 -> float32, others native)."""
    header = read_header(path)
    if name not in header:
        raise KeyError(f"tensor {name!r} not in {path}")
    e = header[name]
    begin, end = e["data_offsets"]
    with open(e["file"], "rb") as f:
        f.seek(e["data_start"] + begin)
        raw = f.read(end - begin)
    if len(raw) != end - begin:
        raise ValueError(f"{e['file']}: tensor {name} is truncated")
    if e["dtype"] == "BF16":
        arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif e["dtype"] in _NP_DTYPES:
        arr = np.frombuffer(raw, dtype=_NP_DTYPES[e["dtype"]]).copy()
    else:
        raise ValueError(f"unsupported dtype {e['dtype']} for {name}")
    return arr.reshape(e["shape"])


# ---------------------------------------------------------------------------------
# torch.save files, as Pythia's step revisions hold them


def _torch_buffers(config, torch):
    """The non-parameter buffers transformers' GPT-NeoX of Pythia's era saved."""
    positions = config["max_position_embeddings"]
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    rotary = int(head_dim * config["rotary_pct"])
    inv_freq = 1.0 / (config["rotary_emb_base"] **
                      (torch.arange(0, rotary, 2, dtype=torch.float32) / rotary))
    mask = torch.tril(torch.ones(positions, positions, dtype=torch.uint8))
    buffers = {}
    for i in range(config["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}.attention."
        buffers[p + "bias"] = mask.view(1, 1, positions, positions)
        buffers[p + "masked_bias"] = torch.tensor(-1e9, dtype=torch.float32)
        buffers[p + "rotary_emb.inv_freq"] = inv_freq
    return buffers


def _to_torch(array, dtype, torch):
    if dtype == "BF16":  # read_tensor widened it to float32 exactly
        return torch.from_numpy(np.ascontiguousarray(array)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(array))


def _write_into(checkpoint, name, write):
    """Writes checkpoint/name through a temp file; in the hf layout (the
    checkpoint's files are links into blobs/) as a new blob and a link."""
    path = os.path.join(checkpoint, name)
    config = os.path.join(checkpoint, "config.json")
    if not os.path.islink(config):
        tmp = f"{path}.tmp-{os.getpid()}"
        write(tmp)
        os.replace(tmp, path)
        return path
    blobs = os.path.dirname(os.path.realpath(config))
    tmp = os.path.join(blobs, f"incoming.tmp-{os.getpid()}")
    write(tmp)
    with open(tmp, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    os.replace(tmp, os.path.join(blobs, digest))
    if os.path.lexists(path):
        os.remove(path)
    os.symlink(os.path.relpath(os.path.join(blobs, digest), checkpoint), path)
    return path


def save_as_torch(checkpoint, keep_safetensors=False, share_storage=True):
    """Rewrites one checkpoint folder's weights as torch.save zip files.

    share_storage puts every layer's 1-D biases into one storage per file,
    saved as views at non-zero offsets of it, as torch.save keeps views.
    Returns the weight file paths written.
    """
    import collections
    import torch

    with open(os.path.join(checkpoint, "config.json")) as f:
        config = json.load(f)
    header = read_header(checkpoint)
    st_files = list(dict.fromkeys(e["file"] for e in header.values()))
    buffers = _torch_buffers(config, torch)
    names = [f"pytorch_model-{i + 1:05d}-of-{len(st_files):05d}.bin"
             for i in range(len(st_files))] if len(st_files) > 1 else ["pytorch_model.bin"]
    weight_map, written = {}, []
    for k, (st_file, bin_name) in enumerate(zip(st_files, names)):
        state = collections.OrderedDict()
        for name, e in header.items():
            if e["file"] != st_file:
                continue
            state[name] = _to_torch(read_tensor(checkpoint, name), e["dtype"], torch)
        # Each layer's buffers go into the file holding its attention weights.
        for name in list(state):
            if name.endswith(".attention.dense.weight"):
                prefix = name[:-len("dense.weight")]
                for b in ("bias", "masked_bias", "rotary_emb.inv_freq"):
                    state[prefix + b] = buffers[prefix + b]
        if share_storage:
            biases = [n for n, t in state.items() if n.endswith(".bias") and t.dim() == 1
                      and t.is_floating_point()]
            if biases:
                pool = torch.cat([state[n] for n in biases])
                at = 0
                for n in biases:
                    size = state[n].numel()
                    state[n] = pool[at:at + size]
                    at += size
        for n in state:
            weight_map[n] = bin_name
        written.append(_write_into(checkpoint, bin_name,
                                   lambda tmp: torch.save(state, tmp)))
    if len(names) > 1:
        index = {"metadata": {"total_size": sum(os.path.getsize(p) for p in written)},
                 "weight_map": weight_map}
        data = (json.dumps(index, indent=2) + "\n").encode()
        _write_into(checkpoint, "pytorch_model.bin.index.json",
                    lambda tmp: _write_bytes_file(tmp, data))
    if not keep_safetensors:
        for f in os.listdir(checkpoint):
            if f.endswith(".safetensors") or f == "model.safetensors.index.json":
                os.remove(os.path.join(checkpoint, f))
    return written


# ---------------------------------------------------------------------------------
# Corruption, for DATA_LOSS tests


def corrupt_file(path, how):
    """Damages a safetensors file in place (a checkpoint dir means its first weight file;
    symlinks are followed, so in the hf layout the blob itself is damaged).

    truncate: cut the file to half its size.
    header:   overwrite the 8-byte header length with a huge number.
    json:     overwrite the header's JSON bytes with garbage (keeps the length).
    Returns the path of the file that was damaged.
    """
    target = os.path.realpath(_weight_files(path)[0])
    size = os.path.getsize(target)
    if how == "truncate":
        os.truncate(target, size // 2)
    elif how == "header":
        with open(target, "r+b") as f:
            f.write(struct.pack("<Q", 0x7FFF_FFFF_FFFF_FFF8))
    elif how == "json":
        with open(target, "r+b") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            n = min(n, size - 8)
            garbage = (b"\xde\xad\xbe\xef{not json" * (n // 14 + 1))[:n]
            f.seek(8)
            f.write(garbage)
    else:
        raise ValueError(f"how must be truncate, header or json, got {how!r}")
    return target


# ---------------------------------------------------------------------------------
# Command line


def _parse_steps(text):
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"steps must be a comma list of integers: {text!r}")
    if not steps or min(steps) < 0:
        raise argparse.ArgumentTypeError("steps must be non-negative integers")
    return steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--preset", default="micro", choices=sorted(PRESETS))
    p.add_argument("--suite", default="pythia")
    p.add_argument("--size", help="size name in the repo name (default: 70m for the "
                   "pythia-70m preset, else the preset name)")
    p.add_argument("--variant", default="standard", choices=["standard", "deduped"])
    p.add_argument("--steps", type=_parse_steps, default=[0, 1, 2, 4, 8],
                   help="comma list (default 0,1,2,4,8)")
    p.add_argument("--layout", default="plain", choices=["plain", "hf"])
    p.add_argument("--org", default=DEFAULT_ORG, help="hf layout organisation")
    p.add_argument("--dtype", default="F16", choices=sorted(DTYPES))
    p.add_argument("--hidden", type=int)
    p.add_argument("--layers", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--vocab", type=int, help="padded vocabulary rows (e.g. 50304)")
    p.add_argument("--intermediate", type=int, help="MLP width (default 4*hidden)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--format", default="safetensors", choices=["safetensors", "bin"],
                   help="bin: torch.save files (pytorch_model*.bin), as Pythia's steps")
    p.add_argument("--bifurcate", action="store_true",
                   help="make embed_out.weight bimodal late in training")
    p.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(argv)
    size = a.size or ("70m" if a.preset == "pythia-70m" else a.preset)
    start = time.monotonic()
    try:
        dirs = write_suite(a.out, a.suite, size, a.variant, a.steps, layout=a.layout,
                           dtype=a.dtype, preset=a.preset, seed=a.seed, shards=a.shards,
                           bifurcate=a.bifurcate, hidden=a.hidden, layers=a.layers,
                           heads=a.heads, vocab=a.vocab, intermediate=a.intermediate,
                           org=a.org)
        if a.format == "bin":
            for d in dirs.values():
                save_as_torch(d)
    except (ValueError, TypeError, OSError, ImportError) as e:
        print(f"make_suite: {e}", file=sys.stderr)
        return 2
    if not a.quiet:
        for step, d in dirs.items():
            print(f"step {step}: {d}")
        print(f"make_suite: {len(dirs)} checkpoints in {time.monotonic() - start:.1f}s",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
