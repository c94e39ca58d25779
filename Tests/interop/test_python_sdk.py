"""The Python SDK (sdks/python) as a user has it: `pip install ./sdks/python` into a fresh venv
outside the repository, the example worker copied out and run there, a client script using
every call, and mypy reading that script against the package's types."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest

from conftest import ROOT, tasker_serve


@pytest.fixture(scope="module")
def outside():
    """A folder outside the repository with a venv that has the SDK (and mypy) installed."""
    folder = tempfile.mkdtemp(prefix="tasker-sdk-user-")
    assert not os.path.realpath(folder).startswith(os.path.realpath(ROOT) + os.sep)
    subprocess.run([sys.executable, "-m", "venv", os.path.join(folder, "venv")], check=True, timeout=300)
    # The package's folder alone, copied out: it needs nothing else of the repository (and its
    # build leaves nothing in the clone).
    package = os.path.join(folder, "tasker-sdk")
    shutil.copytree(os.path.join(ROOT, "sdks", "python"), package, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = [os.path.join(folder, "venv", "bin", "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = subprocess.run(pip + [package, "mypy"], capture_output=True, text=True, timeout=900, cwd=folder)
    assert installed.returncode == 0, installed.stderr[-3000:]
    shutil.copy(os.path.join(ROOT, "examples", "python-worker", "worker.py"), folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def tasker(postgres, redis):
    service = tasker_serve(postgres, redis)
    yield service
    service.stop()


def python(outside):
    return os.path.join(outside, "venv", "bin", "python")


def run_script(outside, name, source, *args, timeout=120):
    path = os.path.join(outside, name)
    with open(path, "w") as handle:
        handle.write(textwrap.dedent(source))
    # A clean environment, in a folder of its own: nothing of the repository on the path.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", outside)}
    return subprocess.run([python(outside), path] + list(args), capture_output=True, text=True, timeout=timeout,
                          cwd=outside, env=env)


CLIENT = """
    import json
    import sys

    import grpc

    from tasker_sdk import Client, to_dict
    from tasker_sdk.protos import tasker_pb2

    server = sys.argv[1]
    seen = {}
    with Client(server) as tasker:
        template, created = tasker.register_template({
            "name": "sdk-check", "version": "1",
            "steps": [{"name": "quote", "handler": "fetch_quote"}]})
        seen["registered"] = [template.name, created]
        task, created = tasker.submit("python-example", {"amount": 21, "tag": "sdk"}, tags=["sdk"], idempotency_key="sdk-1")
        again = tasker.submit("python-example", {"amount": 21, "tag": "sdk"}, idempotency_key="sdk-1")
        seen["created"] = [created, again.created, again.task.task_id == task.task_id]
        updates = list(tasker.watch(task.task_id))
        seen["sequences"] = [update.sequence for update in updates]
        seen["last_status"] = tasker_pb2.TaskStatus.Name(updates[-1].task_status)
        done = tasker.wait(task.task_id)
        seen["status"] = tasker_pb2.TaskStatus.Name(done.status)
        total = next(step for step in done.steps if step.name == "total")
        seen["total"] = to_dict(total.results)
        seen["context"] = to_dict(done.context)
        seen["annotations"] = [[note.type, note.step_name, to_dict(note.annotation)] for note in done.annotations]
        seen["listed"] = [listed.task_id for listed in tasker.list(tag="sdk", status="complete", limit=None)] == [task.task_id]
        try:
            tasker.get("order-17")
        except grpc.RpcError as error:
            seen["bad_id"] = [error.code().name, error.details()]
        try:
            list(tasker.list(limit=0))
        except ValueError as error:
            seen["bad_limit"] = str(error)
        schedule, created = tasker.create_schedule("sdk-daily", "python-example", "0 6 * * *", {"amount": 1}, timezone="Asia/Tokyo",
                                                   skip_overlap=True)
        paused = tasker.pause_schedule("sdk-daily")
        seen["schedule"] = [created, schedule.next_run_at.ToDatetime().hour, tasker_pb2.ScheduleOverlap.Name(schedule.overlap), paused.paused,
                            [s.name for s in tasker.schedules()]]
        tasker.delete_schedule("sdk-daily")
        seen["schedules_left"] = len(tasker.schedules())
    print(json.dumps(seen))
"""


def test_the_example_worker_and_a_client_run_from_a_venv_outside_the_repository(outside, tasker):
    server = "127.0.0.1:%d" % tasker.port
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", outside)}
    worker = subprocess.Popen([python(outside), os.path.join(outside, "worker.py"), "--server", server],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=outside, env=env)
    try:
        assert worker.stdout.readline().startswith("registered as "), "the worker did not register"
        out = run_script(outside, "client.py", CLIENT, server)
        assert out.returncode == 0, out.stderr[-3000:]
        seen = json.loads(out.stdout)
        assert seen["registered"] == ["sdk-check", True]
        assert seen["created"] == [True, False, True]
        assert seen["sequences"] == list(range(1, len(seen["sequences"]) + 1)) and seen["last_status"] == "TASK_STATUS_COMPLETE"
        assert seen["status"] == "TASK_STATUS_COMPLETE"
        # Whole numbers come back as ints, in the worker (21 * 1.0 is priced 21) and the client.
        assert seen["total"] == {"usd": 21, "eur": 19.32, "by": "python-example"}
        assert isinstance(seen["total"]["usd"], int) and seen["context"] == {"amount": 21, "tag": "sdk"}
        assert seen["annotations"] == [["priced", "total", {"currencies": 2, "worker": "python-example"}]]
        assert seen["listed"] is True
        assert seen["bad_id"] == ["INVALID_ARGUMENT", "task_id 'order-17' is not a UUID"]
        assert seen["bad_limit"].startswith("limit counts tasks")
        # 06:00 in Tokyo (no daylight saving) is 21:00 UTC.
        assert seen["schedule"] == [True, 21, "SCHEDULE_OVERLAP_SKIP", True, ["sdk-daily"]] and seen["schedules_left"] == 0, seen["schedule"]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert worker.returncode == 0


def test_the_package_carries_its_types(outside):
    good = os.path.join(outside, "typed.py")
    with open(good, "w") as handle:
        handle.write(textwrap.dedent("""
            from tasker_sdk import Client, Step, Worker
            from tasker_sdk.protos import tasker_pb2

            def total(step: Step) -> dict:
                return {"n": step.attempt + 1}

            def first(client: Client) -> str:
                task: tasker_pb2.Task = client.submit("t", {"a": 1}).task
                return task.task_id + client.get(task.task_id).name

            Worker("127.0.0.1:7420").handle("x")(total)
        """))
    bad = os.path.join(outside, "mistyped.py")
    with open(bad, "w") as handle:
        handle.write(textwrap.dedent("""
            from tasker_sdk import Client

            def first(client: Client) -> int:
                return client.get("id").last_sequence + client.submit(5).task.name
        """))
    mypy = [python(outside), "-m", "mypy", "--no-incremental", "--cache-dir", os.devnull]
    typed = subprocess.run(mypy + [good], capture_output=True, text=True, timeout=300, cwd=outside)
    assert typed.returncode == 0, typed.stdout + typed.stderr
    mistyped = subprocess.run(mypy + [bad], capture_output=True, text=True, timeout=300, cwd=outside)
    assert mistyped.returncode == 1, mistyped.stdout
    assert 'Argument 1 to "submit" of "Client" has incompatible type "int"; expected "str"' in mistyped.stdout, mistyped.stdout
    assert 'Unsupported operand types for + ("int" and "str")' in mistyped.stdout, mistyped.stdout
