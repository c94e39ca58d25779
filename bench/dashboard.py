#!/usr/bin/env python3
"""What the dashboard costs and how fast it draws, against release builds.

render: a task page of 30 steps (6 columns of 5) in headless Chromium while a Python SDK worker
  fails each step's attempts 11 times (backoff 0.05 s) before it succeeds: about 1,100 updates.
  Each update's time from its arrival on the page's stream to the end of the frame that drew
  it is a `performance.measure` ("tasker-update"); the median, p99 and worst are reported.
cost: the workers benchmark (tasker-bench-workers, 10,000 diamonds) with 5 dashboard task
  pages following live tasks, against none, alternating, side by side. A page is stood in for
  by what it asks: its task's event stream from the start, and GetTask 0.4 s after each burst of
  updates (curl and one reader thread, so that the driver's own CPU stays small). The 5 tasks are kept busy by a Python
  worker (each attempt of their steps fails, retried after 0.2 s) in both arms, so the only
  difference is the pages.
  python3 bench/dashboard.py render [--tasker .build/release/tasker]
  python3 bench/dashboard.py cost [--bin .build/release] [--rounds 3] [--tasks 10000] [--pages 5]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "Tests", "interop"))
from conftest import PrivatePostgres, PrivateRedis, free_port, terminate, wait_for_port  # noqa: E402
from http_api import get, post  # noqa: E402
from tasker_sdk import Retryable, Worker  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, ".."))


def layered(name, handler, retry_limit, base_seconds):
    steps = []
    for column in range(6):
        for row in range(5):
            depends = [] if column == 0 else sorted({"s%d_%d" % (column - 1, row), "s%d_%d" % (column - 1, (row + 1) % 5)})
            steps.append({"name": "s%d_%d" % (column, row), "handler": handler, "depends_on": depends, "retry_limit": retry_limit,
                          "backoff": {"base_seconds": base_seconds, "max_seconds": base_seconds, "jitter": 0}})
    return {"name": name, "version": "1", "steps": steps}


def serve(tasker, postgres, redis):
    port, http_port = free_port(), free_port()
    log = tempfile.NamedTemporaryFile(prefix="tasker-bench-dashboard-", suffix=".log")
    process = subprocess.Popen([tasker, "serve", "--port", str(port), "--http-port", str(http_port), "--database-url", postgres.url,
                                "--redis-url", redis.url, "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process)
    wait_for_port(http_port, process)
    return process, port, http_port


def render(args):
    from browser import chromium

    postgres, redis = PrivatePostgres(), PrivateRedis()
    process, port, http_port = serve(args.tasker, postgres, redis)
    browser = worker = None
    try:
        assert post(http_port, "/api/v1/templates", {"template": layered("render30", "render.step", 20, 0.05)})[0] == 200
        status, body = post(http_port, "/api/v1/tasks", {"name": "render30"})
        task_id = body["task"]["task_id"]
        browser = chromium()
        browser.get("http://127.0.0.1:%d/#/task/%s" % (http_port, task_id))
        deadline = time.time() + 30
        while browser.execute_script("const s = document.getElementById('live-state'); return s && s.textContent") != "live":
            assert time.time() < deadline, "the page did not go live"
            time.sleep(0.05)
        worker = Worker("127.0.0.1:%d" % port, name="render", slots=16, log=lambda line: None)

        @worker.handle("render.step")
        def step(step):
            if step.attempt <= 11:
                raise Retryable("attempt %d fails" % step.attempt)
            return {"attempts": step.attempt}

        threading.Thread(target=worker.run, daemon=True).start()
        deadline = time.time() + 600
        while browser.execute_script("return document.getElementById('task-status').textContent") != "COMPLETE":
            assert time.time() < deadline, "the task did not finish"
            time.sleep(0.2)
        time.sleep(1)
        durations = browser.execute_script("return performance.getEntriesByName('tasker-update').map(e => e.duration)")
        updates = int(get(http_port, "/api/v1/tasks/" + task_id)[1]["last_sequence"])
        shown = browser.execute_script("return document.querySelectorAll('#history-rows tr').length")
        durations.sort()
        print("| measurement | value |")
        print("|---|---:|")
        print("| updates of the task (its last sequence) | %d |" % updates)
        print("| updates the page drew (history rows) | %d |" % shown)
        print("| update → drawn, median | %.1f ms |" % statistics.median(durations))
        print("| update → drawn, p99 | %.1f ms |" % durations[int(len(durations) * 0.99) - 1])
        print("| update → drawn, worst | %.1f ms |" % durations[-1])
        assert shown == updates, (shown, updates)
    finally:
        if browser:
            browser.quit()
        if worker:
            worker.stop(drain_timeout=2)
        terminate(process)
        redis.stop()
        postgres.stop()


class PageStandIns:
    """What open task pages ask of the server: each task's event stream from its start (curl, so
    that the driver's own CPU stays out of the numbers), and a GetTask of the task 0.4 s after
    each burst of its updates."""

    def __init__(self, http_port, task_ids):
        self.http_port, self.task_ids, self.reads = http_port, task_ids, 0
        self.outputs = [tempfile.NamedTemporaryFile(prefix="tasker-bench-page-") for _ in task_ids]
        self.streams = [subprocess.Popen(["curl", "-s", "-N", "http://127.0.0.1:%d/api/v1/tasks/%s/updates" % (http_port, task_id)],
                                         stdout=output) for task_id, output in zip(task_ids, self.outputs)]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        # As a page does: the task is read 0.4 s after the last update of a burst.
        sizes = [0] * len(self.task_ids)
        due = [None] * len(self.task_ids)
        while not self.stopped.wait(0.05):
            now = time.time()
            for index, (task_id, output) in enumerate(zip(self.task_ids, self.outputs)):
                size = os.path.getsize(output.name)
                if size != sizes[index]:
                    sizes[index], due[index] = size, now + 0.4
                elif due[index] is not None and now >= due[index]:
                    due[index] = None
                    get(self.http_port, "/api/v1/tasks/" + task_id)
                    self.reads += 1

    def stop(self):
        self.stopped.set()
        self.thread.join()
        for stream in self.streams:
            terminate(stream)
        updates = 0
        for output in self.outputs:
            with open(output.name) as text:
                updates += sum(1 for line in text if line.startswith("id: "))
            output.close()
        return updates


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User and system CPU seconds so far of the given processes and all their descendants."""
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    chosen, frontier = set(), set(pids)
    while frontier:
        chosen |= frontier
        frontier = {pid for pid, parent in parents.items() if parent in frontier and pid not in chosen}
    return {pid: times[pid] for pid in chosen if pid in times}


def server_pid(bench):
    """The `tasker serve` child of tasker-bench-workers."""
    for pid in cpu_seconds([bench.pid]):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
                words = cmdline.read().split(b"\0")
        except OSError:
            continue
        if len(words) > 1 and words[0].endswith(b"/tasker") and words[1] == b"serve":
            return pid
    raise RuntimeError("no tasker serve under the benchmark")


def cost_run(args, pages):
    port, http_port = free_port(), free_port()
    start = tempfile.mktemp(prefix="tasker-bench-start-")
    bench = subprocess.Popen([os.path.join(args.bin, "tasker-bench-workers"), "--tasks", str(args.tasks), "--latency-tasks", "50",
                              "--port", str(port), "--http-port", str(http_port), "--start-when", start],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_port(port, bench, timeout=120)
    wait_for_port(http_port, bench, timeout=120)
    assert post(http_port, "/api/v1/templates", {"template": layered("watched30", "watched.step", 1000, 0.2)})[0] == 200
    worker = Worker("127.0.0.1:%d" % port, name="watched", slots=32, log=lambda line: None)

    @worker.handle("watched.step")
    def step(step):
        raise Retryable("kept busy")

    threading.Thread(target=worker.run, daemon=True).start()
    watched = [post(http_port, "/api/v1/tasks", {"name": "watched30"})[1]["task"]["task_id"] for _ in range(5)]
    stand_ins = PageStandIns(http_port, watched[:pages]) if pages else None
    time.sleep(2)
    server = server_pid(bench)

    def used():
        # The server alone, the benchmark's processes (server, Postgres, Redis, its Swift
        # workers) and the driver's (this process with the Python worker, the pages' curl).
        benchmark, everything = cpu_seconds([bench.pid]), cpu_seconds([os.getpid()])
        driver = {pid: seconds for pid, seconds in everything.items() if pid not in benchmark}
        return {pid: benchmark[pid] for pid in (server,) if pid in benchmark}, benchmark, driver, time.time()

    # CPU from the start to the number; processes that ended meanwhile are not counted.
    before = used()
    open(start, "w").close()
    out, steps = [], None
    try:
        for line in bench.stdout:
            out.append(line)
            if "(b) steps/s" in line:
                steps = float(line.split("|")[2])
                after = used()
                break
    finally:
        # Done with the server before the benchmark stops it: it need not wait for them.
        updates = stand_ins.stop() if stand_ins else 0
        worker.stop(drain_timeout=1)
        os.unlink(start)
    rest, _ = bench.communicate(timeout=300)
    assert bench.returncode == 0 and steps is not None, "".join(out) + rest
    wall = after[3] - before[3]
    # Each process's use over the window, from the processes alive at both ends.
    used = [sum(end[pid] - begin.get(pid, 0) for pid in end) / wall for begin, end in zip(before[:3], after[:3])]
    return steps, updates, stand_ins.reads if stand_ins else 0, used


def cost(args):
    # With --pages 0 both arms are alike: how far apart two runs of one setup read.
    arms = ((0, "none"), (args.pages, "open"))
    results = {arm: [] for _, arm in arms}
    for round_ in range(args.rounds):
        for pages, arm in (arms if round_ % 2 == 0 else arms[::-1]):
            steps, updates, reads, (server, bench, driver) = cost_run(args, pages)
            results[arm].append(steps)
            print("round %d, %d pages: %.0f steps/s (pages received %d updates, read the task %d times); cores busy: server %.2f, "
                  "benchmark's processes %.2f, driver's %.2f" % (round_ + 1, pages, steps, updates, reads, server, bench, driver), flush=True)
    ratios = [open_ / none for none, open_ in zip(results["none"], results["open"])]
    print("ratios by round: " + ", ".join("%.3f" % ratio for ratio in ratios))
    none, five = statistics.median(results["none"]), statistics.median(results["open"])
    print("| workers benchmark, %d diamonds | steps/s, median of %d |" % (args.tasks, args.rounds))
    print("|---|---:|")
    print("| no dashboard pages | %.0f |" % none)
    print("| %d task pages on live tasks | %.0f |" % (args.pages, five))
    print("| ratio | %.3f |" % (five / none))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["render", "cost"])
    parser.add_argument("--tasker", default=os.path.join(ROOT, ".build", "release", "tasker"))
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--pages", type=int, default=5, help="pages open in the second arm (0: the same as the first)")
    args = parser.parse_args()
    render(args) if args.part == "render" else cost(args)


if __name__ == "__main__":
    main()
