"""A Tasker worker on stock grpcio: it connects to tasker.v1.Workers/Connect, registers its
handlers (and templates), runs the steps the server sends (up to `slots` at once), reports each
outcome, sends heartbeats, reconnects with backoff, and drains on stop.

A handler is a function of one `Step` that returns a dict (the step's results) or raises:
`Retryable(message, backoff_seconds=0)` for a failure worth another attempt, `Permanent(message)`
for one that is not; any other exception is a retryable failure.
"""
import queue
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Union

import grpc
from google.protobuf import json_format

from .connection import channel, token_metadata
from .protos import tasker_pb2, workers_pb2, workers_pb2_grpc
from .values import to_dict, to_struct

Handler = Callable[["Step"], Union[None, Mapping[str, Any], "StepOutput"]]
Template = Union[tasker_pb2.TaskTemplate, Mapping[str, Any]]

# Refusals that retrying cannot mend: a registration the server will not take, or a token that
# is missing, revoked, expired or not of the worker role.
_FOR_GOOD = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS,
             grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


class Retryable(Exception):
    """A failure worth another attempt, no sooner than `backoff_seconds` from now (like a 429's
    Retry-After; 0: the step's backoff policy decides)."""

    def __init__(self, message: str, backoff_seconds: int = 0) -> None:
        super().__init__(message)
        self.backoff_seconds = backoff_seconds


class Permanent(Exception):
    """A failure no attempt will mend: the step is ERROR, and so is its task."""


class StepOutput:
    """What a handler returns when it has notes for people reading the task besides its
    results: `annotations` maps a note's type to its dict, e.g. {"payment": {"gateway": "x"}}."""

    def __init__(self, results: Optional[Mapping[str, Any]] = None, annotations: Optional[Mapping[str, Mapping[str, Any]]] = None) -> None:
        self.results = dict(results or {})
        self.annotations = dict(annotations or {})


class Step:
    """What a handler is given: the task's context and the results of the steps this one depends
    on, as dicts (whole numbers as ints), which attempt this is, its deadline, and `cancelled`,
    set when the server calls the attempt off (timed out, task cancelled)."""

    def __init__(self, assignment: workers_pb2.StepAssignment) -> None:
        self.task_id: str = assignment.task_id
        self.task_name: str = assignment.task_name
        self.step_id: str = assignment.step_id
        self.step_name: str = assignment.step_name
        self.handler: str = assignment.handler
        self.attempt: int = assignment.attempt
        self.context: Dict[str, Any] = to_dict(assignment.context)
        self.dependency_results: Dict[str, Dict[str, Any]] = {
            name: to_dict(value) for name, value in assignment.dependency_results.items()}
        self.deadline: Optional[datetime] = assignment.deadline.ToDatetime() if assignment.HasField("deadline") else None
        self.cancelled = threading.Event()


def _say(line: str) -> None:
    # Flushed, so that a worker's log into a pipe or a file is there as it happens.
    print(line, flush=True)


def _template(template: Template) -> tasker_pb2.TaskTemplate:
    if isinstance(template, tasker_pb2.TaskTemplate):
        return template
    return json_format.ParseDict(dict(template), tasker_pb2.TaskTemplate())


class Worker:
    """A worker of `slots` steps at once. `credentials`: TLS (see `tls_credentials`); None
    connects in plaintext. `token`: an API token of the worker role, for a server with --auth.
    `templates` (TaskTemplate messages or dicts of their JSON) are registered on connecting."""

    def __init__(self, server: str = "127.0.0.1:7420", name: str = "python-worker", slots: int = 4,
                 templates: Iterable[Template] = (), log: Callable[[str], None] = _say,
                 credentials: Optional[grpc.ChannelCredentials] = None, token: Optional[str] = None) -> None:
        if not isinstance(slots, int) or not 1 <= slots <= 10_000:
            raise ValueError("slots is a whole number from 1 to 10000, not %r" % (slots,))
        self.server = server
        self.credentials = credentials
        self.metadata = token_metadata(token)
        self.name = name
        self.slots = slots
        self.templates = [_template(template) for template in templates]
        self.handlers: Dict[str, Handler] = {}
        self.log = log
        self._stopping = threading.Event()
        self._draining = False
        self._outbox: Optional["queue.Queue[Optional[workers_pb2.WorkerMessage]]"] = None
        self._running: Dict[str, Step] = {}
        self._lock = threading.Lock()

    def handle(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator: `@worker.handle("charge_card")` over a function of one Step."""
        def register(function: Handler) -> Handler:
            self.handlers[name] = function
            return function
        return register

    def run(self) -> None:
        """Connects and runs steps until stop(); reconnects with backoff when the connection
        drops. Raises grpc.RpcError for what retrying cannot mend: a registration the server
        refuses, or a token it does not take."""
        delay = 0.1
        while not self._stopping.is_set():
            try:
                self._connection()
                delay = 0.1
            except grpc.RpcError as error:
                if error.code() in _FOR_GOOD:
                    raise
                if not self._stopping.is_set():
                    self.log("connection to %s lost: %s %s" % (self.server, error.code().name, error.details()))
            if self._stopping.wait(delay * random.uniform(0.8, 1.2)):
                break
            delay = min(delay * 2, 10)

    def stop(self, drain_timeout: float = 30) -> None:
        """Takes no new steps, lets running ones finish (up to drain_timeout s), then closes."""
        self._draining = True
        outbox = self._outbox
        if outbox is not None:
            outbox.put(workers_pb2.WorkerMessage(heartbeat=workers_pb2.Heartbeat(draining=True)))
        deadline = time.time() + drain_timeout
        while self._running and time.time() < deadline:
            time.sleep(0.02)
        self._stopping.set()
        outbox = self._outbox
        if outbox is not None:
            outbox.put(None)

    def _connection(self) -> None:
        outbox: "queue.Queue[Optional[workers_pb2.WorkerMessage]]" = queue.Queue()
        self._outbox = outbox
        outbox.put(workers_pb2.WorkerMessage(register=workers_pb2.RegisterWorker(
            name=self.name, handlers=sorted(self.handlers), slots=self.slots, templates=self.templates)))
        if self._draining:
            outbox.put(workers_pb2.WorkerMessage(heartbeat=workers_pb2.Heartbeat(draining=True)))

        def requests() -> Iterator[workers_pb2.WorkerMessage]:
            while True:
                message = outbox.get()
                if message is None:
                    return
                yield message

        stop_heartbeats = threading.Event()
        pool = ThreadPoolExecutor(max_workers=self.slots)
        with channel(self.server, self.credentials) as connection:
            responses = workers_pb2_grpc.WorkersStub(connection).Connect(requests(), metadata=self.metadata)
            try:
                for message in responses:
                    kind = message.WhichOneof("kind")
                    if kind == "registered":
                        interval = max(message.registered.heartbeat_interval_ms, 100) / 1000.0
                        threading.Thread(target=self._heartbeats, args=(outbox, interval, stop_heartbeats), daemon=True).start()
                        self.log("registered as %s with handlers %s" % (message.registered.worker_id, sorted(self.handlers)))
                    elif kind == "assignment":
                        step = Step(message.assignment)
                        with self._lock:
                            self._running[step.step_id] = step
                        pool.submit(self._run_step, step, outbox)
                    elif kind == "cancel":
                        with self._lock:
                            called_off = self._running.get(message.cancel.step_id)
                            if called_off is not None and called_off.attempt == message.cancel.attempt:
                                called_off.cancelled.set()
                                del self._running[called_off.step_id]
                    if self._stopping.is_set():
                        break
            finally:
                stop_heartbeats.set()
                outbox.put(None)
                with self._lock:
                    for held in self._running.values():
                        held.cancelled.set()
                    self._running.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                self._outbox = None

    def _heartbeats(self, outbox: "queue.Queue[Optional[workers_pb2.WorkerMessage]]", interval: float,
                    stop: threading.Event) -> None:
        while not stop.wait(interval):
            outbox.put(workers_pb2.WorkerMessage(heartbeat=workers_pb2.Heartbeat(draining=self._draining)))

    def _run_step(self, step: Step, outbox: "queue.Queue[Optional[workers_pb2.WorkerMessage]]") -> None:
        result = workers_pb2.StepResult(step_id=step.step_id, attempt=step.attempt)
        try:
            handler = self.handlers.get(step.handler)
            if handler is None:
                raise Retryable("this worker has no handler named %r" % step.handler)
            output = handler(step)
            if not isinstance(output, StepOutput):
                output = StepOutput(output)
            result.success.results.CopyFrom(to_struct(output.results))
            for kind, note in output.annotations.items():
                result.success.annotations.add(type=kind, step_name=step.step_name, annotation=to_struct(note))
        except Permanent as failure:
            result.failure.message = str(failure)
            result.failure.retryable = False
        except Retryable as failure:
            result.failure.message = str(failure)
            result.failure.retryable = True
            result.failure.backoff_request_seconds = int(failure.backoff_seconds)
        except Exception as error:  # any other error: worth another attempt
            result.failure.message = "%s: %s" % (type(error).__name__, error)
            result.failure.retryable = True
        with self._lock:
            current = self._running.get(step.step_id) is step
            if current:
                del self._running[step.step_id]
        # A step called off (timed out, task cancelled) has no result to give.
        if current and not step.cancelled.is_set():
            outbox.put(workers_pb2.WorkerMessage(result=result))


def drain_on_signals(worker: Worker) -> None:
    """SIGTERM or SIGINT: drain and stop (from a thread, so the signal handler returns)."""
    def handler(signum: int, frame: Any) -> None:
        threading.Thread(target=worker.stop, daemon=True).start()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
