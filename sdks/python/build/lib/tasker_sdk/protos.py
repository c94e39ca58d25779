"""The tasker.v1 messages and stubs, generated from proto/tasker/v1 by
scripts/generate-protos.sh and shipped with the package."""
from ._generated.tasker.v1 import admin_pb2, admin_pb2_grpc, tasker_pb2, tasker_pb2_grpc, workers_pb2, workers_pb2_grpc

__all__ = ["admin_pb2", "admin_pb2_grpc", "tasker_pb2", "tasker_pb2_grpc", "workers_pb2", "workers_pb2_grpc"]
