"""Generates Python stubs for grpc.testing from Debian's grpc-proto package.

The protos live under grpc/testing, which would shadow the grpcio package itself, so they are
copied under a package of their own with their imports rewritten.
"""
import importlib
import os
import sys
import tempfile

PROTO_ROOT = "/usr/share/grpc-proto/grpc/testing"
PACKAGE = "tasker_interop_pb"


def load():
    """Returns (messages_pb2, empty_pb2, test_pb2_grpc), generating them once per process."""
    if PACKAGE not in sys.modules:
        from grpc_tools import protoc

        out = tempfile.mkdtemp(prefix="tasker-interop-pb-")
        package_dir = os.path.join(out, PACKAGE)
        os.makedirs(package_dir)
        for name in ("empty", "messages", "test"):
            with open(os.path.join(PROTO_ROOT, name + ".proto")) as source:
                text = source.read().replace('import "grpc/testing/', 'import "%s/' % PACKAGE)
            with open(os.path.join(package_dir, name + ".proto"), "w") as target:
                target.write(text)
        open(os.path.join(package_dir, "__init__.py"), "w").close()
        args = ["protoc", "-I" + out, "--python_out=" + out, "--grpc_python_out=" + out]
        args += [os.path.join(package_dir, n + ".proto") for n in ("empty", "messages", "test")]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed for the interop protos")
        sys.path.insert(0, out)
    messages = importlib.import_module(PACKAGE + ".messages_pb2")
    empty = importlib.import_module(PACKAGE + ".empty_pb2")
    test_grpc = importlib.import_module(PACKAGE + ".test_pb2_grpc")
    return messages, empty, test_grpc
