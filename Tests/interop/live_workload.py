"""A steady live workload for tests and benchmarks that measure what something else costs it:
tasks of a 2-step template submitted so that about as many are in flight as the worker (a
stock grpcio stream answering at once) has slots; `done` holds when each step finished."""
import threading
import time

from raw_worker import RawWorker
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()


class LiveWorkload:
    def __init__(self, channel, slots=16):
        self.stub = tasker_pb2_grpc.TaskerStub(channel)
        self.stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
            name="live", version="1", steps=[
                tasker_pb2.StepTemplate(name="a", handler="live.x"),
                tasker_pb2.StepTemplate(name="b", handler="live.x", depends_on=["a"]),
            ])), timeout=10)
        self.worker = RawWorker(channel, ["live.x"], slots=slots, heartbeats=True)
        self.slots = slots
        self.done = []
        self.submitted = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._answer, daemon=True).start()
        threading.Thread(target=self._submit, daemon=True).start()

    def _answer(self):
        while not self.stopped.is_set():
            try:
                message = self.worker.inbox.get(timeout=0.1)
            except Exception:
                continue
            if message.HasField("assignment"):
                self.worker.succeed(message.assignment)
                self.done.append(time.time())

    def _submit(self):
        import grpc

        while not self.stopped.is_set():
            try:
                self.stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="live"), timeout=10)
            except grpc.RpcError:
                if self.stopped.is_set():
                    return
                raise
            self.submitted += 1
            while not self.stopped.is_set() and len(self.done) < 2 * self.submitted - 2 * self.slots:
                time.sleep(0.002)

    def steps_between(self, since, until):
        return len([t for t in self.done if since <= t < until])

    def pace(self, since, until):
        """Steps/s finished between the two times."""
        return self.steps_between(since, until) / (until - since)

    def stop(self):
        self.stopped.set()
        self.worker.close()
