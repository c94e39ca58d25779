"""`tasker serve` when a service it needs is not there: without Redis it serves everything
Postgres alone can do and takes up dispatch once Redis comes; without Postgres it does not
start, and says why."""
import queue
import subprocess
import threading
import time

import grpc

from conftest import PrivateRedis, Service, binary, free_port
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()
from tasker.v1 import workers_pb2  # noqa: E402



def test_without_redis_it_serves_then_dispatches_once_redis_comes(postgres):
    redis_port = free_port()
    started = time.time()
    server = Service([binary("tasker"), "serve", "--port", "{port}", "--database-url", postgres.url,
                      "--redis-url", "redis://127.0.0.1:%d" % redis_port])
    redis = None
    try:
        # It listens soon although Redis is not there (it waits a second for each subscription).
        assert time.time() - started < 8, "listening took %.1f s" % (time.time() - started)
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
                name="later", version="1", steps=[tasker_pb2.StepTemplate(name="a", handler="later.a")])), timeout=10)
            task_id = stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="later"), timeout=10).task.task_id
            assert stub.GetTask(tasker_pb2.GetTaskRequest(task_id=task_id), timeout=10).status == tasker_pb2.TASK_STATUS_PENDING

            redis = PrivateRedis(port=redis_port)
            worker_stub = channel.stream_stream(
                "/tasker.v1.Workers/Connect", request_serializer=workers_pb2.WorkerMessage.SerializeToString,
                response_deserializer=workers_pb2.ServerMessage.FromString)
            outbox = queue.Queue()
            outbox.put(workers_pb2.WorkerMessage(register=workers_pb2.RegisterWorker(name="late", handlers=["later.a"], slots=1)))
            responses = worker_stub(iter(outbox.get, None), timeout=60)
            beating = threading.Event()

            def heartbeats():
                while not beating.wait(0.5):
                    outbox.put(workers_pb2.WorkerMessage(heartbeat=workers_pb2.Heartbeat()))
            threading.Thread(target=heartbeats, daemon=True).start()
            assignment = None
            for message in responses:
                if message.HasField("assignment"):
                    assignment = message.assignment
                    break
            # The step that was ENQUEUED while Redis was away reaches the worker (the sweeper
            # puts back what the queue never got).
            assert assignment is not None and assignment.task_id == task_id
            outbox.put(workers_pb2.WorkerMessage(result=workers_pb2.StepResult(
                step_id=assignment.step_id, attempt=assignment.attempt, success=workers_pb2.StepSuccess())))
            deadline = time.time() + 20
            while stub.GetTask(tasker_pb2.GetTaskRequest(task_id=task_id), timeout=10).status != tasker_pb2.TASK_STATUS_COMPLETE:
                assert time.time() < deadline, "the task did not complete"
                time.sleep(0.05)
            beating.set()
            outbox.put(None)
            responses.cancel()
    finally:
        server.stop()
        if redis is not None:
            redis.stop()


def test_without_postgres_it_does_not_start_and_says_why():
    port = free_port()
    dead = free_port()
    process = subprocess.run(
        [binary("tasker"), "serve", "--port", str(port), "--database-url", "postgres://tasker@127.0.0.1:%d/tasker" % dead],
        capture_output=True, text=True, timeout=60)
    assert process.returncode == 1
    assert "postgres unavailable" in process.stderr and str(dead) in process.stderr, process.stderr
