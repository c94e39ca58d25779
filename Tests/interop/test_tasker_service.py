"""A stock grpcio client, with stubs generated from proto/, against `tasker serve` on a real
Postgres: register a template, submit a task, read it back, and the error codes on the way."""
import grpc
import pytest
from google.protobuf import struct_pb2

from conftest import tasker_serve
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()


@pytest.fixture(scope="module")
def tasker(postgres):
    service = tasker_serve(postgres)
    yield service
    service.stop()


@pytest.fixture
def stub(tasker):
    with grpc.insecure_channel("127.0.0.1:%d" % tasker.port) as channel:
        yield tasker_pb2_grpc.TaskerStub(channel)


def order_template():
    return tasker_pb2.TaskTemplate(
        name="order", version="1.0.0", context_schema_json='{"type": "object", "required": ["cart_id"]}',
        steps=[
            tasker_pb2.StepTemplate(name="validate_cart", handler="validate"),
            tasker_pb2.StepTemplate(name="charge", handler="payments", depends_on=["validate_cart"], retry_limit=5),
            tasker_pb2.StepTemplate(name="reserve", handler="inventory", depends_on=["validate_cart"]),
            tasker_pb2.StepTemplate(name="confirm", handler="email", depends_on=["charge", "reserve"]),
        ])


def test_register_submit_and_read_a_task(stub):
    registered = stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=order_template()))
    assert registered.created
    assert [s.retry_limit for s in registered.template.steps] == [3, 5, 3, 3]
    again = stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=order_template()))
    assert not again.created

    context = struct_pb2.Struct()
    context.update({"cart_id": 42, "items": ["sku-1"]})
    submitted = stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="order", context=context, initiator="pytest", tags=["py"]))
    assert submitted.created
    task = stub.GetTask(tasker_pb2.GetTaskRequest(task_id=submitted.task.task_id))
    assert task.status == tasker_pb2.TASK_STATUS_PENDING
    assert task.context["cart_id"] == 42
    assert {s.name: s.status for s in task.steps} == {
        "validate_cart": tasker_pb2.STEP_STATUS_ENQUEUED, "charge": tasker_pb2.STEP_STATUS_PENDING,
        "reserve": tasker_pb2.STEP_STATUS_PENDING, "confirm": tasker_pb2.STEP_STATUS_PENDING}
    listed = stub.ListTasks(tasker_pb2.ListTasksRequest(tag="py"))
    assert [t.task_id for t in listed.tasks] == [task.task_id]


def test_error_codes(stub):
    stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=order_template()))
    with pytest.raises(grpc.RpcError) as error:
        stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="order"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "$.cart_id: is required" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="no-such-template"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        stub.GetTask(tasker_pb2.GetTaskRequest(task_id="not-a-uuid"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    conflicting = order_template()
    del conflicting.steps[-1]
    with pytest.raises(grpc.RpcError) as error:
        stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=conflicting))
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_server_reflection_lists_and_describes_the_services(tasker):
    """grpcio-reflection's stock client finds the services and builds working descriptors."""
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel("127.0.0.1:%d" % tasker.port) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"tasker.v1.Tasker", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} <= services
        pool = DescriptorPool(database)
        service = pool.FindServiceByName("tasker.v1.Tasker")
        assert {m.name for m in service.methods} >= {"SubmitTask", "GetTask", "RegisterTaskTemplate", "StreamStepUpdates"}
        submit = pool.FindMessageTypeByName("tasker.v1.SubmitTaskRequest")
        assert submit.fields_by_name["context"].message_type.full_name == "google.protobuf.Struct"
        assert pool.FindServiceByName("tasker.v1.Workers").methods_by_name["Connect"].client_streaming
        with pytest.raises(KeyError):
            pool.FindMessageTypeByName("tasker.v1.NoSuchMessage")


def test_a_delayed_task_waits_pending_and_bad_starts_and_priorities_are_refused_naming_the_field(stub):
    stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=order_template()))
    context = struct_pb2.Struct()
    context.update({"cart_id": 1})
    later = tasker_pb2.SubmitTaskRequest(name="order", context=context, priority=2)
    later.start_at.GetCurrentTime()
    later.start_at.seconds += 3600
    later.start_at.nanos = later.start_at.nanos // 1000 * 1000 + 999  # kept to the microsecond
    submitted = stub.SubmitTask(later).task
    kept = later.start_at.nanos // 1000 * 1000
    assert submitted.priority == 2 and (submitted.start_at.seconds, submitted.start_at.nanos) == (later.start_at.seconds, kept)
    task = stub.GetTask(tasker_pb2.GetTaskRequest(task_id=submitted.task_id))
    first = next(s for s in task.steps if s.name == "validate_cart")
    assert first.status == tasker_pb2.STEP_STATUS_PENDING
    assert first.waiting_reason.startswith("the task starts at "), first.waiting_reason
    assert task.priority == 2 and task.start_at == submitted.start_at, "read back exactly as answered"

    bad = []
    for priority in (6, -1, 1 << 30):
        bad.append(("priority", tasker_pb2.SubmitTaskRequest(name="order", context=context, priority=priority)))
    far = tasker_pb2.SubmitTaskRequest(name="order", context=context)
    far.start_at.GetCurrentTime()
    far.start_at.seconds += 400 * 86400
    bad.append(("start_at", far))
    broken = tasker_pb2.SubmitTaskRequest(name="order", context=context)
    broken.start_at.seconds, broken.start_at.nanos = 1_800_000_000, 2_000_000_000
    bad.append(("start_at", broken))
    for field, request in bad:
        with pytest.raises(grpc.RpcError) as error:
            stub.SubmitTask(request)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, error.value)
        assert error.value.details().startswith(field), error.value.details()
        assert len(error.value.details()) < 200
