#!/usr/bin/python3
"""run.py -- runs cfutures' benchmark and its peers' and writes bench/RESULTS.md.

Three tables, each with its own programs: thread pools (W1-W5: bench_cfutures and the
C/C++ peers, py_threads.py), process pools (P1-P4: bench_cfutures --processes, and
py_processes.py on ProcessPoolExecutor and on multiprocessing.Pool), and the cfutures
command's workloads (C1-C6: workloads.py running the command, and the same workloads as a
Python tutorial writes them).  Runs each program
one after another (never two at once: they would share the cores) with a per-program
timeout, collects the lines they print

    RESULT <workload> <median> <unit> min=<x> max=<y> reps=<n>
    NOTE <workload> <text>
    INFO <key> <value>

and prints each table -- rows are workloads, columns cfutures and each peer with its
figure and its ratio to cfutures, plus the goal and whether cfutures meets it -- which it
also writes to bench/RESULTS.md with the machine, the library versions, the date and the
command.  A program that fails or times out keeps the figures it printed before; its cells
say what happened, and run.py exits with status 1 after writing the file.

The programs are built by `make bench` (build-bench/, Release); run.py does not build.
"""
import argparse
import datetime
import os
import platform
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# Share of the machine's CPU time used by other processes during the run above which the
# figures are flagged as skewed.
BUSY_SHARE = 0.05
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# column, program (in <build>/bench, or a .py script of bench/ run with PYTHON), the
# library's pkg-config name
PEERS = [
    ("cfutures", "bench_cfutures", None),
    ("GLib", "bench_glib", "glib-2.0"),
    ("libuv", "bench_libuv", "libuv"),
    ("OpenMP", "bench_openmp", None),
    ("oneTBB", "bench_tbb", "tbb"),
    ("Python", "py_threads.py", None),
]

# column, program as in PEERS, its arguments that select the process-pool workloads
PROCESS_PEERS = [
    ("cfutures", "bench_cfutures", ["--processes"]),
    ("ProcessPoolExecutor", "py_processes.py", ["--pool", "executor"]),
    ("multiprocessing.Pool", "py_processes.py", ["--pool", "multiprocessing"]),
]
# column, program, arguments: the cfutures command's workloads (bench/workloads.py); both
# get --cfutures <build>/tools/cfutures (the measured command, and both sides' web server).
WORKLOAD_PEERS = [
    ("cfutures", "workloads.py", ["--impl", "cfutures"]),
    ("Python tutorial", "workloads.py", ["--impl", "python"]),
]
# The library of a column whose name is not the library's (for the versions).
LIBRARY_OF = {"ProcessPoolExecutor": "Python", "multiprocessing.Pool": "Python"}


class Workload:
    def __init__(self, key, title, unit, goal_op, goal, lower_is_better, decimals=None,
                 ratio=True, relative_to=None):
        self.key, self.title, self.unit = key, title, unit
        self.goal_op, self.goal = goal_op, goal
        # The goal is goal x this column's figure (None: the goal is absolute).
        self.relative_to = relative_to
        self.lower_is_better = lower_is_better
        self.decimals = decimals  # fixed decimals, else three significant digits
        self.ratio = ratio

    def fmt(self, v):
        return fmt(v) if self.decimals is None else f"{v:.{self.decimals}f}"

    def meets_goal(self, v, goal):
        return {"<=": v <= goal, "<": v < goal, ">=": v >= goal}[self.goal_op]

    def goal_text(self):
        op = {"<=": "≤", "<": "<", ">=": "≥"}[self.goal_op]
        return f"{op} {self.goal:g}" + (f" × {self.relative_to}" if self.relative_to else "")


WORKLOADS = [
    Workload("W1", "submit+wait", "ns/task", "<=", 100, True),
    Workload("W2", "map", "ns/item", "<=", 50, True),
    Workload("W3", "ping-pong", "us/round", "<=", 5, True),
    # Two decimals, so a figure just under the goal never shows as the goal itself.
    Workload("W4", "cpu 1 ms", "% efficiency", ">=", 95, False, decimals=2),
    # Idle figures sit near zero, where a ratio says nothing.
    Workload("W5", "idle", "% of a core", "<", 1, True, decimals=3, ratio=False),
]

PROCESS_WORKLOADS = [
    Workload("P1", "submit+wait", "us/task", "<=", 3, True),
    Workload("P2", "ping-pong", "us/round", "<=", 20, True),
    Workload("P3", "1 MiB in + 1 MiB out", "GB/s in+out", ">=", 2, False),
    Workload("P4", "cpu 10 ms", "% efficiency", ">=", 95, False, decimals=2),
]

CLI_WORKLOADS = [
    Workload("C1", "images, best mode", "s", "<=", 0.15, True, decimals=2,
             relative_to="Python tutorial"),
    Workload("C2", "download, threads / slowest transfer", "×", "<=", 1.2, True, decimals=2),
    Workload("C3", "sum, threads speedup / pthreads ceiling", "%", ">=", 95, False,
             decimals=1),
    Workload("C4", "sum, processes speedup / pthreads ceiling", "%", ">=", 95, False,
             decimals=1),
    Workload("C5", "sleep 10 × 1 s, threads", "s", "<=", 1.05, True, decimals=3),
    Workload("C6", "sleep 10 × 1 s, processes", "s", "<=", 1.2, True, decimals=3),
]

# Workloads a peer has no equivalent for (its program does not print them).
NOT_APPLICABLE = {("GLib", "W2"), ("libuv", "W2")}

# The tables --tables chooses from: name -> workloads, peers; and their headings and
# explanations in RESULTS.md.
TABLES = {"threads": (WORKLOADS, PEERS), "processes": (PROCESS_WORKLOADS, PROCESS_PEERS),
          "workloads": (CLI_WORKLOADS, WORKLOAD_PEERS)}
TABLE_TITLES = {"threads": "Thread pools", "processes": "Process pools",
                "workloads": "The cfutures command's workloads"}
TABLE_TEXTS = {
    "threads":
        "Each peer's cell is its figure and, in parentheses, how many times better "
        "cfutures is: peer / cfutures for times, cfutures / peer for W4's efficiency; "
        "above 1 means cfutures is better.  W5 has no ratio: its figures are near zero.  "
        "\"goal met\" compares cfutures with the goal of the issue.  n/a: the peer has no "
        "equivalent.  Python runs 10x fewer tasks in W1-W3 (the figures are per task).  "
        "W4's details give, for each C program, the host's ceiling in the same rounds: "
        "the same jobs on bare pthreads, no library.",
    "processes":
        "Every pool has as many worker processes as the thread pools have threads.  Each "
        "peer's cell is its figure and, in parentheses, how many times better cfutures is: "
        "peer / cfutures for P1 and P2 (times), cfutures / peer for P3 (throughput) and P4 "
        "(efficiency); above 1 means cfutures is better.  \"goal met\" compares cfutures "
        "with the goal of the issue.  P3: each task takes 1 MiB and returns a 1 MiB copy; "
        "the figure is (input bytes + output bytes) / wall time of a batch submitted, then "
        "waited for in order, and the details give the input-only figure.  P4: "
        "T_seq / (workers × T_par), each program against its own sequential run of the "
        "same tasks (Python's are the same loop in pure Python, calibrated to the same "
        "10 ms), so the efficiencies compare and the times do not.  The Python pools run "
        "fewer tasks in P1-P3 (counts in the details); the figures are per task, per "
        "round and per byte.",
    "workloads":
        "The four workloads of the `cfutures` command (`cfutures images`, `download`, `sum`, "
        "`sleep`, run as a user runs them, `--json`) against the same workloads written the "
        "way a Python tutorial writes them: concurrent.futures (ThreadPoolExecutor, "
        "ProcessPoolExecutor) over Pillow's GaussianBlur(15) + thumbnail, urllib.request "
        "downloads, a plain `for` loop sum, time.sleep.  Each in every mode; the table keeps "
        "the figure of each goal and the details every mode's time.  C1: the best mode's "
        "wall time on the 15 mate-backgrounds photos (the default pipeline: decoded at a "
        "reduced scale); the goal is at most 0.15 x Python's best, or, if the decoder "
        "forbids that, at most 1.3 x decoding the photos alone at the chosen scales (NOTE "
        "C1, with the --exact run beside).  C2: the threads run's wall time over the longest single transfer of the "
        "sequential run (each of the 15 photos from nginx on 127.0.0.1, which holds every "
        "transfer to 8 MiB/s).  C3, C4: the speedup (sequential time / the mode's time, each "
        "against its own best sequential run of all repetitions; Python's sum covers 5e7 numbers, cfutures' 2e9) "
        "as a percentage of the ceiling that bare pthreads reach on the same loop in the "
        "same repetition (bench/sum_ceiling.c; speedups and ceiling in the details).  C5, C6: "
        "10 tasks of 1 s on 10 workers.  Medians of 3 repetitions (--quick: 2).",
}


def fmt(v):
    """A figure with three significant digits (more left of the point), no exponent."""
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}" if abs(v) >= 1e-4 else f"{v:.2e}"


def fmt_ratio(r):
    return f"{r:.0f}×" if r >= 10 else f"{r:.2f}×"


class Run:
    """One program's run: its figures, notes, facts and how it ended."""

    def __init__(self, peer):
        self.peer = peer
        self.results = {}  # workload -> dict(value, unit, min, max, reps)
        self.notes = {}    # workload -> [text]
        self.info = {}
        self.status = "not run"  # how it ended, in words
        self.outcome = "not run"  # the same in one word for the table: ok, failed, timeout
        self.seconds = 0.0
        self.stderr = ""

    def parse(self, text):
        for line in text.splitlines():
            parts = line.split(" ", 2)
            if parts[0] == "RESULT" and len(parts) == 3:
                fields = parts[2].split()
                r = {"value": float(fields[0]), "unit": fields[1]}
                for f in fields[2:]:
                    k, _, v = f.partition("=")
                    r[k] = float(v)
                self.results[parts[1]] = r
            elif parts[0] == "NOTE" and len(parts) == 3:
                self.notes.setdefault(parts[1], []).append(parts[2])
            elif parts[0] == "INFO" and len(parts) == 3:
                self.info[parts[1]] = parts[2]


def command_of(program, build, args):
    if program.endswith(".py"):
        return [PYTHON, str(BENCH_DIR / program)] + args
    return [str(build / "bench" / program)] + args


def run_program(peer, cmd, timeout, env):
    run = Run(peer)
    print(f"== {peer}: {shlex.join(cmd)}", flush=True)
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        out, run.stderr = p.stdout, p.stderr
        ok = p.returncode == 0
        run.outcome = "ok" if ok else "failed"
        run.status = "ok" if ok else f"failed (exit status {p.returncode})"
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        run.stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        run.outcome = "timeout"
        run.status = f"timed out after {timeout:.0f} s"
    run.seconds = time.monotonic() - t0
    run.parse(out)
    for line in out.splitlines():
        print(f"   {line}")
    for line in run.stderr.splitlines():
        print(f"   stderr: {line}")
    print(f"   -> {run.status} in {run.seconds:.1f} s", flush=True)
    return run


def cell(w, run, cf):
    """The table cell of one peer for one workload."""
    if (run.peer, w.key) in NOT_APPLICABLE:
        return "n/a"
    r = run.results.get(w.key)
    if r is None:
        return "—" if run.outcome == "ok" else run.outcome
    text = w.fmt(r["value"])
    if run.peer == "cfutures" or not w.ratio or cf is None:
        return text
    a, b = (r["value"], cf) if w.lower_is_better else (cf, r["value"])
    return f"{text} ({fmt_ratio(a / b)})" if b > 0 else text


def table(runs, workloads):
    cf_run = next((r for r in runs if r.peer == "cfutures"), None)
    head = ["Workload", "Goal", "cfutures", "goal met"] + [r.peer for r in runs
                                                          if r.peer != "cfutures"]
    rows = []
    for w in workloads:
        cf = cf_run.results.get(w.key, {}).get("value") if cf_run else None
        goal = w.goal
        if w.relative_to is not None:
            ref = next((r for r in runs if r.peer == w.relative_to), None)
            ref = ref.results.get(w.key, {}).get("value") if ref else None
            goal = None if ref is None else w.goal * ref
        verdict = ("—" if cf is None or goal is None
                   else "PASS" if w.meets_goal(cf, goal) else "MISS")
        row = [f"{w.key} {w.title} ({w.unit})", w.goal_text(),
               cell(w, cf_run, cf) if cf_run else "not run", verdict]
        row += [cell(w, r, cf) for r in runs if r.peer != "cfutures"]
        rows.append(row)
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    lines = ["| " + " | ".join(x.ljust(n) for x, n in zip(head, widths)) + " |",
             "|" + "|".join("-" * (n + 2) for n in widths) + "|"]
    lines += ["| " + " | ".join(x.ljust(n) for x, n in zip(row, widths)) + " |"
              for row in rows]
    return "\n".join(lines)


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip() if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cmake_cache(build):
    cache = {}
    try:
        for line in (build / "CMakeCache.txt").read_text().splitlines():
            m = re.match(r"^([A-Za-z_0-9]+):[A-Z]+=(.*)$", line)
            if m:
                cache[m.group(1)] = m.group(2)
    except OSError:
        pass
    return cache


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version_of(runs, peer, pkg):
    run = next((r for r in runs if LIBRARY_OF.get(r.peer, r.peer) == peer
                and "version" in r.info), None)
    if run is not None:
        return run.info["version"]
    if pkg and shutil.which("pkg-config"):
        v = first_line(["pkg-config", "--modversion", pkg])
        if v != "unknown":
            return f"{v} (pkg-config; the program did not run)"
    return "unknown"


def machine(build, runs, workers):
    cache = cmake_cache(build)
    cc = cache.get("CMAKE_C_COMPILER", "gcc")
    cxx = cache.get("CMAKE_CXX_COMPILER")
    lines = [
        f"- CPU: {cpu_model()}",
        f"- CPUs: {os.cpu_count()} online, {len(os.sched_getaffinity(0))} usable by this "
        f"process; every library ran with {workers} workers",
        f"- Kernel: {' '.join(platform.uname()[i] for i in (0, 2, 4))}",
        f"- C compiler: {first_line([cc, '--version'])}",
    ]
    if cxx:
        lines.append(f"- C++ compiler: {first_line([cxx, '--version'])}")
    lines.append(f"- Build: {build} (CMAKE_BUILD_TYPE={cache.get('CMAKE_BUILD_TYPE', '?')})")
    lines.append("- Versions: " + ", ".join(
        f"{peer} {version_of(runs, peer, pkg)}" for peer, _, pkg in PEERS))
    costs = next((r.info["host_costs"] for r in runs if "host_costs" in r.info), None)
    if costs:
        lines.append(f"- Host costs, measured by bench_cfutures before its process-pool "
                     f"workloads: {costs}")
    methods = sorted({r.info["start_method"] for r in runs if "start_method" in r.info})
    if methods:
        lines.append(f"- Python process pools' start method: {', '.join(methods)} "
                     "(the platform's default)")
    return "\n".join(lines)


def details(runs, workloads, prefix=""):
    """Per program: how it ended, each figure's spread, and its notes."""
    out = []
    for run in runs:
        out.append(f"### {prefix}{run.peer}\n")
        out.append(f"Status: {run.status}, {run.seconds:.1f} s.\n")
        for w in workloads:
            r = run.results.get(w.key)
            notes = run.notes.get(w.key, [])
            if r is None and not notes:
                continue
            if r is not None:
                spread = (f"median {w.fmt(r['value'])} {r['unit']}, min {w.fmt(r['min'])}, "
                          f"max {w.fmt(r['max'])}, {int(r['reps'])} timed repetitions")
            else:
                spread = "no figure"
            out.append(f"- {w.key}: {spread}" + "".join(f"; {n}" for n in notes))
        if run.stderr.strip():
            out.append("\n```\n" + run.stderr.strip()[-2000:] + "\n```")
        out.append("")
    return "\n".join(out)


def busy_seconds():
    """CPU time every CPU of the machine has spent busy since boot (/proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    """CPU time of run.py and the benchmark programs it waited for."""
    return sum(getattr(resource.getrusage(who), f)
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def cpu_used_by_others(stat_before, usage_before, wall):
    """Share of the machine's CPU time used by processes other than this run."""
    stat_after = busy_seconds()
    if stat_before is None or stat_after is None or wall <= 0:
        return 0.0
    others = (stat_after - stat_before) - (own_cpu_seconds() - usage_before)
    return max(0.0, others / (wall * (os.cpu_count() or 1)))


def skipped_text(build):
    try:
        return (build / "bench" / "skipped.txt").read_text().strip()
    except OSError:
        return ""


def command_text(argv):
    cmd = shlex.join(["/usr/bin/python3", "bench/run.py"] + argv)
    return f"`make bench`, which ran `{cmd}`" if "MAKELEVEL" in os.environ else f"`{cmd}`"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build-bench",
                    help="build directory holding bench/bench_* (default: build-bench)")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--reps", type=int, help="timed repetitions (default 5, --quick 2)")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                    help="workers for every library (default: CPUs usable)")
    ap.add_argument("--timeout", type=float, help="seconds per program (default 150, "
                    "--quick 90)")
    ap.add_argument("--peers", help="comma-separated columns to run (default: all)")
    ap.add_argument("--tables", default="threads,processes,workloads",
                    help="comma-separated tables to run: threads (W1-W5), processes "
                    "(P1-P4), workloads (C1-C6: the cfutures command) (default: all)")
    ap.add_argument("--output", default=str(BENCH_DIR / "RESULTS.md"),
                    help="where to write the results (default: bench/RESULTS.md)")
    a = ap.parse_args()
    reps = a.reps or (2 if a.quick else 5)
    timeout = a.timeout or (90.0 if a.quick else 150.0)
    build = Path(a.build).resolve()
    tables = a.tables.split(",")
    if not set(tables) <= set(TABLES):
        ap.error(f"--tables takes some of {', '.join(TABLES)}")
    columns = [p for t in tables for p, _, _ in TABLES[t][1]]
    wanted = set(a.peers.split(",")) if a.peers else None
    if wanted is not None and not wanted <= set(columns):
        ap.error(f"--peers takes some of {', '.join(dict.fromkeys(columns))}")

    env = dict(os.environ, UV_THREADPOOL_SIZE=str(a.workers))
    args = ["--reps", str(reps), "--workers", str(a.workers)]
    skipped = skipped_text(build)
    started = datetime.datetime.now().astimezone()
    load_before = os.getloadavg()
    stat_before, usage_before = busy_seconds(), own_cpu_seconds()
    t0 = time.monotonic()
    runs_of = {}  # table -> its runs
    for t in tables:
        runs_of[t] = []
        for peer, program, extra in TABLES[t][1]:
            if wanted is not None and peer not in wanted:
                continue
            own = extra if t != "threads" else []  # the threads table's third field is
            if t == "workloads":  # a pkg-config name; both sides serve with cfutures
                own = own + ["--cfutures", str(build / "tools" / "cfutures"),
                             "--ceiling", str(build / "bench" / "sum_ceiling")]
            cmd = command_of(program, build, own + args)
            if not os.access(cmd[0], os.X_OK):
                run = Run(peer)
                run.status = run.outcome = "not built"
                print(f"== {peer}: {cmd[0]} not built", flush=True)
            else:
                # The workloads run for seconds each, in three modes, several times.
                run = run_program(peer, cmd, timeout if t != "workloads" else 4 * timeout,
                                  env)
            runs_of[t].append(run)
    total = time.monotonic() - t0
    load_after = os.getloadavg()

    runs = [r for t in tables for r in runs_of[t]]
    tabs = {t: table(runs_of[t], TABLES[t][0]) for t in tables}
    for t in tables:
        print(f"\n{TABLE_TITLES[t]}\n\n{tabs[t]}")
    failed = [r for r in runs if r.outcome != "ok"]
    others = cpu_used_by_others(stat_before, usage_before, total)
    warning = (f"**The machine was busy**: other processes used {others:.0%} of its CPU "
               "time during the run and competed with the benchmarks for the cores, which "
               "skews the figures.  Re-run on an idle machine."
               if others > BUSY_SHARE else "")
    if warning:
        print("\nwarning: " + warning.replace("**", ""), file=sys.stderr)
    doc = [
        "# cfutures benchmark results",
        "",
        "Generated by `bench/run.py`; see bench/README.md for what each workload does and "
        "how each peer is driven.",
        "",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- Command: {command_text(sys.argv[1:])}",
        f"- Repetitions: one warm-up round, then the median of {reps} timed rounds per "
        f"figure (W5: at most 3 rounds of 2 s; P4 and C1-C6: at most 3 rounds, no warm-up)"
        f"{' -- a --quick run' if a.quick else ''}",
        f"- Total time: {total:.0f} s; other processes used {others:.1%} of the machine's "
        f"CPU time meanwhile; load average before {load_before[0]:.2f}, after "
        f"{load_after[0]:.2f}",
        "",
    ]
    if warning:
        doc += [warning, ""]
    doc += ["## Results", ""]
    for t in tables:
        doc += [f"### {TABLE_TITLES[t]}", "", TABLE_TEXTS[t], "", tabs[t], ""]
    doc += [
        "## Machine",
        "",
        machine(build, runs, a.workers),
        "",
    ]
    if skipped:
        doc += ["## Peers not built", "", "```", skipped, "```", ""]
    doc += ["## Details", ""]
    for t in tables:
        prefix = "" if t == "threads" else f"{TABLE_TITLES[t]}: "
        doc.append(details(runs_of[t], TABLES[t][0], prefix))
    out = Path(a.output)
    out.write_text("\n".join(doc).rstrip() + "\n")
    print(f"\nwrote {out} ({total:.0f} s)")
    if failed:
        print("failed: " + ", ".join(f"{r.peer} ({r.status})" for r in failed),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
