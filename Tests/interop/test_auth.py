"""`tasker serve --auth` with tokens made by `tasker tokens create --database-url`: every method
against every role through a stock grpcio client, each way a token can be wrong, a revocation
reaching a second node, and the refusal to serve a network address open by accident."""
import os
import subprocess
import sys
import time

import grpc
import pytest
from google.protobuf import struct_pb2

from conftest import ROOT, Service, binary, completed, terminate
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()
WORKER = os.path.join(ROOT, "examples", "python-worker", "worker.py")

METHODS = {
    "/tasker.v1.Tasker/GetTask": "viewer",
    "/tasker.v1.Tasker/ListTasks": "viewer",
    "/tasker.v1.Tasker/ListTaskTemplates": "viewer",
    "/tasker.v1.Tasker/StreamStepUpdates": "viewer",
    "/tasker.v1.Tasker/SubmitTask": "submitter",
    "/tasker.v1.Tasker/CancelTask": "submitter",
    "/tasker.v1.Tasker/RetryStep": "submitter",
    "/tasker.v1.Tasker/ResolveStep": "submitter",
    "/tasker.v1.Tasker/RegisterTaskTemplate": "submitter",
    "/tasker.v1.Workers/Connect": "worker",
}
PERMITS = {
    "viewer": {"viewer"},
    "submitter": {"viewer", "submitter"},
    "worker": {"worker"},
    "admin": {"viewer", "submitter", "worker"},
}


def tokens(postgres, *args):
    done = subprocess.run([binary("tasker"), "tokens", *args, "--database-url", postgres.url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done
    return done.stdout.strip()


def serve(postgres, redis, *extra):
    return Service([binary("tasker"), "serve", "--port", "{port}", "--database-url", postgres.url,
                    "--redis-url", redis.url, "--auth", *extra])


def call(channel, path, token=None):
    """The status of one call to `path` with an empty request, as grpcio sees it."""
    metadata = [("authorization", "Bearer " + token)] if token else None
    try:
        if path.endswith("StreamStepUpdates"):
            for _ in channel.unary_stream(path, request_serializer=bytes, response_deserializer=bytes)(b"", metadata=metadata, timeout=10):
                pass
        elif path.endswith("Connect"):
            # A stream that sends nothing and ends: past the gate, the server ends it for want of a registration.
            for _ in channel.stream_stream(path, request_serializer=bytes, response_deserializer=bytes)(iter(()), metadata=metadata, timeout=10):
                pass
        else:
            channel.unary_unary(path, request_serializer=bytes, response_deserializer=bytes)(b"", metadata=metadata, timeout=10)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        return error.code(), error.details()


def test_every_method_answers_every_role_as_the_table_says(postgres, redis):
    made = {role: tokens(postgres, "create", "--name", "every-" + role, "--role", role) for role in PERMITS}
    server = serve(postgres, redis)
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            assert call(channel, "/grpc.health.v1.Health/Check")[0] == grpc.StatusCode.OK, "health needs no token"
            for path, needed in METHODS.items():
                for role, token in made.items():
                    code, details = call(channel, path, token)
                    if needed in PERMITS[role]:
                        assert code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED), (path, role, details)
                    else:
                        assert code == grpc.StatusCode.PERMISSION_DENIED, (path, role, code, details)
                        assert "needs the role %s" % needed in details and token not in details, details
                code, details = call(channel, path)
                assert code == grpc.StatusCode.UNAUTHENTICATED and "no token" in details, (path, details)
    finally:
        server.stop()


def test_each_wrong_token_is_unauthenticated_and_says_why(postgres, redis):
    viewer = tokens(postgres, "create", "--name", "wrong-viewer", "--role", "viewer")
    short = tokens(postgres, "create", "--name", "wrong-short", "--role", "viewer", "--expires", "1s")
    revoked = tokens(postgres, "create", "--name", "wrong-revoked", "--role", "viewer")
    tokens(postgres, "revoke", "wrong-revoked")
    time.sleep(1.2)
    server = serve(postgres, redis)
    path = "/tasker.v1.Tasker/ListTasks"
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            assert call(channel, path, viewer)[0] == grpc.StatusCode.OK
            for token, says in ((None, "no token"), ("garbage", "is not \"Bearer \""),
                                ("tkr_" + "A" * 32, "not known"), (short, "expired"), (revoked, "was revoked")):
                code, details = call(channel, path, token)
                assert code == grpc.StatusCode.UNAUTHENTICATED and says in details, (token, code, details)
                assert token is None or token not in details, "a token is never echoed"
            # A header that is not Bearer at all.
            try:
                channel.unary_unary(path, request_serializer=bytes, response_deserializer=bytes)(
                    b"", metadata=[("authorization", "Basic dXNlcjpwYXNz")], timeout=10)
                pytest.fail("Basic credentials were taken")
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        server.stop()


def test_a_revocation_is_in_force_on_another_node_within_five_seconds(postgres, redis):
    token = tokens(postgres, "create", "--name", "two-nodes", "--role", "viewer")
    a = serve(postgres, redis)
    b = serve(postgres, redis)
    path = "/tasker.v1.Tasker/ListTasks"
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % a.port) as on_a, grpc.insecure_channel("127.0.0.1:%d" % b.port) as on_b:
            assert call(on_a, path, token)[0] == grpc.StatusCode.OK
            assert call(on_b, path, token)[0] == grpc.StatusCode.OK, "node B has checked it too"
            tokens(postgres, "revoke", "two-nodes")
            revoked = time.time()
            while call(on_b, path, token)[0] == grpc.StatusCode.OK:
                assert time.time() - revoked < 5, "node B still took a token revoked 5 s ago"
                time.sleep(0.1)
            took = time.time() - revoked
            print("node B refused the revoked token %.1f s after the revocation" % took)
            assert call(on_a, path, token)[0] == grpc.StatusCode.UNAUTHENTICATED
    finally:
        a.stop()
        b.stop()


def test_the_cli_sends_its_token_and_the_token_list_shows_use(postgres, redis):
    token = tokens(postgres, "create", "--name", "cli", "--role", "submitter", "--expires", "30d")
    server = serve(postgres, redis)
    try:
        address = "127.0.0.1:%d" % server.port
        listed = subprocess.run([binary("tasker"), "list", "--server", address, "--token", token],
                                capture_output=True, text=True, timeout=30)
        assert listed.returncode == 0, listed
        refused = subprocess.run([binary("tasker"), "list", "--server", address], capture_output=True, text=True, timeout=30)
        assert refused.returncode != 0 and "no token" in refused.stderr, refused
        shown = tokens(postgres, "list")
        line = [entry for entry in shown.splitlines() if entry.startswith("cli ")][0]
        assert "submitter" in line and "in force" in line and "last used" in line and token not in shown, shown
    finally:
        server.stop()


def test_a_network_address_is_not_served_open_by_accident(postgres):
    refused = subprocess.run([binary("tasker"), "serve", "--host", "0.0.0.0", "--port", "1", "--database-url", postgres.url],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "--auth" in refused.stderr and "--insecure" in refused.stderr, refused
    open_on_purpose = Service([binary("tasker"), "serve", "--host", "0.0.0.0", "--insecure", "--port", "{port}",
                               "--database-url", postgres.url])
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % open_on_purpose.port) as channel:
            assert call(channel, "/tasker.v1.Tasker/ListTasks")[0] == grpc.StatusCode.OK
    finally:
        open_on_purpose.stop()


def test_the_python_example_worker_runs_steps_with_a_worker_token(postgres, redis):
    worker_token = tokens(postgres, "create", "--name", "py-worker", "--role", "worker")
    submitter = tokens(postgres, "create", "--name", "py-submitter", "--role", "submitter")
    server = serve(postgres, redis)
    address = "127.0.0.1:%d" % server.port
    worker = subprocess.Popen([sys.executable, WORKER, "--server", address, "--name", "py-token", "--token", worker_token],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metadata = [("authorization", "Bearer " + submitter)]
    try:
        with grpc.insecure_channel(address) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            deadline = time.time() + 30
            while "python-example" not in [t.name for t in stub.ListTaskTemplates(
                    tasker_pb2.ListTaskTemplatesRequest(), metadata=metadata, timeout=10).templates]:
                assert time.time() < deadline, "the worker never registered with its token"
                time.sleep(0.1)
            context = struct_pb2.Struct()
            context.update({"amount": 2})
            task_id = stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="python-example", context=context),
                                      metadata=metadata, timeout=10).task.task_id
            completed(stub, task_id, metadata=metadata)
    finally:
        terminate(worker, grace=15)
        server.stop()
