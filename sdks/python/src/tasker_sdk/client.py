"""A client of tasker.v1.Tasker: register templates, submit tasks, read and list them, follow
their steps live, cancel, retry and resolve. Errors are grpc.RpcError with the server's status
and message (NOT_FOUND for no such task, INVALID_ARGUMENT naming the field, ...)."""
import time
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import grpc
from google.protobuf import json_format

from .connection import channel, token_metadata
from .protos import tasker_pb2, tasker_pb2_grpc
from .values import to_struct

Template = Union[tasker_pb2.TaskTemplate, Mapping[str, Any]]
Status = Union[int, str, None]

_FINISHED = (tasker_pb2.TASK_STATUS_COMPLETE, tasker_pb2.TASK_STATUS_ERROR, tasker_pb2.TASK_STATUS_CANCELLED,
             tasker_pb2.TASK_STATUS_RESOLVED_MANUALLY)
# A server's largest page of ListTasks.
_LARGEST_PAGE = 500


class Submitted(NamedTuple):
    task: tasker_pb2.Task
    # False when the idempotency key named a task submitted before.
    created: bool


def task_status(status: Status) -> int:
    """A TaskStatus from its number, its name ("TASK_STATUS_ERROR") or its short name ("error")."""
    if status is None:
        return tasker_pb2.TASK_STATUS_UNSPECIFIED
    if isinstance(status, int):
        return status
    name = str(status).upper()
    try:
        return tasker_pb2.TaskStatus.Value(name if name.startswith("TASK_STATUS_") else "TASK_STATUS_" + name)
    except ValueError:
        raise ValueError("%r is not a task status: pending, in_progress, complete, error, cancelled or resolved_manually"
                         % (str(status)[:40],)) from None


class Client:
    """A connection to one server (`host:port`). `credentials`: TLS (see `tls_credentials`);
    `token`: an API token, for a server that runs with --auth; `timeout`: seconds each unary
    call may take. Use it in a `with` block, or close() it."""

    def __init__(self, server: str = "127.0.0.1:7420", *, credentials: Optional[grpc.ChannelCredentials] = None,
                 token: Optional[str] = None, timeout: float = 30.0) -> None:
        self._channel = channel(server, credentials)
        self._stub = tasker_pb2_grpc.TaskerStub(self._channel)
        self._metadata = token_metadata(token)
        self.timeout = timeout

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exception: Any) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def register_template(self, template: Template) -> Tuple[tasker_pb2.TaskTemplate, bool]:
        """Registers a template (a TaskTemplate, or a dict of its JSON); the same content again
        changes nothing. Returns it as stored and whether it was new."""
        if not isinstance(template, tasker_pb2.TaskTemplate):
            template = json_format.ParseDict(dict(template), tasker_pb2.TaskTemplate())
        response = self._stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=template),
                                                   timeout=self.timeout, metadata=self._metadata)
        return response.template, response.created

    def submit(self, name: str, context: Optional[Mapping[str, Any]] = None, *, version: str = "",
               tags: Sequence[str] = (), reason: str = "", initiator: str = "", source_system: str = "",
               bypass_steps: Sequence[str] = (), idempotency_key: str = "", start_at: Optional[datetime] = None,
               priority: int = 0) -> Submitted:
        """Submits a task of template `name` (its newest version unless `version`). With an
        `idempotency_key`, a repeat returns the task the key made (created False). `start_at`
        (an aware datetime) delays its first steps; `priority` is 1 (first) to 5 (last), 0 for 3."""
        request = tasker_pb2.SubmitTaskRequest(
            name=name, version=version, context=to_struct(context), tags=list(tags), reason=reason, initiator=initiator,
            source_system=source_system, bypass_steps=list(bypass_steps), idempotency_key=idempotency_key, priority=priority)
        if start_at is not None:
            if start_at.tzinfo is None:
                raise ValueError("start_at must be an aware datetime (with a time zone), not %r" % (start_at,))
            request.start_at.FromDatetime(start_at.astimezone(timezone.utc).replace(tzinfo=None))
        response = self._stub.SubmitTask(request, timeout=self.timeout, metadata=self._metadata)
        return Submitted(response.task, response.created)

    def get(self, task_id: str) -> tasker_pb2.Task:
        """A task with its steps and annotations; each step that cannot move says why."""
        return self._stub.GetTask(tasker_pb2.GetTaskRequest(task_id=task_id), timeout=self.timeout, metadata=self._metadata)

    def list(self, *, name: str = "", status: Status = None, tag: str = "", limit: Optional[int] = 50,
             page_token: str = "") -> Iterator[tasker_pb2.Task]:
        """Tasks, newest first, filtered; `limit` of them (None: every one), a page at a time."""
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError("limit counts tasks: 1 or more, or None for every one; not %r" % (limit,))
        wanted = status and task_status(status)
        given = 0
        token = page_token
        while True:
            size = _LARGEST_PAGE if limit is None else min(limit - given, _LARGEST_PAGE)
            page = self._stub.ListTasks(tasker_pb2.ListTasksRequest(
                name=name, status=wanted or 0, tag=tag, page_size=size, page_token=token),
                timeout=self.timeout, metadata=self._metadata)
            for task in page.tasks:
                yield task
                given += 1
            token = page.next_page_token
            if not token or (limit is not None and given >= limit):
                return

    def watch(self, task_id: str, *, after_sequence: int = 0) -> Iterator[tasker_pb2.StepUpdate]:
        """The task's transitions in order, replayed after `after_sequence` (0: from the first),
        then live, until the one that finishes it. Cut off for falling behind, or with its node
        gone, it goes on from the last one seen, for about 20 s."""
        last = after_sequence
        failures = 0
        while True:
            try:
                for update in self._stub.StreamStepUpdates(
                        tasker_pb2.StreamStepUpdatesRequest(task_id=task_id, after_sequence=last), metadata=self._metadata):
                    last = update.sequence
                    failures = 0
                    yield update
                return
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED) or failures >= 12:
                    raise
                failures += 1
                time.sleep(min(0.2 * 2 ** (failures - 1), 2.0))

    def wait(self, task_id: str) -> tasker_pb2.Task:
        """Follows the task to its end; returns it as it ended (COMPLETE, ERROR, ...)."""
        task = self.get(task_id)
        if task.status not in _FINISHED:
            for _ in self.watch(task_id, after_sequence=task.last_sequence):
                pass
            task = self.get(task_id)
        return task

    def cancel(self, task_id: str, reason: str = "") -> tasker_pb2.Task:
        return self._stub.CancelTask(tasker_pb2.CancelTaskRequest(task_id=task_id, reason=reason),
                                     timeout=self.timeout, metadata=self._metadata)

    def retry(self, task_id: str, step: str) -> tasker_pb2.Task:
        """Runs a step in ERROR again, its attempts counted afresh."""
        return self._stub.RetryStep(tasker_pb2.RetryStepRequest(task_id=task_id, step_name=step),
                                    timeout=self.timeout, metadata=self._metadata)

    def resolve(self, task_id: str, step: str, results: Optional[Mapping[str, Any]] = None, reason: str = "") -> tasker_pb2.Task:
        """Marks a step done by hand, with its results."""
        return self._stub.ResolveStep(tasker_pb2.ResolveStepRequest(
            task_id=task_id, step_name=step, results=to_struct(results), reason=reason),
            timeout=self.timeout, metadata=self._metadata)

    def create_schedule(self, name: str, template: str, cron: str, context: Optional[Mapping[str, Any]] = None, *,
                        version: str = "", timezone: str = "", skip_overlap: bool = False,
                        paused: bool = False) -> Tuple[tasker_pb2.Schedule, bool]:
        """A task of `template` every time `cron` fires (five fields, or @daily and the like),
        read in `timezone` (IANA; empty is UTC). `skip_overlap`: no firing while the last one's
        task is unfinished. Returns the schedule and whether it was new."""
        schedule = tasker_pb2.Schedule(
            name=name, template=template, version=version, cron=cron, timezone=timezone, context=to_struct(context), paused=paused,
            overlap=tasker_pb2.SCHEDULE_OVERLAP_SKIP if skip_overlap else tasker_pb2.SCHEDULE_OVERLAP_ALLOW)
        response = self._stub.CreateSchedule(tasker_pb2.CreateScheduleRequest(schedule=schedule),
                                             timeout=self.timeout, metadata=self._metadata)
        return response.schedule, response.created

    def schedules(self) -> Sequence[tasker_pb2.Schedule]:
        """Every schedule, by name."""
        return self._stub.ListSchedules(tasker_pb2.ListSchedulesRequest(), timeout=self.timeout, metadata=self._metadata).schedules

    def pause_schedule(self, name: str, paused: bool = True) -> tasker_pb2.Schedule:
        """Pauses a schedule, or with paused=False resumes it from its next firing after now."""
        return self._stub.SetSchedulePaused(tasker_pb2.SetSchedulePausedRequest(name=name, paused=paused),
                                            timeout=self.timeout, metadata=self._metadata)

    def delete_schedule(self, name: str) -> None:
        """Deletes a schedule; the tasks it made stay."""
        self._stub.DeleteSchedule(tasker_pb2.DeleteScheduleRequest(name=name), timeout=self.timeout, metadata=self._metadata)
