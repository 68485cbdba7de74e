#!/usr/bin/python3
"""Writes seed corpora for the fuzz targets: OUT/{torch_file,pickle,safetensors}_fuzzer/.

Torch seeds are real torch.save files (Debian's python3-torch), small enough for
the fuzzer to mutate quickly; pickle seeds are their data.pkl entries;
safetensors seeds are small valid files written by hand from the format.
"""
import collections
import io
import json
import os
import struct
import sys
import zipfile

import torch


def state_dicts():
    g = torch.Generator().manual_seed(0)
    base = torch.arange(12, dtype=torch.float16)
    yield collections.OrderedDict(w=torch.randn(3, 4, generator=g).half(),
                                  bias=torch.tril(torch.ones(1, 1, 4, 4, dtype=torch.uint8)))
    yield collections.OrderedDict(a=base[2:6], b=base[6:].view(2, 3))
    yield collections.OrderedDict(
        (str(t).split(".")[1], torch.ones(2, dtype=t))
        for t in (torch.float16, torch.bfloat16, torch.float32, torch.float64,
                  torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool))
    yield torch.nn.Linear(3, 2).state_dict()
    yield collections.OrderedDict(p=torch.nn.Parameter(torch.zeros(2)), s=torch.tensor(1.5))


def safetensors_bytes(tensors):
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def main(out):
    dirs = {k: os.path.join(out, k) for k in ("torch_file_fuzzer", "pickle_fuzzer",
                                             "safetensors_fuzzer")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    for i, sd in enumerate(state_dicts()):
        buf = io.BytesIO()
        torch.save(sd, buf)
        raw = buf.getvalue()
        with open(os.path.join(dirs["torch_file_fuzzer"], f"seed{i}.bin"), "wb") as f:
            f.write(raw)
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            with open(os.path.join(dirs["pickle_fuzzer"], f"seed{i}.pkl"), "wb") as f:
                f.write(z.read(pkl))
    seeds = [
        {"w": ("F16", [2, 2], struct.pack("<4e", 1, -2, 0.5, 3))},
        {"a": ("F32", [2], struct.pack("<2f", 1, 2)), "b": ("U8", [3], b"\x01\x02\x03"),
         "c": ("BF16", [], b"\x80\x3f")},
        {"q": ("F4", [4], b"\x12\x34"), "e": ("I64", [0], b"")},
    ]
    for i, tensors in enumerate(seeds):
        with open(os.path.join(dirs["safetensors_fuzzer"], f"seed{i}.safetensors"), "wb") as f:
            f.write(safetensors_bytes(tensors))


if __name__ == "__main__":
    main(sys.argv[1])
