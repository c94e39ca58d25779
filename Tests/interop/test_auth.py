"""`tasker serve --auth` with tokens made by `tasker tokens create --database-url` and through
the Admin service: every method against every role through a stock grpcio client, each way a
token can be wrong, a revocation reaching a second node and cutting off a worker, and the
refusal to serve a network address open by accident."""
import json
import os
import subprocess
import sys
import time

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from conftest import ROOT, Service, binary, completed, tasker_serve, terminate
from raw_worker import RawWorker
import tasker_protos
from tasker_sdk import Client

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()
admin_pb2, admin_pb2_grpc = tasker_protos.load_admin()
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
    "/tasker.v1.Admin/CreateToken": "admin",
    "/tasker.v1.Admin/ListTokens": "admin",
    "/tasker.v1.Admin/RevokeToken": "admin",
}
PERMITS = {
    "viewer": {"viewer"},
    "submitter": {"viewer", "submitter"},
    "worker": {"worker"},
    "admin": {"viewer", "submitter", "worker", "admin"},
}


def tokens(postgres, *args):
    done = subprocess.run([binary("tasker"), "tokens", *args, "--database-url", postgres.url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done
    return done.stdout.strip()


def tokens_through(server, token, *args):
    """`tasker tokens` through the server's Admin service, as the process ended."""
    return subprocess.run([binary("tasker"), "tokens", *args, "--server", "127.0.0.1:%d" % server.port, "--token", token],
                          capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items() if k != "TASKER_DATABASE_URL"})


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
        # The Python SDK's client sends its token the same way.
        with Client(address, token=token) as sdk:
            assert len(list(sdk.list(limit=5))) <= 5, "listed with the token, not refused"
        with Client(address) as anonymous, pytest.raises(grpc.RpcError) as unauthenticated:
            list(anonymous.list())
        assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
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
        # A token the server does not take is not retried: the worker stops and says why.
        for token, says in ((submitter, "PERMISSION_DENIED"), ("tkr_" + "B" * 32, "UNAUTHENTICATED")):
            refused = subprocess.run([sys.executable, WORKER, "--server", address, "--name", "py-refused", "--token", token],
                                     capture_output=True, text=True, timeout=30)
            assert refused.returncode == 1 and says in refused.stderr and token not in refused.stderr, refused
            assert "Traceback" not in refused.stderr, refused.stderr
    finally:
        terminate(worker, grace=15)
        server.stop()


def test_an_admin_makes_lists_and_revokes_tokens_through_the_admin_service(postgres, redis):
    admin = tokens(postgres, "create", "--name", "svc-admin", "--role", "admin")
    viewer = tokens(postgres, "create", "--name", "svc-viewer", "--role", "viewer")
    server = serve(postgres, redis)
    as_admin = [("authorization", "Bearer " + admin)]
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            stub = admin_pb2_grpc.AdminStub(channel)
            made = stub.CreateToken(admin_pb2.CreateTokenRequest(
                name="svc-made", role=admin_pb2.ROLE_SUBMITTER, expires_in=duration_pb2.Duration(seconds=3600)),
                metadata=as_admin, timeout=10)
            assert made.token.startswith("tkr_") and len(made.token) == 36
            record = made.record
            assert (record.name, record.role, record.created_by) == ("svc-made", admin_pb2.ROLE_SUBMITTER, "svc-admin")
            assert 3590 <= record.expires_at.seconds - record.created_at.seconds <= 3610, record
            assert not record.HasField("revoked_at") and not record.HasField("last_used_at")
            # The new token works at once, with its role.
            tasks = tasker_pb2_grpc.TaskerStub(channel)
            tasks.ListTasks(tasker_pb2.ListTasksRequest(), metadata=[("authorization", "Bearer " + made.token)], timeout=10)

            listed = stub.ListTokens(admin_pb2.ListTokensRequest(), metadata=as_admin, timeout=10).tokens
            assert [t.name for t in listed][:1] == ["svc-made"], "newest first"
            assert {"svc-admin", "svc-viewer", "svc-made"} <= {t.name for t in listed}
            assert made.token not in str(listed), "a token's text is never listed"
            assert [t for t in listed if t.name == "svc-admin"][0].created_by == "database"

            revoked = stub.RevokeToken(admin_pb2.RevokeTokenRequest(name="svc-made"), metadata=as_admin, timeout=10)
            assert revoked.HasField("revoked_at")
            # Revoked through this node: in force here at once.
            code, details = call(channel, "/tasker.v1.Tasker/ListTasks", made.token)
            assert code == grpc.StatusCode.UNAUTHENTICATED and "svc-made" in details and "revoked" in details, details

            # A name in force is taken; a revoked one can be given again.
            with pytest.raises(grpc.RpcError) as taken:
                stub.CreateToken(admin_pb2.CreateTokenRequest(name="svc-viewer", role=admin_pb2.ROLE_VIEWER), metadata=as_admin, timeout=10)
            assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS and "svc-viewer" in taken.value.details()
            again = stub.CreateToken(admin_pb2.CreateTokenRequest(name="svc-made", role=admin_pb2.ROLE_VIEWER), metadata=as_admin, timeout=10)
            assert again.token != made.token

            # Only an admin may.
            with pytest.raises(grpc.RpcError) as denied:
                stub.ListTokens(admin_pb2.ListTokensRequest(), metadata=[("authorization", "Bearer " + viewer)], timeout=10)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED and "needs the role admin" in denied.value.details()
    finally:
        server.stop()


def test_the_admin_service_refuses_bad_requests_plainly(postgres, redis):
    admin = tokens(postgres, "create", "--name", "bad-admin", "--role", "admin")
    server = serve(postgres, redis)
    as_admin = [("authorization", "Bearer " + admin)]
    long_name = "n" * 10_000
    cases = [
        (admin_pb2.CreateTokenRequest(name="", role=admin_pb2.ROLE_VIEWER), grpc.StatusCode.INVALID_ARGUMENT, "1 to 128 bytes"),
        (admin_pb2.CreateTokenRequest(name=long_name, role=admin_pb2.ROLE_VIEWER), grpc.StatusCode.INVALID_ARGUMENT, "1 to 128 bytes"),
        (admin_pb2.CreateTokenRequest(name="nul\0", role=admin_pb2.ROLE_VIEWER), grpc.StatusCode.INVALID_ARGUMENT, "NUL"),
        (admin_pb2.CreateTokenRequest(name="no-role"), grpc.StatusCode.INVALID_ARGUMENT, "role must be one of viewer, submitter, worker, admin"),
        (admin_pb2.CreateTokenRequest(name="odd-role", role=99), grpc.StatusCode.INVALID_ARGUMENT, "role must be one of"),
        (admin_pb2.CreateTokenRequest(name="past", role=admin_pb2.ROLE_VIEWER, expires_in=duration_pb2.Duration(seconds=-5)),
         grpc.StatusCode.INVALID_ARGUMENT, "expires_in"),
        (admin_pb2.CreateTokenRequest(name="forever", role=admin_pb2.ROLE_VIEWER, expires_in=duration_pb2.Duration(seconds=10**11)),
         grpc.StatusCode.INVALID_ARGUMENT, "at most 100 years"),
    ]
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            stub = admin_pb2_grpc.AdminStub(channel)
            for request, code, says in cases:
                with pytest.raises(grpc.RpcError) as refused:
                    stub.CreateToken(request, metadata=as_admin, timeout=10)
                assert refused.value.code() == code and says in refused.value.details(), (request.name[:20], refused.value)
                assert len(refused.value.details()) < 300
            with pytest.raises(grpc.RpcError) as missing:
                stub.RevokeToken(admin_pb2.RevokeTokenRequest(name=long_name), metadata=as_admin, timeout=10)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND and "10000 bytes" in missing.value.details()
            assert len(missing.value.details()) < 200, "a long name is shown by its prefix only"
            names = [t.name for t in stub.ListTokens(admin_pb2.ListTokensRequest(), metadata=as_admin, timeout=10).tokens]
            assert names == ["bad-admin"] or "past" not in names and "forever" not in names and "no-role" not in names, names
    finally:
        server.stop()


def test_a_server_without_auth_makes_no_tokens(postgres, redis):
    server = tasker_serve(postgres, redis)
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                admin_pb2_grpc.AdminStub(channel).CreateToken(
                    admin_pb2.CreateTokenRequest(name="open", role=admin_pb2.ROLE_ADMIN), timeout=10)
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "without --auth" in refused.value.details() and "--database-url" in refused.value.details()
    finally:
        server.stop()
    assert "open" not in tokens(postgres, "list")


def test_the_cli_manages_tokens_through_the_server_with_an_admin_token(postgres, redis):
    admin = tokens(postgres, "create", "--name", "cli-admin", "--role", "admin")
    submitter = tokens(postgres, "create", "--name", "cli-sub", "--role", "submitter")
    server = serve(postgres, redis)
    try:
        made = tokens_through(server, admin, "create", "--name", "cli-made", "--role", "viewer", "--expires", "12h")
        assert made.returncode == 0 and made.stdout.strip().startswith("tkr_"), made
        assert "cli-made" in made.stderr and "shown only now" in made.stderr
        listed = tokens_through(server, admin, "list")
        assert listed.returncode == 0, listed
        line = [entry for entry in listed.stdout.splitlines() if entry.startswith("cli-made ")][0]
        assert "viewer" in line and "in force" in line and "by cli-admin" in line and "expires" in line, line
        assert made.stdout.strip() not in listed.stdout
        as_json = tokens_through(server, admin, "list", "--json")
        assert as_json.returncode == 0, as_json
        shown = [t for t in json.loads(as_json.stdout)["tokens"] if t["name"] == "cli-made"][0]
        assert shown["role"] == "ROLE_VIEWER" and shown["created_by"] == "cli-admin" and "expires_at" in shown, shown

        revoked = tokens_through(server, admin, "revoke", "cli-made")
        assert revoked.returncode == 0 and "revoked \"cli-made\"" in revoked.stdout, revoked
        line = [entry for entry in tokens_through(server, admin, "list").stdout.splitlines() if entry.startswith("cli-made ")][0]
        assert "revoked" in line, line

        again = tokens_through(server, admin, "revoke", "cli-made")
        assert again.returncode == 3 and "no token named 'cli-made' is in force" in again.stderr, again
        taken = tokens_through(server, admin, "create", "--name", "cli-sub", "--role", "viewer")
        assert taken.returncode == 4 and "ALREADY_EXISTS" in taken.stderr, taken
        denied = tokens_through(server, submitter, "list")
        assert denied.returncode == 4 and "PERMISSION_DENIED" in denied.stderr and "admin" in denied.stderr, denied
        no_token = subprocess.run([binary("tasker"), "tokens", "list", "--server", "127.0.0.1:%d" % server.port],
                                  capture_output=True, text=True, timeout=60,
                                  env={k: v for k, v in os.environ.items() if k not in ("TASKER_DATABASE_URL", "TASKER_TOKEN")})
        assert no_token.returncode == 64 and "--token" in no_token.stderr and "--database-url" in no_token.stderr, no_token
    finally:
        server.stop()


def test_a_worker_whose_token_is_revoked_is_cut_off_and_its_step_runs_elsewhere(postgres, redis):
    tokens(postgres, "create", "--name", "cut-admin", "--role", "admin")
    doomed = tokens(postgres, "create", "--name", "cut-doomed", "--role", "worker")
    spare = tokens(postgres, "create", "--name", "cut-spare", "--role", "worker")
    submitter = tokens(postgres, "create", "--name", "cut-sub", "--role", "submitter")
    a = serve(postgres, redis)
    b = serve(postgres, redis)
    as_submitter = [("authorization", "Bearer " + submitter)]
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % a.port) as on_a, grpc.insecure_channel("127.0.0.1:%d" % b.port) as on_b:
            stub = tasker_pb2_grpc.TaskerStub(on_a)
            stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
                name="cut", version="1", steps=[tasker_pb2.StepTemplate(
                    name="a", handler="cut.a", backoff=tasker_pb2.BackoffPolicy(base_seconds=0.1))])),
                metadata=as_submitter, timeout=10)
            holder = RawWorker(on_b, ["cut.a"], slots=1, heartbeats=True, token=doomed)
            task_id = stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="cut"), metadata=as_submitter, timeout=10).task.task_id
            first = holder.assignments(1)[0]
            assert first.task_id == task_id and first.attempt == 1
            rescuer = RawWorker(on_a, ["cut.a"], slots=1, heartbeats=True, token=spare)
            # Revoked in the database, not through node B: B learns it by asking again.
            tokens(postgres, "revoke", "cut-doomed")
            revoked = time.time()
            assert holder.ending.wait(10), "the revoked worker's stream was not ended"
            took = time.time() - revoked
            print("the revoked worker's stream ended %.1f s after the revocation" % took)
            assert took < 5, took
            assert holder.end.code() == grpc.StatusCode.UNAUTHENTICATED, holder.end
            assert "cut-doomed" in holder.end.details() and "revoked" in holder.end.details(), holder.end.details()
            second = rescuer.assignments(1, timeout=15)[0]
            assert second.task_id == task_id and second.attempt == 2
            rescuer.succeed(second)
            completed(stub, task_id, within=10, metadata=as_submitter)
            # The revoked token cannot come back.
            with pytest.raises(grpc.RpcError) as refused:
                RawWorker(on_b, ["cut.a"], slots=1, token=doomed)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            rescuer.close()
            holder.close()
    finally:
        a.stop()
        b.stop()
