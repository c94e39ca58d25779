#!/usr/bin/env python3
"""The workers benchmark of two builds side by side: `tasker-bench-workers` of each, alternating,
the order flipped every pair, so that a noisy machine's drift hits both alike. Prints each
pair and the medians; the median of the pairs' ratios is the figure to read.

    python3 bench/workers_pairs.py --before /tmp/bench-base/.build/release --after .build/release --pairs 10
"""
import argparse
import os
import re
import statistics
import subprocess


def run(folder, tasks, latency_tasks):
    out = subprocess.run(
        [os.path.join(os.path.abspath(folder), "tasker-bench-workers"), "--tasks", str(tasks), "--latency-tasks", str(latency_tasks)],
        capture_output=True, text=True, timeout=900, cwd=os.path.abspath(folder))
    if out.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (folder, out.stderr[-2000:]))
    rate = float(re.search(r"\(b\) steps/s \| (\d+)", out.stdout).group(1))
    p50 = float(re.search(r"p50 \(\d+ tasks\) \| ([\d.]+) ms", out.stdout).group(1))
    return rate, p50


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="folder holding the earlier build's tasker and tasker-bench-workers")
    parser.add_argument("--after", required=True, help="folder holding the later build's")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--latency-tasks", type=int, default=50)
    options = parser.parse_args()
    rows = []
    print("| pair (first) | before, steps/s | after, steps/s | ratio | before p50 | after p50 |")
    print("|---|---:|---:|---:|---:|---:|")
    for pair in range(options.pairs):
        first = "before" if pair % 2 == 0 else "after"
        results = {}
        for which in ([first, "after" if first == "before" else "before"]):
            results[which] = run(options.before if which == "before" else options.after, options.tasks, options.latency_tasks)
        (b, bp), (a, ap) = results["before"], results["after"]
        rows.append((b, a, a / b, bp, ap))
        print("| %d (%s) | %s | %s | %.3f | %.2f ms | %.2f ms |" % (pair + 1, first, format(int(b), ","), format(int(a), ","), a / b, bp, ap),
              flush=True)
    median = [statistics.median(column) for column in zip(*rows)]
    print("| median | %s | %s | **%.3f** | %.1f ms | %.1f ms |" % (format(int(median[0]), ","), format(int(median[1]), ","), median[2], median[3], median[4]))
    print("geometric mean of the ratios: %.3f" % statistics.geometric_mean([row[2] for row in rows]))


if __name__ == "__main__":
    main()
