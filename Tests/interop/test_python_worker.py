"""The Python worker example (examples/python-worker) against `tasker serve` on a real Postgres
and Redis: a task through two Python workers, a failure retried with the backoff it asked for,
and a kill -9 of the worker holding a step, which then runs on the other."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import grpc
import pytest
from google.protobuf import struct_pb2

from conftest import ROOT, tasker_serve
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()
WORKER = os.path.join(ROOT, "examples", "python-worker", "worker.py")


@pytest.fixture(scope="module")
def tasker(postgres, redis):
    service = tasker_serve(postgres, redis)
    yield service
    service.stop()


@pytest.fixture
def stub(tasker):
    with grpc.insecure_channel("127.0.0.1:%d" % tasker.port) as channel:
        yield tasker_pb2_grpc.TaskerStub(channel)


class PythonWorker:
    def __init__(self, tasker, name, *options):
        self.started_dir = tempfile.mkdtemp(prefix="tasker-pyworker-")
        self.process = subprocess.Popen(
            [sys.executable, WORKER, "--server", "127.0.0.1:%d" % tasker.port, "--name", name,
             "--started-dir", self.started_dir] + list(options),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.name = name

    def started(self):
        return sorted(os.listdir(self.started_dir))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.stdout.read()


def wait_registered(stub, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        names = [t.name for t in stub.ListTaskTemplates(tasker_pb2.ListTaskTemplatesRequest()).templates]
        if "python-example" in names:
            return
        time.sleep(0.1)
    pytest.fail("the Python worker did not register its template within %d s" % timeout)


def submit(stub, amount):
    context = struct_pb2.Struct()
    context.update({"amount": amount})
    return stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="python-example", context=context)).task


def finished(stub, task_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        task = stub.GetTask(tasker_pb2.GetTaskRequest(task_id=task_id))
        if task.status in (tasker_pb2.TASK_STATUS_COMPLETE, tasker_pb2.TASK_STATUS_ERROR):
            return task
        time.sleep(0.05)
    pytest.fail("task %s did not finish within %d s: %s" % (task_id, timeout, task))


def completions(postgres, task_id):
    out = subprocess.run(
        ["psql", postgres.url, "-At", "-c",
         "SELECT step_name FROM step_transitions WHERE task_id = '%s' AND status = 4 ORDER BY step_name" % task_id],
        capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_tasks_run_through_python_workers(stub, tasker, postgres):
    workers = [PythonWorker(tasker, "py-one"), PythonWorker(tasker, "py-two")]
    try:
        wait_registered(stub)
        ids = [submit(stub, amount).task_id for amount in (10, 20.5, 0)]
        for task_id, amount in zip(ids, (10, 20.5, 0)):
            task = finished(stub, task_id)
            assert task.status == tasker_pb2.TASK_STATUS_COMPLETE
            total = next(s for s in task.steps if s.name == "total")
            assert total.results["usd"] == amount and total.results["eur"] == round(amount * 0.92, 2)
            assert completions(postgres, task_id) == ["eur", "quote", "total", "usd"]
        with pytest.raises(grpc.RpcError) as refused:
            submit(stub, -1)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        for worker in workers:
            worker.stop()


def test_a_retryable_failure_waits_for_the_backoff_it_asked_for(stub, tasker):
    worker = PythonWorker(tasker, "py-flaky", "--fail-until", "3")
    try:
        wait_registered(stub)
        task = finished(stub, submit(stub, 5).task_id)
        assert task.status == tasker_pb2.TASK_STATUS_COMPLETE
        eur = next(s for s in task.steps if s.name == "eur")
        assert eur.attempts == 3
        assert "rate service busy (attempt 2)" in eur.last_error.message
        # Each retry started no sooner than the 1 s the worker asked for (the template's own
        # backoff is 0.2 s), and not much later.
        history = list(stub.StreamStepUpdates(tasker_pb2.StreamStepUpdatesRequest(task_id=task.task_id), timeout=10))
        at = lambda update: update.occurred_at.seconds + update.occurred_at.nanos / 1e9  # noqa: E731
        failed = [at(u) for u in history if u.step_name == "eur" and u.status == tasker_pb2.STEP_STATUS_WAITING_FOR_RETRY]
        retried = [at(u) for u in history if u.step_name == "eur" and u.status == tasker_pb2.STEP_STATUS_IN_PROGRESS][1:]
        assert len(failed) == 2 and len(retried) == 2
        for failure, retry in zip(failed, retried):
            assert 1.0 - 0.01 <= retry - failure < 3.0, "a retry came %.3f s after its failure" % (retry - failure)
    finally:
        worker.stop()


def test_kill_9_of_the_worker_holding_a_step_runs_it_on_the_other(stub, tasker, postgres):
    slow = PythonWorker(tasker, "py-slow", "--slow-seconds", "30", "--slots", "1")
    rescuer = None
    try:
        wait_registered(stub)
        task_id = submit(stub, 7).task_id
        deadline = time.time() + 30
        while "py-slow-usd-1" not in slow.started() and time.time() < deadline:
            time.sleep(0.05)
        assert "py-slow-usd-1" in slow.started(), slow.started()
        rescuer = PythonWorker(tasker, "py-rescuer")
        os.kill(slow.process.pid, signal.SIGKILL)
        slow.process.wait()
        task = finished(stub, task_id)
        assert task.status == tasker_pb2.TASK_STATUS_COMPLETE
        usd = next(s for s in task.steps if s.name == "usd")
        assert usd.attempts == 2 and "went away" in usd.last_error.message
        assert "py-rescuer-usd-2" in rescuer.started()
        assert completions(postgres, task_id) == ["eur", "quote", "total", "usd"], "exactly one COMPLETE per step"
    finally:
        slow.stop()
        if rescuer is not None:
            rescuer.stop()


def test_a_worker_on_one_server_runs_tasks_submitted_to_another(tasker, postgres, redis):
    other = tasker_serve(postgres, redis)
    worker = PythonWorker(tasker, "py-node-a")
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % other.port) as channel:
            stub_b = tasker_pb2_grpc.TaskerStub(channel)
            wait_registered(stub_b)
            task_id = submit(stub_b, 3).task_id
            task = finished(stub_b, task_id)
            assert task.status == tasker_pb2.TASK_STATUS_COMPLETE
            assert next(s for s in task.steps if s.name == "total").results["by"] == "py-node-a"
    finally:
        worker.stop()
        other.stop()


def test_a_stock_grpc_client_follows_a_tasks_updates_to_its_end(stub, tasker):
    worker = PythonWorker(tasker, "py-watched", "--fail-until", "2")
    try:
        wait_registered(stub)
        task_id = submit(stub, 3).task_id
        updates = list(stub.StreamStepUpdates(tasker_pb2.StreamStepUpdatesRequest(task_id=task_id), timeout=60))
        assert [u.sequence for u in updates] == list(range(1, len(updates) + 1))
        assert updates[-1].task_status == tasker_pb2.TASK_STATUS_COMPLETE
        retried = [u for u in updates if u.step_name == "eur" and u.status == tasker_pb2.STEP_STATUS_WAITING_FOR_RETRY]
        assert retried and "rate service busy" in retried[0].error.message
        # Resuming after a sequence gives the rest, and a finished task's stream ends at once.
        rest = list(stub.StreamStepUpdates(tasker_pb2.StreamStepUpdatesRequest(task_id=task_id, after_sequence=5), timeout=30))
        assert [u.sequence for u in rest] == list(range(6, len(updates) + 1))
        with pytest.raises(grpc.RpcError) as unknown:
            list(stub.StreamStepUpdates(tasker_pb2.StreamStepUpdatesRequest(task_id=str(uuid.uuid4())), timeout=10))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as past:
            list(stub.StreamStepUpdates(tasker_pb2.StreamStepUpdatesRequest(task_id=task_id, after_sequence=999), timeout=10))
        assert past.value.code() == grpc.StatusCode.OUT_OF_RANGE and "999" in past.value.details()
    finally:
        worker.stop()
