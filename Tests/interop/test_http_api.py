"""The JSON API under /api/v1 against `tasker serve` on a real Postgres and Redis with a Python
SDK worker: each route's body is the proto JSON of the same call over gRPC, refusals carry the
gRPC code with its HTTP status, update streams resume with Last-Event-ID giving exactly what was
missed, and with --auth the API asks what the RPCs ask."""
import subprocess
import threading
import uuid

import grpc
import pytest
from google.protobuf import json_format

from conftest import Service, binary, completed, until
from http_api import EventStream, get, post
import tasker_protos
from tasker_sdk import Permanent, Worker

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()

TEMPLATE = {"name": "api_flow", "version": "1", "steps": [
    {"name": "a", "handler": "api.a"},
    {"name": "b", "handler": "api.b", "depends_on": ["a"], "retry_limit": 1},
    {"name": "c", "handler": "api.c", "depends_on": ["a"]},
]}
# A handler no worker serves: its step waits until it is resolved or its task cancelled.
STUCK = {"name": "api_stuck", "version": "1", "steps": [
    {"name": "first", "handler": "api.a"}, {"name": "manual", "handler": "api.nobody", "depends_on": ["first"]}]}


def as_json(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


@pytest.fixture(scope="module")
def node(postgres, redis):
    server = Service([binary("tasker"), "serve", "--port", "{port}", "--database-url", postgres.url, "--redis-url", redis.url])
    failed_once = set()
    worker = Worker("127.0.0.1:%d" % server.port, name="api-worker", slots=8, log=lambda line: None)

    @worker.handle("api.a")
    def a(step):
        return {"seen": step.context.get("n", 0)}

    @worker.handle("api.b")
    def b(step):
        if step.context.get("fail_once") and step.task_id not in failed_once:
            failed_once.add(step.task_id)
            raise Permanent("b refuses the first time")
        return {"b": True}

    @worker.handle("api.c")
    def c(step):
        return {"c": 1}

    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    yield server
    worker.stop(drain_timeout=5)
    thread.join(10)
    server.stop()


@pytest.fixture
def stub(node):
    with grpc.insecure_channel("127.0.0.1:%d" % node.port) as channel:
        yield tasker_pb2_grpc.TaskerStub(channel)




def register(node, template):
    status, body = post(node.http_port, "/api/v1/templates", {"template": template})
    assert status == 200, body
    return body


def submit(node, name, context=None, **fields):
    status, body = post(node.http_port, "/api/v1/tasks", dict({"name": name, "context": context or {}}, **fields))
    assert status == 200, body
    return body["task"]["task_id"]


def step_status(node, task_id, name):
    return {s["name"]: s["status"] for s in get(node.http_port, "/api/v1/tasks/" + task_id)[1]["steps"]}[name]


def test_every_read_route_answers_what_its_rpc_answers(node, stub):
    registered = register(node, TEMPLATE)
    assert registered["template"]["name"] == "api_flow" and "steps" in registered["template"], registered
    again = register(node, TEMPLATE)
    assert again.get("created", False) is False and again["template"] == registered["template"]
    register(node, STUCK)

    task_id = submit(node, "api_flow", {"n": 7}, tags=["api", "first"], initiator="pytest")
    completed(stub, task_id)
    port = node.http_port
    assert get(port, "/api/v1/tasks/" + task_id)[1] == as_json(stub.GetTask(tasker_pb2.GetTaskRequest(task_id=task_id)))
    status, listed = get(port, "/api/v1/tasks?name=api_flow&status=COMPLETE&tag=api&page_size=5")
    assert status == 200 and listed == as_json(stub.ListTasks(tasker_pb2.ListTasksRequest(
        name="api_flow", status=tasker_pb2.TASK_STATUS_COMPLETE, tag="api", page_size=5)))
    assert [t["task_id"] for t in listed["tasks"]] == [task_id]
    # The enum's whole name is taken too; a filter that matches nothing is an empty list.
    assert get(port, "/api/v1/tasks?status=TASK_STATUS_COMPLETE&tag=api")[1]["tasks"][0]["task_id"] == task_id
    assert get(port, "/api/v1/tasks?tag=nothing-has-this")[1] == {}
    assert get(port, "/api/v1/templates?page_size=10")[1] == as_json(stub.ListTaskTemplates(tasker_pb2.ListTaskTemplatesRequest(page_size=10)))
    # The cluster's view of workers is published every few seconds; once it shows this one:
    until("the worker listed", lambda: len(stub.ListQueues(tasker_pb2.ListQueuesRequest()).queues) >= 3)
    assert get(port, "/api/v1/queues")[1] == as_json(stub.ListQueues(tasker_pb2.ListQueuesRequest()))
    workers = get(port, "/api/v1/workers?handler=api.b")[1]["workers"]
    over_grpc = stub.ListWorkers(tasker_pb2.ListWorkersRequest(handler="api.b")).workers
    assert [(w["worker_id"], w["name"], sorted(w["handlers"])) for w in workers] == \
        [(w.worker_id, w.name, sorted(w.handlers)) for w in over_grpc] and workers[0]["name"] == "api-worker"

    # Paging: the token of one page brings the next.
    for n in range(3):
        submit(node, "api_stuck", {"n": n}, tags=["paged"])
    first = get(port, "/api/v1/tasks?tag=paged&page_size=2")[1]
    second = get(port, "/api/v1/tasks?tag=paged&page_size=2&page_token=" + first["next_page_token"])[1]
    assert len(first["tasks"]) == 2 and len(second["tasks"]) == 1 and "next_page_token" not in second


def test_the_actions_cancel_retry_and_resolve(node, stub):
    register(node, TEMPLATE)
    register(node, STUCK)
    port = node.http_port

    # Retry: b fails for good once; retried, it runs again and the task completes.
    task_id = submit(node, "api_flow", {"fail_once": True})
    until("b in ERROR", lambda: step_status(node, task_id, "b") == "STEP_STATUS_ERROR")
    status, task = post(port, "/api/v1/tasks/%s/steps/b:retry" % task_id)
    assert status == 200 and task["task_id"] == task_id, task
    assert completed(stub, task_id).status == tasker_pb2.TASK_STATUS_COMPLETE
    status, refused = post(port, "/api/v1/tasks/%s/steps/b:retry" % task_id)
    assert (status, refused["code"]) == (412, "FAILED_PRECONDITION") and "not ERROR" in refused["message"], refused

    # Resolve: the step no one serves is given its results by hand.
    task_id = submit(node, "api_stuck")
    until("first done", lambda: step_status(node, task_id, "first") == "STEP_STATUS_COMPLETE")
    status, task = post(port, "/api/v1/tasks/%s/steps/manual:resolve" % task_id, {"results": {"approved_by": "ada", "n": 3}, "reason": "done by hand"})
    assert status == 200, task
    done = completed(stub, task_id)
    manual = [s for s in done.steps if s.name == "manual"][0]
    assert manual.status == tasker_pb2.STEP_STATUS_RESOLVED_MANUALLY and json_format.MessageToDict(manual.results) == {"approved_by": "ada", "n": 3}

    # Cancel, then cancel again.
    task_id = submit(node, "api_stuck")
    status, task = post(port, "/api/v1/tasks/%s:cancel" % task_id, {"reason": "no longer wanted"})
    assert status == 200 and task["status"] == "TASK_STATUS_CANCELLED", task
    assert stub.GetTask(tasker_pb2.GetTaskRequest(task_id=task_id)).status == tasker_pb2.TASK_STATUS_CANCELLED
    status, refused = post(port, "/api/v1/tasks/%s:cancel" % task_id)
    assert (status, refused["code"]) == (412, "FAILED_PRECONDITION"), refused


def test_bad_requests_are_refused_plainly_with_the_status_of_their_code(node):
    register(node, STUCK)
    port = node.http_port
    task_id = submit(node, "api_stuck", idempotency_key="api-key-1")
    missing = str(uuid.uuid4())
    long = "x" * 10000

    def refused(status, code, *words, response):
        got_status, body = response
        assert (got_status, body["code"]) == (status, code), response
        assert set(body) == {"code", "message"} and len(body["message"]) < 400, body
        for word in words:
            assert word in body["message"], body

    refused(400, "INVALID_ARGUMENT", "not a UUID", response=get(port, "/api/v1/tasks/not-a-uuid"))
    refused(404, "NOT_FOUND", missing, response=get(port, "/api/v1/tasks/" + missing))
    refused(404, "NOT_FOUND", "'nope'", response=post(port, "/api/v1/tasks/%s/steps/nope:retry" % task_id))
    refused(400, "INVALID_ARGUMENT", "unknown query parameter 'colour'", "page_size", response=get(port, "/api/v1/tasks?colour=red"))
    refused(400, "INVALID_ARGUMENT", "'bogus'", "RESOLVED_MANUALLY", response=get(port, "/api/v1/tasks?status=bogus"))
    refused(400, "INVALID_ARGUMENT", "page_size", response=get(port, "/api/v1/tasks?page_size=many"))
    refused(400, "INVALID_ARGUMENT", "given twice", response=get(port, "/api/v1/tasks?tag=a&tag=b"))
    refused(400, "INVALID_ARGUMENT", "not JSON", response=post(port, "/api/v1/tasks", raw=b'{"name": [1', headers={"Content-Type": "application/json"}))
    refused(400, "INVALID_ARGUMENT", "JSON object", response=post(port, "/api/v1/tasks", [1, 2]))
    refused(400, "INVALID_ARGUMENT", "did you mean 'context'", response=post(port, "/api/v1/tasks", {"name": "api_stuck", "contxt": {}}))
    refused(400, "INVALID_ARGUMENT", "is not a list", response=post(port, "/api/v1/tasks", {"name": "api_stuck", "tags": "one"}))
    refused(400, "INVALID_ARGUMENT", "unknown field", response=post(port, "/api/v1/tasks", {long: 1}))
    refused(400, "INVALID_ARGUMENT", "Content-Type: application/json", response=post(port, "/api/v1/tasks", raw=b"name=x", headers={"Content-Type": "text/plain"}))
    refused(404, "NOT_FOUND", "no template", response=post(port, "/api/v1/tasks", {"name": "no_such_template"}))
    refused(400, "INVALID_ARGUMENT", "is not the path's", response=post(port, "/api/v1/tasks/%s:cancel" % task_id, {"task_id": missing}))
    refused(409, "ALREADY_EXISTS", response=post(port, "/api/v1/tasks", {"name": "api_stuck", "idempotency_key": "api-key-1", "context": {"other": 1}}))
    refused(413, "RESOURCE_EXHAUSTED", "4 MiB", response=post(port, "/api/v1/tasks", raw=b"{" + b" " * (5 << 20) + b"}", headers={"Content-Type": "application/json"}))
    refused(400, "INVALID_ARGUMENT", "this route takes none", response=post(port, "/api/v1/tasks?x=1", {"name": "api_stuck"}))
    # A well-formed repeat of the idempotent submit is the same task, and nothing above changed it.
    status, again = post(port, "/api/v1/tasks", {"name": "api_stuck", "idempotency_key": "api-key-1"})
    assert status == 200 and again["task"]["task_id"] == task_id and again.get("created", False) is False, again
    assert get(port, "/api/v1/nowhere")[0] == 404
    assert get(port, "/api/v1/tasks/%s/steps/manual:retry" % task_id)[0] in (404, 405)


def test_updates_stream_as_events_and_resume_with_last_event_id(node, stub):
    register(node, TEMPLATE)
    register(node, STUCK)
    port = node.http_port
    task_id = submit(node, "api_flow")
    completed(stub, task_id)
    over_grpc = [as_json(u) for u in stub.StreamStepUpdates(tasker_pb2.StreamStepUpdatesRequest(task_id=task_id), timeout=10)]

    stream = EventStream(port, "/api/v1/tasks/%s/updates" % task_id)
    assert stream.status == 200 and stream.headers["Content-Type"] == "text/event-stream"
    updates, end = stream.until_status()
    stream.close()
    assert end == {"code": "OK"}
    assert [data for _, data in updates] == over_grpc and [int(i) for i, _ in updates] == list(range(1, len(over_grpc) + 1))

    # Resumed after the 4th: exactly the 5th on, by the header a reconnecting EventSource sends
    # and by the query parameter alike.
    for options in ({"headers": {"Last-Event-ID": "4"}}, {}):
        path = "/api/v1/tasks/%s/updates" % task_id + ("" if options else "?after_sequence=4")
        stream = EventStream(port, path, **options)
        resumed, end = stream.until_status()
        stream.close()
        assert [data for _, data in resumed] == over_grpc[4:] and end == {"code": "OK"}

    # Live: a stream opened on a waiting task hears its resolution as it happens.
    waiting = submit(node, "api_stuck")
    until("first done", lambda: step_status(node, waiting, "first") == "STEP_STATUS_COMPLETE")
    everything = EventStream(port, "/api/v1/updates")
    live = EventStream(port, "/api/v1/tasks/%s/updates?after_sequence=%s" % (waiting, get(port, "/api/v1/tasks/" + waiting)[1]["last_sequence"]))
    assert live.status == 200 and everything.status == 200
    post(port, "/api/v1/tasks/%s/steps/manual:resolve" % waiting, {"results": {"ok": True}})
    updates, end = live.until_status()
    live.close()
    assert end == {"code": "OK"}
    assert updates[-1][1]["task_status"] in ("TASK_STATUS_COMPLETE", "TASK_STATUS_RESOLVED_MANUALLY"), updates
    assert [u["step_name"] for _, u in updates if u.get("step_name")] == ["manual"], updates
    seen = []
    for _, name, data in everything.events():
        seen.append(data)
        if data.get("task_id") == waiting and data.get("task_status") in ("TASK_STATUS_COMPLETE", "TASK_STATUS_RESOLVED_MANUALLY") and not data.get("step_name"):
            break
    everything.close()
    assert any(u.get("task_id") == waiting and u.get("step_name") == "manual" for u in seen), seen

    # Refusals before the stream are statuses, not events.
    for path, status, code in (("/api/v1/tasks/%s/updates" % uuid.uuid4(), 404, "NOT_FOUND"),
                               ("/api/v1/tasks/nope/updates", 400, "INVALID_ARGUMENT"),
                               ("/api/v1/tasks/%s/updates?after=1" % task_id, 400, "INVALID_ARGUMENT")):
        assert get(port, path)[0:1] == (status,) and get(port, path)[1]["code"] == code, path
    stream = EventStream(port, "/api/v1/tasks/%s/updates" % task_id, headers={"Last-Event-ID": "soon"})
    assert stream.status == 400
    stream.close()
    # Past the newest update: the stream says so in its status event.
    stream = EventStream(port, "/api/v1/tasks/%s/updates?after_sequence=999" % task_id)
    updates, end = stream.until_status()
    stream.close()
    assert updates == [] and end["code"] == "OUT_OF_RANGE", end


def tokens(postgres, *args):
    done = subprocess.run([binary("tasker"), "tokens", *args, "--database-url", postgres.url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done
    return done.stdout.strip()


def test_with_auth_the_api_asks_what_the_rpcs_ask(postgres, redis):
    server = Service([binary("tasker"), "serve", "--port", "{port}", "--database-url", postgres.url, "--redis-url", redis.url, "--auth"])
    try:
        viewer = tokens(postgres, "create", "--name", "api-viewer-%s" % uuid.uuid4().hex[:6], "--role", "viewer")
        submitter = tokens(postgres, "create", "--name", "api-submitter-%s" % uuid.uuid4().hex[:6], "--role", "submitter")
        port = server.http_port
        status, body = get(port, "/api/v1/tasks")
        assert (status, body["code"]) == (401, "UNAUTHENTICATED") and "no token" in body["message"], body
        status, body = get(port, "/api/v1/tasks", token="tkr_" + "A" * 32)
        assert (status, body["code"]) == (401, "UNAUTHENTICATED") and "A" * 32 not in body["message"], body
        assert get(port, "/api/v1/tasks", token=viewer)[0] == 200
        status, body = post(port, "/api/v1/templates", {"template": STUCK}, token=viewer)
        assert (status, body["code"]) == (403, "PERMISSION_DENIED") and "submitter" in body["message"], body
        assert post(port, "/api/v1/templates", {"template": STUCK}, token=submitter)[0] == 200
        status, body = post(port, "/api/v1/tasks", {"name": "api_stuck"}, token=submitter)
        assert status == 200, body
        task_id = body["task"]["task_id"]

        status, session = get(port, "/api/v1/session", token=viewer)
        assert status == 200 and session["auth"] is True and session["role"] == "viewer", session
        assert "GetTask" in session["may"] and "SubmitTask" not in session["may"] and "CancelTask" not in session["may"]
        assert "ResolveStep" in get(port, "/api/v1/session", token=submitter)[1]["may"]
        assert get(port, "/api/v1/session")[0] == 401

        # Streams: the bearer header, or a ticket that opens one stream.
        stream = EventStream(port, "/api/v1/tasks/%s/updates" % task_id)
        assert stream.status == 401
        stream.close()
        status, ticket = post(port, "/api/v1/tickets", token=viewer)
        assert status == 200 and ticket["ticket"].startswith("tkt_") and viewer not in ticket["ticket"], ticket
        assert post(port, "/api/v1/tickets")[0] == 401
        stream = EventStream(port, "/api/v1/tasks/%s/updates?ticket=%s" % (task_id, ticket["ticket"]))
        assert stream.status == 200
        first = next(stream.events())
        assert first[2]["sequence"] == "1", first
        stream.close()
        spent = EventStream(port, "/api/v1/tasks/%s/updates?ticket=%s" % (task_id, ticket["ticket"]))
        assert spent.status == 401
        spent.close()
        stream = EventStream(port, "/api/v1/updates", token=viewer)
        assert stream.status == 200
        stream.close()
        # The dashboard's page itself holds no data and needs no token.
        assert get(port, "/")[0] == 200
    finally:
        server.stop()
