"""Python stubs for proto/tasker/v1, generated once per process with grpcio-tools."""
import importlib
import os
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load():
    """Returns (tasker_pb2, tasker_pb2_grpc)."""
    if "tasker.v1.tasker_pb2" not in sys.modules:
        from grpc_tools import protoc

        out = tempfile.mkdtemp(prefix="tasker-pb-")
        proto = os.path.join(ROOT, "proto")
        files = [os.path.join(proto, "tasker", "v1", name) for name in ("tasker.proto", "workers.proto", "admin.proto")]
        include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
        if protoc.main(["protoc", "-I" + proto, "-I" + include, "--python_out=" + out, "--grpc_python_out=" + out] + files) != 0:
            raise RuntimeError("protoc failed for proto/tasker/v1")
        sys.path.insert(0, out)
    return importlib.import_module("tasker.v1.tasker_pb2"), importlib.import_module("tasker.v1.tasker_pb2_grpc")


def load_admin():
    """Returns (admin_pb2, admin_pb2_grpc)."""
    load()
    return importlib.import_module("tasker.v1.admin_pb2"), importlib.import_module("tasker.v1.admin_pb2_grpc")
