#!/usr/bin/env python3
"""Unary grpc.health.v1.Health/Check driven by h2load against three servers in one run:

  tasker       this transport (tasker serve, release build)
  grpc-swift   a grpc-swift-2 server (bench/grpc-swift-baseline) serving the same method
  nghttpd      plain nghttp2 serving a file with the same response bytes: the ceiling

Rounds alternate between the servers so that noise on this shared machine hits all of them;
the table gives medians over the rounds and the ratio tasker / grpc-swift.

With --tls it measures what TLS costs instead: tasker and nghttpd each in plaintext and over
TLS (a certificate made with openssl), and compares tasker's TLS / plaintext ratio with
nghttpd's own, the ceiling.

  python3 bench/unary_health.py [--tls] [--rounds 5] [--requests 200000] [--clients 16] [--streams 32] [--threads 2]
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PATH = "/grpc.health.v1.Health/Check"
REQUEST = b"\x00\x00\x00\x00\x00"            # an empty HealthCheckRequest, gRPC-framed
RESPONSE = b"\x00\x00\x00\x00\x02\x08\x01"    # HealthCheckResponse{status: SERVING}, gRPC-framed


def run(args, **kwargs):
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True, **kwargs)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port, process):
    for _ in range(400):
        if process.poll() is not None:
            raise RuntimeError("server exited with %s" % process.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server on %d did not start" % port)


def build(baseline=True):
    run(["swift", "build", "-c", "release", "--product", "tasker"], cwd=ROOT)
    tasker = os.path.join(ROOT, ".build", "release", "tasker")
    if not baseline:
        return tasker, None
    run(["swift", "build", "-c", "release", "--scratch-path", os.path.join(ROOT, ".build-bench-baseline")],
        cwd=os.path.join(ROOT, "bench", "grpc-swift-baseline"))
    baseline = os.path.join(ROOT, ".build-bench-baseline", "release", "grpc-swift-health-server")
    return tasker, baseline


def certificate(folder):
    """A self-signed certificate for 127.0.0.1: (certificate path, key path)."""
    pem, key = os.path.join(folder, "server.pem"), os.path.join(folder, "server.key")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
         "-out", pem, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return pem, key


def url(port, path, tls):
    return "%s://127.0.0.1:%d%s" % ("https" if tls else "http", port, path)


def grpc_status(port, path, body=REQUEST, tls=False, headers=()):
    """The grpc-status one real request gets (h2load counts any HTTP 200 as success)."""
    with tempfile.NamedTemporaryFile() as request:
        request.write(body)
        request.flush()
        out = subprocess.run(
            ["nghttp", "-v", "-d", request.name, "-H", "content-type: application/grpc", "-H", "te: trailers",
             *[part for header in headers for part in ("-H", header)], url(port, path, tls)], capture_output=True, timeout=10)
    text = out.stdout.decode("latin-1")
    for line in text.splitlines():
        if "grpc-status:" in line:
            return line.split("grpc-status:")[1].strip()
    return None


def h2load(port, path, body, requests, clients, streams, threads, log, tls=False, headers=()):
    """One h2load run posting `body` to `path`: (requests/s, p50 ms, p99 ms, failed requests)."""
    # h2load appends to its log file: each run starts from an empty one.
    if os.path.exists(log):
        os.remove(log)
    with tempfile.NamedTemporaryFile() as request:
        request.write(body)
        request.flush()
        out = subprocess.run(
            ["h2load", "-n", str(requests), "-c", str(clients), "-m", str(streams),
             "-t", str(threads), "-d", request.name, "-H", "content-type: application/grpc",
             "-H", "te: trailers", *[part for header in headers for part in ("-H", header)],
             "--log-file", log, url(port, path, tls)],
            capture_output=True, text=True, timeout=900)
    rps = None
    failed = None
    for line in out.stdout.splitlines():
        if line.startswith("finished in"):
            rps = float(line.split(",")[1].split("req/s")[0])
        if line.startswith("requests:"):
            parts = dict(p.strip().split(" ", 1)[::-1] for p in line.split(":", 1)[1].split(","))
            failed = int(parts["failed"]) + int(parts["errored"])
    if rps is None:
        raise RuntimeError("h2load output not understood:\n" + out.stdout + out.stderr)
    latencies = []
    with open(log) as lines:
        for line in lines:
            fields = line.split("\t")
            if len(fields) >= 3 and fields[1] == "200":
                latencies.append(int(fields[2]))
    if len(latencies) != requests:
        sys.exit("only %d of %d requests to %s answered HTTP 200:\n%s" % (len(latencies), requests, path, out.stdout))
    latencies.sort()
    p50 = latencies[len(latencies) // 2] / 1000.0
    p99 = latencies[int(len(latencies) * 0.99)] / 1000.0
    return rps, p50, p99, failed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tls", action="store_true", help="measure TLS against plaintext, for tasker and nghttpd")
    args = parser.parse_args()
    for tool in ("h2load", "nghttp", "nghttpd"):
        if not shutil.which(tool):
            sys.exit("%s is missing: scripts/install-deps.sh --system-only installs it" % tool)

    tasker, baseline = build(baseline=not args.tls)
    docroot = tempfile.mkdtemp(prefix="tasker-bench-")
    os.makedirs(os.path.join(docroot, "grpc.health.v1.Health"))
    with open(os.path.join(docroot, "grpc.health.v1.Health", "Check"), "wb") as f:
        f.write(RESPONSE)

    if args.tls:
        pem, key = certificate(docroot)
        ports = {name: free_port() for name in ("tasker", "tasker-tls", "nghttpd", "nghttpd-tls")}
        commands = {
            "tasker": [tasker, "serve", "--port", str(ports["tasker"])],
            "tasker-tls": [tasker, "serve", "--port", str(ports["tasker-tls"]), "--tls-cert", pem, "--tls-key", key],
            "nghttpd": ["nghttpd", "--no-tls", "-d", docroot, "-n", "2", str(ports["nghttpd"])],
            "nghttpd-tls": ["nghttpd", "-d", docroot, "-n", "2", str(ports["nghttpd-tls"]), key, pem],
        }
    else:
        ports = {name: free_port() for name in ("tasker", "grpc-swift", "nghttpd")}
        commands = {
            "tasker": [tasker, "serve", "--port", str(ports["tasker"])],
            "grpc-swift": [baseline, str(ports["grpc-swift"])],
            "nghttpd": ["nghttpd", "--no-tls", "-d", docroot, "-n", "2", str(ports["nghttpd"])],
        }
    secured = {name: name.endswith("-tls") for name in commands}
    grpc_servers = [name for name in commands if not name.startswith("nghttpd")]
    processes = {}
    try:
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(ports[name], processes[name])
        for name in grpc_servers:
            status = grpc_status(ports[name], PATH, tls=secured[name])
            if status != "0":
                sys.exit("%s answers grpc-status %r, not 0: the figures would be meaningless" % (name, status))
            print("%s answers grpc-status 0" % name)

        results = {name: [] for name in commands}
        log = os.path.join(docroot, "h2load.log")
        for round_number in range(args.rounds):
            for name in commands:
                rps, p50, p99, failed = h2load(ports[name], PATH, REQUEST, args.requests, args.clients,
                                               args.streams, args.threads, log, tls=secured[name])
                if failed:
                    sys.exit("%s: %d requests failed" % (name, failed))
                results[name].append((rps, p50, p99))
                print("round %d %-10s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms" % (round_number + 1, name, rps, p50, p99),
                      flush=True)
        for name in grpc_servers:
            status = grpc_status(ports[name], PATH, tls=secured[name])
            if status != "0":
                sys.exit("%s answered grpc-status %r after the load" % (name, status))

        print()
        print("| server | requests/s (median) | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|")
        medians = {}
        for name in commands:
            rps = statistics.median(r[0] for r in results[name])
            p50 = statistics.median(r[1] for r in results[name])
            p99 = statistics.median(r[2] for r in results[name])
            medians[name] = (rps, p50, p99)
            print("| %s | %.0f | %.2f | %.2f |" % (name, rps, p50, p99))
        print()
        if args.tls:
            ours = medians["tasker-tls"][0] / medians["tasker"][0]
            ceiling = medians["nghttpd-tls"][0] / medians["nghttpd"][0]
            print("TLS / plaintext requests/s: tasker %.2f, nghttpd %.2f (the ceiling)" % (ours, ceiling))
        else:
            t, g = medians["tasker"], medians["grpc-swift"]
            print("tasker / grpc-swift: %.2fx requests/s, p99 %.2f ms vs %.2f ms" % (t[0] / g[0], t[2], g[2]))
            print("tasker / nghttpd ceiling: %.2f of the requests/s" % (t[0] / medians["nghttpd"][0]))
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)
        shutil.rmtree(docroot, ignore_errors=True)


if __name__ == "__main__":
    main()
