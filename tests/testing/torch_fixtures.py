#!/usr/bin/python3
"""Writes the PyTorch checkpoint fixtures of torch_file_test.

Usage: /usr/bin/python3 tests/testing/torch_fixtures.py OUT_DIR

Needs Debian's PyTorch (python3-torch; scripts/setup installs it). Writes into
OUT_DIR good checkpoints (torch.save of OrderedDict state dicts, as Pythia's
pytorch_model.bin files were written) and malformed ones, each derived from a
real torch.save output by byte surgery or by rebuilding its zip with the
zipfile module and/or a hand-made data.pkl, and OUT_DIR/manifest.json: a list
of cases

  {"file": "x.bin", "expect": "ok" | "DATA_LOSS" | "FAILED_PRECONDITION",
   "substr": "text the error message must contain",
   "what": "one-line description",
   # optional:
   "stage": "open" | "read",  # where the error shows (default "open"): a
                              # "read" case opens, and reading its tensors
                              # (in name order) fails
   "must_not_exist": "/abs/path",  # a file the pickle tries to create
   # "ok" cases only:
   "prefix": "archive",       # the zip's prefix folder
   "tensors": {name: {"dtype": "F16", "shape": [..], "strides": [..],
                      "contiguous": true, "offset_bytes": 0,
                      "values_f64": [..]}}}   # values only for small
                                              # contiguous tensors, exactly

offset_bytes is the tensor's byte offset inside its storage. Output is
deterministic: fixed seeds, fixed zip timestamps.
"""

import collections
import io
import json
import os
import pickle
import pickletools
import random
import struct
import subprocess
import sys
import warnings
import zipfile

import torch

# The dtype names Garden uses (safetensors names) for each torch dtype.
DTYPE_NAMES = {
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float32: "F32",
    torch.float64: "F64",
    torch.uint8: "U8",
    torch.int8: "I8",
    torch.int16: "I16",
    torch.int32: "I32",
    torch.int64: "I64",
    torch.bool: "BOOL",
}

# Tensors up to this many elements have their values in the manifest.
MAX_LISTED_VALUES = 4096

DATA_LOSS = "DATA_LOSS"
REFUSED = "FAILED_PRECONDITION"


# ---------------------------------------------------------------------------
# Zip helpers: torch.save writes stored entries with a ZIP64 end record; the
# surgery below reads and patches the records by offset.

def u32(data, at):
    return struct.unpack_from("<I", data, at)[0]


def put(data, at, fmt, value):
    """A copy of `data` with struct `fmt` packed at `at`."""
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


def eocd_offset(data):
    at = data.rfind(b"PK\x05\x06")
    assert at >= 0, "no end of central directory record"
    return at


def zip64_end_offset(data):
    """The ZIP64 end record's offset (from the locator before the EOCD)."""
    locator = eocd_offset(data) - 20
    assert data[locator:locator + 4] == b"PK\x06\x07", "no ZIP64 locator"
    return struct.unpack_from("<Q", data, locator + 8)[0]


def central_directory(data):
    """(offset, size) of the central directory, from the EOCD."""
    end = eocd_offset(data)
    return u32(data, end + 16), u32(data, end + 12)


def central_entries(data):
    """{name: offset of its central directory header}."""
    offset, size = central_directory(data)
    out = {}
    at = offset
    while at < offset + size:
        assert data[at:at + 4] == b"PK\x01\x02"
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data,
                                                              at + 28)
        out[data[at + 46:at + 46 + name_len].decode()] = at
        at += 46 + name_len + extra_len + comment_len
    return out


def local_header(data, name):
    """The offset of `name`'s local header, from its central header."""
    return u32(data, central_entries(data)[name] + 42)


def read_entries(data):
    """[(name, bytes)] of an archive, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(info.filename, z.read(info)) for info in z.infolist()]


def build_zip(entries, compression=zipfile.ZIP_STORED):
    """A zip of [(name, bytes)] with fixed timestamps (deterministic)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are deliberate
        with zipfile.ZipFile(buf, "w") as z:
            for name, payload in entries:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = compression
                z.writestr(info, payload)
    return buf.getvalue()


def torch_bytes(obj, **kwargs):
    """torch.save's output for `obj` written to a file object (prefix
    "archive")."""
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


# ---------------------------------------------------------------------------
# Hand-made pickles: torch globals with arguments torch.save never writes.

class FakeStorage:
    """Pickled as the persistent id ('storage', cls, key, 'cpu', numel)."""

    def __init__(self, cls, key, numel):
        self.cls, self.key, self.numel = cls, key, numel


class NotAStorage:
    """Pickled as a persistent id that is no storage."""


class Rebuild:
    """Pickled as torch._utils._rebuild_tensor_v2(storage, offset, size,
    stride, False, OrderedDict())."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False,
                     collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class StatePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        if isinstance(obj, NotAStorage):
            return ("module", "not_a_storage")
        return None


def handmade_pickle(root):
    buf = io.BytesIO()
    StatePickler(buf, protocol=2).dump(root)
    return buf.getvalue()


def handmade_zip(prefix, pickled, storages):
    """A torch.save-like archive: data.pkl, data/<key> per storage, version."""
    entries = [(f"{prefix}/data.pkl", pickled)]
    entries += [(f"{prefix}/data/{key}", payload)
                for key, payload in storages.items()]
    entries.append((f"{prefix}/version", b"3\n"))
    return build_zip(entries)


class Exploit:
    """A value whose unpickling would call `fn(*args)`."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


# ---------------------------------------------------------------------------

class Fixtures:
    def __init__(self, out_dir):
        self.out = os.path.abspath(out_dir)
        os.makedirs(self.out, exist_ok=True)
        self.cases = []

    def path(self, name):
        return os.path.join(self.out, name)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)

    def saved(self, name, obj, **kwargs):
        """torch.save(obj) to OUT_DIR/name (prefix: name's stem); its bytes."""
        torch.save(obj, self.path(name), **kwargs)
        with open(self.path(name), "rb") as f:
            return f.read()

    def add_ok(self, name, what, state_dict, prefix=None):
        """Lists a good file that is already written; `state_dict` is what it
        holds, for the expected tensors."""
        if prefix is None:
            prefix = os.path.splitext(name)[0]
        with zipfile.ZipFile(self.path(name)) as z:
            assert z.namelist()[0].startswith(prefix + "/"), z.namelist()
        # torch.load must read it back as `state_dict`.
        loaded = torch.load(self.path(name))
        assert list(loaded.keys()) == list(state_dict.keys()), name
        tensors = {}
        for key, t in state_dict.items():
            assert torch.equal(loaded[key], t), (name, key)
            t = t.detach()
            info = {
                "dtype": DTYPE_NAMES[t.dtype],
                "shape": list(t.shape),
                "strides": list(t.stride()),
                "contiguous": t.is_contiguous(),
                "offset_bytes": t.storage_offset() * t.element_size(),
            }
            if t.is_contiguous() and t.numel() <= MAX_LISTED_VALUES:
                info["values_f64"] = t.double().flatten().tolist()
            tensors[key] = info
        self.cases.append({"file": name, "expect": "ok", "what": what,
                           "substr": "", "prefix": prefix,
                           "tensors": tensors})

    def add_bad(self, name, data, expect, substr, what, **extra):
        self.write(name, data)
        case = {"file": name, "expect": expect, "substr": substr, "what": what}
        case.update(extra)
        self.cases.append(case)

    def write_manifest(self):
        with open(self.path("manifest.json"), "w") as f:
            json.dump(self.cases, f, indent=1)
            f.write("\n")


def gen(seed):
    return torch.Generator().manual_seed(seed)


def small_state_dict(seed=0):
    """Three small tensors in three storages, the base of most damage."""
    g = gen(seed)
    sd = collections.OrderedDict()
    sd["a.weight"] = torch.randn(4, 3, generator=g).half()
    sd["a.bias"] = torch.tril(torch.ones(1, 1, 4, 4, dtype=torch.uint8))
    sd["b.scale"] = torch.tensor(-1e9)
    return sd


# ---------------------------------------------------------------------------
# Good files.

def pythia_mini(fx):
    """(a) The tensors of a Pythia (GPT-NeoX) checkpoint, in miniature."""
    g = gen(1)
    hidden, vocab, rotary = 8, 16, 4
    sd = collections.OrderedDict()

    def f16(*shape):
        return (torch.randn(*shape, generator=g) * 0.02).half()

    sd["gpt_neox.embed_in.weight"] = f16(vocab, hidden)
    for i in range(2):
        p = f"gpt_neox.layers.{i}."
        sd[p + "input_layernorm.weight"] = torch.ones(hidden).half()
        sd[p + "input_layernorm.bias"] = f16(hidden)
        sd[p + "post_attention_layernorm.weight"] = torch.ones(hidden).half()
        sd[p + "post_attention_layernorm.bias"] = f16(hidden)
        sd[p + "attention.bias"] = torch.tril(
            torch.ones(1, 1, 8, 8, dtype=torch.uint8))
        sd[p + "attention.masked_bias"] = torch.tensor(-1e9)
        sd[p + "attention.rotary_emb.inv_freq"] = 1.0 / (
            10000 ** (torch.arange(0, rotary, 2).float() / rotary))
        sd[p + "attention.query_key_value.weight"] = f16(3 * hidden, hidden)
        sd[p + "attention.query_key_value.bias"] = f16(3 * hidden)
        sd[p + "attention.dense.weight"] = f16(hidden, hidden)
        sd[p + "attention.dense.bias"] = f16(hidden)
        sd[p + "mlp.dense_h_to_4h.weight"] = f16(4 * hidden, hidden)
        sd[p + "mlp.dense_h_to_4h.bias"] = f16(4 * hidden)
        sd[p + "mlp.dense_4h_to_h.weight"] = f16(hidden, 4 * hidden)
        sd[p + "mlp.dense_4h_to_h.bias"] = f16(hidden)
    sd["gpt_neox.final_layer_norm.weight"] = torch.ones(hidden).half()
    sd["gpt_neox.final_layer_norm.bias"] = f16(hidden)
    sd["embed_out.weight"] = f16(vocab, hidden)
    # Pythia's files are named so; torch 1.13 uses the stem as the prefix.
    fx.saved("pytorch_model.bin", sd)
    fx.add_ok("pytorch_model.bin", "pythia-shaped mini state dict (F16, U8 "
              "attention.bias, F32 masked_bias and inv_freq)", sd)


def all_dtypes(fx):
    """(b) One tensor of every storage dtype Garden reads."""
    g = gen(2)
    sd = collections.OrderedDict()
    specials = [0.0, -0.0, 1.0, -2.5]
    half = torch.tensor(specials + [65504.0, 2.0 ** -24, 2.0 ** -14])
    sd["half"] = torch.cat([half, torch.randn(9, generator=g)]).half()
    bf = torch.tensor(specials + [3.0e38, 2.0 ** -133, 1.0e-38])
    sd["bfloat16"] = torch.cat([bf, torch.randn(9, generator=g)]).bfloat16()
    f32 = torch.tensor(specials + [3.4e38, 1e-45, 1.17549435e-38])
    sd["float32"] = torch.cat([f32, torch.randn(9, generator=g)]).reshape(4, 4)
    f64 = torch.tensor(specials + [1.7e308, 5e-324, 0.1], dtype=torch.float64)
    sd["float64"] = torch.cat(
        [f64, torch.randn(9, generator=g, dtype=torch.float64)])
    sd["uint8"] = torch.cat([torch.tensor([0, 255], dtype=torch.uint8),
                             torch.randint(0, 256, (14,), generator=g,
                                           dtype=torch.uint8)])
    sd["int8"] = torch.cat([torch.tensor([-128, 127], dtype=torch.int8),
                            torch.randint(-128, 128, (14,), generator=g,
                                          dtype=torch.int8)])
    sd["int16"] = torch.cat([torch.tensor([-32768, 32767], dtype=torch.int16),
                             torch.randint(-32768, 32768, (14,), generator=g,
                                           dtype=torch.int16)]).reshape(2, 8)
    sd["int32"] = torch.cat(
        [torch.tensor([-2 ** 31, 2 ** 31 - 1], dtype=torch.int32),
         torch.randint(-2 ** 31, 2 ** 31, (14,), generator=g,
                       dtype=torch.int32)])
    # Values within 2^53, so that doubles hold them exactly.
    sd["int64"] = torch.cat(
        [torch.tensor([-2 ** 53, 2 ** 53, -1], dtype=torch.int64),
         torch.randint(-2 ** 40, 2 ** 40, (13,), generator=g,
                       dtype=torch.int64)])
    sd["bool"] = torch.randint(0, 2, (3, 5), generator=g).bool()
    fx.saved("dtypes.bin", sd)
    fx.add_ok("dtypes.bin", "one tensor of each storage dtype (half, bfloat16, "
              "float32, float64, uint8, int8, int16, int32, int64, bool)", sd)


def shared_storage(fx):
    """(c) Views of one storage at non-zero offsets; torch.save keeps one
    data/<key> entry for them all."""
    base = torch.arange(20, dtype=torch.float16)
    sd = collections.OrderedDict()
    sd["head"] = base[3:9]
    sd["tail"] = base[9:].view(11, 1)
    sd["whole"] = base
    sd["other"] = torch.arange(5, dtype=torch.float16) * -1
    data = fx.saved("shared.bin", sd)
    storages = [n for n, _ in read_entries(data) if "/data/" in n]
    assert len(storages) == 2, storages
    fx.add_ok("shared.bin", "three views (offsets 0, 3, 9) of one F16 storage "
              "plus another storage", sd)


def strided(fx):
    """(d) Views whose strides are not row-major: listed, not read."""
    m = torch.arange(12.).reshape(3, 4)
    sd = collections.OrderedDict()
    sd["t"] = m.t()
    sd["expanded"] = torch.arange(3.).expand(4, 3)
    sd["m"] = m
    # Size-1 dimensions may carry any stride and still count as contiguous.
    sd["column"] = torch.arange(4.).reshape(4, 1)[1:3]
    fx.saved("strided.bin", sd)
    fx.add_ok("strided.bin", "a transposed and an expanded view (not "
              "contiguous) next to contiguous tensors", sd)


def modules(fx):
    """(e) An nn.Module state dict (an OrderedDict with _metadata set by
    BUILD), and an OrderedDict holding an nn.Parameter (_rebuild_parameter)."""
    torch.manual_seed(5)
    linear = torch.nn.Linear(4, 3)
    sd = linear.state_dict()
    assert hasattr(sd, "_metadata")
    fx.saved("linear.bin", sd)
    fx.add_ok("linear.bin", "nn.Linear(4, 3).state_dict(), with _metadata", sd)

    g = gen(6)
    sd = collections.OrderedDict()
    sd["p"] = torch.nn.Parameter(torch.randn(2, 3, generator=g))
    sd["frozen"] = torch.nn.Parameter(torch.randn(3, generator=g),
                                      requires_grad=False)
    sd["plain"] = torch.randn(2, generator=g).requires_grad_()
    fx.saved("parameter.bin", sd)
    fx.add_ok("parameter.bin", "nn.Parameters (_rebuild_parameter) and a "
              "tensor requiring grad", sd)


def empty_and_scalar(fx):
    """(f) An empty tensor (an empty storage) and 0-d scalars."""
    sd = collections.OrderedDict()
    sd["empty"] = torch.zeros(0, 3)
    sd["scalar"] = torch.tensor(2.5)
    sd["int_scalar"] = torch.tensor(-7, dtype=torch.int64)
    sd["empty_1d"] = torch.zeros(0, dtype=torch.float16)
    fx.saved("empty_scalar.bin", sd)
    fx.add_ok("empty_scalar.bin", "an empty tensor, an empty F16 vector and "
              "0-d scalars", sd)


def prefixes(fx):
    """(g) Prefixes other than the file's stem. torch 1.13 names the prefix
    after the file's stem, or "archive" when saving to a file object; torch
    >= 2.0 always writes "archive" and adds byteorder, .format_version,
    .storage_alignment and .data/serialization_id entries."""
    sd = small_state_dict(7)
    fx.write("archive_prefix.bin", torch_bytes(sd))
    fx.add_ok("archive_prefix.bin", "torch.save to a file object: prefix "
              "\"archive\"", sd, prefix="archive")

    entries = read_entries(fx.saved("torch2_layout.bin", sd))
    data = {name.split("/", 1)[1]: payload for name, payload in entries}
    layout = [("data.pkl", data["data.pkl"]), (".format_version", b"1"),
              (".storage_alignment", b"64"), ("byteorder", b"little")]
    layout += [(n, p) for n, p in data.items() if n.startswith("data/")]
    layout += [("version", b"3\n"), (".data/serialization_id", b"0" * 40)]
    fx.write("torch2_layout.bin",
             build_zip([(f"archive/{n}", p) for n, p in layout]))
    fx.add_ok("torch2_layout.bin", "the layout of torch >= 2.0 (prefix "
              "\"archive\", byteorder \"little\", extra entries), rebuilt "
              "with zipfile", sd, prefix="archive")


def handmade_good(fx):
    """A hand-made data.pkl that torch.load reads: checks that the hand-made
    pickles of the malformed cases differ only in what each one breaks."""
    root = collections.OrderedDict()
    storage = FakeStorage(torch.HalfStorage, "0", 6)
    root["x"] = Rebuild(storage, 2, (2, 2), (2, 1))
    payload = torch.arange(6, dtype=torch.float16).numpy().tobytes()
    fx.write("handmade_ok.bin",
             handmade_zip("handmade_ok", handmade_pickle(root), {"0": payload}))
    sd = collections.OrderedDict(
        x=torch.arange(6, dtype=torch.float16)[2:].view(2, 2))
    fx.add_ok("handmade_ok.bin", "a hand-made data.pkl (the malformed cases' "
              "builder) that torch.load reads", sd)


def large(fx):
    """A 4 MiB F16 tensor between small ones, for the bytes-read test."""
    g = gen(8)
    sd = collections.OrderedDict()
    sd["a_small"] = torch.randn(16, generator=g).half()
    sd["big"] = torch.randn(1024, 2048, generator=g).half()
    sd["z_small"] = torch.randn(4, 8, generator=g)
    fx.saved("large.bin", sd)
    fx.add_ok("large.bin", "a 4 MiB F16 tensor between two small ones", sd)


# ---------------------------------------------------------------------------
# Damaged archives (DATA_LOSS unless noted).

def zip_damage(fx):
    good = fx.saved("_base.bin", small_state_dict())
    prefix = "_base"
    os.remove(fx.path("_base.bin"))
    cd_offset, cd_size = central_directory(good)
    end = eocd_offset(good)
    zip64 = zip64_end_offset(good)

    fx.add_bad("zip_truncated_half.bin", good[:len(good) // 2], DATA_LOSS,
               "no end of central directory record",
               "a torch.save output cut in half")
    fx.add_bad("zip_cut_in_cd.bin", good[:cd_offset + cd_size // 2],
               DATA_LOSS, "no end of central directory record",
               "cut inside the central directory")
    fx.add_bad("zip_eocd_zeroed.bin", good[:-22] + bytes(22), DATA_LOSS,
               "no end of central directory record",
               "the end of central directory record (last 22 bytes) zeroed")

    # Both end records place the central directory beyond the file.
    bad = put(good, end + 16, "<I", len(good) + 1000)
    bad = put(bad, zip64 + 48, "<Q", len(good) + 1000)
    fx.add_bad("zip_cd_offset_beyond.bin", bad, DATA_LOSS,
               "runs past the ZIP64 end of central directory record",
               "central directory offset (EOCD and ZIP64) beyond the file")

    fx.add_bad("zip64_disagrees.bin", put(good, end + 16, "<I", cd_offset + 1),
               DATA_LOSS, "but the ZIP64 end record gives",
               "EOCD and ZIP64 end record give different central directory "
               "offsets")

    bad = put(good, end + 8, "<H", 4)
    bad = put(bad, end + 10, "<H", 4)
    bad = put(bad, zip64 + 24, "<Q", 4)
    bad = put(bad, zip64 + 32, "<Q", 4)
    fx.add_bad("zip_entry_count.bin", bad, DATA_LOSS,
               "holds more than the 4 entries",
               "the end records declare 4 entries, the directory holds 5")

    # The central directory with its middle cut out, the end records kept
    # (a zipfile rebuild: no ZIP64 records to fix up).
    plain = build_zip(read_entries(good))
    p_offset, p_size = central_directory(plain)
    bad = plain[:p_offset + 10] + plain[p_offset + 60:]
    fx.add_bad("zip_cd_short.bin", bad, DATA_LOSS,
               "runs past the end of central directory record",
               "50 bytes cut from the central directory, end record kept")

    headers = central_entries(good)
    fx.add_bad("zip_local_offset_outside.bin",
               put(good, headers[f"{prefix}/data/1"] + 42, "<I", 0x7FFFFFF0),
               DATA_LOSS, "local header offset 2147483632 is outside",
               "a central directory entry whose local header offset is "
               "outside the file")

    bad = put(good, headers[f"{prefix}/data/0"] + 20, "<I", 0x7FFFFFF0)
    bad = put(bad, headers[f"{prefix}/data/0"] + 24, "<I", 0x7FFFFFF0)
    fx.add_bad("zip_entry_size_past_cd.bin", bad, DATA_LOSS,
               "runs past the central directory",
               "a central directory entry whose data would run past the "
               "central directory")

    fx.add_bad("zip_deflated.bin",
               build_zip(read_entries(good), zipfile.ZIP_DEFLATED), REFUSED,
               "is compressed (method 8)",
               "the archive rebuilt with ZIP_DEFLATED entries")

    entries = read_entries(good)
    fx.add_bad("zip_duplicate_name.bin", build_zip(entries[:2] + entries[1:]),
               DATA_LOSS, "duplicates the name of entry 1",
               "two entries named data/0")

    # A name byte changed in a local header only.
    at = local_header(good, f"{prefix}/data.pkl") + 30 + len(prefix) + 1
    assert good[at:at + 4] == b"data"
    fx.add_bad("zip_local_name_pkl.bin", put(good, at, "B", ord("D")),
               DATA_LOSS, "not the central directory's name",
               "data.pkl's local header names \"Data.pkl\"")
    at = local_header(good, f"{prefix}/data/0") + 30 + len(prefix) + 1
    fx.add_bad("zip_local_name_storage.bin", put(good, at, "B", ord("D")),
               DATA_LOSS, "not the central directory's name",
               "data/0's local header names \"Data/0\"; found on reading",
               stage="read")
    fx.add_bad("zip_local_signature.bin",
               put(good, local_header(good, f"{prefix}/data/1"), "<I", 0),
               DATA_LOSS, "signature 0x00000000",
               "data/1's local header signature zeroed; found on reading",
               stage="read")

    fx.add_bad("empty.bin", b"", DATA_LOSS, "too short for a zip archive",
               "an empty file")
    rng = random.Random(9)
    fx.add_bad("random.bin", bytes(rng.randrange(256) for _ in range(4096)),
               DATA_LOSS, "no end of central directory record",
               "4096 random bytes")


# ---------------------------------------------------------------------------
# Archives whose entries are wrong for a checkpoint.

def entry_damage(fx):
    stem = "_entries"
    entries = read_entries(fx.saved(stem + ".bin", small_state_dict()))
    os.remove(fx.path(stem + ".bin"))
    names = [n for n, _ in entries]

    def without(suffix):
        return build_zip([(n, p) for n, p in entries if n != stem + suffix])

    def replaced(suffix, payload):
        return build_zip([(n, payload if n == stem + suffix else p)
                          for n, p in entries])

    def with_byteorder(order):
        return build_zip(entries[:1] + [(stem + "/byteorder", order)] +
                         entries[1:])

    assert names[0] == stem + "/data.pkl"
    fx.add_bad("no_data_pkl.bin", without("/data.pkl"), DATA_LOSS,
               "data.pkl\": not a torch.save checkpoint",
               "the archive has no data.pkl")
    fx.add_bad("no_storage_entry.bin", without("/data/1"), DATA_LOSS,
               "has no archive entry",
               "storage \"1\" has no data/1 entry")
    payload = dict(entries)[stem + "/data/0"]
    fx.add_bad("storage_short.bin", replaced("/data/0", payload[:-2]),
               DATA_LOSS, "needs more than its entry's 22 bytes",
               "data/0 shortened: 12 F16 elements need 24 bytes")
    fx.add_bad("big_endian.bin", with_byteorder(b"big"), REFUSED,
               "big-endian", "a byteorder entry \"big\"")
    fx.add_bad("byteorder_junk.bin", with_byteorder(b"middle"), DATA_LOSS,
               "byteorder entry holds \u27e6middle\u27e7",
               "a byteorder entry \"middle\"")
    fx.add_bad("byteorder_long.bin", with_byteorder(b"little" * 20), DATA_LOSS,
               "byteorder entry of 120 bytes", "a byteorder entry of 120 bytes")
    pickled = dict(entries)[stem + "/data.pkl"]
    fx.add_bad("pickle_no_stop.bin", replaced("/data.pkl", pickled[:-1]),
               DATA_LOSS, "the pickle ends without STOP",
               "data.pkl without its final STOP")
    fx.add_bad("pickle_cut.bin", replaced("/data.pkl", pickled[:40]),
               DATA_LOSS, "truncated argument",
               "data.pkl cut inside an opcode's argument")


def legacy(fx):
    sd = collections.OrderedDict(w=torch.arange(6, dtype=torch.float16))
    data = torch_bytes(sd, _use_new_zipfile_serialization=False)
    # The legacy format keys storages by their addresses: for deterministic
    # output, the one storage's key becomes "0". Skipped unrun: the magic
    # number, protocol version, system info and state dict pickles; then
    # the list of keys.
    stream = io.BytesIO(data)
    for _ in range(4):
        for _ in pickletools.genops(stream):
            pass
    [key] = pickle.load(stream)

    def unicode(text):  # BINUNICODE
        return b"X" + struct.pack("<I", len(text)) + text.encode()
    assert data.count(unicode(key)) == 2
    data = data.replace(unicode(key), unicode("0"))
    loaded = torch.load(io.BytesIO(data))
    assert torch.equal(loaded["w"], sd["w"])
    fx.add_bad("legacy.bin", data, REFUSED, "legacy format",
               "torch.save(..., _use_new_zipfile_serialization=False)")


# ---------------------------------------------------------------------------
# State dicts that are not a dict of string to tensor (FAILED_PRECONDITION).

def wrong_roots(fx):
    t = torch.ones(2)
    fx.add_bad("root_list.bin", torch_bytes([t]), REFUSED,
               "data.pkl holds a list, not a state dict",
               "torch.save of a list")
    fx.add_bad("int_key.bin", torch_bytes({1: t}), REFUSED,
               "a state dict key is a int, not a string",
               "torch.save({1: t})")
    fx.add_bad("nested_dict.bin",
               torch_bytes({"model": collections.OrderedDict(w=t)}), REFUSED,
               "the value of \"model\" is a dict, not a tensor",
               "a training checkpoint {'model': state_dict}")
    fx.add_bad("int_value.bin",
               torch_bytes(collections.OrderedDict(w=t, step=1000)), REFUSED,
               "the value of \"step\" is a int, not a tensor",
               "a state dict holding an int")
    fx.add_bad("complex.bin",
               torch_bytes({"c": torch.zeros(2, dtype=torch.complex64)}),
               REFUSED, "torch.ComplexFloatStorage",
               "a complex64 tensor (storage class not read)")
    q = torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.quint8)
    fx.add_bad("quantized.bin", torch_bytes({"q": q}), REFUSED,
               "torch._utils._rebuild_qtensor", "a quantized tensor")


# ---------------------------------------------------------------------------
# Pickles that try to run code: torch.save itself writes them, as a
# malicious checkpoint would be made. Nothing may run (FAILED_PRECONDITION).

def code_execution(fx):
    t = torch.ones(2)

    def marker_for(name):  # the file the exploit would create
        marker = fx.path(name + ".PWNED")
        if os.path.exists(marker):
            os.remove(marker)
        return marker

    def evil(name, fn_args, global_bytes, substr, what):
        marker = marker_for(name)
        fn, args = fn_args(marker)
        data = torch_bytes(collections.OrderedDict(
            w=t, evil=Exploit(fn, *args)))
        pickled = dict(read_entries(data))["archive/data.pkl"]
        assert global_bytes in pickled, (name, global_bytes)
        fx.add_bad(name, data, REFUSED, substr, what, must_not_exist=marker)

    evil("os_system.bin", lambda m: (os.system, (f"touch {m}",)),
         b"cposix\nsystem\n", "global \"posix.system\" is not allowed",
         "a value whose __reduce__ is os.system('touch ...')")
    # Protocol 2 spells Python 3 modules by their Python 2 names (pickle's
    # fix_imports): builtins is "__builtin__" ...
    evil("builtins_eval.bin",
         lambda m: (eval, (f"__import__('os').system('touch {m}')",)),
         b"c__builtin__\neval\n",
         "global \"__builtin__.eval\" is not allowed",
         "a value whose __reduce__ is eval(...)")
    # ... and subprocess.Popen "commands.Popen".
    evil("subprocess_popen.bin", lambda m: (subprocess.Popen, (["touch", m],)),
         b"ccommands\nPopen\n", "global \"commands.Popen\" is not allowed",
         "a value whose __reduce__ is subprocess.Popen(['touch', ...])")

    # GLOBALs written by hand, as a hand-made exploit would spell them.
    def by_hand(name, module, attr, command):
        marker = marker_for(name)
        command = command.format(marker=marker).encode()
        pickled = (b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01c" +
                   f"{module}\n{attr}\n".encode() + b"q\x02X" +
                   struct.pack("<I", len(command)) + command +
                   b"\x85Rq\x03s.")
        fx.add_bad(name, handmade_zip(os.path.splitext(name)[0], pickled, {}),
                   REFUSED, f"global \"{module}.{attr}\" is not allowed",
                   f"a hand-written GLOBAL '{module} {attr}' REDUCE",
                   must_not_exist=marker)

    by_hand("os_global.bin", "os", "system", "touch {marker}")
    by_hand("subprocess_global.bin", "subprocess", "getoutput",
            "touch {marker}")

    # Python 3 names (fix_imports=False), as a pickler of today writes them.
    def py3_names(name, fn_args, global_bytes, substr, what):
        marker = marker_for(name)
        fn, args = fn_args(marker)
        pickled = pickle.dumps(collections.OrderedDict(w=Exploit(fn, *args)),
                               protocol=2, fix_imports=False)
        assert global_bytes in pickled, (name, global_bytes)
        fx.add_bad(name, handmade_zip(os.path.splitext(name)[0], pickled, {}),
                   REFUSED, substr, what, must_not_exist=marker)

    py3_names("builtins_global.bin",
              lambda m: (eval, (f"__import__('os').system('touch {m}')",)),
              b"cbuiltins\neval\n", "global \"builtins.eval\" is not allowed",
              "eval(...) pickled with Python 3 names")
    py3_names("popen_global.bin",
              lambda m: (subprocess.Popen, (["touch", m],)),
              b"csubprocess\nPopen\n",
              "global \"subprocess.Popen\" is not allowed",
              "subprocess.Popen([...]) pickled with Python 3 names")


# ---------------------------------------------------------------------------
# Pickles with opcodes or structure the machine refuses or finds damaged.

def pickle_damage(fx):
    sd = small_state_dict()
    real = dict(read_entries(torch_bytes(sd)))["archive/data.pkl"]

    def archive(name, pickled):
        return handmade_zip(os.path.splitext(name)[0], pickled,
                            {"0": bytes(24), "1": bytes(16), "2": bytes(4)})

    def bad(name, pickled, expect, substr, what):
        fx.add_bad(name, archive(name, pickled), expect, substr, what)

    p4 = dict(read_entries(torch_bytes(sd, pickle_protocol=4)))
    p4 = p4["archive/data.pkl"]
    assert p4[:2] == b"\x80\x04" and p4[2] == 0x95
    bad("protocol4.bin", p4, REFUSED, "pickle protocol 4 is not supported",
        "torch.save(..., pickle_protocol=4)")
    bad("frame.bin", b"\x80\x02" + p4[2:], REFUSED,
        "opcode 0x95 (FRAME) is not allowed",
        "a protocol-4 pickle relabelled protocol 2 (FRAME)")
    stack_global = (b"\x80\x02X\x0b\x00\x00\x00collectionsX\x0b\x00\x00\x00"
                    b"OrderedDict\x93)R.")
    bad("stack_global.bin", stack_global, REFUSED,
        "opcode 0x93 (STACK_GLOBAL) is not allowed",
        "collections.OrderedDict by STACK_GLOBAL")
    bad("not_an_opcode.bin", real[:2] + b"\xff" + real[2:], REFUSED,
        "opcode 0xff (not a pickle opcode)", "a byte that is no opcode")

    at = real.index(b"h\x03(")  # BINGET of _rebuild_tensor_v2
    bad("memo_missing.bin", real[:at] + b"h\xc8" + real[at + 2:], DATA_LOSS,
        "memo index 200 was never stored", "BINGET of an index never put")
    # [[[...]]] 10000 deep: pushed, then appended inwards out.
    bad("deep_lists.bin", b"\x80\x02}X\x01\x00\x00\x00w" + b"]" * 10000 +
        b"a" * 9999 + b"s.", DATA_LOSS, "nesting depth 65 exceeds the limit 64",
        "10000 nested lists")
    bad("deep_marks.bin", b"\x80\x02" + b"(" * 10000 + b".", DATA_LOSS,
        "nested MARKs", "10000 MARKs")


# ---------------------------------------------------------------------------
# Hand-made _rebuild_tensor_v2 calls with bad arguments.

def bad_tensors(fx):
    half = torch.HalfStorage

    def bad(name, root, storages, expect, substr, what):
        pickled = handmade_pickle(root)
        fx.add_bad(name, handmade_zip(os.path.splitext(name)[0], pickled,
                                      storages), expect, substr, what)

    def one(name, offset, size, stride, expect, substr, what, numel=4):
        storage = FakeStorage(half, "0", numel)
        root = collections.OrderedDict(x=Rebuild(storage, offset, size, stride))
        bad(name, root, {"0": bytes(8)}, expect, substr, what)

    one("tensor_past_storage.bin", 2, (4,), (1,), DATA_LOSS,
        "reaches beyond its storage's 4 elements",
        "offset 2 + 4 elements in a 4-element storage")
    one("tensor_offset_past.bin", 5, (0,), (1,), DATA_LOSS,
        "reaches beyond its storage's 4 elements",
        "an empty tensor at offset 5 of a 4-element storage")
    one("stride_past_storage.bin", 0, (2, 2), (3, 1), DATA_LOSS,
        "reaches beyond its storage's 4 elements",
        "strides (3, 1) reach element 4 of 4")
    one("negative_size.bin", 0, (-1,), (1,), DATA_LOSS,
        "size (-1) has a negative entry -1", "size (-1,)")
    one("negative_stride.bin", 0, (4,), (-1,), DATA_LOSS,
        "stride (-1) has a negative entry -1", "stride (-1,)")
    one("negative_offset.bin", -1, (2,), (1,), DATA_LOSS,
        "storage offset -1 is negative", "storage offset -1")
    one("size_overflow.bin", 0, (2 ** 62, 2 ** 62), (2 ** 62, 1), DATA_LOSS,
        "overflows 2^64 elements", "size (2^62, 2^62)")
    one("stride_overflow.bin", 0, (2 ** 62, 2), (2 ** 62, 1), DATA_LOSS,
        "reaches beyond its storage", "strides (2^62, 1) of size (2^62, 2)")
    one("rank_mismatch.bin", 0, (2, 2), (1,), DATA_LOSS, "differ in rank",
        "size (2, 2) with stride (1,)")
    one("negative_numel.bin", 0, (2,), (1,), DATA_LOSS,
        "storage \"0\" has -4 elements", "a storage of -4 elements", numel=-4)

    root = collections.OrderedDict(
        x=Rebuild(FakeStorage(half, "0", 4), 0, (4,), (1,)),
        y=Rebuild(FakeStorage(torch.FloatStorage, "0", 4), 0, (4,), (1,)))
    bad("storage_retyped.bin", root, {"0": bytes(16)}, DATA_LOSS,
        "storage \"0\" is F32[4] on \"cpu\" but was F16[4]",
        "storage \"0\" named as HalfStorage and as FloatStorage")

    root = collections.OrderedDict(
        x=Rebuild(NotAStorage(), 0, (4,), (1,)))
    bad("persid_not_storage.bin", root, {}, REFUSED,
        "persistent id is not a storage", "a persistent id ('module', ...)")


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    torch.manual_seed(0)
    fx = Fixtures(sys.argv[1])
    for family in (pythia_mini, all_dtypes, shared_storage, strided, modules,
                   empty_and_scalar, prefixes, handmade_good, large,
                   zip_damage, entry_damage, legacy, wrong_roots,
                   code_execution, pickle_damage, bad_tensors):
        family(fx)
    fx.write_manifest()
    ok = sum(c["expect"] == "ok" for c in fx.cases)
    print(f"torch_fixtures: {ok} good and {len(fx.cases) - ok} malformed "
          f"files in {fx.out}")


if __name__ == "__main__":
    main()
