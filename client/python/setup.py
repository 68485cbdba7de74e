"""The build step of `pip install client/python`: generates the gRPC stubs
(garden_client/_proto) from the repository's proto/ with protoc and grpc_python_plugin
(Debian's protobuf-compiler and protobuf-compiler-grpc) into the build folder, never into
the sources. Metadata is in pyproject.toml. GARDEN_PROTO_DIR overrides where proto/ is."""

import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate_stubs  # noqa: E402


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        out = os.path.join(self.build_lib, "garden_client", "_proto")
        generate_stubs.generate(out, os.environ.get("GARDEN_PROTO_DIR",
                                                    generate_stubs.DEFAULT_PROTO_DIR))


setup(cmdclass={"build_py": BuildWithStubs})
