"""Schedules across real nodes: one task per firing however many nodes fire it, one catch-up
task after downtime, SKIP while the last task runs, and every bad schedule refused naming its
field. The nodes take a cron with seconds (--cron-seconds, for tests), so that a firing every
two seconds stands in for one every minute."""
import time
import uuid
from datetime import datetime

import grpc
import pytest
from google.protobuf import struct_pb2

from conftest import tasker_serve, until
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()


def register(stub, name, schema=""):
    stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
        name=name, version="1", context_schema_json=schema,
        steps=[tasker_pb2.StepTemplate(name="run", handler="scheduled.%s" % name)])), timeout=10)


def firings(stub, template):
    """The fire time of each task the schedule made, from its reason, oldest first."""
    tasks = stub.ListTasks(tasker_pb2.ListTasksRequest(name=template, page_size=500), timeout=10).tasks
    prefix = "the schedule fired at "
    times = [t.reason[len(prefix):] for t in tasks if t.reason.startswith(prefix)]
    assert len(times) == len(tasks), [t.reason for t in tasks]
    return sorted(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() for at in times)


def schedule(name, template, cron, **fields):
    return tasker_pb2.Schedule(name=name, template=template, cron=cron, **fields)


def test_every_firing_makes_exactly_one_task_across_three_nodes(postgres, redis):
    nodes = [tasker_serve(postgres, redis, extra=["--cron-seconds"]) for _ in range(3)]
    try:
        template, name = "cron-%s" % uuid.uuid4().hex[:8], "every-2s-%s" % uuid.uuid4().hex[:6]
        channels = [grpc.insecure_channel("127.0.0.1:%d" % node.port) for node in nodes]
        stub = tasker_pb2_grpc.TaskerStub(channels[0])
        register(stub, template)
        made = stub.CreateSchedule(tasker_pb2.CreateScheduleRequest(schedule=schedule(name, template, "*/2 * * * * *")), timeout=10)
        assert made.created and made.schedule.HasField("next_run_at") and made.schedule.timezone == ""
        time.sleep(21)
        tasker_pb2_grpc.TaskerStub(channels[2]).DeleteSchedule(tasker_pb2.DeleteScheduleRequest(name=name), timeout=10)
        time.sleep(1)
        times = firings(stub, template)
        print("fire times:", times)
        assert len(times) == len(set(times)), "a firing made two tasks: %s" % times
        assert len(times) >= 9, times
        gaps = [later - earlier for earlier, later in zip(times, times[1:])]
        assert all(gap == 2 for gap in gaps), "a firing was missed: %s" % gaps
        for channel in channels:
            channel.close()
    finally:
        for node in nodes:
            node.stop()


def test_downtime_across_three_firings_makes_one_catch_up_task(postgres, redis):
    node = tasker_serve(postgres, redis, extra=["--cron-seconds"])
    try:
        template, name = "cron-%s" % uuid.uuid4().hex[:8], "catch-up-%s" % uuid.uuid4().hex[:6]
        with grpc.insecure_channel("127.0.0.1:%d" % node.port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            register(stub, template)
            stub.CreateSchedule(tasker_pb2.CreateScheduleRequest(schedule=schedule(name, template, "*/3 * * * * *")), timeout=10)
            until("a first firing", lambda: firings(stub, template), within=10)
        node.stop()
        stopped = time.time()
        time.sleep(10.5)
        restarted = time.time()
        node = tasker_serve(postgres, redis, extra=["--cron-seconds"])
        with grpc.insecure_channel("127.0.0.1:%d" % node.port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            time.sleep(1.5)
            times = firings(stub, template)
            missed = [at for at in times if stopped < at <= restarted]
            print("fire times:", times, "down from", stopped, "to", restarted)
            assert len(missed) == 1, "three firings missed while down make one task: %s" % missed
            assert missed[0] > restarted - 3, "the catch-up is the latest missed firing: %s" % missed
            until("firing goes on as before", lambda: [at for at in firings(stub, template) if at > restarted], within=6)
            stub.DeleteSchedule(tasker_pb2.DeleteScheduleRequest(name=name), timeout=10)
    finally:
        node.stop()


def test_skip_fires_no_task_while_the_last_one_is_unfinished(postgres, redis):
    node = tasker_serve(postgres, redis, extra=["--cron-seconds"])
    try:
        template, name = "cron-%s" % uuid.uuid4().hex[:8], "skip-%s" % uuid.uuid4().hex[:6]
        with grpc.insecure_channel("127.0.0.1:%d" % node.port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            register(stub, template)
            stub.CreateSchedule(tasker_pb2.CreateScheduleRequest(schedule=schedule(
                name, template, "*/2 * * * * *", overlap=tasker_pb2.SCHEDULE_OVERLAP_SKIP)), timeout=10)
            # No worker runs the handler: the first task stays unfinished.
            until("a first firing", lambda: firings(stub, template), within=10)
            time.sleep(6)
            assert len(firings(stub, template)) == 1, "SKIP made another task while the first ran"
            listed = [s for s in stub.ListSchedules(tasker_pb2.ListSchedulesRequest(), timeout=10).schedules if s.name == name][0]
            assert "unfinished (overlap SKIP)" in listed.last_error, listed
            stub.CancelTask(tasker_pb2.CancelTaskRequest(task_id=listed.last_task_id, reason="let the next one run"), timeout=10)
            until("the next firing after the task ended", lambda: len(firings(stub, template)) == 2, within=6)
            stub.DeleteSchedule(tasker_pb2.DeleteScheduleRequest(name=name), timeout=10)
    finally:
        node.stop()


def test_pause_resume_list_and_delete(postgres, redis):
    node = tasker_serve(postgres, redis)
    try:
        template, name = "cron-%s" % uuid.uuid4().hex[:8], "nightly-%s" % uuid.uuid4().hex[:6]
        with grpc.insecure_channel("127.0.0.1:%d" % node.port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            register(stub, template)
            context = struct_pb2.Struct()
            context.update({"report": "sales"})
            wanted = schedule(name, template, "0 2 * * *", timezone="Europe/Berlin", context=context)
            made = stub.CreateSchedule(tasker_pb2.CreateScheduleRequest(schedule=wanted), timeout=10)
            assert made.created
            next_run = made.schedule.next_run_at.ToDatetime()
            assert next_run.minute == 0 and next_run.hour in (0, 1), "02:00 in Berlin is 00:00 or 01:00 UTC: %s" % next_run
            again = stub.CreateSchedule(tasker_pb2.CreateScheduleRequest(schedule=wanted), timeout=10)
            assert not again.created and again.schedule == made.schedule
            paused = stub.SetSchedulePaused(tasker_pb2.SetSchedulePausedRequest(name=name, paused=True), timeout=10)
            assert paused.paused and not paused.HasField("next_run_at")
            resumed = stub.SetSchedulePaused(tasker_pb2.SetSchedulePausedRequest(name=name, paused=False), timeout=10)
            assert not resumed.paused and resumed.next_run_at == made.schedule.next_run_at
            listed = [s for s in stub.ListSchedules(tasker_pb2.ListSchedulesRequest(), timeout=10).schedules if s.name == name]
            assert listed == [resumed]
            stub.DeleteSchedule(tasker_pb2.DeleteScheduleRequest(name=name), timeout=10)
            assert not [s for s in stub.ListSchedules(tasker_pb2.ListSchedulesRequest(), timeout=10).schedules if s.name == name]
            for call, request in ((stub.DeleteSchedule, tasker_pb2.DeleteScheduleRequest(name=name)),
                                  (stub.SetSchedulePaused, tasker_pb2.SetSchedulePausedRequest(name=name, paused=True))):
                with pytest.raises(grpc.RpcError) as refused:
                    call(request, timeout=10)
                assert refused.value.code() == grpc.StatusCode.NOT_FOUND and name in refused.value.details()
    finally:
        node.stop()


def test_bad_schedules_are_refused_naming_the_field(postgres, redis):
    node = tasker_serve(postgres, redis)
    try:
        template = "cron-%s" % uuid.uuid4().hex[:8]
        with grpc.insecure_channel("127.0.0.1:%d" % node.port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            register(stub, template, schema='{"type": "object", "required": ["report"]}')
            good = struct_pb2.Struct()
            good.update({"report": "sales"})
            cases = [
                (schedule("", template, "@daily", context=good), grpc.StatusCode.INVALID_ARGUMENT, "schedule name ''"),
                (schedule("has space", template, "@daily", context=good), grpc.StatusCode.INVALID_ARGUMENT, "schedule name 'has space' must be"),
                (schedule("x" * 5000, template, "@daily", context=good), grpc.StatusCode.INVALID_ARGUMENT, "schedule name 'xxxxxxxx"),
                (schedule("a", template, "61 * * * *", context=good), grpc.StatusCode.INVALID_ARGUMENT, "cron minute field '61'"),
                (schedule("a", template, "* * * *", context=good), grpc.StatusCode.INVALID_ARGUMENT, "has 4 fields; it takes 5"),
                (schedule("a", template, "*/2 * * * * *", context=good), grpc.StatusCode.INVALID_ARGUMENT, "has 6 fields"),
                (schedule("a", template, "0 0 31 2 *", context=good), grpc.StatusCode.INVALID_ARGUMENT, "never fires"),
                (schedule("a", template, "@daily", timezone="Mars/Olympus", context=good), grpc.StatusCode.INVALID_ARGUMENT,
                 "timezone 'Mars/Olympus' is not an IANA time zone"),
                (schedule("a", template, "@daily", context=good, overlap=7), grpc.StatusCode.INVALID_ARGUMENT, "overlap 7"),
                (schedule("a", template, "@daily"), grpc.StatusCode.INVALID_ARGUMENT, "context does not match the schema"),
                (schedule("a", "no-such-template", "@daily", context=good), grpc.StatusCode.NOT_FOUND, "no-such-template"),
            ]
            for bad, code, message in cases:
                with pytest.raises(grpc.RpcError) as refused:
                    stub.CreateSchedule(tasker_pb2.CreateScheduleRequest(schedule=bad), timeout=10)
                assert refused.value.code() == code and message in refused.value.details(), (bad.name[:20], bad.cron, refused.value.details())
                assert len(refused.value.details()) < 400, refused.value.details()
            stub.CreateSchedule(tasker_pb2.CreateScheduleRequest(schedule=schedule("taken", template, "@daily", context=good)), timeout=10)
            with pytest.raises(grpc.RpcError) as refused:
                stub.CreateSchedule(tasker_pb2.CreateScheduleRequest(schedule=schedule("taken", template, "@hourly", context=good)), timeout=10)
            assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS and "delete it first" in refused.value.details()
            stub.DeleteSchedule(tasker_pb2.DeleteScheduleRequest(name="taken"), timeout=10)
    finally:
        node.stop()
