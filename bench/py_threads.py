#!/usr/bin/python3
"""py_threads.py -- the workloads on Python's concurrent.futures.ThreadPoolExecutor.

The Python peer of bench_*.c (see README.md): same workloads, same output lines
("RESULT <workload> <median> <unit> min=.. max=.. reps=..", "NOTE ..", "INFO .."), same
harness (one warm-up round, then the median of --reps timed rounds).  Python is two orders
of magnitude slower per task, so W1/W2 use 100,000 tasks and W3 10,000 rounds; the figures
are per task / per round and compare directly.  W4's tasks are pure Python arithmetic: the
GIL lets one thread run at a time, which is the figure's point (it is why Python has
process pools).

Every result is checked against its input; a wrong one ends the program with status 1.
"""
import argparse
import os
import resource
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

TASKS = 100_000          # W1 tasks, W2 items (the C programs use 1,000,000)
ROUNDS = 10_000          # W3 round trips (the C programs use 100,000)
CPU_TASK_SECONDS = 1e-3  # W4
CPU_TASKS_PER_WORKER = 100
IDLE_SECONDS = 2.0       # W5
IDLE_MAX_REPS = 3
GATE_TIMEOUT = 30.0
MASK = (1 << 64) - 1


def die(msg):
    sys.stdout.flush()
    print(f"bench: error: {msg}", file=sys.stderr)
    sys.exit(1)


def out(line):
    print(line, flush=True)


def parse_args(description, example, extra=None):
    """The options every Python bench program takes (--reps, --workers, --only), plus those
    extra(parser) adds; --only becomes a set (None: every workload)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per workload")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--only", default=None, help=f"comma-separated workloads, e.g. {example}")
    if extra:
        extra(ap)
    a = ap.parse_args()
    if not 1 <= a.reps <= 100 or not 1 <= a.workers <= 256:
        ap.error("--reps wants 1..100 and --workers 1..256")
    a.only = set(a.only.split(",")) if a.only else None
    return a


def result(name, values, unit):
    """The RESULT line run.py reads: the median of values, their range and count."""
    v = sorted(values)
    out(f"RESULT {name} {statistics.median(v):.6g} {unit} "
        f"min={v[0]:.6g} max={v[-1]:.6g} reps={len(v)}")


def run_workloads(workloads, reps, only):
    """Runs each (name, unit, repetition, warm-up, repetition cap, note, report) not left
    out by only: the warm-up round if asked, then min(reps, cap) timed rounds (cap 0: no
    cap), its RESULT, its NOTE, and report() if given."""
    for name, unit, rep, warmup, cap, note, report in workloads:
        if only is not None and name not in only:
            continue
        if warmup:
            rep()
        result(name, [rep() for _ in range(min(reps, cap) if cap else reps)], unit)
        if note:
            out(f"NOTE {name} {note}")
        if report:
            report()


def echo(x):
    return x


def item(x):
    return x * 2 + 1


def spin(iters, seed):
    """xorshift64, as bench_spin in bench_common.h."""
    x = (seed * 0x9E3779B97F4A7C15 + 1) & MASK
    for _ in range(iters):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
    return x


def calibrate(seconds):
    """Iterations of spin() lasting `seconds` at the fastest observed pace."""
    iters = 1 << 10
    while True:
        t0 = time.perf_counter()
        spin(iters, iters)
        t = time.perf_counter() - t0
        if t >= 0.02:
            break
        iters *= 2
    best = t
    for k in range(3):
        t0 = time.perf_counter()
        spin(iters, k)
        best = min(best, time.perf_counter() - t0)
    per_iter = best / iters
    return int(seconds / per_iter) + 1, per_iter


class Bench:
    def __init__(self, workers):
        self.workers = workers
        self.ex = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench")
        self.cpu_iters = None

    def w1_submit_wait(self):
        ex = self.ex
        t0 = time.perf_counter()
        futures = [ex.submit(echo, i) for i in range(TASKS)]
        for i, f in enumerate(futures):
            if f.result() != i:
                die(f"W1: task {i} returned a wrong value")
        return (time.perf_counter() - t0) * 1e9 / TASKS

    def w2_map(self):
        t0 = time.perf_counter()
        n = 0
        for i, v in enumerate(self.ex.map(item, range(TASKS))):
            if v != item(i):
                die(f"W2: item {i} has a wrong value")
            n += 1
        t = time.perf_counter() - t0
        if n != TASKS:
            die(f"W2: {n} of {TASKS} items")
        return t * 1e9 / TASKS

    def w3_ping_pong(self):
        ex = self.ex
        t0 = time.perf_counter()
        for r in range(ROUNDS):
            if ex.submit(echo, r).result() != r:
                die(f"W3: round {r} returned a wrong value")
        return (time.perf_counter() - t0) * 1e6 / ROUNDS

    def w4_cpu(self):
        ntasks = self.workers * CPU_TASKS_PER_WORKER
        if self.cpu_iters is None:
            self.cpu_iters, per_iter = calibrate(CPU_TASK_SECONDS)
            out(f"NOTE W4 {ntasks} tasks of {self.cpu_iters * per_iter * 1e3:.3f} ms each "
                f"(calibrated pure-Python xorshift loop), {self.workers} workers")
        iters = self.cpu_iters
        t0 = time.perf_counter()
        expect = [spin(iters, i) for i in range(ntasks)]
        tseq = time.perf_counter() - t0
        t0 = time.perf_counter()
        futures = [self.ex.submit(spin, iters, i) for i in range(ntasks)]
        got = [f.result() for f in futures]
        tpar = time.perf_counter() - t0
        if got != expect:
            die("W4: a task computed a different value")
        return 100.0 * tseq / (self.workers * tpar)

    def w5_idle(self):
        gate = threading.Barrier(self.workers, timeout=GATE_TIMEOUT)
        for f in [self.ex.submit(gate.wait) for _ in range(self.workers)]:
            try:
                f.result()
            except threading.BrokenBarrierError:
                die(f"W5: not every worker took a task within {GATE_TIMEOUT:.0f} s")
        c0, t0 = cpu_time(), time.monotonic()
        time.sleep(IDLE_SECONDS)
        c1, t1 = cpu_time(), time.monotonic()
        return 100.0 * (c1 - c0) / (t1 - t0)


def cpu_time():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main():
    a = parse_args(__doc__.splitlines()[0], "W1,W3")
    b = Bench(a.workers)
    out(f"INFO version {sys.version.split()[0]}")
    out(f"INFO workers {a.workers}")
    # name, unit, repetition, warm-up, repetition cap, note, report
    workloads = [
        ("W1", "ns/task", b.w1_submit_wait, True, 0,
         f"executor.submit + result, {TASKS:,} tasks (scaled down)", None),
        ("W2", "ns/item", b.w2_map, True, 0,
         f"executor.map, {TASKS:,} items (scaled down)", None),
        ("W3", "us/round", b.w3_ping_pong, True, 0,
         f"submit().result(), {ROUNDS:,} rounds (scaled down)", None),
        ("W4", "%", b.w4_cpu, True, 0, "pure-Python work holds the GIL", None),
        ("W5", "%core", b.w5_idle, False, IDLE_MAX_REPS, None, None),
    ]
    run_workloads(workloads, a.reps, a.only)
    b.ex.shutdown(wait=True)


if __name__ == "__main__":
    main()
