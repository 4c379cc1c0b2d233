#!/usr/bin/python3
"""py_processes.py -- the process-pool workloads on Python's process pools.

The Python peers of `bench_cfutures --processes` (see README.md): P1..P4 on either
concurrent.futures.ProcessPoolExecutor (--pool executor) or multiprocessing.Pool
(--pool multiprocessing), each written as its documentation's examples write it, with the
same output lines and harness as py_threads.py (one warm-up round, then the median of
--reps timed rounds).  Both pools start their workers with the platform's default start
method, stated as INFO.

Python is one to two orders of magnitude slower per task, so P1, P2 and P3 run fewer
tasks than the C program; their figures are per task, per round and per byte, so they
compare directly.  P4 compares parallel efficiency, not time: its tasks are the same
xorshift loop in pure Python, calibrated to the same 10 ms, and the sequential time is
measured in this process first, as the C program does.

Every result is checked (P3: its length, the index it carries and a sample of its bytes);
a wrong one ends the program with status 1.
"""
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from py_threads import calibrate, die, out, parse_args, run_workloads, spin

TASKS = 10_000               # P1 (the C program runs 100,000)
ROUNDS = 2_000               # P2 (the C program runs 10,000)
BIG_BYTES = 1 << 20          # P3: bytes in, and bytes out, per task
BIG_TASKS = 250              # P3 (the C program runs 1,000)
BIG_SAMPLE = 4096            # P3: one result byte in this many is checked
CPU_TASK_SECONDS = 10e-3     # P4
CPU_TASKS_PER_WORKER = 100
CPU_MAX_REPS = 3


def echo(x):
    return x


def stamp_copy(i, data):
    """P3's task: a copy of its input with the task index in the first 8 bytes."""
    result = bytearray(data)
    result[:8] = i.to_bytes(8, "little")
    return result


class Bench:
    """The four workloads over one pool: `submit(fn, *args)` starts one task and
    `result(handle)` waits for it, in the pool's own calls."""

    def __init__(self, kind, workers):
        self.kind, self.workers = kind, workers
        if kind == "executor":
            self.pool = ProcessPoolExecutor(max_workers=workers)
            self.submit = self.pool.submit
            self.result = lambda f: f.result()
        else:
            self.pool = multiprocessing.Pool(processes=workers)
            self.submit = lambda fn, *args: self.pool.apply_async(fn, args)
            self.result = lambda r: r.get()
        self.big = bytes((k * 251 + 7) & 0xFF for k in range(BIG_BYTES))
        self.big_in_gbs = []
        self.cpu_iters = None

    def close(self):
        if self.kind == "executor":
            self.pool.shutdown(wait=True)
        else:
            self.pool.close()
            self.pool.join()

    def p1_submit_wait(self):
        t0 = time.perf_counter()
        pending = [self.submit(echo, i) for i in range(TASKS)]
        for i, f in enumerate(pending):
            if self.result(f) != i:
                die(f"P1: task {i} returned a wrong value")
        return (time.perf_counter() - t0) * 1e6 / TASKS

    def p2_ping_pong(self):
        t0 = time.perf_counter()
        for r in range(ROUNDS):
            if self.result(self.submit(echo, r)) != r:
                die(f"P2: round {r} returned a wrong value")
        return (time.perf_counter() - t0) * 1e6 / ROUNDS

    def p3_big(self):
        big = self.big
        sample = big[BIG_SAMPLE - 1::BIG_SAMPLE]
        t0 = time.perf_counter()
        pending = [self.submit(stamp_copy, i, big) for i in range(BIG_TASKS)]
        for i, f in enumerate(pending):
            r = self.result(f)
            if (len(r) != BIG_BYTES or r[:8] != i.to_bytes(8, "little")
                    or r[BIG_SAMPLE - 1::BIG_SAMPLE] != sample):
                die(f"P3: task {i} returned a wrong result ({len(r)} bytes)")
        t = time.perf_counter() - t0
        in_bytes = BIG_TASKS * BIG_BYTES
        self.big_in_gbs.append(in_bytes / t * 1e-9)
        return 2 * in_bytes / t * 1e-9

    def p4_cpu(self):
        n = self.workers * CPU_TASKS_PER_WORKER
        # multiprocessing.Pool's default chunksize for n items (4 chunks per worker),
        # given to the executor too: the idiomatic way to map a CPU batch.
        chunk = max(1, -(-n // (4 * self.workers)))
        if self.cpu_iters is None:
            self.cpu_iters, per_iter = calibrate(CPU_TASK_SECONDS)
            how = (f"executor.map(chunksize={chunk})" if self.kind == "executor"
                   else f"pool.starmap (default chunksize, {chunk} here)")
            out(f"NOTE P4 {n} tasks of {self.cpu_iters * per_iter * 1e3:.2f} ms each "
                f"(calibrated pure-Python xorshift loop), {self.workers} worker processes, "
                f"{how}")
        iters = [self.cpu_iters] * n
        t0 = time.perf_counter()
        expect = [spin(iters[i], i) for i in range(n)]
        tseq = time.perf_counter() - t0
        t0 = time.perf_counter()
        if self.kind == "executor":
            got = list(self.pool.map(spin, iters, range(n), chunksize=chunk))
        else:
            got = self.pool.starmap(spin, zip(iters, range(n)))
        tpar = time.perf_counter() - t0
        if got != expect:
            die("P4: a task computed a different value")
        return 100.0 * tseq / (self.workers * tpar)

    def p3_report(self):
        # The first round recorded is the warm-up.
        timed = self.big_in_gbs[1:]
        if timed:
            out(f"NOTE P3 input bytes only: median {statistics.median(timed):.3g} GB/s")


def main():
    a = parse_args(__doc__.splitlines()[0], "P1,P3", lambda ap: ap.add_argument(
        "--pool", choices=("executor", "multiprocessing"), required=True,
        help="ProcessPoolExecutor or multiprocessing.Pool"))
    b = Bench(a.pool, a.workers)
    out(f"INFO version {sys.version.split()[0]}")
    out(f"INFO workers {a.workers}")
    out(f"INFO start_method {multiprocessing.get_start_method()}")
    if a.pool == "executor":
        calls = ("executor.submit + result", "executor.submit(..).result()")
    else:
        calls = ("pool.apply_async + get", "pool.apply_async(..).get()")
    # name, unit, repetition, warm-up, repetition cap, note, report after the repetitions
    workloads = [
        ("P1", "us/task", b.p1_submit_wait, True, 0,
         f"{calls[0]}, {TASKS:,} tasks of an int echoed back (scaled down)", None),
        ("P2", "us/round", b.p2_ping_pong, True, 0,
         f"{calls[1]} of an int echoed back, {ROUNDS:,} rounds (scaled down)", None),
        ("P3", "GB/s", b.p3_big, True, 0,
         f"{calls[0]}, {BIG_TASKS:,} tasks (scaled down) of one shared 1 MiB bytes in and "
         "a 1 MiB bytearray copy out; figure = (input + output bytes) / wall time",
         b.p3_report),
        ("P4", "%", b.p4_cpu, True, CPU_MAX_REPS, None, None),
    ]
    run_workloads(workloads, a.reps, a.only)
    b.close()


if __name__ == "__main__":
    main()
