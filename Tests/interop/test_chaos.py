"""Chaos, bounded in time: two `tasker serve` nodes on one Postgres and Redis, a Python worker
on each, diamonds submitted between faults. The faults, one after another: kill -9 of a node
(restarted), Postgres restarted with `-m fast` and with `-m immediate`, Redis killed with -9 and
started empty, a worker killed with -9 (restarted), and a worker frozen with SIGSTOP. Then,
from Postgres: every task COMPLETE, every step COMPLETE exactly once in its history, every
history gapless from 1, and every stored result what the workers compute. Each fault prints
how long until a task completed again."""
import os
import json
import signal
import subprocess
import sys
import time

import grpc
from google.protobuf import struct_pb2

from conftest import ROOT, PrivatePostgres, PrivateRedis, Service, binary, free_port
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()
WORKER = os.path.join(ROOT, "examples", "python-worker", "worker.py")
TASKS_PER_ROUND = 30


class Node:
    def __init__(self, postgres, redis):
        self.port = free_port()
        self.postgres, self.redis = postgres, redis
        self.start()

    def start(self):
        self.service = Service([binary("tasker"), "serve", "--port", "{port}", "--database-url", self.postgres.url,
                                "--redis-url", self.redis.url], port=self.port)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port


class PythonWorker:
    def __init__(self, node, name):
        self.node, self.name = node, name
        self.start()

    def start(self):
        self.process = subprocess.Popen([sys.executable, WORKER, "--server", self.node.address, "--name", self.name,
                                         "--slots", "4", "--slow-seconds", "0.2"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def chaos_template():
    # The Python worker's handlers, with attempts to spare: a fault may cost a step several.
    step = tasker_pb2.StepTemplate
    backoff = tasker_pb2.BackoffPolicy(base_seconds=0.2, max_seconds=2)
    return tasker_pb2.TaskTemplate(name="chaos", version="1", steps=[
        step(name="quote", handler="fetch_quote", retry_limit=50, backoff=backoff),
        step(name="usd", handler="price_usd", depends_on=["quote"], retry_limit=50, backoff=backoff),
        step(name="eur", handler="price_eur", depends_on=["quote"], retry_limit=50, backoff=backoff),
        step(name="total", handler="sum_prices", depends_on=["usd", "eur"], retry_limit=50, backoff=backoff),
    ])


def call(node, method, request, timeout=60):
    """A call that outlasts a fault: UNAVAILABLE is tried again until `timeout`."""
    deadline = time.time() + timeout
    while True:
        try:
            with grpc.insecure_channel(node.address) as channel:
                return getattr(tasker_pb2_grpc.TaskerStub(channel), method)(request, timeout=10)
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or time.time() > deadline:
                raise
            time.sleep(0.2)


def submit_round(node, amounts):
    ids = []
    for amount in amounts:
        context = struct_pb2.Struct()
        context.update({"amount": amount})
        ids.append(call(node, "SubmitTask", tasker_pb2.SubmitTaskRequest(name="chaos", context=context)).task.task_id)
    return ids


def complete_count(postgres):
    return int(postgres.query("SELECT count(*) FROM tasks WHERE name = 'chaos' AND status = 3")[0][0])


def recovered(node, postgres, fault, started, nodes, timeout=60):
    """Submits a task after the fault and waits for it to complete: the time from the fault is
    how long the cluster took to do new work again."""
    probe = submit_round(node, [0.5])[0]
    deadline = started + timeout
    while time.time() < deadline:
        task = call(node, "GetTask", tasker_pb2.GetTaskRequest(task_id=probe))
        if task.status == tasker_pb2.TASK_STATUS_COMPLETE:
            took = time.time() - started
            print("%s: new work done %.1f s after the fault" % (fault, took))
            return probe
        time.sleep(0.1)
    states = postgres.query("SELECT s.name, s.status, count(*) FROM steps s JOIN tasks t USING (task_id) "
                            "WHERE t.name = 'chaos' GROUP BY 1, 2 ORDER BY 1, 2")
    logs = "\n".join(node.service.output()[-3000:] for node in nodes)
    raise AssertionError("%s: a task submitted after it did not complete within %d s; steps %s\n%s" % (fault, timeout, states, logs))


def test_every_task_completes_exactly_once_through_every_fault():
    postgres = PrivatePostgres()
    redis = PrivateRedis()
    nodes, workers = [], []
    try:
        a, b = Node(postgres, redis), Node(postgres, redis)
        nodes = [a, b]
        workers = [PythonWorker(a, "py-a"), PythonWorker(b, "py-b")]
        deadline = time.time() + 30
        while "python-example" not in [t.name for t in call(a, "ListTaskTemplates", tasker_pb2.ListTaskTemplatesRequest()).templates]:
            assert time.time() < deadline, "the workers never registered"
            time.sleep(0.1)
        call(a, "RegisterTaskTemplate", tasker_pb2.RegisterTaskTemplateRequest(template=chaos_template()))
        amounts = iter(range(1, 10_000))
        submitted = []

        def fault(name, act):
            submitted.extend(submit_round(a, [next(amounts) for _ in range(TASKS_PER_ROUND)]))
            time.sleep(0.3)  # so that the fault lands with work in flight
            assert complete_count(postgres) < len(submitted), "%s would land with no work in flight" % name
            started = time.time()
            act()
            submitted.append(recovered(a, postgres, name, started, nodes))

        def kill_node():
            os.kill(b.service.pid, signal.SIGKILL)
            b.service.process.wait()
            time.sleep(1)
            b.start()

        def kill_redis():
            redis.process.kill()
            redis.process.wait()
            redis.stop()  # its folder: the new one starts empty
            time.sleep(1)
            redis.__init__(port=redis.port)

        def kill_worker():
            workers[0].process.kill()
            workers[0].process.wait()
            workers[0].start()

        def freeze_worker():
            os.kill(workers[1].process.pid, signal.SIGSTOP)
            time.sleep(5)
            os.kill(workers[1].process.pid, signal.SIGCONT)

        fault("node B killed with -9", kill_node)
        fault("Postgres restarted -m fast", lambda: postgres.restart("fast"))
        fault("Postgres restarted -m immediate", lambda: postgres.restart("immediate"))
        fault("Redis killed with -9 and started empty", kill_redis)
        fault("worker A killed with -9", kill_worker)
        fault("worker B frozen for 5 s", freeze_worker)
        submitted.extend(submit_round(a, [next(amounts) for _ in range(TASKS_PER_ROUND)]))

        deadline = time.time() + 120
        while complete_count(postgres) < len(submitted):
            assert time.time() < deadline, postgres.query(
                "SELECT status, count(*) FROM tasks WHERE name = 'chaos' GROUP BY status")
            time.sleep(0.2)

        assert postgres.query("SELECT count(*) FROM tasks WHERE name = 'chaos' AND status <> 3") == [["0"]]
        assert int(postgres.query("SELECT count(*) FROM tasks WHERE name = 'chaos'")[0][0]) == len(submitted)
        # Each step went to COMPLETE exactly once.
        assert postgres.query("""
            SELECT s.step_id FROM steps s JOIN tasks t USING (task_id)
            LEFT JOIN step_transitions h ON h.task_id = s.task_id AND h.step_id = s.step_id AND h.status = 4
            WHERE t.name = 'chaos' GROUP BY s.step_id HAVING count(h.sequence) <> 1""") == []
        # Each history is 1, 2, …, last_sequence.
        assert postgres.query("""
            SELECT t.task_id FROM tasks t JOIN step_transitions h USING (task_id) WHERE t.name = 'chaos'
            GROUP BY t.task_id, t.last_sequence
            HAVING min(h.sequence) <> 1 OR max(h.sequence) <> t.last_sequence OR count(*) <> t.last_sequence""") == []
        # The stored results are what the workers compute from each task's amount.
        rows = postgres.query("""
            SELECT (t.context->>'amount')::float8, s.name, s.results::text FROM steps s JOIN tasks t USING (task_id)
            WHERE t.name = 'chaos'""")
        for amount, name, results in rows:
            amount, results = float(amount), json.loads(results)
            expected = {"quote": {"amount": amount}, "usd": {"usd": round(amount * 1.0, 2)},
                        "eur": {"eur": round(amount * 0.92, 2)}}.get(name)
            if name == "total":
                assert results["usd"] == round(amount * 1.0, 2) and results["eur"] == round(amount * 0.92, 2), results
                assert results["by"] in ("py-a", "py-b"), results
            else:
                assert results == expected, (name, results)
        attempts = postgres.query("SELECT max(s.attempts) FROM steps s JOIN tasks t USING (task_id) WHERE t.name = 'chaos'")
        print("%d tasks, every step COMPLETE once; the most attempts any step took: %s" % (len(submitted), attempts[0][0]))
    finally:
        for worker in workers:
            worker.stop()
        for node in nodes:
            node.service.stop()
        redis.stop()
        postgres.stop()
