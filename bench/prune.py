#!/usr/bin/env python3
"""How fast `tasker prune` deletes finished tasks (each with four steps, their edges, nine
transitions and an annotation) from a private Postgres, idle and under a live workload (a
2-step template, a stock grpcio worker answering at once, about 16 tasks in flight), with the
release build. Prints tasks/s for each. (What pruning costs the workload's pace is measured
side by side by Tests/interop/test_retention.py, pausing the prune in turns: a before/after
comparison here would mostly measure the drift of a shared machine.)

  python3 bench/prune.py [--tasks 50000] [--rounds 2]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "Tests", "interop"))
sys.path.insert(0, os.path.dirname(__file__))
import unary_health  # noqa: E402  (bench/)
from conftest import PrivatePostgres, PrivateRedis, Service  # noqa: E402
from live_workload import LiveWorkload  # noqa: E402
from retention_seed import seed  # noqa: E402


def timed_prune(tasker, postgres, tasks):
    began = time.time()
    out = subprocess.run([tasker, "prune", "--older-than", "30d", "--database-url", postgres.url],
                         capture_output=True, text=True, check=True).stdout
    took = time.time() - began
    assert out.startswith("pruned %d " % tasks), out
    return tasks / took, took


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    unary_health.run(["swift", "build", "-c", "release", "--product", "tasker"], cwd=ROOT)
    tasker = os.path.join(ROOT, ".build", "release", "tasker")
    import grpc

    postgres, redis = PrivatePostgres(), PrivateRedis()
    server = Service([tasker, "serve", "--port", "{port}", "--database-url", postgres.url, "--redis-url", redis.url])
    idle, loaded = [], []
    try:
        with grpc.insecure_channel("127.0.0.1:%d" % server.port) as channel:
            for _ in range(args.rounds):
                seed(postgres, args.tasks)
                postgres.query("VACUUM ANALYZE")
                idle.append(timed_prune(tasker, postgres, args.tasks)[0])

            live = LiveWorkload(channel)
            for _ in range(args.rounds):
                seed(postgres, args.tasks)
                postgres.query("VACUUM ANALYZE")
                time.sleep(3)
                loaded.append(timed_prune(tasker, postgres, args.tasks)[0])
            live.stop()
        print("| | tasks/s (median of %d) |" % args.rounds)
        print("|---|---:|")
        print("| idle | %.0f |" % statistics.median(idle))
        print("| under the live workload | %.0f |" % statistics.median(loaded))
    finally:
        server.stop()
        redis.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
