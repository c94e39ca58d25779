#!/usr/bin/env python3
"""The readiness and read queries of the engine on a million tasks (four million steps):
fills a private Postgres with the real schema, then prints each query's execution time from
EXPLAIN ANALYZE (median of 5) and the index it uses.

  python3 bench/readiness_at_scale.py [--tasks 1000000]
"""
import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "Tests", "interop"))
from conftest import PrivatePostgres  # noqa: E402

FILL = """
INSERT INTO task_templates (name, version, definition, fingerprint) VALUES ('bench', '1', '\\x00', 'x');
INSERT INTO tasks (task_id, name, version, status, created_at, completed_at)
SELECT gen_random_uuid(), 'bench', '1',
       CASE WHEN i % 100 = 0 THEN 2 WHEN i % 1000 = 1 THEN 1 ELSE 3 END,
       now() - make_interval(secs => i),
       CASE WHEN i % 100 = 0 OR i % 1000 = 1 THEN NULL ELSE now() - make_interval(secs => i) + interval '1 second' END
FROM generate_series(1, {tasks}) i;
INSERT INTO steps (step_id, task_id, name, handler, position, status, attempts, retry_limit, retryable, skippable,
                   backoff_base_seconds, backoff_max_seconds, backoff_jitter, unmet_dependencies, next_attempt_at)
SELECT gen_random_uuid(), t.task_id, 'step' || n, 'noop', n,
       CASE WHEN t.status = 3 THEN 4                              -- finished tasks: COMPLETE steps
            WHEN n = 0 AND t.status = 1 THEN 2                    -- new tasks: root ENQUEUED
            WHEN n = 1 AND t.status = 2 AND random() < 0.3 THEN 6 -- running: some retries waiting
            WHEN n = 0 THEN 4 ELSE 1 END,
       1, 3, true, false, 1, 300, 0.1, CASE WHEN n = 0 THEN 0 ELSE 1 END,
       now() + make_interval(secs => (random() * 120 - 60))
FROM tasks t, generate_series(0, 3) n;
ANALYZE;
"""

QUERIES = {
    "due retries, every task (sweeper)":
        "SELECT DISTINCT task_id FROM steps WHERE status = 6 AND next_attempt_at <= now() LIMIT 500",
    "ready steps of one task (enqueue)":
        "UPDATE steps SET status = 2 WHERE task_id = '{task}' AND ((status = 1 AND unmet_dependencies = 0) "
        "OR (status = 6 AND next_attempt_at <= now()))",
    "steps of one task (GetTask)":
        "SELECT step_id, name, status, depends_on FROM steps s WHERE s.task_id = '{task}' ORDER BY s.position",
    "newest 50 tasks (ListTasks)":
        "SELECT task_id FROM tasks ORDER BY created_at DESC, task_id DESC LIMIT 51",
    "newest 50 IN_PROGRESS (ListTasks status)":
        "SELECT task_id FROM tasks WHERE status = 2 ORDER BY created_at DESC, task_id DESC LIMIT 51",
    "ENQUEUED steps, every task (dispatch)":
        "SELECT step_id FROM steps WHERE status = 2 ORDER BY last_attempted_at LIMIT 100",
    "steps by handler and state (ListQueues; each node every 5 s)":
        "SELECT handler, 2 AS status, count(*) FROM steps WHERE status = 2 GROUP BY handler "
        "UNION ALL SELECT handler, 3, count(*) FROM steps WHERE status = 3 GROUP BY handler "
        "UNION ALL SELECT handler, 6, count(*) FROM steps WHERE status = 6 GROUP BY handler",
    "oldest 200 finished a day ago (prune batch)":
        "SELECT task_id FROM tasks WHERE completed_at < now() - interval '1 day' AND status = ANY('{{3,4,5,6}}'::smallint[]) "
        "ORDER BY completed_at LIMIT 200 FOR UPDATE SKIP LOCKED",
}


def psql(database, sql):
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", database.url, "-c", sql],
                          capture_output=True, text=True, check=True).stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000000)
    args = parser.parse_args()
    database = PrivatePostgres()
    try:
        for schema in sorted(glob.glob(os.path.join(ROOT, "Sources", "TaskerStore", "Schema", "*.sql"))):
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", database.url, "-f", schema], check=True)
        started = time.time()
        psql(database, FILL.format(tasks=args.tasks))
        steps = psql(database, "SELECT count(*) FROM steps").strip()
        print("filled %d tasks, %s steps in %.0f s" % (args.tasks, steps, time.time() - started))
        task = psql(database, "SELECT task_id FROM tasks WHERE status = 2 LIMIT 1").strip()
        print("| query | execution ms (median of 5) | plan |")
        print("|---|---:|---|")
        for name, sql in QUERIES.items():
            sql = sql.format(task=task)
            times, plan = [], ""
            for _ in range(5):
                out = psql(database, "BEGIN; EXPLAIN (ANALYZE, COSTS OFF) " + sql + "; ROLLBACK;")
                times.append(float(re.search(r"Execution Time: ([0-9.]+) ms", out).group(1)))
                used = re.findall(r"(?:Index|Index Only) Scan(?: Backward)? using (\w+)|Bitmap Index Scan on (\w+)", out)
                plan = "; ".join(sorted({a or b for a, b in used})) or ("Seq Scan" if "Seq Scan" in out else "?")
            print("| %s | %.3f | %s |" % (name, statistics.median(times), plan), flush=True)
    finally:
        database.stop()


if __name__ == "__main__":
    main()
