"""A Tasker worker in Python on stock grpcio: connect to tasker.v1.Workers/Connect, register
handlers, run the steps the server sends (up to `slots` at once), report each outcome, send
heartbeats, reconnect with backoff, and drain on SIGTERM/SIGINT.

Handlers are functions of one `Step` that return a dict (the step's results) or raise:
`Retryable(message, backoff_seconds=0)` for a failure worth another attempt, `Permanent(message)`
for one that is not; any other exception is a retryable failure.
"""
import importlib
import os
import queue
import random
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf import json_format

HERE = os.path.dirname(os.path.abspath(__file__))


def load_protos(proto_root=None):
    """Generates the tasker.v1 Python stubs from proto/ (once per process): (pb2, pb2_grpc)."""
    if "tasker.v1.workers_pb2" not in sys.modules:
        from grpc_tools import protoc

        root = proto_root or os.path.join(HERE, "..", "..", "proto")
        out = tempfile.mkdtemp(prefix="tasker-worker-pb-")
        include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
        files = [os.path.join(root, "tasker", "v1", name) for name in ("tasker.proto", "workers.proto")]
        if protoc.main(["protoc", "-I" + root, "-I" + include, "--python_out=" + out, "--grpc_python_out=" + out] + files) != 0:
            raise RuntimeError("protoc failed on %s" % root)
        sys.path.insert(0, out)
    return importlib.import_module("tasker.v1.workers_pb2"), importlib.import_module("tasker.v1.workers_pb2_grpc")


class Retryable(Exception):
    def __init__(self, message, backoff_seconds=0):
        super().__init__(message)
        self.backoff_seconds = backoff_seconds


class Permanent(Exception):
    pass


class Step:
    """What a handler is given."""

    def __init__(self, assignment):
        self.task_id = assignment.task_id
        self.task_name = assignment.task_name
        self.step_id = assignment.step_id
        self.step_name = assignment.step_name
        self.handler = assignment.handler
        self.attempt = assignment.attempt
        self.context = json_format.MessageToDict(assignment.context)
        self.dependency_results = {name: json_format.MessageToDict(value) for name, value in assignment.dependency_results.items()}
        self.deadline = assignment.deadline.ToDatetime() if assignment.HasField("deadline") else None
        self.cancelled = threading.Event()


def tls_credentials(ca=None, cert=None, key=None):
    """TLS credentials from PEM files: the CA to trust (None: the system's), and a client
    certificate and key for a server that requires one."""
    def read(path):
        if path is None:
            return None
        with open(path, "rb") as source:
            return source.read()
    return grpc.ssl_channel_credentials(root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert))


class Worker:
    """`credentials`: grpc.ssl_channel_credentials(...) for TLS (see `tls_credentials`); None
    connects in plaintext. `token`: an API token of the worker role, for a server with --auth."""

    def __init__(self, server, name="python-worker", slots=4, templates=(), log=print, credentials=None, token=None):
        self.server = server
        self.credentials = credentials
        self.metadata = [("authorization", "Bearer " + token)] if token else None
        self.name = name
        self.slots = slots
        self.templates = list(templates)
        self.handlers = {}
        self.log = log
        self.pb, self.pb_grpc = load_protos()
        self._stopping = threading.Event()
        self._draining = False
        self._outbox = None
        self._running = {}
        self._lock = threading.Lock()

    def handle(self, name):
        """Decorator: `@worker.handle("charge_card")` over a function of one Step."""
        def register(function):
            self.handlers[name] = function
            return function
        return register

    def run(self):
        """Connects and runs steps until stop(); reconnects with backoff when the connection drops.
        Raises what retrying cannot mend: a registration the server refuses, or a token it does
        not take (missing, revoked, expired, or not of the worker role)."""
        delay = 0.1
        while not self._stopping.is_set():
            try:
                self._connection()
                delay = 0.1
            except grpc.RpcError as error:
                if error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                                    grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNAUTHENTICATED,
                                    grpc.StatusCode.PERMISSION_DENIED):
                    raise
                if not self._stopping.is_set():
                    self.log("connection to %s lost: %s %s" % (self.server, error.code().name, error.details()))
            if self._stopping.wait(delay * random.uniform(0.8, 1.2)):
                break
            delay = min(delay * 2, 10)

    def stop(self, drain_timeout=30):
        """Takes no new steps, lets running ones finish (up to drain_timeout s), then closes."""
        self._draining = True
        outbox = self._outbox
        if outbox is not None:
            outbox.put(self.pb.WorkerMessage(heartbeat=self.pb.Heartbeat(draining=True)))
        deadline = time.time() + drain_timeout
        while self._running and time.time() < deadline:
            time.sleep(0.02)
        self._stopping.set()
        if self._outbox is not None:
            self._outbox.put(None)

    def _connection(self):
        outbox = queue.Queue()
        self._outbox = outbox
        outbox.put(self.pb.WorkerMessage(register=self.pb.RegisterWorker(
            name=self.name, handlers=sorted(self.handlers), slots=self.slots, templates=self.templates)))
        if self._draining:
            outbox.put(self.pb.WorkerMessage(heartbeat=self.pb.Heartbeat(draining=True)))

        def requests():
            while True:
                message = outbox.get()
                if message is None:
                    return
                yield message

        stop_heartbeats = threading.Event()
        pool = ThreadPoolExecutor(max_workers=self.slots)
        channel = (grpc.secure_channel(self.server, self.credentials) if self.credentials
                   else grpc.insecure_channel(self.server))
        with channel:
            stub = self.pb_grpc.WorkersStub(channel)
            responses = stub.Connect(requests(), metadata=self.metadata)
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
                            step = self._running.get(message.cancel.step_id)
                            if step is not None and step.attempt == message.cancel.attempt:
                                step.cancelled.set()
                                del self._running[step.step_id]
                    if self._stopping.is_set():
                        break
            finally:
                stop_heartbeats.set()
                outbox.put(None)
                with self._lock:
                    for step in self._running.values():
                        step.cancelled.set()
                    self._running.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                self._outbox = None

    def _heartbeats(self, outbox, interval, stop):
        while not stop.wait(interval):
            outbox.put(self.pb.WorkerMessage(heartbeat=self.pb.Heartbeat(draining=self._draining)))

    def _run_step(self, step, outbox):
        result = self.pb.StepResult(step_id=step.step_id, attempt=step.attempt)
        try:
            handler = self.handlers.get(step.handler)
            if handler is None:
                raise Retryable("this worker has no handler named %r" % step.handler)
            output = handler(step) or {}
            json_format.ParseDict(output, result.success.results)
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
            outbox.put(self.pb.WorkerMessage(result=result))


def drain_on_signals(worker):
    """SIGTERM or SIGINT: drain and stop (from a thread, so the signal handler returns)."""
    def handler(signum, frame):
        threading.Thread(target=worker.stop, daemon=True).start()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
