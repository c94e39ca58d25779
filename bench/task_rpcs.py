#!/usr/bin/env python3
"""SubmitTask of a 4-step template and GetTask, driven by h2load against `tasker serve`
(release build) on a private Postgres with durable commits (synchronous_commit and fsync on,
the defaults). Each row is one h2load run; every answer's grpc-status is checked on a sample
first (h2load counts any HTTP 200 as a success).

With --secured the same build is measured three ways in one run, each on its own database:
plaintext without auth, with --auth and a submitter token, and over TLS with the token.

  python3 bench/task_rpcs.py [--requests 10000] [--rounds 3] [--connections 16] [--baseline OLD_TASKER] [--secured]
"""
import argparse
import os
import shutil
import statistics
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


def start_server(binary, database_url, connections, extra=()):
    port = unary_health.free_port()
    # With its HTTP port (and so its metrics) on, when the build has one.
    help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout
    http = ["--http-port", str(unary_health.free_port())] if "--http-port" in help_text else []
    server = subprocess.Popen(
        [binary, "serve", "--port", str(port), *http, "--database-url", database_url,
         "--database-connections", str(connections), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    unary_health.wait_for(port, server)
    return port, server


def prepare(port, pb, pb_grpc, context, ca=None, token=None):
    """Registers the 4-step diamond template and submits one task: the request bodies of both RPCs."""
    import grpc

    metadata = [("authorization", "Bearer " + token)] if token else None
    headers = ["authorization: Bearer " + token] if token else []

    steps = [pb.StepTemplate(name="a", handler="noop"),
             pb.StepTemplate(name="b", handler="noop", depends_on=["a"]),
             pb.StepTemplate(name="c", handler="noop", depends_on=["a"]),
             pb.StepTemplate(name="d", handler="noop", depends_on=["b", "c"])]
    address = "127.0.0.1:%d" % port
    channel = (grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=open(ca, "rb").read()))
               if ca else grpc.insecure_channel(address))
    with channel:
        stub = pb_grpc.TaskerStub(channel)
        stub.RegisterTaskTemplate(pb.RegisterTaskTemplateRequest(template=pb.TaskTemplate(name="bench", version="1", steps=steps)),
                                  metadata=metadata)
        task_id = stub.SubmitTask(pb.SubmitTaskRequest(name="bench", context=context), metadata=metadata).task.task_id
    bodies = {"SubmitTask": framed(pb.SubmitTaskRequest(name="bench", context=context)),
              "GetTask": framed(pb.GetTaskRequest(task_id=task_id))}
    for name, body in bodies.items():
        status = unary_health.grpc_status(port, "/tasker.v1.Tasker/" + name, body, tls=ca is not None, headers=headers)
        if status != "0":
            sys.exit("%s answers grpc-status %r, not 0: the figures would be meaningless" % (name, status))
    return bodies


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each row; medians are printed")
    parser.add_argument("--connections", type=int, default=16, help="Postgres connections of the server")
    parser.add_argument("--baseline", help="another tasker binary (an earlier build) measured in the same run, "
                                           "rounds alternating, on its own database of the same Postgres")
    parser.add_argument("--secured", action="store_true", help="this build also with --auth and a token, and over TLS with it")
    args = parser.parse_args()
    unary_health.run(["swift", "build", "-c", "release", "--product", "tasker"], cwd=ROOT)
    pb, pb_grpc = tasker_protos.load()
    from google.protobuf import struct_pb2

    context = struct_pb2.Struct()
    context.update({"cart_id": 7, "items": ["a", "b"]})
    database = PrivatePostgres()
    log = os.path.join(tempfile.mkdtemp(prefix="tasker-bench-"), "h2load.log")
    tasker = os.path.join(ROOT, ".build", "release", "tasker")
    # (label, binary, TLS, token): each on a database of its own.
    binaries = [("tasker", tasker, False, False)]
    if args.baseline:
        binaries.append(("baseline", os.path.abspath(args.baseline), False, False))
    if args.secured:
        binaries += [("token", tasker, False, True), ("tls+token", tasker, True, True)]
        pem, key = unary_health.certificate(os.path.dirname(log))
    servers = []
    try:
        targets = []
        for label, binary, tls, with_token in binaries:
            name = "bench_" + label.replace("+", "_")
            subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(database.port), "-U", "tasker", name], check=True)
            url = database.url.rsplit("/", 1)[0] + "/" + name
            extra, token = [], None
            if with_token:
                token = subprocess.run([binary, "tokens", "create", "--name", "bench", "--role", "submitter", "--database-url", url],
                                       check=True, capture_output=True, text=True).stdout.strip()
                extra.append("--auth")
            if tls:
                extra += ["--tls-cert", pem, "--tls-key", key]
            port, server = start_server(binary, url, args.connections, extra)
            servers.append(server)
            headers = ["authorization: Bearer " + token] if token else []
            targets.append((label, port, prepare(port, pb, pb_grpc, context, ca=pem if tls else None, token=token), tls, headers))
        results = {}
        for _ in range(args.rounds):
            for rpc in ("SubmitTask", "GetTask"):
                for callers in (1, 32):
                    requests = args.requests if callers > 1 else max(args.requests // 4, 100)
                    for label, port, bodies, tls, headers in targets:
                        rps, p50, p99, failed = unary_health.h2load(
                            port, "/tasker.v1.Tasker/" + rpc, bodies[rpc], requests, callers, 1, 1, log, tls=tls, headers=headers)
                        if failed:
                            sys.exit("%s %s: %d requests failed" % (label, rpc, failed))
                        results.setdefault((rpc, callers, label), []).append((rps, p50, p99))
        print("| RPC | callers | server | requests/s | p50 ms | p99 ms |")
        print("|---|---:|---|---:|---:|---:|")
        for (rpc, callers, label), runs in results.items():
            median = [statistics.median(run[i] for run in runs) for i in range(3)]
            print("| %s | %d | %s | %.0f | %.2f | %.2f |" % (rpc, callers, label, *median), flush=True)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        database.stop()
        shutil.rmtree(os.path.dirname(log), ignore_errors=True)


if __name__ == "__main__":
    main()
