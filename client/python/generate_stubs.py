#!/usr/bin/python3
"""Generates garden_client's gRPC stubs from proto/ with protoc and grpc_python_plugin.

Writes OUT/{garden_pb2, garden_pb2_grpc, health_pb2, health_pb2_grpc}.py and
OUT/__init__.py. The protos are compiled with proto/ as the import root, so their
descriptors keep the names the server registers (garden/v1/garden.proto); the one
import protoc writes between the generated modules (`from garden.v1 import
garden_pb2`) is made relative, so the stubs live inside the package and never
claim the top-level names `garden` or `grpc`.

Called by CMake (client/python/CMakeLists.txt, into <build>/python/garden_client/_proto)
and by setup.py (pip install client/python). The stubs are never committed.

  generate_stubs.py --out DIR [--proto-dir proto/] [--protoc protoc]
                    [--plugin grpc_python_plugin]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
# proto file (relative to the proto dir) -> flat module stem in the package
PROTOS = {"garden/v1/garden.proto": "garden", "grpc/health/v1/health.proto": "health"}


def find_tool(name, given):
    path = given or shutil.which(name)
    if not path or not os.path.isfile(path):
        package = "protobuf-compiler" if name == "protoc" else "protobuf-compiler-grpc"
        raise SystemExit(f"generate_stubs.py: {given or name} not found "
                         f"(Debian package {package})")
    return path


def generate(out, proto_dir=DEFAULT_PROTO_DIR, protoc=None, plugin=None):
    """Writes the stubs into `out` (created); returns the files written."""
    protoc = find_tool("protoc", protoc)
    plugin = find_tool("grpc_python_plugin", plugin)
    for proto in PROTOS:
        if not os.path.isfile(os.path.join(proto_dir, proto)):
            raise SystemExit(f"generate_stubs.py: {proto} not found under {proto_dir} "
                             "(set GARDEN_PROTO_DIR to the repository's proto/)")
    os.makedirs(out, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="garden-stubs-") as tmp:
        subprocess.run([protoc, f"--proto_path={proto_dir}", f"--python_out={tmp}",
                        f"--grpc_python_out={tmp}", f"--plugin=protoc-gen-grpc_python={plugin}",
                        *(os.path.join(proto_dir, p) for p in PROTOS)], check=True)
        stems = {p[:-len(".proto")].replace("/", "."): s for p, s in PROTOS.items()}
        for proto, stem in PROTOS.items():
            base = os.path.join(tmp, proto[:-len(".proto")])
            for suffix in ("_pb2.py", "_pb2_grpc.py"):
                with open(base + suffix, encoding="utf-8") as f:
                    text = f.read()
                # from garden.v1 import garden_pb2 as X  ->  from . import garden_pb2 as X
                for dotted, s in stems.items():
                    package, _, module = dotted.rpartition(".")
                    text = re.sub(rf"^from {re.escape(package)} import {module}_pb2 ",
                                  f"from . import {s}_pb2 ", text, flags=re.M)
                    text = re.sub(rf"^import {re.escape(dotted)}_pb2 as ",
                                  f"from . import {s}_pb2 as ", text, flags=re.M)
                target = os.path.join(out, stem + suffix)
                _write_if_changed(target, text)
                written.append(target)
    init = os.path.join(out, "__init__.py")
    _write_if_changed(init, '"""gRPC stubs generated from proto/ by generate_stubs.py '
                            '(never committed)."""\n')
    written.append(init)
    return written


def _write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--proto-dir", default=os.environ.get("GARDEN_PROTO_DIR", DEFAULT_PROTO_DIR))
    p.add_argument("--protoc")
    p.add_argument("--plugin")
    a = p.parse_args(argv)
    generate(a.out, a.proto_dir, a.protoc, a.plugin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
