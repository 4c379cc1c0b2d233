"""cfutures sum: exact results for several ranges in every mode (checked here against
Python's integers, not the program's own check), the iteration count the loop reports (it
must have added every term), results beyond 64 bits, bad values, and the timeline."""

import json
import time

import clitest
from clitest import check

# (from, n, chunks): empty-ish, tiny, uneven splits, more chunks than terms, a prime count.
CASES = [(0, 0, 1), (0, 1, 1), (0, 2, 3), (0, 10, 3), (0, 1000, 7), (5, 5, 2), (17, 99991, 4),
         (0, 1000003, 5)]


def expected(a, n):
    return sum(range(a, n + 1)) if n - a < 1000 else (a + n) * (n - a + 1) // 2


def check_sum(cli, mode, a, n, chunks, workers=2):
    s = cli.json("sum", "--from", a, "--n", n, "--chunks", chunks, "--mode", mode,
                 "--workers", workers)
    terms = n - a + 1
    clitest.check_summary(s, "sum", mode, min(chunks, terms), workers=workers)
    check(s["from"] == a and s["n"] == n, s)
    check(s["sum"] == expected(a, n), f"sum {a}..{n} = {s['sum']}, expected {expected(a, n)}")
    check(s["iterations"] == terms, f"{s['iterations']} iterations for {terms} terms")
    check(s["correct"] is True, s)
    return s


def run_exact(cli, mode):
    for a, n, chunks in CASES:
        check_sum(cli, mode, a, n, chunks)


def test_exact_sequential(cli):
    run_exact(cli, "sequential")


def test_exact_threads(cli):
    run_exact(cli, "threads")


def test_exact_processes(cli):
    run_exact(cli, "processes")


def test_beyond_64_bits(cli):
    """Sums past 2^64 (the terms themselves near 2^64) are exact, in text and JSON."""
    for mode, a, n in (("threads", 2**64 - 5000, 2**64 - 2), ("processes", 2**63, 2**63 + 9999),
                       ("sequential", 2**64 - 3, 2**64 - 2)):
        s = check_sum(cli, mode, a, n, 3)
        check(s["sum"] >= 2**64 or n - a < 2, f"{a}..{n} does not exceed 64 bits")
        p = cli.run("sum", "--from", a, "--n", n, "-c", 3, "--mode", mode)
        check(f"Sum of {a}..{n} = {expected(a, n)}" in p.stdout.splitlines(), p.stdout)


def test_text(cli):
    p = cli.run("sum", "-n", "1e6", "-c", "4", "-w", "2")
    lines = p.stdout.splitlines()
    check(lines[0] == "Sum of 0..1000000 = 500000500000", p.stdout)
    check(lines[1] == "1000001 additions in 4 chunks: threads, 2 workers", p.stdout)
    check(lines[-1].startswith("Finished in "), p.stdout)


def test_default_chunks(cli):
    """One chunk per worker unless told."""
    check(cli.json("sum", "-n", 1000, "-w", 3)["chunks"] == 3, "3 workers")
    check(cli.json("sum", "-n", 1000, "-w", 3, "-c", 5)["chunks"] == 5, "--chunks 5")


def test_invalid_values(cli):
    cli.usage_error("sum", "--n", "-1", mention="--n needs a whole number from 0 to 2^64 - 1")
    cli.usage_error("sum", "--n", "12.5", mention="--n needs a whole number from 0 to 2^64 - 1")
    cli.usage_error("sum", "--n", "1.5e0", mention="--n needs a whole number from 0 to 2^64 - 1")
    cli.usage_error("sum", "--n", str(2**64), mention="--n needs a whole number from 0 to 2^64 - 1")
    cli.usage_error("sum", "--n", str(2**64 - 1), mention="--n must be below 2^64 - 1")
    cli.usage_error("sum", "--from", "11", "--n", "10", mention="--from (11) must not exceed")
    cli.usage_error("sum", "--chunks", "1000001", mention="--chunks must be between 1")
    # 0 is refused like --workers 0, not taken for the default; 1e20 says what the limit is.
    cli.usage_error("sum", "--chunks", "0", mention="--chunks must be between 1 and 1000000")
    cli.usage_error("sum", "--n", "1e20",
                    mention="--n needs a whole number from 0 to 2^64 - 1 "
                            "(18446744073709551615), not '1e20'")


def test_timeline(cli):
    # Chunks of about 1e7 terms (milliseconds each): long enough for the process pool's
    # timing allowance (see clitest.check_timeline).
    for mode, workers, chunks in (("sequential", 1, 3), ("threads", 2, 4), ("processes", 2, 4)):
        svg = cli.path(f"sum-{mode}.svg")
        s = cli.json("sum", "-n", "4e7", "-c", chunks, "-w", workers, "--mode", mode,
                     "--timeline", svg)
        clitest.check_summary(s, "sum", mode, chunks, workers=workers)
        clitest.check_timeline(svg, s)


def interrupted(cli, mode, signame):
    """A sum far too long to wait for stops within a block of the loop after the signal:
    exit 128 + the signal, no result claimed."""
    started = time.monotonic()
    cmd = [cli.binary, "sum", "-n", "1e13", "-w", "2", "--mode", mode, "--json"]
    p, took = clitest.interrupt(cmd, signame, lambda: time.monotonic() - started > 0.5)
    want = 130 if signame == "SIGINT" else 143
    check(p.returncode == want, f"exit status {p.returncode}, expected {want}: {p.stderr}")
    check(took < 5, f"the command took {took:.1f} s to stop")
    s = json.loads(p.stdout)
    check(s["signal"] == signame and s["interrupted"] == 2 and s["correct"] is False and
          s["sum"] is None, s)


def test_interrupted_threads(cli):
    interrupted(cli, "threads", "SIGINT")


def test_interrupted_sequential(cli):
    interrupted(cli, "sequential", "SIGTERM")


def test_interrupted_processes(cli):
    interrupted(cli, "processes", "SIGINT")


if __name__ == "__main__":
    clitest.main(globals())
