"""The HTTP port of `tasker serve`: /live, /ready and /metrics on a real Postgres and Redis, as an
orchestrator and Prometheus see them; readiness and gRPC health following a store that goes
away and comes back; the port over TLS; and a port that cannot be had."""
import json
import ssl
import subprocess
import urllib.error
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from certificates import Certificates
from conftest import PrivateRedis, Service, binary, free_port, tasker_serve, until
import tasker_protos

tasker_pb2, tasker_pb2_grpc = tasker_protos.load()
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402  (grpcio-health-checking)


def get(port, path, context=None, scheme="http"):
    """(status, body) of a GET."""
    try:
        with urllib.request.urlopen("%s://127.0.0.1:%d%s" % (scheme, port, path), timeout=10, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()




def health(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


def test_live_ready_and_metrics(postgres, redis):
    server = tasker_serve(postgres, redis)
    try:
        status, body = get(server.http_port, "/live")
        assert status == 200 and json.loads(body) == {"live": True}
        status, body = get(server.http_port, "/ready")
        ready = json.loads(body)
        assert status == 200 and ready["ready"] is True, body
        assert ready["checks"] == {"postgres": "ok", "redis": "ok", "migrations": "ok"}, body
        assert get(server.http_port, "/nowhere")[0] == 404
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            stub = tasker_pb2_grpc.TaskerStub(channel)
            stub.RegisterTaskTemplate(tasker_pb2.RegisterTaskTemplateRequest(template=tasker_pb2.TaskTemplate(
                name="probed", version="1", steps=[tasker_pb2.StepTemplate(name="a", handler="probed.a")])), timeout=10)
            for _ in range(3):
                stub.SubmitTask(tasker_pb2.SubmitTaskRequest(name="probed"), timeout=10)
        status, text = get(server.http_port, "/metrics")
        assert status == 200
        families = {family.name: family for family in text_string_to_metric_families(text)}
        submitted = [s for s in families["tasker_tasks_submitted"].samples if s.labels == {"template": "probed"}]
        assert [s.value for s in submitted] == [3.0], families["tasker_tasks_submitted"]
        requests = {(s.labels["method"], s.labels["code"]): s.value for s in families["tasker_rpc_requests"].samples}
        assert requests[("tasker.v1.Tasker/SubmitTask", "OK")] == 3.0, requests
    finally:
        server.stop()


def test_the_http_port_is_off_with_zero_and_a_taken_port_is_refused(postgres, redis):
    server = Service([binary("tasker"), "serve", "--port", "{port}", "--http-port", "0", "--database-url", postgres.url])
    try:
        assert "HTTP" not in server.output(), server.output()
    finally:
        server.stop()
    first = tasker_serve(postgres, redis)
    try:
        taken = subprocess.run([binary("tasker"), "serve", "--port", str(free_port()), "--http-port", str(first.http_port),
                                "--database-url", postgres.url], capture_output=True, text=True, timeout=60)
        assert taken.returncode != 0, taken
        assert "HTTP port cannot listen on 127.0.0.1:%d" % first.http_port in taken.stderr and "--http-port" in taken.stderr, taken.stderr
        assert get(first.http_port, "/live")[0] == 200, "the node holding the port is unharmed"
    finally:
        first.stop()


def test_ready_and_health_follow_postgres_and_redis_down_and_back(postgres):
    redis = PrivateRedis()
    server = tasker_serve(postgres, redis)
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=120)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            postgres.down()
            try:
                until("/ready did not go 503 with Postgres stopped", lambda: get(server.http_port, "/ready")[0] == 503)
                down = json.loads(get(server.http_port, "/ready")[1])
                assert down["ready"] is False and "postgres" in down["down"] and down["checks"]["redis"] == "ok", down
                assert health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
                assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
                assert get(server.http_port, "/live")[0] == 200, "live while its database is down"
            finally:
                postgres.up()
            until("/ready did not come back with Postgres", lambda: get(server.http_port, "/ready")[0] == 200)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            assert health(channel) == health_pb2.HealthCheckResponse.SERVING

            port = redis.port
            redis.stop()
            until("/ready did not go 503 with Redis stopped", lambda: get(server.http_port, "/ready")[0] == 503)
            down = json.loads(get(server.http_port, "/ready")[1])
            assert down["down"] == ["redis"] and down["checks"]["postgres"] == "ok", down
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            redis = PrivateRedis(port=port)
            until("/ready did not come back with Redis", lambda: get(server.http_port, "/ready")[0] == 200)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
    finally:
        server.stop()
        redis.stop()


def test_the_http_port_speaks_tls_when_the_rpc_port_does(postgres, redis, tmp_path):
    certificates = Certificates()
    ca = certificates.ca("http-ca")
    cert, key = certificates.issue(ca, "http-server")
    server = Service([binary("tasker"), "serve", "--port", "{port}", "--database-url", postgres.url, "--redis-url", redis.url,
                      "--tls-cert", cert, "--tls-key", key])
    try:
        context = ssl.create_default_context(cafile=ca[0])
        status, body = get(server.http_port, "/ready", context=context, scheme="https")
        assert status == 200 and json.loads(body)["ready"] is True
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            get(server.http_port, "/live")
        assert get(server.http_port, "/live", context=context, scheme="https")[0] == 200, "a plaintext try harms nothing"
    finally:
        server.stop()


def test_garbage_on_the_http_port_harms_nothing(postgres, redis):
    import socket

    server = tasker_serve(postgres, redis)
    try:
        for payload in (b"\x00\xff" * 512, b"GET /live HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 200_000 + b"\r\n\r\n",
                        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"GET /live HTTP/1.1\r\n"):
            with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as connection:
                connection.sendall(payload)
                connection.shutdown(socket.SHUT_WR)
                try:
                    answer = connection.recv(4096)
                except (ConnectionResetError, socket.timeout):
                    answer = b""
                assert b"200 OK" not in answer or payload.startswith(b"GET /live HTTP/1.1\r\nHost"), (payload[:40], answer[:200])
        assert get(server.http_port, "/live")[0] == 200
        status, body = get(server.http_port, "/ready?" + "x" * 5000)
        assert status == 200
        request = urllib.request.Request("http://127.0.0.1:%d/ready" % server.http_port, data=b"{}", method="POST")
        try:
            urllib.request.urlopen(request, timeout=10)
            pytest.fail("POST /ready was taken")
        except urllib.error.HTTPError as error:
            assert error.code in (404, 405), error.code
        assert server.alive()
    finally:
        server.stop()
