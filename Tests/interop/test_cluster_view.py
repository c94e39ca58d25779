"""What any node tells of the whole cluster: ListWorkers and ListQueues with workers on two
nodes, answered alike by both; a worker that leaves disappearing within its heartbeat
timeout; and why a step waits, through GetTask and `tasker get`, `tasker workers` and
`tasker queues`."""
import json
import subprocess
import time

import grpc

from conftest import binary, completed, tasker_serve, until
from raw_worker import RawWorker
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()


def workers_of(stub, handler=""):
    return sorted((w.name, w.node_id, tuple(w.handlers), w.slots, w.worker_id)
                  for w in stub.ListWorkers(tasker_pb2.ListWorkersRequest(handler=handler), timeout=10).workers)




def cli(*args):
    return subprocess.run([binary("tasker"), *args], capture_output=True, text=True, timeout=30)


def test_every_node_lists_the_same_workers_and_queues(postgres, redis):
    a = tasker_serve(postgres, redis)
    b = tasker_serve(postgres, redis)
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % a.port) as on_a, grpc.insecure_channel("127.0.0.1:%d" % b.port) as on_b:
            stub_a, stub_b = tasker_pb2_grpc.TaskerStub(on_a), tasker_pb2_grpc.TaskerStub(on_b)
            stub_a.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
                name="cv", version="1", steps=[
                    tasker_pb2.StepTemplate(name="first", handler="cv.a"),
                    tasker_pb2.StepTemplate(name="orphan", handler="cv.none", depends_on=["first"]),
                ])), timeout=10)
            one = RawWorker(on_a, ["cv.a"], slots=2, heartbeats=True)
            two = RawWorker(on_b, ["cv.a", "cv.b"], slots=3, heartbeats=True)
            listed = until("both workers listed by node A", lambda: (w := workers_of(stub_a)) and len(w) == 2 and w)
            assert until("node B lists the same", lambda: workers_of(stub_b) == listed)
            assert sorted((w[2], w[3]) for w in listed) == [(("cv.a",), 2), (("cv.a", "cv.b"), 3)]
            assert {w[1] for w in listed} == {
                n.node_id for n in stub_a.ListWorkers(tasker_pb2.ListWorkersRequest(), timeout=10).workers}
            assert len({w[1] for w in listed}) == 2, "one on each node"
            assert [w[4] for w in workers_of(stub_b, "cv.b")] == [w[4] for w in listed if w[3] == 3]
            assert workers_of(stub_a, "cv.nothing") == []

            task_id = stub_a.SubmitTask(tasker_pb2.SubmitTaskRequest(name="cv"), timeout=10).task.task_id
            held = (one.inbox, two.inbox)
            # Whichever worker got the first step answers it; the second step has no worker.
            assignment = None
            while assignment is None:
                for worker in (one, two):
                    if not worker.inbox.empty():
                        message = worker.inbox.get()
                        if message.HasField("assignment"):
                            assignment = (worker, message.assignment)
                time.sleep(0.01)
            assignment[0].succeed(assignment[1])
            del held
            step = until("the second step is ENQUEUED with its reason", lambda: next(
                (s for s in stub_b.GetTask(tasker_pb2.GetTaskRequest(task_id=task_id), timeout=10).steps
                 if s.name == "orphan" and s.status == tasker_pb2.STEP_STATUS_ENQUEUED and s.waiting_reason), None))
            assert step.status == tasker_pb2.STEP_STATUS_ENQUEUED
            assert step.waiting_reason == "no connected worker runs handler 'cv.none'", step.waiting_reason
            shown = cli("get", task_id, "--server", "127.0.0.1:%d" % a.port)
            assert shown.returncode == 0 and "waiting: no connected worker runs handler 'cv.none'" in shown.stdout, shown

            for stub in (stub_a, stub_b):
                queues = {q.handler: q for q in stub.ListQueues(tasker_pb2.ListQueuesRequest(), timeout=10).queues}
                assert (queues["cv.none"].ready, queues["cv.none"].workers) == (1, 0), queues
                assert (queues["cv.a"].workers, queues["cv.a"].free_slots, queues["cv.a"].ready) == (2, 5, 0), queues["cv.a"]
                assert (queues["cv.b"].workers, queues["cv.b"].free_slots) == (1, 3), queues["cv.b"]
            table = cli("queues", "--server", "127.0.0.1:%d" % b.port)
            assert table.returncode == 0, table
            lines = table.stdout.splitlines()
            assert lines[0].split() == ["HANDLER", "READY", "RUNNING", "RETRYING", "WORKERS", "FREE", "SLOTS"], lines
            assert [line.split() for line in lines if line.startswith("cv.none ")] == [["cv.none", "1", "0", "0", "0", "0"]], lines
            as_json = json.loads(cli("workers", "--json", "--server", "127.0.0.1:%d" % b.port).stdout)
            assert sorted(w["worker_id"] for w in as_json["workers"]) == sorted(w[4] for w in listed)

            one.close()
            left = time.time()
            until("the worker that left is still listed", lambda: len(workers_of(stub_b)) == 1, within=3)
            print("a worker that left was unlisted %.2f s later" % (time.time() - left))
            # The orphan step gets a worker, and the task completes.
            three = RawWorker(on_a, ["cv.none"], slots=1, heartbeats=True)
            three.succeed(three.assignments(1)[0])
            completed(stub_a, task_id, within=15)
            for worker in (two, three):
                worker.close()
    finally:
        a.stop()
        b.stop()


def test_a_handler_filter_that_cannot_be_one_is_refused_plainly(postgres, redis):
    server = tasker_serve(postgres, redis)
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            for handler, says in (("h" * 10_000, "over the limit"), ("nul\0", "NUL")):
                try:
                    stub.ListWorkers(tasker_pb2.ListWorkersRequest(handler=handler), timeout=10)
                    raise AssertionError("taken: %r" % handler[:20])
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and says in error.details(), error
                    assert len(error.details()) < 300
    finally:
        server.stop()
