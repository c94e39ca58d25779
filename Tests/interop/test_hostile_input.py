"""Hostile and careless input through a stock grpcio client against `tasker serve` on a real
Postgres and Redis: every RPC answers messages that do not decode, text Postgres cannot hold,
oversized fields and numbers JSON cannot carry with INVALID_ARGUMENT naming the problem, stores
nothing for them, and echoes no more than a short prefix; what it accepts comes back exactly."""
import math
import threading
import time

import grpc
import pytest
from google.protobuf import struct_pb2

from conftest import rss_kib, tasker_serve
from raw_worker import RawWorker
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()
workers_pb2, workers_pb2_grpc = tasker_protos.load_workers()

# The most of a caller's value a message may show, with the words around it.
SHORT = 400


@pytest.fixture(scope="module")
def tasker(postgres, redis):
    service = tasker_serve(postgres, redis)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def channel(tasker):
    with grpc.insecure_channel("127.0.0.1:%d" % tasker.port) as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(channel):
    stub = tasker_pb2_grpc.TaskerStub(channel)
    stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
        name="hostile", version="1", steps=[
            tasker_pb2.StepTemplate(name="a", handler="hostile.a"),
            tasker_pb2.StepTemplate(name="b", handler="hostile.b", depends_on=["a"], skippable=True)])))
    return stub


def refusal(call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as raised:
        result = call(*args, timeout=10, **kwargs)
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, str)):
            list(result)
    return raised.value


def assert_invalid(error, *words):
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    for word in words:
        assert word in error.details(), (word, error.details())
    assert len(error.details()) < SHORT, error.details()


def task_count(stub):
    count, token = 0, ""
    while True:
        page = stub.ListTasks(tasker_pb2.ListTasksRequest(page_size=500, page_token=token), timeout=10)
        count += len(page.tasks)
        token = page.next_page_token
        if not token:
            return count


# --- Messages that do not decode -------------------------------------------------------------

def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def field(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def nested_struct(depth):
    """A Struct holding {"a": {"a": … }} `depth` objects deep, encoded by hand (no encoder
    refuses it on the way)."""
    inner = b""
    for _ in range(depth - 1):
        value = field(5, inner)  # Value.struct_value
        inner = field(1, field(1, b"a") + field(2, value))  # Struct.fields entry {key, value}
    return inner


UNARY = ["RegisterTaskTemplate", "ListTaskTemplates", "SubmitTask", "GetTask", "ListTasks", "CancelTask",
         "RetryStep", "ResolveStep"]
REQUEST_TYPE = {name: "tasker.v1.%sRequest" % name for name in UNARY + ["StreamStepUpdates"]}
# A string field of each request (or of a message inside it) holding invalid UTF-8.
BAD_UTF8 = {
    "RegisterTaskTemplate": field(1, field(1, b"\xc3\x28")),
    "ListTaskTemplates": field(2, b"\xc3\x28"),
    "SubmitTask": field(1, b"\xc3\x28"),
    "GetTask": field(1, b"\xc3\x28"),
    "ListTasks": field(1, b"\xc3\x28"),
    "CancelTask": field(1, b"\xc3\x28"),
    "RetryStep": field(1, b"\xc3\x28"),
    "ResolveStep": field(1, b"\xc3\x28"),
    "StreamStepUpdates": field(1, b"\xc3\x28"),
}
UNDECODABLE = {
    "random bytes": bytes.fromhex("ffffffffffffffffff01"),
    "cut mid-field": field(1, b"0123456789abcdef")[:6],
    # Wire types 6 and 7 do not exist; an END_GROUP with no group open ends nothing. (A field
    # sent with another valid wire type is kept as an unknown field, as protobuf parsers do.)
    "an invalid wire type": varint(1 << 3 | 7) + b"\x01",
    "an unmatched end group": varint(1 << 3 | 4),
}


@pytest.mark.parametrize("family", sorted(UNDECODABLE) + ["invalid UTF-8"])
@pytest.mark.parametrize("rpc", UNARY + ["StreamStepUpdates"])
def test_a_request_that_does_not_decode_is_invalid_argument_naming_its_type(channel, stub, rpc, family):
    payload = BAD_UTF8[rpc] if family == "invalid UTF-8" else UNDECODABLE[family]
    path = "/tasker.v1.Tasker/" + rpc
    call = channel.unary_stream(path) if rpc == "StreamStepUpdates" else channel.unary_unary(path)
    before = task_count(stub)
    assert_invalid(refusal(call, payload), REQUEST_TYPE[rpc])
    assert task_count(stub) == before


def test_a_known_field_with_another_wire_type_is_kept_as_unknown(channel, stub):
    listing = channel.unary_unary("/tasker.v1.Tasker/ListTaskTemplates")
    # page_size (an int32) sent as fixed32: ignored, so the request is an empty one.
    answer = tasker_pb2.ListTaskTemplatesResponse.FromString(listing(varint(1 << 3 | 5) + b"\x01\x02\x03\x04", timeout=10))
    assert [t.name for t in answer.templates]


def test_a_struct_nested_past_the_decoders_limit_is_invalid_argument(channel, stub):
    submit = channel.unary_unary("/tasker.v1.Tasker/SubmitTask")
    request = field(1, b"hostile") + field(3, nested_struct(150))
    assert_invalid(refusal(submit, request), "tasker.v1.SubmitTaskRequest")
    # Within what decodes but past the engine's limit of 32: refused with the path.
    request = field(1, b"hostile") + field(3, nested_struct(40))
    assert_invalid(refusal(submit, request), "context.a.a", "over the limit of 32")


@pytest.mark.parametrize("family", sorted(UNDECODABLE) + ["invalid UTF-8"])
def test_a_worker_message_that_does_not_decode_ends_only_that_stream(channel, stub, family):
    connect = channel.stream_stream("/tasker.v1.Workers/Connect")
    bad = field(1, field(1, b"\xc3\x28")) if family == "invalid UTF-8" else UNDECODABLE[family]
    error = refusal(connect, iter([bad]))
    assert_invalid(error, "tasker.v1.WorkerMessage")
    # The channel, and the server, go on serving.
    assert stub.ListTaskTemplates(tasker_pb2.ListTaskTemplatesRequest(), timeout=10).templates


# --- Text Postgres cannot hold, and sizes ----------------------------------------------------

def submit(stub, timeout=10, **fields):
    return stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="hostile", **fields), timeout=timeout)


NUL_FIELDS = [
    ("name", {"name": "hostile\x00junk"}, "name"),
    ("version", {"version": "1\x00"}, "version"),
    ("initiator", {"initiator": "me\x00"}, "initiator"),
    ("source_system", {"source_system": "\x00"}, "source_system"),
    ("reason", {"reason": "because\x00 cut"}, "reason"),
    ("tags", {"tags": ["ok", "t\x00ag"]}, "tags[1]"),
    ("bypass_steps", {"bypass_steps": ["b\x00"]}, "bypass_steps[0]"),
    ("idempotency_key", {"idempotency_key": "key\x00one"}, "idempotency_key"),
]


@pytest.mark.parametrize("name,fields,named", NUL_FIELDS, ids=[case[0] for case in NUL_FIELDS])
def test_a_nul_byte_in_any_submit_field_is_refused_naming_it(stub, name, fields, named):
    request = {"name": "hostile"}
    request.update(fields)
    before = task_count(stub)
    error = refusal(stub.SubmitTask, tasker_pb2.SubmitTaskRequest(**request))
    assert_invalid(error, named, "NUL")
    assert task_count(stub) == before


def test_idempotency_keys_that_differ_after_a_nul_are_never_one_key(stub):
    first = submit(stub, idempotency_key="order-1")
    assert first.created
    assert_invalid(refusal(submit, stub, idempotency_key="order-1\x00other"), "idempotency_key")
    assert submit(stub, idempotency_key="order-1").task.task_id == first.task.task_id


@pytest.mark.parametrize("path,value", [
    ("context.note", {"note": "a\x00b"}),
    ("context has a key", {"ke\x00y": 1}),
    ("context.list[1]", {"list": [1, "x\x00"]}),
])
def test_a_nul_byte_inside_the_context_is_refused_with_its_path(stub, path, value):
    context = struct_pb2.Struct()
    context.update(value)
    assert_invalid(refusal(submit, stub, context=context), path, "NUL")


def test_nul_bytes_elsewhere_are_refused(stub):
    task = submit(stub).task
    for call, request, named in [
        (stub.CancelTask, tasker_pb2.CancelTaskRequest(task_id=task.task_id, reason="x\x00"), "reason"),
        (stub.RetryStep, tasker_pb2.RetryStepRequest(task_id=task.task_id, step_name="a\x00junk"), "step_name"),
        (stub.ResolveStep, tasker_pb2.ResolveStepRequest(task_id=task.task_id, step_name="a", reason="\x00"), "reason"),
        (stub.ListTasks, tasker_pb2.ListTasksRequest(tag="t\x00"), "tag"),
        (stub.RegisterTaskTemplate, tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
            name="n\x00", version="1", steps=[tasker_pb2.StepTemplate(name="a", handler="h")])), "template name"),
        (stub.RegisterTaskTemplate, tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
            name="n", version="1", steps=[tasker_pb2.StepTemplate(name="a", handler="h\x00")])), "handler"),
    ]:
        assert_invalid(refusal(call, request), named, "NUL")
    assert stub.GetTask(tasker_pb2.GetTaskRequest(task_id=task.task_id)).status == tasker_pb2.TASK_STATUS_PENDING


def test_a_huge_id_is_refused_with_a_short_message_and_answered(stub):
    huge = "x" * (3 * 1024 * 1024)
    for call, request in [
        (stub.GetTask, tasker_pb2.GetTaskRequest(task_id=huge)),
        (stub.CancelTask, tasker_pb2.CancelTaskRequest(task_id=huge)),
        (stub.RetryStep, tasker_pb2.RetryStepRequest(task_id=huge, step_name="a")),
        (stub.ResolveStep, tasker_pb2.ResolveStepRequest(task_id=huge, step_name="a")),
        (stub.StreamStepUpdates, tasker_pb2.StreamStepUpdatesRequest(task_id=huge)),
        (stub.ListTasks, tasker_pb2.ListTasksRequest(page_token=huge)),
        (stub.ListTaskTemplates, tasker_pb2.ListTaskTemplatesRequest(page_token=huge)),
    ]:
        assert_invalid(refusal(call, request), "bytes")


@pytest.mark.parametrize("fields,named", [
    ({"name": "n" * 129}, "name is 129 bytes"),
    ({"initiator": "i" * 257}, "initiator is 257 bytes"),
    ({"reason": "r" * 4097}, "reason is 4097 bytes"),
    ({"tags": ["t"] * 33}, "tags has 33 entries"),
    ({"tags": [""]}, "tags[0] is empty"),
    ({"tags": ["t" * 129]}, "tags[0] is 129 bytes"),
    ({"idempotency_key": "k" * 257}, "idempotency_key is 257 bytes"),
])
def test_fields_past_their_limits_are_refused_before_postgres(stub, fields, named):
    request = {"name": "hostile"}
    request.update(fields)
    assert_invalid(refusal(stub.SubmitTask, tasker_pb2.SubmitTaskRequest(**request)), named)


def test_a_context_past_its_limit_is_refused(stub):
    context = struct_pb2.Struct()
    context.update({"blob": "x" * (300 * 1024)})
    assert_invalid(refusal(submit, stub, context=context), "context is", "over the limit of 262144")


def test_templates_past_their_limits_are_refused(stub):
    def register(timeout=10, **fields):
        return stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(
            template=tasker_pb2.TaskTemplate(**fields)), timeout=timeout)

    many = [tasker_pb2.StepTemplate(name="s%d" % i, handler="h") for i in range(201)]
    assert_invalid(refusal(register, name="big", version="1", steps=many), "201 steps")
    one = [tasker_pb2.StepTemplate(name="a", handler="h")]
    assert_invalid(refusal(register, name="n" * 5000, version="1", steps=one), "template name is 5000 bytes")
    assert_invalid(refusal(register, name="big", version="1", steps=one, context_schema_json=" " * 70000),
                   "context_schema_json is 70000 bytes")
    for step, named in [
        (tasker_pb2.StepTemplate(name="a", handler="h", retry_limit=1001), "retry_limit 1001"),
        (tasker_pb2.StepTemplate(name="a", handler="h", timeout_seconds=-1), "timeout_seconds -1"),
        (tasker_pb2.StepTemplate(name="a", handler="h", backoff=tasker_pb2.BackoffPolicy(base_seconds=math.nan)),
         "base_seconds is nan"),
        (tasker_pb2.StepTemplate(name="a", handler="h", backoff=tasker_pb2.BackoffPolicy(max_seconds=math.inf)),
         "max_seconds is inf"),
        (tasker_pb2.StepTemplate(name="a", handler="h", backoff=tasker_pb2.BackoffPolicy(base_seconds=-1)),
         "base_seconds is -1"),
        (tasker_pb2.StepTemplate(name="a", handler="h", backoff=tasker_pb2.BackoffPolicy(jitter=2)), "jitter is 2"),
        (tasker_pb2.StepTemplate(name="a", handler="h", backoff=tasker_pb2.BackoffPolicy(jitter=-0.5)), "jitter is -0.5"),
    ]:
        assert_invalid(refusal(register, name="numbers", version="1", steps=[step]), named)


def test_negative_page_sizes_and_unknown_statuses_are_refused(stub):
    assert_invalid(refusal(stub.ListTasks, tasker_pb2.ListTasksRequest(page_size=-1)), "page_size is -1")
    assert_invalid(refusal(stub.ListTaskTemplates, tasker_pb2.ListTaskTemplatesRequest(page_size=-5)), "page_size is -5")
    assert_invalid(refusal(stub.ListTasks, tasker_pb2.ListTasksRequest(status=99)), "status 99")


# --- Numbers ---------------------------------------------------------------------------------

EXTREMES = {"huge": 1e300, "tiny": 5e-324, "max": 1.7976931348623157e308, "min_normal": 2.2250738585072014e-308,
            "negative": -1.2345678901234567e-200, "third": 1 / 3, "big_integer": 9007199254740993.0,
            "nested": {"list": [1e308, -5e-324, 0.1]}}


def test_any_finite_double_round_trips_exactly(stub):
    context = struct_pb2.Struct()
    context.update(EXTREMES)
    task = submit(stub, context=context).task
    read = stub.GetTask(tasker_pb2.GetTaskRequest(task_id=task.task_id), timeout=10)
    assert read.context == context
    for key in ("huge", "tiny", "max", "min_normal", "negative", "third"):
        assert read.context[key] == EXTREMES[key], key
    assert list(read.context["nested"]["list"]) == [1e308, -5e-324, 0.1]
    listed = stub.ListTasks(tasker_pb2.ListTasksRequest(name="hostile", page_size=1), timeout=10).tasks[0]
    assert listed.context == context


@pytest.mark.parametrize("value,shown", [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_non_finite_numbers_are_refused_naming_their_path(stub, value, shown):
    context = struct_pb2.Struct()
    context.update({"order": {"total": value}})
    assert_invalid(refusal(submit, stub, context=context), "context.order.total is %s" % shown)
    results = struct_pb2.Struct()
    results.update({"x": value})
    task = submit(stub).task
    assert_invalid(refusal(stub.ResolveStep, tasker_pb2.ResolveStepRequest(task_id=task.task_id, step_name="a", results=results)),
                   "results.x is %s" % shown)


# --- Responses that fit ----------------------------------------------------------------------

def test_list_pages_end_by_size_and_every_task_is_reached(stub):
    stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
        name="bulky", version="1", steps=[tasker_pb2.StepTemplate(name="a", handler="bulky.a")])))
    context = struct_pb2.Struct()
    context.update({"blob": "x" * (250 * 1024)})
    ids = {stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="bulky", context=context), timeout=10).task.task_id
           for _ in range(20)}
    seen, token, pages = [], "", 0
    while True:
        page = stub.ListTasks(tasker_pb2.ListTasksRequest(name="bulky", page_size=500, page_token=token), timeout=10)
        assert page.ByteSize() < 4 * 1024 * 1024
        seen += [task.task_id for task in page.tasks]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert set(seen) == ids and len(seen) == len(ids)
    assert pages >= 2


def test_pages_read_past_a_chunk_of_rows_hold_every_row_once(stub):
    stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
        name="many", version="1", steps=[tasker_pb2.StepTemplate(name="a", handler="many.a")])))
    ids = [stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="many"), timeout=10).task.task_id for _ in range(120)]
    whole = stub.ListTasks(tasker_pb2.ListTasksRequest(name="many", page_size=500), timeout=10)
    assert [t.task_id for t in whole.tasks] == list(reversed(ids)) and not whole.next_page_token
    first = stub.ListTasks(tasker_pb2.ListTasksRequest(name="many", page_size=100), timeout=10)
    assert len(first.tasks) == 100 and first.next_page_token
    rest = stub.ListTasks(tasker_pb2.ListTasksRequest(name="many", page_size=100, page_token=first.next_page_token), timeout=10)
    assert [t.task_id for t in first.tasks] + [t.task_id for t in rest.tasks] == list(reversed(ids))
    assert not rest.next_page_token


def test_template_listing_pages_end_by_size(stub):
    description = "d" * 1000
    versions = 20  # about 220 KiB each: more than one page holds
    for version in range(versions):
        steps = [tasker_pb2.StepTemplate(name="s%d" % i, handler="h", description=description) for i in range(200)]
        stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
            name="wide", version=str(version), description="w" * 4000, steps=steps)), timeout=10)
    names, token, pages = [], "", 0
    while True:
        page = stub.ListTaskTemplates(tasker_pb2.ListTaskTemplatesRequest(page_token=token), timeout=10)
        assert page.ByteSize() < 4 * 1024 * 1024
        names += [(t.name, t.version) for t in page.templates]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert [v for n, v in names if n == "wide"] == [str(v) for v in range(versions)]
    assert len(names) == len(set(names))
    assert pages >= 2
    two = stub.ListTaskTemplates(tasker_pb2.ListTaskTemplatesRequest(page_size=2), timeout=10)
    assert len(two.templates) == 2 and two.next_page_token


# --- Results from workers --------------------------------------------------------------------

def wait_for(condition, timeout=10, what="the condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("%s: not within %.0f s" % (what, timeout))


def test_one_bad_result_fails_its_attempt_at_once_and_costs_no_other(channel, stub):
    stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
        name="isolated", version="1", steps=[tasker_pb2.StepTemplate(name="only", handler="isolated.only", retry_limit=1)])))
    context = struct_pb2.Struct()
    context.update(EXTREMES)
    tasks = [stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="isolated", context=context), timeout=10).task.task_id
             for _ in range(8)]
    worker = RawWorker(channel, ["isolated.only"])
    try:
        assignments = worker.assignments(8)
        # The assignment carries the context exactly.
        assert all(a.context == context for a in assignments)
        bad = assignments[3]
        started = time.time()
        for assignment in assignments:
            results = struct_pb2.Struct()
            if assignment is bad:
                results.update({"ke\x00y": 1})
            else:
                results.update({"task": assignment.task_id, "big": 1e300})
            worker.succeed(assignment, results)

        def finished():
            read = [stub.GetTask(tasker_pb2.GetTaskRequest(task_id=t), timeout=10) for t in tasks]
            return read if all(t.status in (tasker_pb2.TASK_STATUS_COMPLETE, tasker_pb2.TASK_STATUS_ERROR) for t in read) else None

        read = wait_for(finished, timeout=5, what="every task finished")
        assert time.time() - started < 5
        by_id = {t.task_id: t for t in read}
        failed = by_id[bad.task_id]
        assert failed.status == tasker_pb2.TASK_STATUS_ERROR
        assert "NUL" in failed.steps[0].last_error.message
        for task_id in tasks:
            if task_id == bad.task_id:
                continue
            step = by_id[task_id].steps[0]
            assert by_id[task_id].status == tasker_pb2.TASK_STATUS_COMPLETE
            assert step.attempts == 1  # recorded the first time, never run again
            assert step.results["task"] == task_id and step.results["big"] == 1e300
    finally:
        worker.close()


def test_a_long_failure_message_is_kept_visibly_cut_and_a_nul_one_refused(channel, stub):
    stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
        name="failing", version="1", steps=[tasker_pb2.StepTemplate(name="only", handler="failing.only", retry_limit=1)])))
    long_task = stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="failing"), timeout=10).task.task_id
    nul_task = stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="failing"), timeout=10).task.task_id
    worker = RawWorker(channel, ["failing.only"])
    try:
        for assignment in worker.assignments(2):
            if assignment.task_id == long_task:
                worker.fail(assignment, "Traceback: " + "é" * 10000)
            else:
                worker.fail(assignment, "broken\x00pipe")

        def errors():
            read = [stub.GetTask(tasker_pb2.GetTaskRequest(task_id=t), timeout=10) for t in (long_task, nul_task)]
            return read if all(t.status == tasker_pb2.TASK_STATUS_ERROR for t in read) else None

        long_read, nul_read = wait_for(errors, timeout=5, what="both tasks in ERROR")
        message = long_read.steps[0].last_error.message
        assert message.startswith("Traceback: ééé")
        assert len(message.encode()) <= 4096
        assert "cut: 20011 bytes in all" in message
        assert "NUL" in nul_read.steps[0].last_error.message and "broken" in nul_read.steps[0].last_error.message
    finally:
        worker.close()


def test_a_worker_registration_past_its_limits_is_refused(channel):
    connect = workers_pb2_grpc.WorkersStub(channel).Connect
    for registration, named in [
        (workers_pb2.RegisterWorker(name="w", handlers=["h\x00"], slots=1), "NUL"),
        (workers_pb2.RegisterWorker(name="w", handlers=["h%d" % i for i in range(65)], slots=1), "65 entries"),
        (workers_pb2.RegisterWorker(name="w", handlers=["h"], slots=-3), "slots is -3"),
        (workers_pb2.RegisterWorker(name="w" * 300, handlers=["h"], slots=1), "name is 300 bytes"),
    ]:
        error = refusal(connect, iter([workers_pb2.WorkerMessage(register=registration)]))
        assert_invalid(error, named)


# --- JSON Schema patterns --------------------------------------------------------------------

def test_a_catastrophic_pattern_is_answered_and_a_lookaround_refused(stub):
    schema = '{"type": "object", "properties": {"name": {"type": "string", "pattern": "^(a+)+$"}}}'
    stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
        name="patterned", version="1", context_schema_json=schema,
        steps=[tasker_pb2.StepTemplate(name="a", handler="patterned.a")])))
    context = struct_pb2.Struct()
    context.update({"name": "a" * 5000 + "!"})
    error = refusal(stub.SubmitTask, tasker_pb2.SubmitTaskRequest(name="patterned", context=context))
    assert_invalid(error, "$.name: must match the pattern ^(a+)+$")
    context.update({"name": "a" * 5000})
    assert stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="patterned", context=context), timeout=10).created
    lookahead = '{"properties": {"name": {"pattern": "a(?=b)"}}}'
    error = refusal(stub.RegisterTaskTemplate, tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
        name="lookahead", version="1", context_schema_json=lookahead, steps=[tasker_pb2.StepTemplate(name="a", handler="h")])))
    assert_invalid(error, "$.properties.name.pattern", "lookaround is not supported")


# --- Memory after a storm --------------------------------------------------------------------

def test_memory_returns_near_its_baseline_after_a_storm_of_large_and_malformed_messages(tasker, channel, stub):
    submit_raw = channel.unary_unary("/tasker.v1.Tasker/SubmitTask")
    # Each decodes to something large before it is refused (a debug build spends a second on
    # the 3 MiB context, so it is 1 MiB here), or is refused while it decodes.
    big = struct_pb2.Struct()
    big.update({"blob": "x" * (1024 * 1024)})
    oversized = tasker_pb2.SubmitTaskRequest(name="hostile", context=big).SerializeToString()
    garbage = field(1, b"hostile") + field(3, b"\xff" * (3 * 1024 * 1024))
    deep = field(1, b"hostile") + field(3, nested_struct(90)) * 2000

    def storm():
        def hammer():
            with grpc.insecure_channel("127.0.0.1:%d" % tasker.port) as own:
                call = own.unary_unary("/tasker.v1.Tasker/SubmitTask")
                for payload in (oversized, garbage, deep) * 2:
                    with pytest.raises(grpc.RpcError):
                        call(payload, timeout=30)
        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # The baseline: a server that has served ordinary calls, before any storm.
    for _ in range(20):
        submit(stub)
    time.sleep(1)
    baseline = rss_kib(tasker.pid)
    started = time.time()
    for _ in range(3):
        storm()
    took = time.time() - started
    time.sleep(2)
    after = rss_kib(tasker.pid)
    print("RSS %d KiB before, %d KiB after 3 storms of 48 messages of 1 to 3 MiB (%.1f s)" % (baseline, after, took))
    assert after - baseline < 64 * 1024, "RSS grew from %d KiB to %d KiB" % (baseline, after)
    assert_invalid(refusal(submit_raw, oversized), "context is")
