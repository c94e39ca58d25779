import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScheduleOverlap(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCHEDULE_OVERLAP_UNSPECIFIED: _ClassVar[ScheduleOverlap]
    SCHEDULE_OVERLAP_ALLOW: _ClassVar[ScheduleOverlap]
    SCHEDULE_OVERLAP_SKIP: _ClassVar[ScheduleOverlap]

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_PENDING: _ClassVar[TaskStatus]
    TASK_STATUS_IN_PROGRESS: _ClassVar[TaskStatus]
    TASK_STATUS_COMPLETE: _ClassVar[TaskStatus]
    TASK_STATUS_ERROR: _ClassVar[TaskStatus]
    TASK_STATUS_CANCELLED: _ClassVar[TaskStatus]
    TASK_STATUS_RESOLVED_MANUALLY: _ClassVar[TaskStatus]

class StepStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATUS_UNSPECIFIED: _ClassVar[StepStatus]
    STEP_STATUS_PENDING: _ClassVar[StepStatus]
    STEP_STATUS_ENQUEUED: _ClassVar[StepStatus]
    STEP_STATUS_IN_PROGRESS: _ClassVar[StepStatus]
    STEP_STATUS_COMPLETE: _ClassVar[StepStatus]
    STEP_STATUS_ERROR: _ClassVar[StepStatus]
    STEP_STATUS_WAITING_FOR_RETRY: _ClassVar[StepStatus]
    STEP_STATUS_CANCELLED: _ClassVar[StepStatus]
    STEP_STATUS_RESOLVED_MANUALLY: _ClassVar[StepStatus]
    STEP_STATUS_SKIPPED: _ClassVar[StepStatus]
SCHEDULE_OVERLAP_UNSPECIFIED: ScheduleOverlap
SCHEDULE_OVERLAP_ALLOW: ScheduleOverlap
SCHEDULE_OVERLAP_SKIP: ScheduleOverlap
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_PENDING: TaskStatus
TASK_STATUS_IN_PROGRESS: TaskStatus
TASK_STATUS_COMPLETE: TaskStatus
TASK_STATUS_ERROR: TaskStatus
TASK_STATUS_CANCELLED: TaskStatus
TASK_STATUS_RESOLVED_MANUALLY: TaskStatus
STEP_STATUS_UNSPECIFIED: StepStatus
STEP_STATUS_PENDING: StepStatus
STEP_STATUS_ENQUEUED: StepStatus
STEP_STATUS_IN_PROGRESS: StepStatus
STEP_STATUS_COMPLETE: StepStatus
STEP_STATUS_ERROR: StepStatus
STEP_STATUS_WAITING_FOR_RETRY: StepStatus
STEP_STATUS_CANCELLED: StepStatus
STEP_STATUS_RESOLVED_MANUALLY: StepStatus
STEP_STATUS_SKIPPED: StepStatus

class Schedule(_message.Message):
    __slots__ = ("name", "template", "version", "cron", "timezone", "context", "paused", "overlap", "next_run_at", "last_run_at", "last_task_id", "created_at", "last_error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    template: str
    version: str
    cron: str
    timezone: str
    context: _struct_pb2.Struct
    paused: bool
    overlap: ScheduleOverlap
    next_run_at: _timestamp_pb2.Timestamp
    last_run_at: _timestamp_pb2.Timestamp
    last_task_id: str
    created_at: _timestamp_pb2.Timestamp
    last_error: str
    def __init__(self, name: _Optional[str] = ..., template: _Optional[str] = ..., version: _Optional[str] = ..., cron: _Optional[str] = ..., timezone: _Optional[str] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., paused: _Optional[bool] = ..., overlap: _Optional[_Union[ScheduleOverlap, str]] = ..., next_run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_task_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ...) -> None: ...

class CreateScheduleRequest(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: Schedule
    def __init__(self, schedule: _Optional[_Union[Schedule, _Mapping]] = ...) -> None: ...

class CreateScheduleResponse(_message.Message):
    __slots__ = ("schedule", "created")
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    schedule: Schedule
    created: bool
    def __init__(self, schedule: _Optional[_Union[Schedule, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class ListSchedulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSchedulesResponse(_message.Message):
    __slots__ = ("schedules",)
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[Schedule]
    def __init__(self, schedules: _Optional[_Iterable[_Union[Schedule, _Mapping]]] = ...) -> None: ...

class DeleteScheduleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteScheduleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetSchedulePausedRequest(_message.Message):
    __slots__ = ("name", "paused")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    name: str
    paused: bool
    def __init__(self, name: _Optional[str] = ..., paused: _Optional[bool] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ("handler",)
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    handler: str
    def __init__(self, handler: _Optional[str] = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[Worker]
    def __init__(self, workers: _Optional[_Iterable[_Union[Worker, _Mapping]]] = ...) -> None: ...

class Worker(_message.Message):
    __slots__ = ("worker_id", "name", "node", "node_id", "handlers", "slots", "in_flight", "draining", "connected_at", "last_heartbeat_at")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    HANDLERS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    name: str
    node: str
    node_id: str
    handlers: _containers.RepeatedScalarFieldContainer[str]
    slots: int
    in_flight: int
    draining: bool
    connected_at: _timestamp_pb2.Timestamp
    last_heartbeat_at: _timestamp_pb2.Timestamp
    def __init__(self, worker_id: _Optional[str] = ..., name: _Optional[str] = ..., node: _Optional[str] = ..., node_id: _Optional[str] = ..., handlers: _Optional[_Iterable[str]] = ..., slots: _Optional[int] = ..., in_flight: _Optional[int] = ..., draining: _Optional[bool] = ..., connected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_heartbeat_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListQueuesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListQueuesResponse(_message.Message):
    __slots__ = ("queues",)
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[HandlerQueue]
    def __init__(self, queues: _Optional[_Iterable[_Union[HandlerQueue, _Mapping]]] = ...) -> None: ...

class HandlerQueue(_message.Message):
    __slots__ = ("handler", "ready", "in_progress", "waiting_for_retry", "workers", "free_slots")
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    WAITING_FOR_RETRY_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    FREE_SLOTS_FIELD_NUMBER: _ClassVar[int]
    handler: str
    ready: int
    in_progress: int
    waiting_for_retry: int
    workers: int
    free_slots: int
    def __init__(self, handler: _Optional[str] = ..., ready: _Optional[int] = ..., in_progress: _Optional[int] = ..., waiting_for_retry: _Optional[int] = ..., workers: _Optional[int] = ..., free_slots: _Optional[int] = ...) -> None: ...

class BackoffPolicy(_message.Message):
    __slots__ = ("base_seconds", "max_seconds", "jitter")
    BASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    JITTER_FIELD_NUMBER: _ClassVar[int]
    base_seconds: float
    max_seconds: float
    jitter: float
    def __init__(self, base_seconds: _Optional[float] = ..., max_seconds: _Optional[float] = ..., jitter: _Optional[float] = ...) -> None: ...

class StepTemplate(_message.Message):
    __slots__ = ("name", "handler", "description", "depends_on", "retryable", "retry_limit", "skippable", "timeout_seconds", "backoff", "dependent_system", "concurrency", "schedule_to_start_seconds", "rate_limits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    RETRY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    SKIPPABLE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_FIELD_NUMBER: _ClassVar[int]
    DEPENDENT_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_TO_START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    handler: str
    description: str
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    retryable: bool
    retry_limit: int
    skippable: bool
    timeout_seconds: int
    backoff: BackoffPolicy
    dependent_system: str
    concurrency: ConcurrencyLimit
    schedule_to_start_seconds: int
    rate_limits: _containers.RepeatedCompositeFieldContainer[RateLimit]
    def __init__(self, name: _Optional[str] = ..., handler: _Optional[str] = ..., description: _Optional[str] = ..., depends_on: _Optional[_Iterable[str]] = ..., retryable: _Optional[bool] = ..., retry_limit: _Optional[int] = ..., skippable: _Optional[bool] = ..., timeout_seconds: _Optional[int] = ..., backoff: _Optional[_Union[BackoffPolicy, _Mapping]] = ..., dependent_system: _Optional[str] = ..., concurrency: _Optional[_Union[ConcurrencyLimit, _Mapping]] = ..., schedule_to_start_seconds: _Optional[int] = ..., rate_limits: _Optional[_Iterable[_Union[RateLimit, _Mapping]]] = ...) -> None: ...

class RateLimit(_message.Message):
    __slots__ = ("key", "limit", "period_seconds", "units")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    key: str
    limit: int
    period_seconds: int
    units: int
    def __init__(self, key: _Optional[str] = ..., limit: _Optional[int] = ..., period_seconds: _Optional[int] = ..., units: _Optional[int] = ...) -> None: ...

class ConcurrencyLimit(_message.Message):
    __slots__ = ("key", "max_running")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MAX_RUNNING_FIELD_NUMBER: _ClassVar[int]
    key: str
    max_running: int
    def __init__(self, key: _Optional[str] = ..., max_running: _Optional[int] = ...) -> None: ...

class TaskTemplate(_message.Message):
    __slots__ = ("name", "version", "description", "context_schema_json", "steps", "timeout_seconds", "concurrency")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    description: str
    context_schema_json: str
    steps: _containers.RepeatedCompositeFieldContainer[StepTemplate]
    timeout_seconds: int
    concurrency: ConcurrencyLimit
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., context_schema_json: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[StepTemplate, _Mapping]]] = ..., timeout_seconds: _Optional[int] = ..., concurrency: _Optional[_Union[ConcurrencyLimit, _Mapping]] = ...) -> None: ...

class StepError(_message.Message):
    __slots__ = ("message", "retryable", "attempt", "at")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    message: str
    retryable: bool
    attempt: int
    at: _timestamp_pb2.Timestamp
    def __init__(self, message: _Optional[str] = ..., retryable: _Optional[bool] = ..., attempt: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Annotation(_message.Message):
    __slots__ = ("type", "step_name", "annotation", "created_at")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    ANNOTATION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    type: str
    step_name: str
    annotation: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[str] = ..., step_name: _Optional[str] = ..., annotation: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WorkflowStep(_message.Message):
    __slots__ = ("step_id", "name", "handler", "status", "depends_on", "attempts", "retry_limit", "retryable", "skippable", "results", "last_error", "next_attempt_at", "last_attempted_at", "completed_at", "waiting_reason", "concurrency_key", "rate_limit_keys")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RETRY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    SKIPPABLE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    WAITING_REASON_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_KEYS_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    name: str
    handler: str
    status: StepStatus
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    attempts: int
    retry_limit: int
    retryable: bool
    skippable: bool
    results: _struct_pb2.Struct
    last_error: StepError
    next_attempt_at: _timestamp_pb2.Timestamp
    last_attempted_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    waiting_reason: str
    concurrency_key: str
    rate_limit_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, step_id: _Optional[str] = ..., name: _Optional[str] = ..., handler: _Optional[str] = ..., status: _Optional[_Union[StepStatus, str]] = ..., depends_on: _Optional[_Iterable[str]] = ..., attempts: _Optional[int] = ..., retry_limit: _Optional[int] = ..., retryable: _Optional[bool] = ..., skippable: _Optional[bool] = ..., results: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., last_error: _Optional[_Union[StepError, _Mapping]] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_attempted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., waiting_reason: _Optional[str] = ..., concurrency_key: _Optional[str] = ..., rate_limit_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("task_id", "name", "version", "status", "context", "initiator", "source_system", "reason", "tags", "steps", "annotations", "created_at", "updated_at", "completed_at", "last_sequence", "start_at", "priority", "deadline_at", "concurrency_key", "admitted")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    INITIATOR_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    START_AT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_AT_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    name: str
    version: str
    status: TaskStatus
    context: _struct_pb2.Struct
    initiator: str
    source_system: str
    reason: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    steps: _containers.RepeatedCompositeFieldContainer[WorkflowStep]
    annotations: _containers.RepeatedCompositeFieldContainer[Annotation]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    last_sequence: int
    start_at: _timestamp_pb2.Timestamp
    priority: int
    deadline_at: _timestamp_pb2.Timestamp
    concurrency_key: str
    admitted: bool
    def __init__(self, task_id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., initiator: _Optional[str] = ..., source_system: _Optional[str] = ..., reason: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., steps: _Optional[_Iterable[_Union[WorkflowStep, _Mapping]]] = ..., annotations: _Optional[_Iterable[_Union[Annotation, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_sequence: _Optional[int] = ..., start_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[int] = ..., deadline_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., concurrency_key: _Optional[str] = ..., admitted: _Optional[bool] = ...) -> None: ...

class StepUpdate(_message.Message):
    __slots__ = ("sequence", "task_id", "step_id", "step_name", "status", "previous_status", "attempt", "results", "error", "task_status", "occurred_at")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TASK_STATUS_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    task_id: str
    step_id: str
    step_name: str
    status: StepStatus
    previous_status: StepStatus
    attempt: int
    results: _struct_pb2.Struct
    error: StepError
    task_status: TaskStatus
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., task_id: _Optional[str] = ..., step_id: _Optional[str] = ..., step_name: _Optional[str] = ..., status: _Optional[_Union[StepStatus, str]] = ..., previous_status: _Optional[_Union[StepStatus, str]] = ..., attempt: _Optional[int] = ..., results: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[_Union[StepError, _Mapping]] = ..., task_status: _Optional[_Union[TaskStatus, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterTaskTemplateRequest(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: TaskTemplate
    def __init__(self, template: _Optional[_Union[TaskTemplate, _Mapping]] = ...) -> None: ...

class RegisterTaskTemplateResponse(_message.Message):
    __slots__ = ("template", "created")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    template: TaskTemplate
    created: bool
    def __init__(self, template: _Optional[_Union[TaskTemplate, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class ListTaskTemplatesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTaskTemplatesResponse(_message.Message):
    __slots__ = ("templates", "next_page_token")
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[TaskTemplate]
    next_page_token: str
    def __init__(self, templates: _Optional[_Iterable[_Union[TaskTemplate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SubmitTaskRequest(_message.Message):
    __slots__ = ("name", "version", "context", "initiator", "source_system", "reason", "tags", "bypass_steps", "idempotency_key", "start_at", "priority")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    INITIATOR_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    BYPASS_STEPS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    START_AT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    context: _struct_pb2.Struct
    initiator: str
    source_system: str
    reason: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    bypass_steps: _containers.RepeatedScalarFieldContainer[str]
    idempotency_key: str
    start_at: _timestamp_pb2.Timestamp
    priority: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., initiator: _Optional[str] = ..., source_system: _Optional[str] = ..., reason: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., bypass_steps: _Optional[_Iterable[str]] = ..., idempotency_key: _Optional[str] = ..., start_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[int] = ...) -> None: ...

class SubmitTaskResponse(_message.Message):
    __slots__ = ("task", "created")
    TASK_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    task: Task
    created: bool
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("name", "status", "tag", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: TaskStatus
    tag: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., tag: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RetryStepRequest(_message.Message):
    __slots__ = ("task_id", "step_name")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    step_name: str
    def __init__(self, task_id: _Optional[str] = ..., step_name: _Optional[str] = ...) -> None: ...

class ResolveStepRequest(_message.Message):
    __slots__ = ("task_id", "step_name", "results", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    step_name: str
    results: _struct_pb2.Struct
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., step_name: _Optional[str] = ..., results: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class StreamStepUpdatesRequest(_message.Message):
    __slots__ = ("task_id", "after_sequence")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    after_sequence: int
    def __init__(self, task_id: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...
