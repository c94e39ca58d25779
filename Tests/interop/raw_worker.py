"""A Tasker worker on a stock grpcio stream, message by message, for tests that send what no
SDK would or must see exactly what the server sends."""
import queue
import threading
import time

import grpc

import tasker_protos

workers_pb2, workers_pb2_grpc = tasker_protos.load_workers()


class RawWorker:
    """A worker on a stock grpcio stream: what it sends is up to the test. With `heartbeats`
    it sends one every interval the server asks for, as a live worker does. `ending` is set
    once the server ends the stream, with its error (None for OK) in `end`."""

    def __init__(self, channel, handlers, slots=16, heartbeats=False, token=None):
        self.outbox = queue.Queue()
        self.inbox = queue.Queue()
        self.stopped = threading.Event()
        self.ending = threading.Event()
        self.end = None
        self.outbox.put(workers_pb2.WorkerMessage(register=workers_pb2.RegisterWorker(
            name="raw", handlers=handlers, slots=slots)))
        stub = workers_pb2_grpc.WorkersStub(channel)
        metadata = [("authorization", "Bearer " + token)] if token else None
        self.call = stub.Connect(iter(self.outbox.get, None), metadata=metadata)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        deadline = time.time() + 10
        while self.inbox.empty():
            if self.ending.is_set():
                raise self.end or AssertionError("the server ended the stream before registering the worker")
            assert time.time() < deadline, "the worker was not registered within 10 s"
            time.sleep(0.01)
        registered = self.inbox.get()
        assert registered.HasField("registered")
        if heartbeats:
            interval = registered.registered.heartbeat_interval_ms / 1000.0
            threading.Thread(target=self._beat, args=(interval,), daemon=True).start()

    def _beat(self, interval):
        while not self.stopped.wait(interval):
            self.outbox.put(workers_pb2.WorkerMessage(heartbeat=workers_pb2.Heartbeat()))

    def _read(self):
        try:
            for message in self.call:
                self.inbox.put(message)
        except grpc.RpcError as error:
            self.end = error
        self.ending.set()

    def assignments(self, count, timeout=20):
        got = []
        deadline = time.time() + timeout
        while len(got) < count:
            message = self.inbox.get(timeout=max(deadline - time.time(), 0.1))
            if message.HasField("assignment"):
                got.append(message.assignment)
        return got

    def succeed(self, assignment, results=None):
        self.outbox.put(workers_pb2.WorkerMessage(result=workers_pb2.StepResult(
            step_id=assignment.step_id, attempt=assignment.attempt, success=workers_pb2.StepSuccess(results=results))))

    def fail(self, assignment, message):
        self.outbox.put(workers_pb2.WorkerMessage(result=workers_pb2.StepResult(
            step_id=assignment.step_id, attempt=assignment.attempt,
            failure=workers_pb2.StepFailure(message=message, retryable=False))))

    def close(self):
        self.stopped.set()
        self.outbox.put(None)
        self.call.cancel()
