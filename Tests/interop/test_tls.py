"""TLS and mutual TLS on `tasker serve`, with certificates made by openssl: stock grpcio
clients and workers (and the Python example worker), the tasker CLI, clients refused at the handshake, bad bytes on the TLS
port, and a renewed certificate read again on SIGHUP."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import grpc
import pytest
from google.protobuf import struct_pb2

from certificates import Certificates
from conftest import ROOT, Service, binary, completed, terminate
from raw_worker import RawWorker
import tasker_protos
from tasker_sdk import Client, tls_credentials, to_dict

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()
WORKER = os.path.join(ROOT, "examples", "python-worker", "worker.py")


@pytest.fixture(scope="module")
def certs():
    made = Certificates()
    made.server_ca = made.ca("server-ca")
    made.server = made.issue(made.server_ca, "server")
    made.client_ca = made.ca("client-ca")
    made.client = made.issue(made.client_ca, "client", names=("DNS:worker-1",), client=True)
    made.stranger_ca = made.ca("stranger-ca")
    made.stranger = made.issue(made.stranger_ca, "stranger", names=("DNS:worker-2",), client=True)
    made.expired_client = made.issue(made.client_ca, "expired-client", names=("DNS:worker-3",), client=True, days=-1)
    yield made
    made.remove()


def serve(postgres, redis, certificate, client_ca=None):
    args = [binary("tasker"), "serve", "--port", "{port}", "--database-url", postgres.url, "--redis-url", redis.url,
            "--tls-cert", certificate[0], "--tls-key", certificate[1]]
    if client_ca:
        args += ["--tls-client-ca", client_ca[0]]
    return Service(args)


def secure(certs, port, ca=None, client=None):
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certs.read((ca or certs.server_ca)[0]),
        private_key=certs.read(client[1]) if client else None,
        certificate_chain=certs.read(client[0]) if client else None)
    return grpc.secure_channel("127.0.0.1:%d" % port, credentials)


def health_check(channel):
    """grpc.health.v1.Health/Check for the whole server, as bytes: SERVING is b"\\x08\\x01"."""
    check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=bytes, response_deserializer=bytes)
    return check(b"", timeout=10)


def healthy(channel):
    return health_check(channel) == b"\x08\x01"


def refused(channel):
    with pytest.raises(grpc.RpcError) as failure:
        health_check(channel)
    return failure.value.code() == grpc.StatusCode.UNAVAILABLE


def run_task(channel, handler):
    """Registers a one-step template, submits it, runs it on a raw worker over `channel`."""
    stub = tasker_pb2_grpc.TaskerStub(channel)
    stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
        name=handler, version="1", steps=[tasker_pb2.StepTemplate(name="a", handler=handler)])), timeout=10)
    worker = RawWorker(channel, [handler], slots=1)
    task_id = stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name=handler), timeout=10).task.task_id
    assignment = worker.assignments(1)[0]
    assert assignment.task_id == task_id
    worker.succeed(assignment)
    completed(stub, task_id, within=10)
    worker.close()


def tasker(*args):
    return subprocess.run([binary("tasker"), *args], capture_output=True, text=True, timeout=30)


def test_a_stock_grpcio_client_and_worker_over_tls(postgres, redis, certs):
    server = serve(postgres, redis, certs.server)
    try:
        with secure(certs, server.port) as channel:
            assert healthy(channel)
            run_task(channel, "tls.a")
        # Plaintext to the TLS port is refused; the server goes on serving.
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as plaintext:
            assert refused(plaintext)
        with secure(certs, server.port) as channel:
            assert healthy(channel)
        # The CLI, trusting the CA, lists the task; without TLS it says what went wrong.
        listed = tasker("list", "--server", "127.0.0.1:%d" % server.port, "--tls-ca", certs.server_ca[0])
        assert listed.returncode == 0 and "tls.a" in listed.stdout, listed.stderr
        plain = tasker("list", "--server", "127.0.0.1:%d" % server.port)
        assert plain.returncode == 2 and "connect with TLS" in plain.stderr, plain
        assert server.alive()
    finally:
        server.stop()


def test_mutual_tls_refuses_clients_without_a_certificate_its_ca_signed(postgres, redis, certs):
    server = serve(postgres, redis, certs.server, client_ca=certs.client_ca)
    try:
        with secure(certs, server.port, client=certs.client) as channel:
            assert healthy(channel)
            run_task(channel, "mtls.a")
        for client in (None, certs.stranger, certs.expired_client):
            with secure(certs, server.port, client=client) as channel:
                assert refused(channel), client
        cli = tasker("health", "--server", "127.0.0.1:%d" % server.port, "--tls-ca", certs.server_ca[0])
        assert cli.returncode == 2 and "client certificate" in cli.stdout, cli
        cli = tasker("health", "--server", "127.0.0.1:%d" % server.port, "--tls-ca", certs.server_ca[0],
                     "--tls-cert", certs.client[0], "--tls-key", certs.client[1])
        assert cli.returncode == 0, cli
        with secure(certs, server.port, client=certs.client) as channel:
            assert healthy(channel)
    finally:
        server.stop()


def test_a_client_refuses_a_server_certificate_it_cannot_trust(postgres, redis, certs):
    wrong_name = certs.issue(certs.server_ca, "elsewhere", names=("DNS:elsewhere.example",))
    expired = certs.issue(certs.server_ca, "expired-server", days=-1)
    for certificate, says in ((certs.server, None), (wrong_name, "not for that name"), (expired, "not trusted")):
        server = serve(postgres, redis, certificate)
        try:
            address = "127.0.0.1:%d" % server.port
            cli = tasker("health", "--server", address, "--tls-ca", certs.server_ca[0])
            if says is None:
                assert cli.returncode == 0, cli
                # Trusting another CA instead, the same server is refused.
                cli = tasker("health", "--server", address, "--tls-ca", certs.stranger_ca[0])
                assert cli.returncode == 2 and "not trusted" in cli.stdout, cli
                with secure(certs, server.port, ca=certs.stranger_ca) as channel:
                    assert refused(channel)
            else:
                assert cli.returncode == 2 and says in cli.stdout, cli
                with secure(certs, server.port) as channel:
                    assert refused(channel)
            if certificate is wrong_name:
                named = tasker("health", "--server", address, "--tls-ca", certs.server_ca[0],
                               "--tls-server-name", "elsewhere.example")
                assert named.returncode == 0, named
        finally:
            server.stop()
    missing = tasker("health", "--server", "127.0.0.1:1", "--tls-ca", certs.path("nothing.pem"))
    assert missing.returncode == 2 and "no such file" in missing.stdout, missing


def test_bad_bytes_on_the_tls_port_close_only_their_connection(postgres, redis, certs):
    server = serve(postgres, redis, certs.server)
    try:
        def exchange(payload, close_after=True):
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            connection.sendall(payload)
            if close_after:
                connection.shutdown(socket.SHUT_WR)
            received = b""
            try:
                while True:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    received += chunk
            except (ConnectionResetError, socket.timeout):
                pass
            connection.close()
            return received

        # The HTTP/2 preface in plaintext, a ClientHello cut short, and a record of garbage.
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
        hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(32)
        garbage = b"\x16\x03\x03\x00\x40" + os.urandom(64)
        for payload in (preface, hello, garbage, os.urandom(4096)):
            answer = exchange(payload)
            assert b"HTTP/2" not in answer and len(answer) < 64, answer
        # A client that starts a handshake and goes quiet is closed after the handshake timeout,
        # and holds up no one meanwhile.
        stalled = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        stalled.sendall(hello[:20])
        with secure(certs, server.port) as channel:
            assert healthy(channel)
        started = time.time()
        stalled.settimeout(30)
        while stalled.recv(4096):
            pass
        assert time.time() - started < 15, "a stalled handshake held its connection"
        stalled.close()
        with secure(certs, server.port) as channel:
            assert healthy(channel)
        assert server.alive()
    finally:
        server.stop()


def reload(server, logged):
    """Sends SIGHUP and waits for the server to log `logged`."""
    server.process.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while logged not in server.output():
        assert time.time() < deadline, server.output()
        time.sleep(0.05)


def test_sighup_reads_a_renewed_certificate(postgres, redis, certs):
    live = certs.path("live")
    os.makedirs(live, exist_ok=True)
    current = (os.path.join(live, "server.pem"), os.path.join(live, "server.key"))
    for source, target in zip(certs.server, current):
        shutil.copy(source, target)
    server = serve(postgres, redis, current)
    try:
        with secure(certs, server.port) as channel:
            assert healthy(channel)
        # A file that cannot be used is not taken: the certificate in use stays.
        with open(current[0], "w") as broken:
            broken.write("not a certificate")
        reload(server, "not reloaded")
        with secure(certs, server.port) as channel:
            assert healthy(channel)
        renewed_ca = certs.ca("renewed-ca")
        renewed = certs.issue(renewed_ca, "renewed")
        for source, target in zip(renewed, current):
            shutil.copy(source, target)
        reload(server, "TLS certificate reloaded")
        with secure(certs, server.port, ca=renewed_ca) as channel:
            assert healthy(channel)
        with secure(certs, server.port) as channel:
            assert refused(channel)
        assert server.alive()
    finally:
        server.stop()


def test_the_python_example_worker_over_mutual_tls(postgres, redis, certs):
    server = serve(postgres, redis, certs.server, client_ca=certs.client_ca)
    worker = subprocess.Popen([sys.executable, WORKER, "--server", "127.0.0.1:%d" % server.port, "--name", "py-mtls",
                               "--tls-ca", certs.server_ca[0], "--tls-cert", certs.client[0], "--tls-key", certs.client[1]],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with secure(certs, server.port, client=certs.client) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            deadline = time.time() + 30
            while "python-example" not in [t.name for t in stub.ListTaskTemplates(tasker_pb2.ListTaskTemplatesRequest(), timeout=10).templates]:
                assert time.time() < deadline, "the Python worker never registered over mutual TLS"
                time.sleep(0.1)
            context = struct_pb2.Struct()
            context.update({"amount": 4})
            task_id = stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="python-example", context=context), timeout=10).task.task_id
            task = completed(stub, task_id)
            total = [step for step in task.steps if step.name == "total"][0]
            assert total.results["by"] == "py-mtls"
        # The SDK's client over the same mutual TLS; without its certificate it is refused.
        address = "127.0.0.1:%d" % server.port
        with Client(address, credentials=tls_credentials(ca=certs.server_ca[0], cert=certs.client[0], key=certs.client[1])) as sdk:
            done = sdk.wait(sdk.submit("python-example", {"amount": 6}).task.task_id)
            assert done.status == tasker_pb2.TASK_STATUS_COMPLETE
            assert to_dict([step for step in done.steps if step.name == "total"][0].results)["usd"] == 6
        with Client(address, credentials=tls_credentials(ca=certs.server_ca[0]), timeout=10) as anonymous:
            with pytest.raises(grpc.RpcError) as refused:
                anonymous.get(task_id)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(ValueError, match="a client certificate and its key go together"):
            tls_credentials(ca=certs.server_ca[0], cert=certs.client[0])
    finally:
        terminate(worker, grace=15)
        server.stop()
