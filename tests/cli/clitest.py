"""clitest.py -- the harness of the cfutures command's tests (tests/cli/test_*.py).

A test script defines cases as `def test_<case>(cli):` and ends with
`clitest.main(globals())`; it is run as `python3 test_<group>.py <cfutures binary> <case>`
(tests/cli/CMakeLists.txt registers one ctest entry per case; `--list` prints the cases,
for scripts in a folder of their own).  `cli` runs the binary with
a time limit and checks its exit status; every failure raises with the command, its exit
status and its output, so a failing entry says what happened.

check_timeline() reads an SVG written by --timeline and checks it against the run: it is
well-formed XML, has one row per worker and one bar per item, each bar lies inside its
worker's row and at the x position the time axis gives its start, bars of one worker do
not overlap in time (see the allowance for process pools there), and failed items (only
they) are red bars with a cross.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
RUN_TIMEOUT = 60  # seconds any single command may take


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def expect(cond, what, proc=None):
    """check(), with the exit status and the output of proc (a CompletedProcess) added to
    the message."""
    if not cond:
        detail = ""
        if proc is not None:
            detail = (f"\n--- exit status {proc.returncode}\n--- stdout:\n{proc.stdout}"
                      f"--- stderr:\n{proc.stderr}")
        raise Failure(what + detail)


def interrupt(cmd, signame, ready, timeout=30, **kwargs):
    """Starts cmd in a process group of its own, waits until ready() is true (polled; at
    most `timeout` s), then sends signame: SIGINT to the whole group, as a terminal's
    Ctrl-C does (a process pool's workers get it too), SIGTERM to the command alone, as
    `kill` does.  Returns (CompletedProcess, seconds from the signal to the exit)."""
    sig = getattr(signal, signame)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)
    try:
        deadline = time.monotonic() + timeout
        while not ready() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        if proc.poll() is not None:
            raise Failure(f"{cmd} ended before the signal: {proc.communicate()}")
        check(ready(), f"{cmd}: not ready for the signal within {timeout} s")
        sent = time.monotonic()
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), took


class Served:
    """`cfutures serve ROOT` (the demo's nginx on 127.0.0.1) as a context manager whose value
    is the base URL.  Stopping sends SIGTERM and waits until the command has stopped nginx
    and exited; it must exit 0."""

    def __init__(self, cfutures, root, limit_rate=None, env=None):
        self.cmd = [cfutures, "serve", root] + (["--limit-rate", limit_rate] if limit_rate
                                                else [])
        self.env = env
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=self.env)
        url = self.proc.stdout.readline().strip()  # printed once nginx accepts connections
        if not url.startswith("http://127.0.0.1:"):
            _, err = self.proc.communicate(timeout=30)
            raise Failure(f"{' '.join(self.cmd)} did not start (exit status "
                          f"{self.proc.returncode}):\n{err}")
        return url

    def stop(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        check(proc.returncode == 0, f"{' '.join(self.cmd)}: exit status {proc.returncode} "
                                    f"after SIGTERM\n{err}")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Cli:
    def __init__(self, binary):
        self.binary = binary
        self.tmp = tempfile.mkdtemp(prefix="cfutures-cli-")

    def path(self, name):
        return os.path.join(self.tmp, name)

    def run(self, *args, expect=0, timeout=RUN_TIMEOUT, **kwargs):
        """Runs the command; checks its exit status unless expect is None."""
        cmd = [self.binary, *[str(a) for a in args]]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
        if expect is not None and p.returncode != expect:
            raise Failure(f"{' '.join(cmd)}: exit status {p.returncode}, expected {expect}\n"
                          f"--- stdout:\n{p.stdout}--- stderr:\n{p.stderr}")
        return p

    def json(self, *args, expect=0):
        """Runs the command with --json and returns the parsed summary."""
        p = self.run(*args, "--json", expect=expect)
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise Failure(f"--json output does not parse ({e}):\n{p.stdout}")

    def usage_error(self, *args, mention):
        """Runs a command that must be refused: exit status 2, the reason and the usage on
        stderr, nothing on stdout."""
        p = self.run(*args, expect=2)
        check(mention in p.stderr, f"{args}: stderr does not mention {mention!r}:\n{p.stderr}")
        check("Usage: cfutures" in p.stderr, f"{args}: no usage line on stderr:\n{p.stderr}")
        check(p.stdout == "", f"{args}: unexpected stdout:\n{p.stdout}")
        return p


def check_summary(s, command, mode, items, failed=0, workers=None):
    """The common fields of a --json summary."""
    check(s["command"] == command, f"command {s['command']!r}")
    check(s["mode"] == mode, f"mode {s['mode']!r}, expected {mode!r}")
    check(s["items"] == items, f"items {s['items']}, expected {items}")
    check(s["failed"] == failed, f"failed {s['failed']}, expected {failed}: {s['errors']}")
    check(s["succeeded"] == items - failed, f"succeeded {s['succeeded']}")
    check(len(s["errors"]) == failed, f"{len(s['errors'])} errors listed, expected {failed}")
    check(isinstance(s["seconds"], float) and s["seconds"] >= 0, f"seconds {s['seconds']}")
    if mode == "sequential":
        check(s["workers"] == 1, f"sequential run with {s['workers']} workers")
    elif workers is not None:
        check(s["workers"] == workers, f"workers {s['workers']}, expected {workers}")


def check_timeline(path, summary, failed_items=(), span=0):
    """Checks the SVG at path against the run described by its --json summary."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise Failure(f"{path} is not well-formed XML: {e}")
    check(root.tag == SVG + "svg", f"root element {root.tag}")
    workers, items = summary["workers"], summary["items"]

    title = "".join(t.text or "" for t in root.iter(SVG + "text") if t.get("class") == "title")
    for part in (summary["command"], summary["mode"],
                 f"{workers} worker" if workers == 1 else f"{workers} workers",
                 f"{summary['seconds']:.2f} s"):
        check(part in title, f"title {title!r} lacks {part!r}")

    rows = {}
    for r in root.iter(SVG + "rect"):
        if r.get("class") == "row":
            w = int(r.get("data-worker"))
            check(w not in rows, f"two rows for worker {w}")
            rows[w] = (float(r.get("y")), float(r.get("height")),
                       float(r.get("x")), float(r.get("width")))
    check(sorted(rows) == list(range(workers)), f"rows {sorted(rows)} for {workers} workers")

    # The axis: tick labels give x for a time; two ticks fix the scale.
    ticks = [(float(t.get("x")), float(t.text)) for t in root.iter(SVG + "text")
             if t.get("class") == "tick"]
    check(len(ticks) >= 2, f"{len(ticks)} ticks on the time axis")
    (x0, t0), (x1, t1) = ticks[0], ticks[1]
    check(t0 == 0, f"the axis starts at {t0}")
    px_per_s = (x1 - x0) / (t1 - t0)

    bars = []
    for r in root.iter(SVG + "rect"):
        cls = (r.get("class") or "").split()
        if "bar" not in cls:
            continue
        b = dict(item=int(r.get("data-item")), worker=int(r.get("data-worker")),
                 start=float(r.get("data-start")), end=float(r.get("data-end")),
                 x=float(r.get("x")), y=float(r.get("y")), w=float(r.get("width")),
                 h=float(r.get("height")), failed="failed" in cls)
        bars.append(b)
    check(sorted(b["item"] for b in bars) == list(range(1, items + 1)),
          f"bars for items {sorted(b['item'] for b in bars)}, expected 1..{items}")

    for b in bars:
        ry, rh, rx, rw = rows[b["worker"]]
        check(ry <= b["y"] and b["y"] + b["h"] <= ry + rh,
              f"bar of item {b['item']} (y {b['y']}..{b['y'] + b['h']}) outside the row of "
              f"worker {b['worker']} (y {ry}..{ry + rh})")
        check(0 <= b["start"] <= b["end"] <= summary["seconds"] + 1e-3,
              f"item {b['item']} runs {b['start']}..{b['end']} in a {summary['seconds']} s run")
        want_x = x0 + b["start"] * px_per_s
        check(abs(b["x"] - want_x) < 0.5, f"item {b['item']} starts at x {b['x']}, the axis "
                                           f"puts {b['start']} s at {want_x:.2f}")
        want_w = (b["end"] - b["start"]) * px_per_s
        check(abs(b["w"] - max(want_w, 2)) < 0.5, f"item {b['item']} is {b['w']} px wide, "
                                                   f"expected {want_w:.2f}")
        check(rx - 0.5 <= b["x"] and b["x"] + b["w"] <= rx + rw + 0.5,
              f"item {b['item']} leaves the plot")

    # Evenly spaced ticks covering the run: the last one within a step of its end.
    step = t1 - t0
    for (xa, ta), (xb, tb) in zip(ticks, ticks[1:]):
        check(abs((tb - ta) - step) < step * 1e-6 and abs((xb - xa) - (x1 - x0)) < 0.05,
              f"uneven ticks {ticks}")
    t_end = max([summary["seconds"], span] + [b["end"] for b in bars])
    check(ticks[-1][1] <= t_end * (1 + 1e-6) and ticks[-1][1] + step > t_end * (1 - 1e-6),
          f"ticks up to {ticks[-1][1]} s for a run of {t_end} s")

    # One worker runs one task at a time.  A process pool's start times are estimated in
    # the parent (result arrival minus the worker's run time) while the end is when the
    # parent completed the future, so consecutive tasks of one worker process may seem to
    # overlap by the difference in delivery delays: allowed up to half the shorter task
    # (a worker given two tasks at once would overlap by a whole task).
    for w in range(workers):
        mine = sorted((b for b in bars if b["worker"] == w), key=lambda b: b["start"])
        for a, b in zip(mine, mine[1:]):
            slack = 1e-6
            if summary["mode"] == "processes":
                slack = 0.5 * min(a["end"] - a["start"], b["end"] - b["start"])
            check(b["start"] >= a["end"] - slack,
                  f"worker {w} runs items {a['item']} ({a['start']}..{a['end']}) and "
                  f"{b['item']} ({b['start']}..{b['end']}) at once")

    failed = sorted(b["item"] for b in bars if b["failed"])
    check(failed == sorted(failed_items), f"failed bars {failed}, expected {sorted(failed_items)}")
    crosses = [p for p in root.iter(SVG + "path") if p.get("class") == "cross"]
    check(len(crosses) == len(failed), f"{len(crosses)} crosses for {len(failed)} failed bars")
    return bars


def main(namespace):
    if sys.argv[1:] == ["--list"]:  # the cases, for a CMakeLists.txt (cli_driver_cases)
        print("\n".join(name[5:] for name in namespace if name.startswith("test_")))
        return
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} CFUTURES-BINARY CASE | --list")
    binary, case = sys.argv[1], sys.argv[2]
    fn = namespace.get("test_" + case)
    if fn is None:
        sys.exit(f"no case {case!r} in {sys.argv[0]}")
    cli = Cli(os.path.abspath(binary))
    try:
        fn(cli)
    except Failure as e:
        print(f"FAILED {case}: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        shutil.rmtree(cli.tmp, ignore_errors=True)
    print(f"ok {case}")
