"""Metrics as Prometheus sees them: Debian's `prometheus` scrapes a node every second while a
workload with a known outcome runs, and its HTTP API must give exactly what the run did
(submitted, finished by status, attempts by outcome, queue waits, run and task times, worker
gauges, RPCs by code). The exposition also parses with prometheus_client's parser. Plus the
logs: JSON lines with their fields, and the level honoured."""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import grpc
import pytest
from google.protobuf import struct_pb2
from prometheus_client.parser import text_string_to_metric_families

from conftest import Service, binary, free_port, tasker_serve, terminate, wait_for_port
from raw_worker import RawWorker
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()


class Prometheus:
    """A Prometheus of the test's own, scraping `target` every second, stopped by its pid."""

    def __init__(self, target):
        executable = shutil.which("prometheus")
        if executable is None:
            pytest.fail("no prometheus: scripts/install-deps.sh installs Debian's prometheus package")
        self.root = tempfile.mkdtemp(prefix="tasker-prometheus-")
        config = os.path.join(self.root, "prometheus.yml")
        with open(config, "w") as out:
            out.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                      "scrape_configs:\n  - job_name: tasker\n    static_configs:\n      - targets: ['%s']\n" % target)
        self.port = free_port()
        self.process = subprocess.Popen(
            [executable, "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(self.root, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)

    def query(self, expression):
        """{labels as a sorted tuple: value} of an instant query."""
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (self.port, urllib.parse.urlencode({"query": expression}))
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return {tuple(sorted((k, v) for k, v in series["metric"].items() if k not in ("job", "instance"))): float(series["value"][1])
                for series in answer["data"]["result"]}

    def value(self, expression):
        values = self.query(expression)
        return sum(values.values()) if values else None

    def stop(self):
        terminate(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


def answer(worker, stop):
    """Answers each assignment as its task's context says: ok; retry (fails retryably on
    attempt 1); fail (fails for good)."""
    while not stop.is_set():
        try:
            message = worker.inbox.get(timeout=0.1)
        except Exception:
            continue
        if not message.HasField("assignment"):
            continue
        assignment = message.assignment
        plan = assignment.context.fields["plan"].string_value
        if plan == "fail":
            worker.fail(assignment, "the card was declined")
        elif plan == "retry" and assignment.attempt == 1:
            worker.outbox.put(worker_message_retry(assignment))
        else:
            worker.succeed(assignment)


def worker_message_retry(assignment):
    workers_pb2, _ = tasker_protos.load_workers()

    return workers_pb2.WorkerMessage(result=workers_pb2.StepResult(
        step_id=assignment.step_id, attempt=assignment.attempt,
        failure=workers_pb2.StepFailure(message="busy, try again", retryable=True)))


def test_prometheus_sees_exactly_what_the_run_did(postgres, redis):
    server = tasker_serve(postgres, redis)
    prometheus = Prometheus("127.0.0.1:%d" % server.http_port)
    stop = threading.Event()
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
                name="metered", version="1", steps=[tasker_pb2.StepTemplate(
                    name="charge", handler="metered.charge", retry_limit=3,
                    backoff=tasker_pb2.BackoffPolicy(base_seconds=0.1, max_seconds=0.2))])), timeout=10)
            worker = RawWorker(channel, ["metered.charge"], slots=4, heartbeats=True)
            threading.Thread(target=answer, args=(worker, stop), daemon=True).start()
            plans = ["ok"] * 4 + ["retry"] * 4 + ["fail"] * 2
            ids = []
            for plan in plans:
                context = struct_pb2.Struct()
                context.update({"plan": plan})
                ids.append(stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="metered", context=context), timeout=10).task.task_id)
            deadline = time.time() + 30
            while True:
                statuses = [stub.GetTask(tasker_pb2.GetTaskRequest(task_id=i), timeout=10).status for i in ids]
                if all(s in (tasker_pb2.TASK_STATUS_COMPLETE, tasker_pb2.TASK_STATUS_ERROR) for s in statuses):
                    break
                assert time.time() < deadline, statuses
                time.sleep(0.1)
            assert statuses.count(tasker_pb2.TASK_STATUS_ERROR) == 2

            expected = {
                'tasker_tasks_submitted_total{template="metered"}': 10,
                'tasker_tasks_finished_total{template="metered",status="complete"}': 8,
                'tasker_tasks_finished_total{template="metered",status="error"}': 2,
                'tasker_step_attempts_total{handler="metered.charge",outcome="success"}': 8,
                'tasker_step_attempts_total{handler="metered.charge",outcome="retryable_failure"}': 4,
                'tasker_step_attempts_total{handler="metered.charge",outcome="permanent_failure"}': 2,
                'tasker_step_queue_wait_seconds_count{handler="metered.charge"}': 14,
                'tasker_step_run_seconds_count{handler="metered.charge"}': 14,
                'tasker_task_duration_seconds_count{template="metered"}': 10,
                'tasker_rpc_requests_total{method="tasker.v1.Tasker/SubmitTask",code="OK"}': 10,
                'tasker_rpc_duration_seconds_count{method="tasker.v1.Tasker/SubmitTask"}': 10,
                'tasker_workers_connected{handler="metered.charge"}': 1,
                'tasker_worker_slots{handler="metered.charge",state="free"}': 4,
                'tasker_worker_slots{handler="metered.charge",state="busy"}': 0,
                'tasker_queue_ready{handler="metered.charge"}': 0,
            }
            deadline = time.time() + 20
            while True:
                seen = {expression: prometheus.value(expression) for expression in expected}
                if seen == expected:
                    break
                assert time.time() < deadline, {k: (seen[k], v) for k, v in expected.items() if seen[k] != v}
                time.sleep(0.5)
            # Every queue wait is within the histogram's buckets, and the 2-step retries waited at least their backoff.
            assert prometheus.value('tasker_step_queue_wait_seconds_bucket{handler="metered.charge",le="+Inf"}') == 14
            assert prometheus.value('tasker_task_duration_seconds_sum{template="metered"}') > 4 * 0.1

            # No label carries a task or step id.
            for family in text_string_to_metric_families(urllib.request.urlopen(
                    "http://127.0.0.1:%d/metrics" % server.http_port, timeout=10).read().decode()):
                for sample in family.samples:
                    for value in sample.labels.values():
                        assert value not in ids, (family.name, sample.labels)
            stop.set()
            worker.close()
    finally:
        stop.set()
        prometheus.stop()
        server.stop()


def test_the_exposition_parses_and_histograms_are_whole(postgres, redis):
    server = tasker_serve(postgres, redis)
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            for _ in range(5):
                stub.ListTasks(tasker_pb2.ListTasksRequest(), timeout=10)
            with pytest.raises(grpc.RpcError):
                stub.GetTask(tasker_pb2.GetTaskRequest(task_id="not-an-id"), timeout=10)
            channel.unary_unary("/tasker.v1.Nothing/Here", request_serializer=bytes, response_deserializer=bytes)
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % server.http_port, timeout=10).read().decode()
        families = {family.name: family for family in text_string_to_metric_families(text)}
        requests = {(s.labels["method"], s.labels["code"]): s.value for s in families["tasker_rpc_requests"].samples}
        assert requests[("tasker.v1.Tasker/ListTasks", "OK")] == 5
        assert requests[("tasker.v1.Tasker/GetTask", "INVALID_ARGUMENT")] == 1
        for family in families.values():
            if family.type != "histogram":
                continue
            by_series = {}
            for sample in family.samples:
                key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                by_series.setdefault(key, []).append(sample)
            for samples in by_series.values():
                buckets = [s.value for s in samples if s.name.endswith("_bucket")]
                count = [s.value for s in samples if s.name.endswith("_count")][0]
                assert buckets == sorted(buckets) and buckets[-1] == count, (family.name, samples)
    finally:
        server.stop()


def test_logs_are_json_lines_with_their_fields_and_the_level_is_honoured(postgres, redis):
    server = Service([binary("tasker"), "serve", "--port", "{port}", "--database-url", postgres.url, "--redis-url", redis.url,
                      "--log-format", "json"])
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            worker = RawWorker(channel, ["logged.a", "logged.b"], slots=2, heartbeats=True)
            worker.close()
        deadline = time.time() + 10
        while '"worker left"' not in server.output() and '"worker lost"' not in server.output():
            assert time.time() < deadline, server.output()
            time.sleep(0.1)
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    assert len(lines) == len([line for line in server.output().splitlines() if line.strip()]), server.output()
    by_message = {line["message"]: line for line in lines}
    connected = by_message["worker connected"]
    assert connected["handlers"] == "logged.a,logged.b" and connected["slots"] == "2" and connected["worker_name"] == "raw", connected
    assert connected["level"] == "info" and "time" in connected and connected["label"] == "tasker.dispatch"
    assert "node started" in by_message and "node stopped" in by_message, sorted(by_message)
    gone = by_message.get("worker left") or by_message["worker lost"]
    assert gone["worker"] == connected["worker"]

    quiet = Service([binary("tasker"), "serve", "--port", "{port}", "--database-url", postgres.url, "--log-level", "warning"])
    try:
        time.sleep(0.5)
    finally:
        quiet.stop()
    assert "listening" not in quiet.output() and "node started" not in quiet.output(), quiet.output()
    bad = subprocess.run([binary("tasker"), "serve", "--log-format", "xml"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 64 and "--log-format" in bad.stderr, bad
