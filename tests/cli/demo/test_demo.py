"""cfutures demo: the tour of every workload in every mode, run for real (nginx on
loopback, the mate-backgrounds photos, libvips), checked from its JSON summary and the
files it writes; its text table; a web server that cannot start; its options.

Run as `python3 test_demo.py CFUTURES-BINARY CASE` (or --list); tests/cli/demo/CMakeLists.txt
registers the cases.  No speed is asserted: the figures are checked for consistency only
(speedup = sequential time / the mode's time).
"""
import filecmp
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import clitest  # noqa: E402  (tests/cli/clitest.py)
from clitest import check  # noqa: E402

TOUR_TIMEOUT = 280  # seconds; the tour takes about 35 s in a plain build on 2 CPUs
WORKLOADS = ("sleep", "sum", "download", "images")
MODES = ("sequential", "threads", "processes")
PHOTOS = sorted(glob.glob("/usr/share/backgrounds/mate/nature/*.jpg") +
                glob.glob("/usr/share/backgrounds/mate/abstract/Elephants*.jpg"))
CPUS = len(os.sched_getaffinity(0))


def expected_shape(workload, mode):
    """(items, workers) of a run."""
    items, workers = {
        "sleep": (10, 10),
        "sum": (CPUS, CPUS),
        "download": (len(PHOTOS), len(PHOTOS)),
        "images": (len(PHOTOS), min(CPUS, len(PHOTOS))),
    }[workload]
    return items, 1 if mode == "sequential" else workers


def tour(cli, *args, expect=0, env=None):
    """Runs the demo with its own TMPDIR (where nginx's folder goes) and returns (process,
    output folder, tmpdir)."""
    out, tmpdir = cli.path("out"), cli.path("tmpdir")
    os.makedirs(tmpdir, exist_ok=True)
    run_env = dict(os.environ, TMPDIR=tmpdir)
    run_env.update(env or {})
    p = cli.run("demo", "--output", out, "--no-progress", *args, expect=expect,
                timeout=TOUR_TIMEOUT, env=run_env)
    return p, out, tmpdir


def check_server_gone(tmpdir):
    """nginx's folder is removed and no process runs from it."""
    check(os.listdir(tmpdir) == [], f"left in TMPDIR: {os.listdir(tmpdir)}")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        check(tmpdir not in cmdline, f"process {pid} still runs: {cmdline!r}")


def parse(p):
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        raise clitest.Failure(f"--json output does not parse ({e}):\n{p.stdout}")


def test_tour(cli):
    """The whole tour: 12 runs, every item done, files in place, the server gone."""
    check(len(PHOTOS) == 15, f"{len(PHOTOS)} default photos, expected 15")
    p, out, tmpdir = tour(cli, "--json")
    s = parse(p)
    check(s["command"] == "demo" and s["cpus"] == CPUS, f"header {s}")
    check(s["output"] == os.path.realpath(out), f"output {s['output']}")
    runs = s["runs"]
    check([(r["workload"], r["mode"]) for r in runs] ==
          [(w, m) for w in WORKLOADS for m in MODES], f"runs {runs}")
    seconds = {}
    for r in runs:
        w, m = r["workload"], r["mode"]
        name = f"{w} {m}"
        items, workers = expected_shape(w, m)
        check(r["done"] and r["failed"] == 0 and "problem" not in r, f"{name}: {r}")
        check(r["items"] == items and r["workers"] == workers,
              f"{name}: {r['items']} items on {r['workers']} workers, expected "
              f"{items} on {workers}")
        check(r["seconds"] > 0 and r["what"], f"{name}: {r}")
        seconds[w, m] = r["seconds"]
        want = seconds[w, "sequential"] / r["seconds"]
        check(abs(r["speedup"] - want) < 1e-3 * want, f"{name}: speedup {r['speedup']}, "
                                                        f"sequential / this = {want}")
        # The timeline of every run matches the run.
        check(r["timeline"] == os.path.join(s["output"], "timelines", f"{w}-{m}.svg"),
              f"{name}: timeline {r['timeline']}")
        # Every mode of a workload on the sequential run's time axis (the reference).
        bars = clitest.check_timeline(r["timeline"], {
            "command": w, "mode": m, "workers": r["workers"], "items": r["items"],
            "seconds": r["seconds"], "errors": []}, span=seconds[w, "sequential"])
        check(bars, f"{name}: no bars")
    # Sleeping 10 x 1 s one after the other cannot take less than 10 s (a lower bound:
    # the tasks really ran; no speed is asserted).
    check(seconds["sleep", "sequential"] >= 10.0, f"sleep sequential {seconds}")
    check(set(s["lessons"]) == set(WORKLOADS) and all(s["lessons"].values()),
          f"lessons {s['lessons']}")

    # Downloads: byte for byte the photos, nothing else (no temporary file left).
    for m in MODES:
        folder = os.path.join(out, "downloads", m)
        names = sorted(os.listdir(folder))
        check(names == sorted(os.path.basename(x) for x in PHOTOS), f"{folder}: {names}")
        for src in PHOTOS:
            got = os.path.join(folder, os.path.basename(src))
            check(filecmp.cmp(src, got, shallow=False), f"{got} differs from {src}")
    # Thumbnails: a JPEG per photo, the same bytes in every mode.
    want = sorted(os.path.splitext(os.path.basename(x))[0] + ".jpg" for x in PHOTOS)
    for m in MODES:
        folder = os.path.join(out, "thumbnails", m)
        check(sorted(os.listdir(folder)) == want, f"{folder}: {sorted(os.listdir(folder))}")
        for name in want:
            with open(os.path.join(folder, name), "rb") as f:
                check(f.read(2) == b"\xff\xd8", f"{folder}/{name} is not a JPEG")
            if m != MODES[0]:
                first = os.path.join(out, "thumbnails", MODES[0], name)
                check(filecmp.cmp(first, os.path.join(folder, name), shallow=False),
                      f"{name}: {m} differs from {MODES[0]}")
    check_server_gone(tmpdir)


def test_table(cli):
    """The text form: a block per workload as it runs, then the table and the lessons."""
    p, out, tmpdir = tour(cli)
    lines = p.stdout.splitlines()
    real = os.path.realpath(out)
    check(lines[0] == f"cfutures demo: 4 workloads x 3 modes on {CPUS} CPU(s); files under "
                      f"{real}/", lines[0])
    for w in WORKLOADS:
        check(any(line.startswith(f"{w}: ") for line in lines), f"no block for {w}")
    header = lines.index(next(line for line in lines if line.startswith("workload ")))
    check(lines[header].split() == ["workload", *MODES], lines[header])
    for k, w in enumerate(WORKLOADS):
        cells = lines[header + 1 + k].split()
        # "sleep 10.00 s 1.00 s 10.0x 1.20 s 8.3x"
        check(len(cells) == 9 and cells[0] == w and cells[2] == cells[4] == cells[7] == "s"
              and cells[5].endswith("x") and cells[8].endswith("x"),
              f"table row {lines[header + 1 + k]!r}")
        seq = float(cells[1])
        for at in (3, 6):  # the time, then the speedup two cells on
            t, speedup = float(cells[at]), float(cells[at + 2][:-1])
            check(abs(speedup - seq / t) <= 0.051 + 0.01 * seq / t,
                  f"{w}: speedup {speedup} for {seq} s / {t} s")
    lessons = lines.index("Lessons:")
    for k, w in enumerate(WORKLOADS):
        check(lines[lessons + 1 + k].split()[0] == w, lines[lessons + 1 + k])
    check(f"{real}/timelines/<workload>-<mode>.svg" in p.stdout, "where the timelines are")
    check("Problems:" not in p.stdout, p.stdout)
    check(lines[-2].startswith("Finished in "), lines[-2])
    check(lines[-1] == f"Report: {real}/report.html", f"the page's path comes last: {lines[-1]}")
    check(len(os.listdir(os.path.join(out, "timelines"))) == 12, "12 timelines")
    check_server_gone(tmpdir)


def chromium(*args):
    """Runs headless Chromium (Debian's chromium; scripts/setup-deps.sh installs it)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    check(exe is not None, "chromium is not installed (scripts/setup-deps.sh installs it)")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", *args], capture_output=True, text=True,
                          timeout=120)


def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA PNG, decoded here
    (zlib and PNG's five row filters), so no image library is needed."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    at, idat = 8, b""
    while at < len(data):
        n, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + n]
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    check(depth == 8 and colour in (2, 6), f"{path}: depth {depth}, colour type {colour}")
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:
                                                           (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, bpp, rows


def test_report(cli):
    """report.html: one self-contained page (nothing fetched: no src or href at all) that a
    real browser renders with the table of the 12 runs, the lessons, the CPU count and the
    12 timelines, each with its bars and their tooltips; its screenshot is not blank."""
    p, out, tmpdir = tour(cli)
    page = os.path.join(os.path.realpath(out), "report.html")
    check(p.stdout.splitlines()[-1] == f"Report: {page}", p.stdout)
    with open(page) as f:
        html = f.read()
    check(not re.search(r"\b(src|href)\s*=", html, re.I) and "<script" not in html and
          "@import" not in html and "url(" not in html,
          "the page refers to nothing outside itself")
    dom = chromium("--dump-dom", "file://" + page)
    check(dom.returncode == 0 and "<table" in dom.stdout, f"chromium: {dom.stderr[-2000:]}")
    text = dom.stdout
    table = re.search(r'<table id="results">(.*?)</table>', text, re.S)
    check(table is not None, "no results table in the rendered page")
    rows = re.findall(r"<tr><td>(\w+)</td>(.*?)</tr>", table.group(1), re.S)
    check([r[0] for r in rows] == list(WORKLOADS), f"table rows {rows}")
    for w, cells in rows:
        check(len(re.findall(r"<td>[0-9.]+ s", cells)) == 3, f"{w}: cells {cells}")
    check(f"<b>{CPUS} CPU(s)</b>" in text, "the CPU count is on the page")
    check(len(re.findall(r'<li><b>(\w+)</b>: ', text)) == 4, "four lessons")
    svgs = re.findall(r"<svg\b.*?</svg>", text, re.S)
    check(len(svgs) == 12, f"{len(svgs)} timelines drawn, expected 12")
    for svg in svgs:
        bars = len(re.findall(r'class="bar', svg))
        check(bars >= 1 and svg.count("<title>") >= bars, f"a timeline without bars or "
                                                          f"tooltips: {svg[:300]}")
    shot = cli.path("report.png")
    r = chromium(f"--screenshot={shot}", "--window-size=1280,2000", "file://" + page)
    check(r.returncode == 0 and os.path.exists(shot), f"no screenshot: {r.stderr[-2000:]}")
    w, h, bpp, pixels = png_pixels(shot)
    inked = sum(1 for row in pixels for x in range(0, w * bpp, bpp)
                if min(row[x:x + 3]) < 200)
    print(f"screenshot {w}x{h}: {inked} of {w * h} pixels drawn")
    check(inked > 0.02 * w * h, f"the screenshot is nearly blank: {inked} of {w * h} pixels")
    check_server_gone(tmpdir)


def test_no_web_server(cli):
    """When nginx cannot start, the download runs fail with the reason; the rest goes on."""
    p, out, tmpdir = tour(cli, "--json", expect=1,
                          env={"TMPDIR": "/nonexistent-cfutures-test"})
    s = parse(p)
    for r in s["runs"]:
        name = f"{r['workload']} {r['mode']}"
        if r["workload"] == "download":
            check(not r["done"] and "the web server did not start" in r["problem"] and
                  "/nonexistent-cfutures-test" in r["problem"], f"{name}: {r}")
        else:
            check(r["done"] and r["failed"] == 0, f"{name}: {r}")
    check(not os.path.exists(os.path.join(out, "downloads", "threads")), "downloads made")


def test_options(cli):
    p = cli.run("demo", "--help")
    check("--output DIR" in p.stdout and "--json" in p.stdout, p.stdout)
    for absent in ("--mode", "--workers", "--timeline", "--trace"):
        check(absent not in p.stdout, f"demo --help offers {absent}:\n{p.stdout}")
    cli.usage_error("demo", "--mode", "threads", mention="unknown option '--mode'")
    cli.usage_error("demo", "--workers", "2", mention="unknown option '--workers'")
    cli.usage_error("demo", "--timeline", "x.svg", mention="unknown option '--timeline'")
    cli.usage_error("demo", "stray", mention="unexpected argument 'stray'")
    cli.usage_error("demo", "--output", "", mention="--output")
    # An output folder that cannot be made fails at once, before any run.
    blocker = cli.path("file")
    with open(blocker, "w") as f:
        f.write("x")
    p = cli.run("demo", "--output", os.path.join(blocker, "sub"), expect=1)
    check("output folder" in p.stderr and p.stdout == "", p.stderr)


clitest.main(globals())
