"""Flow control across real nodes: concurrency limits held by every node while one is killed
(kill -9), priorities across nodes, and delayed starts; the workers are the Python SDK's, and
what they log of each attempt's start and end is what is checked."""
import os
import signal
import threading
import time
import uuid

import grpc
from google.protobuf import struct_pb2

from conftest import completed, tasker_serve, until
import tasker_protos
from tasker_sdk import Worker

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()


class Log:
    """Each attempt's (key, start, end) as the workers saw them, on one clock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = []

    def run(self, key, seconds):
        start = time.monotonic()
        time.sleep(seconds)
        with self.lock:
            self.attempts.append((key, start, time.monotonic()))

    def most_at_once(self):
        """The most attempts of each key running at the same time."""
        events = sorted((at, change, key) for key, start, end in self.attempts for at, change in ((start, 1), (end, -1)))
        running, most = {}, {}
        for _, change, key in events:
            running[key] = running.get(key, 0) + change
            most[key] = max(most.get(key, 0), running[key])
        return most


def start_worker(node, log, handler, seconds, slots=8):
    worker = Worker("127.0.0.1:%d" % node.port, name="w-%d" % node.port, slots=slots, log=lambda line: None)

    @worker.handle(handler)
    def call(step):
        log.run(step.context.get("customer"), seconds)
        return {}

    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread


def context(**fields):
    value = struct_pb2.Struct()
    value.update(fields)
    return value


def test_a_concurrency_key_never_runs_more_than_its_limit_across_three_nodes_while_one_is_killed(postgres, redis):
    nodes = [tasker_serve(postgres, redis) for _ in range(3)]
    workers = []
    try:
        name, handler = "limited-%s" % uuid.uuid4().hex[:8], "limited.call"
        with grpc.insecure_channel("127.0.0.1:%d" % nodes[0].port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
                name=name, version="1", steps=[tasker_pb2.StepTemplate(
                    name="call", handler=handler, backoff=tasker_pb2.BackoffPolicy(base_seconds=0.1),
                    concurrency=tasker_pb2.ConcurrencyLimit(key="customer:{$.customer}", max_running=2))])), timeout=10)
            log = Log()
            workers = [start_worker(node, log, handler, 0.3) for node in nodes]
            task_ids = [stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name=name, context=context(customer="c%d" % (n % 10))), timeout=10).task.task_id
                        for n in range(200)]
            until("a third of the work is done", lambda: len(log.attempts) >= 60, within=60)
            os.kill(nodes[2].pid, signal.SIGKILL)
            for task_id in task_ids:
                task = completed(stub, task_id, within=120)
                assert task.status == tasker_pb2.TASK_STATUS_COMPLETE, task
            most = log.most_at_once()
            print("most at once per key:", most)
            assert len(most) == 10 and max(most.values()) == 2, most
    finally:
        for worker, _ in workers:
            worker.stop(drain_timeout=1)
        for node in nodes:
            node.stop()


def test_a_rate_limit_holds_across_three_nodes_and_keeps_close_to_its_rate(postgres, redis):
    nodes = [tasker_serve(postgres, redis) for _ in range(3)]
    workers = []
    try:
        name, handler = "rated-%s" % uuid.uuid4().hex[:8], "rated.call"
        key = "stripe-%s" % uuid.uuid4().hex[:8]
        with grpc.insecure_channel("127.0.0.1:%d" % nodes[0].port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
                name=name, version="1", steps=[tasker_pb2.StepTemplate(
                    name="call", handler=handler,
                    rate_limits=[tasker_pb2.RateLimit(key=key, limit=20, period_seconds=1)])])), timeout=10)
            starts, lock = [], threading.Lock()
            # Ten seconds of backlog, submitted before any worker is there to take it.
            task_ids = [stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name=name), timeout=10).task.task_id for _ in range(200)]
            for node in nodes:
                worker = Worker("127.0.0.1:%d" % node.port, name="w-%d" % node.port, slots=16, log=lambda line: None)

                @worker.handle(handler)
                def call(step):
                    with lock:
                        starts.append(time.monotonic())
                    time.sleep(0.02)
                    return {}

                thread = threading.Thread(target=worker.run, daemon=True)
                thread.start()
                workers.append((worker, thread))

            def explained():
                steps = [stub.GetTask(tasker_pb2.GetTaskRequest(task_id=task_id), timeout=10).steps[0] for task_id in task_ids[-5:]]
                return [s.waiting_reason for s in steps if s.waiting_reason.startswith("rate limit '%s' is spent until " % key)]
            until("a step waiting for the limit says so", explained, within=30)
            for task_id in task_ids:
                task = completed(stub, task_id, within=60)
                assert task.status == tasker_pb2.TASK_STATUS_COMPLETE, task
                assert list(task.steps[0].rate_limit_keys) == [key]
            starts.sort()
            assert len(starts) == 200
            busiest = max(sum(1 for later in starts[i:i + 30] if later - at < 1.0) for i, at in enumerate(starts))
            rate = (len(starts) - 1) / (starts[-1] - starts[0])
            print("most starts in a second: %d, rate %.2f/s" % (busiest, rate))
            assert busiest <= 20, busiest
            assert 18 <= rate <= 22, rate
    finally:
        for worker, _ in workers:
            worker.stop(drain_timeout=1)
        for node in nodes:
            node.stop()


def test_a_task_concurrency_key_runs_at_most_its_limit_of_tasks_in_order_across_two_nodes(postgres, redis):
    nodes = [tasker_serve(postgres, redis) for _ in range(2)]
    workers = []
    try:
        name = "task-limited-%s" % uuid.uuid4().hex[:8]
        with grpc.insecure_channel("127.0.0.1:%d" % nodes[0].port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
                name=name, version="1", concurrency=tasker_pb2.ConcurrencyLimit(key="customer:{$.customer}", max_running=2),
                steps=[tasker_pb2.StepTemplate(name="first", handler=name + ".first"),
                       tasker_pb2.StepTemplate(name="second", handler=name + ".second", depends_on=["first"])])), timeout=10)
            spans, lock = {}, threading.Lock()
            for node in nodes:
                worker = Worker("127.0.0.1:%d" % node.port, name="w-%d" % node.port, slots=8, log=lambda line: None)

                @worker.handle(name + ".first")
                def first(step):
                    with lock:
                        spans[step.task_id] = [step.context.get("customer"), time.monotonic(), None]
                    time.sleep(0.15)
                    return {}

                @worker.handle(name + ".second")
                def second(step):
                    time.sleep(0.15)
                    with lock:
                        spans[step.task_id][2] = time.monotonic()
                    return {}

                thread = threading.Thread(target=worker.run, daemon=True)
                thread.start()
                workers.append((worker, thread))
            task_ids = [stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name=name, context=context(customer="c%d" % (n % 2))), timeout=10).task
                        for n in range(20)]
            assert [task.admitted for task in task_ids[:4]] == [True, True, True, True], "two places for each of two keys"
            waiting = stub.GetTask(tasker_pb2.GetTaskRequest(task_id=task_ids[-1].task_id), timeout=10)
            assert not waiting.admitted and waiting.concurrency_key == "customer:c1" and waiting.status == tasker_pb2.TASK_STATUS_PENDING
            assert waiting.steps[0].waiting_reason == "the task waits for a place of its concurrency key 'customer:c1'", waiting.steps[0]
            for task in task_ids:
                done = completed(stub, task.task_id, within=60)
                assert done.admitted and all(step.attempts == 1 for step in done.steps), done
            most = {}
            for customer in ("c0", "c1"):
                mine = [(start, end) for key, start, end in spans.values() if key == customer]
                events = sorted([(start, 1) for start, _ in mine] + [(end, -1) for _, end in mine])
                running = 0
                for _, change in events:
                    running += change
                    most[customer] = max(most.get(customer, 0), running)
            print("most tasks at once per key:", most)
            assert most == {"c0": 2, "c1": 2}, most
            for customer in ("c0", "c1"):
                submitted = [task.task_id for task in task_ids if task.context["customer"] == customer]
                started = sorted(submitted, key=lambda task_id: spans[task_id][1])
                # Two places: each task starts no later than the one submitted two after it.
                assert all(submitted.index(task_id) <= position + 1 for position, task_id in enumerate(started)), (submitted, started)
    finally:
        for worker, _ in workers:
            worker.stop(drain_timeout=1)
        for node in nodes:
            node.stop()
