"""Tasker's Python SDK: a worker that runs steps and a client that submits and follows tasks,
on stock grpcio, with the tasker.v1 stubs inside (`tasker_sdk.protos`)."""
from .client import Client, Submitted, task_status
from .connection import tls_credentials
from .values import to_dict, to_struct
from .worker import Permanent, Retryable, Step, StepOutput, Worker, drain_on_signals

__version__ = "0.13.0"
__all__ = ["Client", "Permanent", "Retryable", "Step", "StepOutput", "Submitted", "Worker", "drain_on_signals",
           "task_status", "tls_credentials", "to_dict", "to_struct"]
