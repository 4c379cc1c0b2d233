"""The behaviour every cfutures subcommand shares: help, usage errors, the progress bar,
the trace file, files that cannot be written.  Run through `sleep`, the cheapest
subcommand, and `sum`."""

import json
import os
import pty
import select
import subprocess
import time

import clitest
from clitest import Failure, check

COMMON_OPTIONS = ["-m, --mode MODE", "-w, --workers N", "--json", "--timeline FILE.svg",
                  "--trace FILE.json", "--progress", "--no-progress", "-h, --help"]
OPTIONS = {
    "sleep": ["-n, --tasks N", "-s, --seconds S", "--fail-every K"],
    "sum": ["-n, --n N", "--from A", "-c, --chunks K"],
}


def test_help_top(cli):
    p = cli.run("--help")
    for name in ("sleep", "sum", "download", "images", "demo", "serve"):
        check(f"  {name} " in p.stdout, f"`cfutures --help` does not list {name}:\n{p.stdout}")
    check("module" not in p.stdout, f"a module did not load:\n{p.stdout}")
    check(p.stderr == "", p.stderr)


def test_missing_module(cli):
    """A program without its modules says so for download and images, and runs the rest
    (process pools included: their workers are the same lone program)."""
    lone = cli.path("cfutures")
    with open(cli.binary, "rb") as src, open(lone, "wb") as dst:
        dst.write(src.read())
    os.chmod(lone, 0o755)
    for name in ("download", "images"):
        p = subprocess.run([lone, name, "--help"], capture_output=True, text=True, timeout=30)
        check(p.returncode == 1 and f"its module cfutures-{name}.so is in neither" in p.stderr
              and p.stdout == "", f"{name}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    p = subprocess.run([lone, "--help"], capture_output=True, text=True, timeout=30)
    check(p.returncode == 0 and "cfutures-images.so is in neither" in p.stdout, p.stdout)
    p = subprocess.run([lone, "sleep", "-n", "3", "-s", "0", "--mode", "processes", "--json"],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0 and json.loads(p.stdout)["succeeded"] == 3, p.stdout + p.stderr)


def check_help(cli, command):
    p = cli.run(command, "--help")
    check(p.stdout.startswith(f"Usage: cfutures {command} [options]"), p.stdout)
    for opt in OPTIONS[command] + COMMON_OPTIONS:
        check(opt in p.stdout, f"{command} --help does not document {opt!r}:\n{p.stdout}")
    for mode in ("sequential", "threads", "processes"):
        check(mode in p.stdout, f"{command} --help does not name the mode {mode}")
    check("Exit status" in p.stdout, "the exit statuses are not documented")
    # -h is the same help.
    check(cli.run(command, "-h").stdout == p.stdout, "-h differs from --help")


def test_help_sleep(cli):
    check_help(cli, "sleep")


def test_help_sum(cli):
    check_help(cli, "sum")


def test_bad_options(cli):
    cli.usage_error("sleep", "--bogus", mention="unknown option '--bogus'")
    cli.usage_error("sleep", "-x", mention="unknown option '-x'")
    cli.usage_error("sum", "--tasks", "3", mention="unknown option '--tasks'")
    cli.usage_error("sleep", "--mode", "fibers", mention="--mode must be sequential, threads "
                                                         "or processes, not 'fibers'")
    cli.usage_error("sleep", "--workers", "0", mention="--workers must be between 1 and 1024")
    cli.usage_error("sleep", "-w", "many", mention="--workers needs an integer, not 'many'")
    cli.usage_error("sleep", "--tasks", mention="--tasks needs a value")
    cli.usage_error("sleep", "--json=yes", mention="--json takes no value")
    cli.usage_error("sleep", "stray", mention="unexpected argument 'stray'")
    cli.usage_error("sleep", "--progress", "--no-progress", mention="exclude each other")
    cli.usage_error("sleep", "--timeline=", mention="need a file name")
    for args in (("sleep", "--bogus"), ("sum", "--n", "-5")):
        p = cli.run(*args, expect=2)
        check(f"Try 'cfutures {args[0]} --help'" in p.stderr, p.stderr)


def test_bad_command(cli):
    for args in ((), ("nap",)):
        p = cli.run(*args, expect=2)
        check("Usage: cfutures COMMAND" in p.stderr, p.stderr)
        check("sleep" in p.stderr and "sum" in p.stderr, "the commands are not listed")
    check("unknown command 'nap'" in cli.run("nap", expect=2).stderr, "no reason given")


def test_option_forms(cli):
    """--name=value, -xVALUE, grouped short flags and '--' all parse."""
    s = json.loads(cli.run("sleep", "--tasks=3", "-s0.01", "-w2", "--mode=sequential",
                           "--json").stdout)
    clitest.check_summary(s, "sleep", "sequential", 3)
    check(s["seconds_per_task"] == 0.01, s)
    s = json.loads(cli.run("sleep", "-n", "2", "-s", "0", "--json", "--").stdout)
    clitest.check_summary(s, "sleep", "threads", 2, workers=2)
    cli.usage_error("sleep", "-s", "0", "--", "--json", mention="unexpected argument '--json'")


def test_progress_forced(cli):
    """--progress draws on a pipe too: plain lines, the last one complete."""
    p = cli.run("sleep", "-n", "4", "-s", "0.01", "--mode", "sequential", "--progress")
    lines = p.stderr.splitlines()
    check(lines, "no progress output")
    check("4/4" in lines[-1], f"last progress line {lines[-1]!r}")
    check("left" in lines[-1] and "/s" in lines[-1], f"no rate or time left: {lines[-1]!r}")
    check("\r" not in p.stderr and "\033" not in p.stderr,
          f"control characters on a pipe: {p.stderr!r}")
    check("Finished in" in p.stdout, p.stdout)


def test_progress_none_on_pipe(cli):
    for mode in ("sequential", "threads", "processes"):
        p = cli.run("sleep", "-n", "3", "-s", "0.2", "-w", "1", "--mode", mode)
        check(p.stderr == "", f"{mode}: stderr is not a terminal, yet: {p.stderr!r}")


def run_on_terminal(cli, *args):
    """Runs the command with stderr on a pseudo-terminal; returns (status, stdout, what the
    terminal received)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([cli.binary, *args], stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL)
    os.close(slave)
    got = b""
    deadline = time.monotonic() + clitest.RUN_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        got += chunk
    os.close(master)
    try:
        out, _ = proc.communicate(timeout=clitest.RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise Failure(f"{args} did not finish")
    return proc.returncode, out.decode(), got.decode()


def test_progress_on_terminal(cli):
    # 4 tasks of 0.3 s one after the other: at least 1.2 s, past the 0.5 s after which a
    # bar appears (sleeps last at least what they ask, so this does not depend on speed).
    rc, out, tty = run_on_terminal(cli, "sleep", "-n", "4", "-s", "0.3", "--mode", "sequential")
    check(rc == 0, f"exit status {rc}")
    check("4/4" in tty and "\r" in tty, f"no progress bar on the terminal: {tty!r}")
    check("[####" in tty, f"no bar drawn: {tty!r}")
    check("Finished in" in out, out)
    rc, out, tty = run_on_terminal(cli, "sleep", "-n", "4", "-s", "0.3", "--mode", "threads",
                                   "-w", "1", "--no-progress")
    check(rc == 0 and tty == "", f"--no-progress drew on the terminal: {tty!r}")
    # A quick run leaves the terminal alone.
    rc, out, tty = run_on_terminal(cli, "sleep", "-n", "2", "-s", "0", "--mode", "sequential")
    check(rc == 0 and tty == "", f"a quick run drew a bar: {tty!r}")


def test_trace(cli):
    path = cli.path("trace.json")
    s = cli.json("sleep", "-n", "5", "-s", "0.01", "-w", "2", "--trace", path)
    check(s["trace"] == path, s)
    with open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    complete = [e for e in events if e.get("ph") == "X"]
    check(len(complete) == 5, f"{len(complete)} task events in the trace, expected 5")
    check(all(e["name"] == "sleep_task" for e in complete), complete)


def test_unwritable_files(cli):
    """A --timeline or --trace that cannot be written is reported before any work: a run
    of 3 s ends at once with exit status 1 and no summary; an existing file is left as it
    was, and a writable new path is not left behind by the check."""
    missing = cli.path("no/such/dir/t.svg")
    for option, what in (("--timeline", "timeline"), ("--trace", "trace")):
        for extra in ((), ("--json",)):
            start = time.monotonic()
            p = cli.run("sleep", "-n", "2", "-s", "3", option, missing, *extra, expect=1)
            took = time.monotonic() - start
            check(f"cannot write the {what} {missing}" in p.stderr, p.stderr)
            check(p.stdout == "", f"no summary of a run that did not take place: {p.stdout}")
            check(took < 2.5, f"refused after {took:.1f} s: the sleeps ran first")
    existing = cli.path("old.svg")
    with open(existing, "w") as f:
        f.write("old")
    os.chmod(existing, 0o444)
    if os.access(existing, os.W_OK):  # root writes read-only files: use a folder instead
        existing = cli.path("")
    p = cli.run("sleep", "-n", "1", "-s", "3", "--timeline", existing, expect=1)
    check("cannot write the timeline" in p.stderr, p.stderr)
    fresh = cli.path("fresh.svg")
    cli.run("sleep", "-n", "1", "-s", "0", "--trace", fresh)
    check(os.path.exists(fresh), "the trace is written after a good run")


def test_help_texts(cli):
    """The top-level help says which commands take the common options; demo refuses
    --mode; serve's help ends with its own exit statuses, not the items' ones."""
    p = cli.run("--help")
    check("The workloads (sleep, sum, download, images) take --mode" in p.stdout and
          "Every command takes" not in p.stdout, p.stdout)
    cli.usage_error("demo", "--mode", "threads", mention="unknown option '--mode'")
    p = cli.run("serve", "--help")
    check("after a clean stop" in p.stdout and "every item succeeded" not in p.stdout,
          p.stdout)
    p = cli.run("sleep", "--help")
    check("130 / 143 when SIGINT" in p.stdout, p.stdout)


if __name__ == "__main__":
    clitest.main(globals())
