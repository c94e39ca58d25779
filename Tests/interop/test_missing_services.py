"""`tasker serve` when a service it needs is not there: without Redis it serves everything
Postgres alone can do and takes up dispatch once Redis comes; without Postgres it does not
start, and says why."""
import subprocess
import time

import grpc

from conftest import PrivateRedis, Service, binary, completed, free_port
from raw_worker import RawWorker
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()



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
            worker = RawWorker(channel, ["later.a"], slots=1, heartbeats=True)
            assignment = worker.assignments(1, timeout=60)[0]
            # The step that was ENQUEUED while Redis was away reaches the worker (the sweeper
            # puts back what the queue never got).
            assert assignment is not None and assignment.task_id == task_id
            worker.succeed(assignment)
            completed(stub, task_id, within=20)
            worker.close()
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
