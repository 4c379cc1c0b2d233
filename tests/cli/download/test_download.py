#!/usr/bin/env python3
"""test_download.py -- `cfutures download` against real servers: the loopback nginx of
`cfutures serve` for files and 404s, and fault_server.py (same folder) for what nginx
cannot do on demand (a reset connection, a stalled body, a resource that fails K times);
and `cfutures serve` itself.

Usage: test_download.py --cfutures PATH CASE
Each CASE (--list prints them) is one ctest entry, cli.download.CASE.  A case exits
0 when every check held; a failed check raises with what was expected and what the command
printed.  Every server is stopped and every temporary folder removed whatever happens.

Checks are on behaviour: files byte-identical to what was served, the exact set of names
(hidden ones included) left in the output folder, the exit status, the per-URL error code
and message, and for retries the number of requests the server saw.  The one timing check
(--limit-rate) is a generous lower bound, never an upper one.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # the imports below are sources, not build products
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import clitest  # noqa: E402  (tests/cli/clitest.py)
from clitest import expect  # noqa: E402
from fault_server import FaultServer, body_of  # noqa: E402

CURLE_COULDNT_RESOLVE_HOST = 6
CURLE_HTTP_RETURNED_ERROR = 22
CURLE_WRITE_ERROR = 23
CURLE_OPERATION_TIMEDOUT = 28
CURLE_RECV_ERROR = 56
BAD_HOST = "http://nosuchhost.invalid/gone.bin"  # .invalid never resolves (RFC 6761)
# Resolving counts toward curl's connect timeout: leave a resolver that is slow to say
# "no such host" (an unreachable name server) time to say it.
RESOLVE_TIME = "30"
MODES = ("sequential", "threads", "processes")

# Files nginx serves in every case: empty, tiny, and over a megabyte (many reads).
FILES = {"empty.bin": 0, "one.bin": 1, "mid.bin": 100_000, "big.bin": 1_048_579}

ARGS = None  # the command line


def run_cli(args, stdin=None, timeout=50):
    """Runs `cfutures download ARGS` and returns the CompletedProcess (text)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    cmd = [ARGS.cfutures, "download", "--no-progress"] + args
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env,
                          timeout=timeout)


def listing(folder):
    """Every name in folder, hidden ones included."""
    return sorted(os.listdir(folder))


def expect_files(folder, wanted, root, proc):
    """The folder holds exactly the names in `wanted`, each identical to root/name."""
    expect(listing(folder) == sorted(wanted),
           f"output folder holds {listing(folder)}, expected {sorted(wanted)}", proc)
    for name in wanted:
        with open(os.path.join(folder, name), "rb") as a, \
                open(os.path.join(root, name), "rb") as b:
            expect(a.read() == b.read(), f"{name} differs from the served file", proc)


def json_run(args, stdin=None):
    proc = run_cli(args + ["--json"], stdin=stdin)
    try:
        summary = json.loads(proc.stdout)
    except json.JSONDecodeError:
        expect(False, "--json did not print one JSON object", proc)
    return proc, summary


def error_of(summary, url, proc):
    for e in summary["errors"]:
        if e["label"] == url:
            return e
    expect(False, f"no error reported for {url}", proc)


class Env:
    """A case's world: a served folder, nginx on it, the fault server, an output folder."""

    def __init__(self, tmp):
        self.root = os.path.join(tmp, "served")
        self.out = os.path.join(tmp, "out")
        os.makedirs(self.root)
        for name, size in FILES.items():
            self.write(name, body_of(name, size))
        self.nginx = clitest.Served(ARGS.cfutures, self.root)
        self.fault = FaultServer()

    def write(self, rel, data):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def __enter__(self):
        self.url = self.nginx.start()
        try:
            self.fault.__enter__()
        except BaseException:
            self.nginx.stop()
            raise
        self.furl = self.fault.url
        return self

    def __exit__(self, *exc):
        try:
            self.fault.__exit__(*exc)
        finally:
            self.nginx.stop()


# ---- cases -------------------------------------------------------------------------------

def ok_batch(env, mode):
    urls = [env.url + name for name in FILES]
    proc, summary = json_run(["--mode", mode, "-o", env.out] + urls)
    expect(proc.returncode == 0, "a batch of good URLs exits 0", proc)
    expect(summary["succeeded"] == len(FILES) and summary["failed"] == 0,
           "every URL succeeded", proc)
    expect(summary["mode"] == mode, f"the summary says mode {mode}", proc)
    expect(summary["bytes"] == sum(FILES.values()), "bytes counts every byte fetched", proc)
    expect_files(env.out, FILES, env.root, proc)


def one_failure(env, url, code, words, extra=()):
    """A single failing URL: exit 1, its code and message, nothing in the output folder."""
    proc, summary = json_run(["-o", env.out, *extra, url])
    expect(proc.returncode == 1, "a failed URL makes the exit status 1", proc)
    err = error_of(summary, url, proc)
    expect(err["code"] == code, f"error code {err['code']}, expected curl's {code}", proc)
    for w in words:
        expect(w.lower() in err["message"].lower(), f"the message mentions '{w}'", proc)
    expect(listing(env.out) == [], "a failure leaves no file behind", proc)
    return proc


def case_ok(mode):
    def run(env):
        ok_batch(env, mode)
    return run


def case_bad_host(env):
    one_failure(env, BAD_HOST, CURLE_COULDNT_RESOLVE_HOST, ["resolve", "nosuchhost.invalid"],
                ["--connect-timeout", RESOLVE_TIME])


def case_http_404(env):
    one_failure(env, env.url + "no-such-file.bin", CURLE_HTTP_RETURNED_ERROR, ["404"])


def case_timeout(env):
    # The server sends 16 bytes and then nothing: curl's timeout must end it (the server
    # would wait for as long as the client stays).
    one_failure(env, env.furl + "stall/1000000/slow.bin", CURLE_OPERATION_TIMEDOUT,
                ["timed out"], ["--timeout", "1"])


def case_reset(env):
    one_failure(env, env.furl + "reset/1000000/cut.bin", CURLE_RECV_ERROR, ["reset"])


def case_no_partial_file(env):
    # A file of the same name is already there: a failure must neither leave the quarter
    # of a body it received nor touch that file.
    os.makedirs(env.out)
    with open(os.path.join(env.out, "cut.bin"), "wb") as f:
        f.write(b"previous content")
    urls = [env.furl + "reset/4000000/cut.bin", env.furl + "stall/4000000/stalled.bin"]
    proc = run_cli(["--timeout", "2", "-o", env.out] + urls)
    expect(proc.returncode == 1, "failed URLs make the exit status 1", proc)
    expect(listing(env.out) == ["cut.bin"], "no partial or temporary file is left", proc)
    with open(os.path.join(env.out, "cut.bin"), "rb") as f:
        expect(f.read() == b"previous content", "the existing file is untouched", proc)


def case_dead_worker(env):
    """A worker process killed in the middle of a transfer: that URL fails with the lost
    worker's error, the parent removes the hidden temporary file the worker could not, and
    the other URLs complete."""
    os.makedirs(env.out)
    good = [env.url + name for name in FILES]
    stalled = env.furl + "stall/4000000/stalled.bin"
    env_vars = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    cmd = [ARGS.cfutures, "download", "--no-progress", "--json", "--mode", "processes",
           "-w", "2", "-o", env.out, stalled] + good
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env_vars)
    try:
        # The stalled transfer's temporary file carries its worker's pid:
        # .stalled.bin.part-PID-N.
        victim, deadline = None, time.monotonic() + 30
        while victim is None and time.monotonic() < deadline:
            for name in os.listdir(env.out):
                m = re.match(r"\.stalled\.bin\.part-(\d+)-\d+$", name)
                if m:
                    victim = int(m.group(1))
            time.sleep(0.02)
        expect(victim is not None and victim != proc.pid,
               f"a worker process writes .stalled.bin.part-PID-N: {listing(env.out)}")
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    expect(proc.returncode == 1, "the lost URL makes the exit status 1", done)
    summary = json.loads(out)
    e = error_of(summary, stalled, done)
    expect(e["error"].endswith("LOST") and str(victim) in e["message"],
           f"the stalled URL failed with its worker lost: {e}", done)
    expect(summary["failed"] == 1 and summary["succeeded"] == len(FILES),
           "every other URL succeeded", done)
    expect_files(env.out, FILES, env.root, done)


def wait_for_parts(folder, count, of=None, timeout=30):
    """Waits until folder holds `count` hidden temporary files, of the URLs `of` only if
    given (a quick file's part may exist for a moment: it says nothing of the slow ones);
    returns their names."""
    names = None if of is None else {"." + url.rsplit("/", 1)[1] + ".part-" for url in of}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = [n for n in os.listdir(folder) if ".part-" in n and
                 (names is None or any(n.startswith(p) for p in names))] \
            if os.path.isdir(folder) else []
        if len(parts) >= count:
            return parts
        time.sleep(0.02)
    expect(False, f"{count} transfers in progress expected in {folder}: "
                  f"{os.listdir(folder) if os.path.isdir(folder) else 'no folder'}")


def case_interrupted(mode, signame):
    """SIGINT to the whole process group (a terminal's Ctrl-C: it reaches the workers of a
    process pool too) or SIGTERM to the command: the transfers stop, no temporary file is
    left, the files already done stay, the summary says what finished, and the exit
    status is 128 + the signal; no URL is reported as a lost worker."""
    def run(env):
        sig = getattr(signal, signame)
        good = [env.url + name for name in FILES]
        stalled = [env.furl + f"stall/4000000/s{k}.bin" for k in range(4)]
        workers = 1 if mode == "sequential" else 2
        cmd = [ARGS.cfutures, "download", "--no-progress", "--json", "--mode", mode,
               "-w", str(workers), "-o", env.out] + good + stalled
        env_vars = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env_vars, start_new_session=True)
        try:
            wait_for_parts(env.out, workers, of=stalled)
            sent = time.monotonic()
            if sig == signal.SIGINT:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
            out, err = proc.communicate(timeout=20)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        print(f"{mode} {signame}: exit {proc.returncode} {took:.2f} s after the signal")
        expect(proc.returncode == 128 + sig, f"exit status {128 + sig} after {signame}", done)
        expect(took < 10, f"the command ended {took:.1f} s after {signame}", done)
        expect_files(env.out, FILES, env.root, done)  # and no .part file
        summary = json.loads(out)
        expect(summary["signal"] == signame and summary["succeeded"] == len(FILES) and
               summary["failed"] == 0 and summary["interrupted"] == len(stalled),
               f"{len(FILES)} done, {len(stalled)} interrupted, none failed: {summary}", done)
        for url in stalled:
            e = error_of(summary, url, done)
            expect(e["error"] == "CANCELLED" and
                   e["message"].startswith(f"interrupted by {signame}"),
                   f"{url} is reported as interrupted: {e}", done)
        # A process pool hands tasks to its workers ahead (as Python's does): those count as
        # started, so there all four may be "stopped".
        started = [e for e in summary["errors"] if "before it started" not in e["message"]]
        most = len(stalled) if mode == "processes" else len(stalled) - 1
        expect(1 <= len(started) <= most,
               f"some transfers were stopped, the others never started: {summary['errors']}",
               done)
    return run


def case_interrupted_text(env):
    """The text summary of an interrupted run: what was done, what was stopped, what never
    started, and the time; exit status 130."""
    stalled = [env.furl + f"stall/4000000/t{k}.bin" for k in range(3)]
    cmd = [ARGS.cfutures, "download", "--no-progress", "--mode", "threads", "-w", "1",
           "-o", env.out, env.url + "one.bin"] + stalled
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()})
    try:
        wait_for_parts(env.out, 1, of=stalled[:1])
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    expect(proc.returncode == 130, "exit status 130 after SIGINT", done)
    expect("Downloaded 1 of 4 URL(s)" in out and
           f"STOPPED {stalled[0]}: interrupted by SIGINT" in out and
           "Interrupted by SIGINT: 1 of 4 items done, 1 stopped, 2 never started" in out and
           "Finished in" in out and "FAILED" not in out,
           "the summary says what was done, stopped and never started", done)
    expect(listing(env.out) == ["one.bin"], "no partial file is left", done)


def case_stale_parts(env):
    """A rerun removes the temporary files a killed run left for its own names (their
    process gone), and leaves those of running processes and of other names alone."""
    os.makedirs(env.out)
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = [f".big.bin.part-{gone.pid}-0", f".one.bin.part-{gone.pid}-3"]
    kept = [f".big.bin.part-{os.getpid()}-0",  # a live process: another run's
            f".other.bin.part-{gone.pid}-0",   # not a name of this run
            ".big.bin.partial"]                # not the command's naming
    for name in stale + kept:
        with open(os.path.join(env.out, name), "w") as f:
            f.write("half a file")
    proc = run_cli(["-o", env.out, env.url + "big.bin", env.url + "one.bin"])
    expect(proc.returncode == 0, "the rerun succeeds", proc)
    expect(listing(env.out) == sorted(kept + ["big.bin", "one.bin"]),
           f"the stale files {stale} are gone, {kept} kept: {listing(env.out)}", proc)


def case_mixed(mode):
    def run(env):
        good = [env.url + name for name in FILES]
        bad = {
            BAD_HOST: CURLE_COULDNT_RESOLVE_HOST,
            env.url + "missing.bin": CURLE_HTTP_RETURNED_ERROR,
            env.furl + "reset/1000000/cut.bin": CURLE_RECV_ERROR,
            env.furl + "stall/1000000/slow.bin": CURLE_OPERATION_TIMEDOUT,
        }
        urls = good[:2] + list(bad)[:2] + good[2:] + list(bad)[2:]
        # --timeout covers resolving too: this batch expects the resolver to say "no such
        # host" within 2 s (case bad_host alone allows RESOLVE_TIME).
        args = ["--mode", mode, "--timeout", "2", "-o", env.out]
        proc = run_cli(args + urls)
        expect(proc.returncode == 1, "a batch with failures exits 1", proc)
        expect_files(env.out, FILES, env.root, proc)
        lines = proc.stdout.splitlines()
        for url in bad:
            expect(any("FAILED" in ln and url in ln for ln in lines),
                   f"the summary names the failure of {url}", proc)
        expect(f"{len(bad)} of {len(urls)}" in proc.stdout, "the summary counts failures", proc)
        # The same batch as JSON: each failure with its own code.
        shutil.rmtree(env.out)
        proc, summary = json_run(args + urls)
        expect(summary["failed"] == len(bad) and summary["succeeded"] == len(good),
               "JSON counts the failures", proc)
        for url, code in bad.items():
            err = error_of(summary, url, proc)
            expect(err["code"] == code, f"{url}: code {err['code']}, expected {code}", proc)
        expect_files(env.out, FILES, env.root, proc)
    return run


def case_retries(env):
    # Fails twice with 503, then serves: three requests, one file.
    path = "/flaky/2/5000/flaky.bin"
    proc, summary = json_run(["--retries", "3", "-o", env.out, env.furl + path.lstrip("/")])
    expect(proc.returncode == 0, "a URL that recovers within the retries succeeds", proc)
    expect(env.fault.count(path) == 3, f"{env.fault.count(path)} requests, expected 3", proc)
    expect(summary["retries"] == 2, "the summary counts the 2 retries", proc)
    with open(os.path.join(env.out, "flaky.bin"), "rb") as f:
        expect(f.read() == body_of("flaky.bin", 5000), "the retried file is complete", proc)

    # Fails more often than retried: 1 + 2 requests, then the URL fails.
    path = "/flaky/9/5000/stubborn.bin"
    url = env.furl + path.lstrip("/")
    proc, summary = json_run(["--retries", "2", "-o", env.out, url])
    expect(proc.returncode == 1, "a URL still failing after its retries fails", proc)
    expect(env.fault.count(path) == 3, f"{env.fault.count(path)} requests, expected 3", proc)
    err = error_of(summary, url, proc)
    expect(err["code"] == CURLE_HTTP_RETURNED_ERROR and "503" in err["message"]
           and "3 attempts" in err["message"], "the error says 503 after 3 attempts", proc)
    expect(summary["retries"] == 2, f"the summary counts the failed URL's 2 retries too: "
                                    f"{summary['retries']}", proc)
    proc = run_cli(["--retries", "2", "-o", env.out, url])
    expect("2 retries" in proc.stdout, "the text summary counts them as well", proc)

    # A reset connection may pass: asked again.
    path = "/reset/100000/cut.bin"
    url = env.furl + path.lstrip("/")
    proc, summary = json_run(["--retries", "1", "-o", env.out, url])
    expect(env.fault.count(path) == 2, f"a reset was asked {env.fault.count(path)} times, "
           "expected twice", proc)
    err = error_of(summary, url, proc)
    expect(err["code"] == CURLE_RECV_ERROR and "2 attempts" in err["message"],
           "the error says the reset happened on both attempts", proc)

    # A 404 will not pass: asked once despite --retries.
    path = "/missing/nothing.bin"
    proc = run_cli(["--retries", "3", "-o", env.out, env.furl + path.lstrip("/")])
    expect(proc.returncode == 1, "a 404 fails", proc)
    expect(env.fault.count(path) == 1, f"a 404 was asked {env.fault.count(path)} times, "
           "expected once", proc)
    expect(listing(env.out) == ["flaky.bin"], "failures left no file", proc)


def case_rate_limit(env):
    size, rate = 400 * 1024, 200 * 1024
    env.write("limited.bin", body_of("limited.bin", size))
    start = time.monotonic()
    proc = run_cli(["--mode", "processes", "--limit-rate", "200k", "-o", env.out,
                    env.url + "limited.bin"])
    took = time.monotonic() - start
    expect(proc.returncode == 0, "the rate-limited download succeeds", proc)
    expect_files(env.out, ["limited.bin"], env.root, proc)
    # A behaviour check, not a speed check: without the limit this takes milliseconds.
    expect(took >= 0.8 * size / rate,
           f"{size} bytes at 200k took {took:.2f} s, less than 0.8 x {size / rate:.1f} s", proc)


def case_input_sources(env):
    names = list(FILES)
    list_file = env.out + "-list.txt"
    with open(list_file, "w") as f:
        f.write(f"# a comment\n\n  {env.url}{names[0]}  \n{env.url}{names[1]}\r\n")
    stdin = f"{env.url}{names[2]}\n\n# another\n"
    proc = run_cli(["-o", env.out, "--input", list_file, env.url + names[3], "-"],
                   stdin=stdin)
    expect(proc.returncode == 0, "URLs from arguments, a list file and stdin succeed", proc)
    expect_files(env.out, names, env.root, proc)
    os.unlink(list_file)

    shutil.rmtree(env.out)
    proc = run_cli(["-o", env.out, "--input", "-"], stdin=f"{env.url}{names[1]}\n")
    expect(proc.returncode == 0, "--input - reads standard input", proc)
    expect_files(env.out, [names[1]], env.root, proc)


def case_duplicate_names(env):
    env.write("sub/mid.bin", b"another file with the same name")
    first, second = env.url + "mid.bin", env.url + "sub/mid.bin"
    proc, summary = json_run(["-o", env.out, first, second])
    expect(proc.returncode == 1, "a URL whose file name is taken fails", proc)
    err = error_of(summary, second, proc)
    expect(err["code"] == CURLE_WRITE_ERROR and "same file name" in err["message"]
           and first in err["message"], "the error names the URL that has the name", proc)
    expect_files(env.out, ["mid.bin"], env.root, proc)


def case_bad_options(env):
    url = env.url + "one.bin"
    for args, words in [
        (["--limit-rate", "12x", url], "--limit-rate"),
        (["--limit-rate", "", url], "--limit-rate"),
        (["--retries", "-1", url], "--retries"),
        (["--retries", "two", url], "--retries"),
        (["--timeout", "-1", url], "--timeout"),
        (["--connect-timeout", "0", url], "--connect-timeout"),
        (["--mode", "fibers", url], "--mode"),
        (["--no-such-option", url], "--no-such-option"),
        ([], "no URLs"),
    ]:
        proc = run_cli(["-o", env.out] + args)
        expect(proc.returncode == 2, f"{args}: bad usage exits 2", proc)
        expect(words in proc.stderr and "Usage: cfutures download" in proc.stderr,
               f"{args}: the message names {words} and shows the usage", proc)
    expect(not os.path.exists(env.out), "bad usage fetched nothing")

    proc = run_cli(["--help"])
    expect(proc.returncode == 0, "--help exits 0", proc)
    for option in ("--output", "--input", "--retries", "--connect-timeout", "--timeout",
                   "--limit-rate", "--mode", "--workers", "--json", "--timeline"):
        expect(option in proc.stdout, f"--help documents {option}", proc)


def alive(pid):
    """True while pid is a process that has not exited (a zombie has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid):
    """The processes whose parent is pid."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def serve_env(tmp):
    """The environment for `cfutures serve` with its nginx folder under tmp."""
    os.makedirs(tmp, exist_ok=True)
    return dict(os.environ, TMPDIR=tmp)


def case_serve_start_stop(env):
    """`cfutures serve` prints the URL once nginx serves, serves the folder (files written
    after it started, and subfolders), and on SIGTERM stops nginx and removes its folder
    before it exits 0."""
    tmp = env.out + "-tmp"
    served = clitest.Served(ARGS.cfutures, env.root, env=serve_env(tmp))
    url = served.start()
    try:
        # Ready means connectable: the master listens before it has forked its workers
        # (connections wait in the backlog), so the worker may take a moment to appear.
        deadline = time.monotonic() + 10
        while True:
            master = children(served.proc.pid)
            pids = master + [w for m in master for w in children(m)]
            if len(pids) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        expect(len(master) == 1 and len(pids) >= 2 and all(alive(p) for p in pids),
               f"an nginx master and a worker run for serve: {pids}")
        expect(len(os.listdir(tmp)) == 1, f"serve keeps nginx's files in TMPDIR: {tmp}")
        env.write("sub/late.bin", b"written after the start")
        proc = run_cli(["-o", env.out, url + "mid.bin", url + "sub/late.bin"])
        expect(proc.returncode == 0, "the server serves", proc)
        expect(listing(env.out) == ["late.bin", "mid.bin"], "both files fetched", proc)
        with open(os.path.join(env.out, "mid.bin"), "rb") as a, \
                open(os.path.join(env.root, "mid.bin"), "rb") as b:
            expect(a.read() == b.read(), "mid.bin is what was served", proc)
        with open(os.path.join(env.out, "late.bin"), "rb") as f:
            expect(f.read() == b"written after the start", "a file written later is served")
    finally:
        served.stop()
    expect(not any(alive(p) for p in pids), f"nginx processes {pids} are gone after stop")
    expect(os.listdir(tmp) == [], f"serve leaves {os.listdir(tmp)} in TMPDIR")


def case_serve_orphaned(env):
    """A `cfutures serve` whose parent dies stops nginx and cleans up by itself."""
    tmp = env.out + "-tmp"
    r, w = os.pipe()
    parent = subprocess.Popen([sys.executable, "-c", "\n".join([
        "import os, subprocess, sys",
        f"p = subprocess.Popen([{ARGS.cfutures!r}, 'serve', {env.root!r}],",
        "                     stdout=subprocess.PIPE, text=True)",
        "url = p.stdout.readline().strip()",
        f"os.write({w}, f'{{p.pid}} {{url}}\\n'.encode())",
        "os._exit(0)",  # without stopping it
    ])], pass_fds=(w,), env=serve_env(tmp))
    os.close(w)
    with os.fdopen(r) as f:
        serve_pid, url = f.readline().split()
    parent.wait(timeout=30)
    deadline = time.monotonic() + 20
    while (alive(int(serve_pid)) or os.listdir(tmp)) and time.monotonic() < deadline:
        time.sleep(0.05)
    expect(url.startswith("http://127.0.0.1:"), f"serve printed its URL: {url}")
    expect(not alive(int(serve_pid)), "serve exits when its parent dies")
    expect(os.listdir(tmp) == [], f"serve leaves {os.listdir(tmp)} in TMPDIR")
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                expect(tmp.encode() not in f.read(), f"process {entry} still runs from {tmp}")
        except FileNotFoundError:
            pass


def case_serve_bad_usage(env):
    """serve's usage errors exit 2 with the reason; a folder it cannot serve exits 1."""
    for args, words in ((["serve"], "give one folder"),
                        (["serve", env.root, env.root], "give one folder"),
                        (["serve", env.root, "--limit-rate", "fast"], "--limit-rate"),
                        (["serve", env.root, "--mode", "threads"], "unknown option '--mode'")):
        proc = subprocess.run([ARGS.cfutures, *args], capture_output=True, text=True,
                              timeout=30)
        expect(proc.returncode == 2 and words in proc.stderr and proc.stdout == "",
               f"{args}: usage error mentioning {words!r}", proc)
    proc = subprocess.run([ARGS.cfutures, "serve", env.root + "-missing"],
                          capture_output=True, text=True, timeout=30)
    expect(proc.returncode == 1 and "-missing" in proc.stderr and proc.stdout == "",
           "a missing folder is refused", proc)


CASES = {
    "bad_host": case_bad_host,
    "http_404": case_http_404,
    "timeout": case_timeout,
    "reset": case_reset,
    "no_partial_file": case_no_partial_file,
    "dead_worker": case_dead_worker,
    "retries": case_retries,
    "rate_limit": case_rate_limit,
    "input_sources": case_input_sources,
    "duplicate_names": case_duplicate_names,
    "bad_options": case_bad_options,
    "serve_start_stop": case_serve_start_stop,
    "serve_orphaned": case_serve_orphaned,
    "serve_bad_usage": case_serve_bad_usage,
    "interrupted_text": case_interrupted_text,
    "stale_parts": case_stale_parts,
}
for _mode in MODES:
    CASES[f"ok.{_mode}"] = case_ok(_mode)
    CASES[f"mixed.{_mode}"] = case_mixed(_mode)
    for _sig in ("SIGINT", "SIGTERM"):
        CASES[f"interrupted.{_mode}.{_sig}"] = case_interrupted(_mode, _sig)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", action="store_true",
                        help="print the case names (CMake registers one entry per case)")
    parser.add_argument("--cfutures", help="the cfutures program")
    parser.add_argument("case", nargs="?")
    ARGS = parser.parse_args()
    if ARGS.list:
        print("\n".join(sorted(CASES)))
        return 0
    if ARGS.case not in CASES or not ARGS.cfutures:
        parser.error("give --cfutures and a case (--list shows them)")
    ARGS.cfutures = os.path.abspath(ARGS.cfutures)
    with tempfile.TemporaryDirectory(prefix="cf-download-") as tmp:
        with Env(tmp) as env:
            CASES[ARGS.case](env)
    print(f"cli.download.{ARGS.case}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
