import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tasker_sdk._generated.tasker.v1 import tasker_pb2 as _tasker_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerMessage(_message.Message):
    __slots__ = ("register", "result", "heartbeat")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    register: RegisterWorker
    result: StepResult
    heartbeat: Heartbeat
    def __init__(self, register: _Optional[_Union[RegisterWorker, _Mapping]] = ..., result: _Optional[_Union[StepResult, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class RegisterWorker(_message.Message):
    __slots__ = ("name", "handlers", "slots", "templates")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HANDLERS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    name: str
    handlers: _containers.RepeatedScalarFieldContainer[str]
    slots: int
    templates: _containers.RepeatedCompositeFieldContainer[_tasker_pb2.TaskTemplate]
    def __init__(self, name: _Optional[str] = ..., handlers: _Optional[_Iterable[str]] = ..., slots: _Optional[int] = ..., templates: _Optional[_Iterable[_Union[_tasker_pb2.TaskTemplate, _Mapping]]] = ...) -> None: ...

class StepResult(_message.Message):
    __slots__ = ("step_id", "attempt", "success", "failure")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    attempt: int
    success: StepSuccess
    failure: StepFailure
    def __init__(self, step_id: _Optional[str] = ..., attempt: _Optional[int] = ..., success: _Optional[_Union[StepSuccess, _Mapping]] = ..., failure: _Optional[_Union[StepFailure, _Mapping]] = ...) -> None: ...

class StepSuccess(_message.Message):
    __slots__ = ("results", "annotations")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    results: _struct_pb2.Struct
    annotations: _containers.RepeatedCompositeFieldContainer[_tasker_pb2.Annotation]
    def __init__(self, results: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., annotations: _Optional[_Iterable[_Union[_tasker_pb2.Annotation, _Mapping]]] = ...) -> None: ...

class StepFailure(_message.Message):
    __slots__ = ("message", "retryable", "backoff_request_seconds")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_REQUEST_SECONDS_FIELD_NUMBER: _ClassVar[int]
    message: str
    retryable: bool
    backoff_request_seconds: int
    def __init__(self, message: _Optional[str] = ..., retryable: _Optional[bool] = ..., backoff_request_seconds: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("draining",)
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    draining: bool
    def __init__(self, draining: _Optional[bool] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("registered", "assignment", "cancel")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    registered: WorkerRegistered
    assignment: StepAssignment
    cancel: CancelStep
    def __init__(self, registered: _Optional[_Union[WorkerRegistered, _Mapping]] = ..., assignment: _Optional[_Union[StepAssignment, _Mapping]] = ..., cancel: _Optional[_Union[CancelStep, _Mapping]] = ...) -> None: ...

class WorkerRegistered(_message.Message):
    __slots__ = ("worker_id", "heartbeat_interval_ms")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    heartbeat_interval_ms: int
    def __init__(self, worker_id: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ...) -> None: ...

class StepAssignment(_message.Message):
    __slots__ = ("task_id", "task_name", "step_id", "step_name", "handler", "attempt", "context", "dependency_results", "deadline")
    class DependencyResultsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Struct
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCY_RESULTS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    task_name: str
    step_id: str
    step_name: str
    handler: str
    attempt: int
    context: _struct_pb2.Struct
    dependency_results: _containers.MessageMap[str, _struct_pb2.Struct]
    deadline: _timestamp_pb2.Timestamp
    def __init__(self, task_id: _Optional[str] = ..., task_name: _Optional[str] = ..., step_id: _Optional[str] = ..., step_name: _Optional[str] = ..., handler: _Optional[str] = ..., attempt: _Optional[int] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., dependency_results: _Optional[_Mapping[str, _struct_pb2.Struct]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CancelStep(_message.Message):
    __slots__ = ("step_id", "attempt", "reason")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    attempt: int
    reason: str
    def __init__(self, step_id: _Optional[str] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...
