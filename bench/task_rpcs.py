#!/usr/bin/env python3
"""SubmitTask of a 4-step template and GetTask, driven by h2load against `tasker serve`
(release build) on a private Postgres with durable commits (synchronous_commit and fsync on,
the defaults). Each row is one h2load run; every answer's grpc-status is checked on a sample
first (h2load counts any HTTP 200 as a success).

  python3 bench/task_rpcs.py [--requests 10000] [--connections 16]
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "interop"))
import unary_health  # noqa: E402  the shared h2load helpers
from conftest import PrivatePostgres  # noqa: E402
import tasker_protos  # noqa: E402

ROOT = unary_health.ROOT


def framed(message):
    body = message.SerializeToString()
    return b"\0" + struct.pack(">I", len(body)) + body


def h2load(port, path, body, requests, callers, log):
    if os.path.exists(log):
        os.remove(log)
    with tempfile.NamedTemporaryFile() as request:
        request.write(body)
        request.flush()
        out = subprocess.run(
            ["h2load", "-n", str(requests), "-c", str(callers), "-m", "1", "-t", "1", "-d", request.name,
             "-H", "content-type: application/grpc", "-H", "te: trailers", "--log-file", log,
             "http://127.0.0.1:%d%s" % (port, path)], capture_output=True, text=True, timeout=900)
    rps = next(float(line.split(",")[1].split("req/s")[0]) for line in out.stdout.splitlines() if line.startswith("finished in"))
    latencies = sorted(int(line.split("\t")[2]) for line in open(log) if line.split("\t")[1] == "200")
    if len(latencies) != requests:
        sys.exit("only %d of %d requests answered HTTP 200:\n%s" % (len(latencies), requests, out.stdout))
    return rps, latencies[len(latencies) // 2] / 1000.0, latencies[int(len(latencies) * 0.99)] / 1000.0


def check_status(port, path, body):
    with tempfile.NamedTemporaryFile() as request:
        request.write(body)
        request.flush()
        out = subprocess.run(["nghttp", "-v", "-d", request.name, "-H", "content-type: application/grpc",
                              "-H", "te: trailers", "http://127.0.0.1:%d%s" % (port, path)], capture_output=True, timeout=10)
    if b"grpc-status: 0" not in out.stdout:
        sys.exit("%s does not answer grpc-status 0:\n%s" % (path, out.stdout.decode("latin-1")))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--connections", type=int, default=16, help="Postgres connections of the server")
    args = parser.parse_args()
    unary_health.run(["swift", "build", "-c", "release", "--product", "tasker"], cwd=ROOT)
    pb, pb_grpc = tasker_protos.load()
    import grpc
    from google.protobuf import struct_pb2

    database = PrivatePostgres()
    port = unary_health.free_port()
    server = subprocess.Popen(
        [os.path.join(ROOT, ".build", "release", "tasker"), "serve", "--port", str(port), "--database-url", database.url,
         "--database-connections", str(args.connections)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = os.path.join(tempfile.mkdtemp(prefix="tasker-bench-"), "h2load.log")
    try:
        unary_health.wait_for(port, server)
        steps = [pb.StepTemplate(name="a", handler="noop"),
                 pb.StepTemplate(name="b", handler="noop", depends_on=["a"]),
                 pb.StepTemplate(name="c", handler="noop", depends_on=["a"]),
                 pb.StepTemplate(name="d", handler="noop", depends_on=["b", "c"])]
        context = struct_pb2.Struct()
        context.update({"cart_id": 7, "items": ["a", "b"]})
        with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
            stub = pb_grpc.TaskerStub(channel)
            stub.RegisterTaskTemplate(pb.RegisterTaskTemplateRequest(template=pb.TaskTemplate(name="bench", version="1", steps=steps)))
            task_id = stub.SubmitTask(pb.SubmitTaskRequest(name="bench", context=context)).task.task_id
        submit = framed(pb.SubmitTaskRequest(name="bench", context=context))
        get = framed(pb.GetTaskRequest(task_id=task_id))
        check_status(port, "/tasker.v1.Tasker/SubmitTask", submit)
        check_status(port, "/tasker.v1.Tasker/GetTask", get)
        print("| RPC | callers | requests/s | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|")
        for name, body in (("SubmitTask", submit), ("GetTask", get)):
            for callers in (1, 32):
                requests = args.requests if callers > 1 else max(args.requests // 4, 100)
                rps, p50, p99 = h2load(port, "/tasker.v1.Tasker/" + name, body, requests, callers, log)
                print("| %s | %d | %.0f | %.2f | %.2f |" % (name, callers, rps, p50, p99), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        database.stop()
        shutil.rmtree(os.path.dirname(log), ignore_errors=True)


if __name__ == "__main__":
    main()
