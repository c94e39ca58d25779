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
        for path, body in (("/tasker.v1.Tasker/SubmitTask", submit), ("/tasker.v1.Tasker/GetTask", get)):
            status = unary_health.grpc_status(port, path, body)
            if status != "0":
                sys.exit("%s answers grpc-status %r, not 0: the figures would be meaningless" % (path, status))
        print("| RPC | callers | requests/s | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|")
        for name, body in (("SubmitTask", submit), ("GetTask", get)):
            for callers in (1, 32):
                requests = args.requests if callers > 1 else max(args.requests // 4, 100)
                rps, p50, p99, failed = unary_health.h2load(
                    port, "/tasker.v1.Tasker/" + name, body, requests, callers, 1, 1, log)
                if failed:
                    sys.exit("%s: %d requests failed" % (name, failed))
                print("| %s | %d | %.0f | %.2f | %.2f |" % (name, callers, rps, p50, p99), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        database.stop()
        shutil.rmtree(os.path.dirname(log), ignore_errors=True)


if __name__ == "__main__":
    main()
