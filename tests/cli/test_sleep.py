"""cfutures sleep: N tasks that each sleep S seconds, in every mode; failures on request
(--fail-every) and the exit status; bad values; the timeline."""

import json
import time

import clitest
from clitest import check

MODES = ("sequential", "threads", "processes")


def run_mode(cli, mode):
    p = cli.run("sleep", "-n", "4", "-s", "0.05", "--mode", mode, "--workers", "2")
    check(p.stdout.startswith("Ran 4 tasks that each sleep 0.05 second(s): " + mode), p.stdout)
    check(p.stdout.rstrip().splitlines()[-1].startswith("Finished in "), p.stdout)
    check("FAILED" not in p.stdout, p.stdout)
    s = cli.json("sleep", "-n", "4", "-s", "0.05", "--mode", mode, "--workers", "2")
    clitest.check_summary(s, "sleep", mode, 4, workers=2)
    check(s["tasks"] == 4 and s["seconds_per_task"] == 0.05, s)
    # Four sleeps of 0.05 s on at most two workers cannot take less than 0.1 s: the tasks
    # really ran (a lower bound only; no speed is asserted).
    check(s["seconds"] >= 0.1, f"4 x 0.05 s on 2 workers in {s['seconds']} s")


def test_sequential(cli):
    run_mode(cli, "sequential")


def test_threads(cli):
    run_mode(cli, "threads")


def test_processes(cli):
    run_mode(cli, "processes")


def test_default_workers(cli):
    """One worker per task by default (at most 64)."""
    check(cli.json("sleep", "-n", "3", "-s", "0")["workers"] == 3, "3 tasks")
    check(cli.json("sleep", "-n", "100", "-s", "0")["workers"] == 64, "100 tasks")


def test_invalid_values(cli):
    for value in ("-1", "3601", "nan", "inf", "abc", "1s", ""):
        cli.usage_error("sleep", "--seconds", value, mention="--seconds")
    for value in ("0", "-3", "100001", "2.5", "x"):
        cli.usage_error("sleep", "--tasks", value, mention="--tasks")
    cli.usage_error("sleep", "--fail-every", "-1", mention="--fail-every")


def run_failures(cli, mode):
    args = ("sleep", "-n", "5", "-s", "0.01", "--fail-every", "2", "--mode", mode, "-w", "2")
    p = cli.run(*args, expect=1)
    lines = p.stdout.splitlines()
    check("  FAILED item 2: task 2 failed on purpose (--fail-every)" in lines, p.stdout)
    check("  FAILED item 4: task 4 failed on purpose (--fail-every)" in lines, p.stdout)
    check(sum(line.startswith("  FAILED") for line in lines) == 2, p.stdout)
    check("2 of 5 items failed" in lines, p.stdout)
    check(lines[-1].startswith("Finished in "), p.stdout)
    s = cli.json(*args, expect=1)
    clitest.check_summary(s, "sleep", mode, 5, failed=2, workers=2)
    errors = {e["item"]: e for e in s["errors"]}
    check(sorted(errors) == [2, 4], s["errors"])
    for item, e in errors.items():
        check(e["error"] == "TASK" and e["code"] == 5, e)  # EIO, the task's own code
        check(e["label"] == f"item {item}", e)
        check(e["message"] == f"task {item} failed on purpose (--fail-every)", e)


def test_failures_sequential(cli):
    run_failures(cli, "sequential")


def test_failures_threads(cli):
    run_failures(cli, "threads")


def test_failures_processes(cli):
    run_failures(cli, "processes")


def run_timeline(cli, mode, workers, tasks, fail_every=0):
    svg = cli.path(f"sleep-{mode}.svg")
    args = ["sleep", "-n", tasks, "-s", "0.05", "--mode", mode, "-w", workers,
            "--timeline", svg]
    failed = []
    if fail_every:
        args += ["--fail-every", fail_every]
        failed = [i for i in range(1, tasks + 1) if i % fail_every == 0]
    s = cli.json(*args, expect=1 if failed else 0)
    check(s["timeline"] == svg, s)
    clitest.check_summary(s, "sleep", mode, tasks, failed=len(failed), workers=workers)
    bars = clitest.check_timeline(svg, s, failed)
    return s, bars


def test_timeline_sequential(cli):
    s, bars = run_timeline(cli, "sequential", 1, 4)
    # One after the other, in input order, on the one row.
    order = [b["item"] for b in sorted(bars, key=lambda b: b["start"])]
    check(order == [1, 2, 3, 4], f"sequential items ran in order {order}")


def test_timeline_threads(cli):
    run_timeline(cli, "threads", 3, 7)


def test_timeline_processes(cli):
    run_timeline(cli, "processes", 2, 6)


def test_timeline_failures(cli):
    run_timeline(cli, "threads", 2, 6, fail_every=3)
    run_timeline(cli, "processes", 2, 5, fail_every=2)


def test_timeline_text(cli):
    svg = cli.path("t.svg")
    p = cli.run("sleep", "-n", "2", "-s", "0", "--timeline", svg)
    check(f"Timeline: {svg}" in p.stdout.splitlines(), p.stdout)


def interrupted(cli, mode, signame):
    """A signal stops the run at once (a sleep is not waited out): the summary of what
    finished, every other task interrupted, exit status 128 + the signal."""
    started = time.monotonic()
    cmd = [cli.binary, "sleep", "-n", "6", "-s", "0.6", "-w", "2", "--mode", mode, "--json"]
    p, took = clitest.interrupt(cmd, signame, lambda: time.monotonic() - started > 1.0)
    want = 130 if signame == "SIGINT" else 143
    check(p.returncode == want, f"exit status {p.returncode}, expected {want}: {p.stderr}")
    check(took < 5, f"the command took {took:.1f} s to stop")
    s = json.loads(p.stdout)
    check(s["signal"] == signame and s["failed"] == 0 and
          s["succeeded"] + s["interrupted"] == 6 and s["interrupted"] >= 1, s)
    check(all(e["error"] == "CANCELLED" and e["message"].startswith("interrupted by " +
                                                                     signame)
              for e in s["errors"]), s["errors"])
    check(not any("lost" in e["message"] for e in s["errors"]), s["errors"])


def test_interrupted_sequential(cli):
    interrupted(cli, "sequential", "SIGINT")


def test_interrupted_threads(cli):
    interrupted(cli, "threads", "SIGTERM")


def test_interrupted_processes(cli):
    interrupted(cli, "processes", "SIGINT")


def test_interrupted_processes_term(cli):
    interrupted(cli, "processes", "SIGTERM")


if __name__ == "__main__":
    clitest.main(globals())
