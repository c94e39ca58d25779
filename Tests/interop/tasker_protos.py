"""The tasker.v1 Python stubs the tests use: the Python SDK's (sdks/python), committed and kept
current with proto/ by scripts/generate-protos.sh, so the tests check them too."""
from tasker_sdk.protos import admin_pb2, admin_pb2_grpc, tasker_pb2, tasker_pb2_grpc, workers_pb2, workers_pb2_grpc


def load():
    """Returns (tasker_pb2, tasker_pb2_grpc)."""
    return tasker_pb2, tasker_pb2_grpc


def load_admin():
    """Returns (admin_pb2, admin_pb2_grpc)."""
    return admin_pb2, admin_pb2_grpc


def load_workers():
    """Returns (workers_pb2, workers_pb2_grpc)."""
    return workers_pb2, workers_pb2_grpc
