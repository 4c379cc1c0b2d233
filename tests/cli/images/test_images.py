#!/usr/bin/env python3
"""test_images.py -- `cfutures images` on real photos, checked against Pillow.

Usage: test_images.py --list | --cfutures PATH CASE
Each CASE is one ctest entry (tests/cli/images/CMakeLists.txt lists them with --list).  A
case exits 0 when every check held; a failed check raises with what was expected and what
the command printed.  Temporary folders are removed whatever happens.

The photos are those of Debian's mate-backgrounds package (the command's default data).
The reference is what the tutorial's Python does with Pillow:
    img = Image.open(path); img = img.filter(ImageFilter.GaussianBlur(15))
    img.thumbnail((1200, 1200))
and an output matches it when its PSNR against that image (before any JPEG encoding) is at
least 40 dB: the default pipeline decodes JPEGs at a reduced scale and blurs there, and must
still give that picture; --exact blurs at full size, as the tutorial does.  PSNR is computed with Pillow alone (a histogram of the absolute difference
gives the sum of squared errors), and every measured value is printed.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

from PIL import Image, ImageChops, ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import clitest  # noqa: E402  (tests/cli/clitest.py: expect, the timeline checker)
from clitest import expect  # noqa: E402

MATE = "/usr/share/backgrounds/mate"
NATURE = [f"{MATE}/nature/{n}.jpg" for n in (
    "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird",
    "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower")]
ELEPHANTS = [f"{MATE}/abstract/{n}.jpg" for n in (
    "Elephants", "Elephants_3840x2160", "Elephants_5640x3172")]
DEFAULT_PHOTOS = NATURE + ELEPHANTS
AQUA, FRESH_FLOWER, GREEN_MEADOW = NATURE[0], NATURE[3], NATURE[5]
BIG_ELEPHANTS = ELEPHANTS[2]

MODES = ("sequential", "threads", "processes")
MIN_PSNR = 40.0
BOX = 1200
EIO, EEXIST = 5, 17

ARGS = None  # the command line


def run_cli(args, timeout=240):
    """Runs `cfutures images ARGS` and returns the CompletedProcess (text)."""
    return subprocess.run([ARGS.cfutures, "images", "--no-progress"] + args,
                          capture_output=True, text=True, timeout=timeout)


def json_run(args, status):
    proc = run_cli(args + ["--json"])
    expect(proc.returncode == status, f"exit status {status} expected", proc)
    try:
        return proc, json.loads(proc.stdout)
    except ValueError as e:
        raise clitest.Failure(f"--json output does not parse ({e})\n{proc.stdout}")


def stem_jpg(path):
    return os.path.splitext(os.path.basename(path))[0] + ".jpg"


def pillow_reference(path, sigma=15):
    """What the tutorial's Pillow code makes of the file."""
    img = Image.open(path)
    img = img.filter(ImageFilter.GaussianBlur(sigma))
    img.thumbnail((BOX, BOX))
    return img


def pillow_size(size):
    """The size Pillow's thumbnail((1200, 1200)) gives an image of `size`."""
    img = Image.new("L", size)
    img.thumbnail((BOX, BOX))
    return img.size


def psnr(a, b):
    """PSNR in dB of two images of one size and mode (inf when identical)."""
    expect(a.size == b.size and a.mode == b.mode, f"comparing {a.size} {a.mode} with "
                                                  f"{b.size} {b.mode}")
    hist = ImageChops.difference(a, b).histogram()
    sse = sum(count * (i % 256) ** 2 for i, count in enumerate(hist))
    if sse == 0:
        return math.inf
    samples = a.width * a.height * len(a.getbands())
    return 10 * math.log10(255 ** 2 * samples / sse)


def load_output(path):
    with Image.open(path) as img:
        expect(img.format == "JPEG", f"{path} is {img.format}, not JPEG")
        img.load()
        return img


def link_photos(folder, photos):
    os.makedirs(folder, exist_ok=True)
    for p in photos:
        os.symlink(p, os.path.join(folder, os.path.basename(p)))


def check_summary(summary, mode, items, failed, out):
    for key, want in (("command", "images"), ("mode", mode), ("items", items),
                      ("failed", failed), ("succeeded", items - failed),
                      ("output", os.path.realpath(out)), ("sigma", 15), ("fit", BOX)):
        expect(summary.get(key) == want, f"summary {key} is {summary.get(key)!r}, "
                                         f"expected {want!r}: {summary}")
    expect(len(summary["errors"]) == failed, f"{failed} errors expected: {summary['errors']}")


def check_outputs(out, sources, compare=False):
    """The folder holds exactly one JPEG per source, of Pillow's thumbnail size (which fits
    the box and keeps the aspect ratio); with compare, each has at least MIN_PSNR against
    Pillow's result.  Returns the PSNRs (printed)."""
    names = sorted(stem_jpg(s) for s in sources)
    expect(sorted(os.listdir(out)) == names, f"output folder holds {sorted(os.listdir(out))}, "
                                             f"expected exactly {names}")
    measured = {}
    for src in sources:
        with Image.open(src) as s:
            src_size = s.size
        img = load_output(os.path.join(out, stem_jpg(src)))
        w, h = img.size
        expect(img.size == pillow_size(src_size),
               f"{src} {src_size}: thumbnail {img.size}, Pillow makes {pillow_size(src_size)}")
        expect(w <= BOX and h <= BOX and (w == BOX or h == BOX or img.size == src_size),
               f"{src}: {img.size} does not fit {BOX}x{BOX} snugly")
        # The aspect ratio within the rounding of one pixel on the shorter side.
        expect(abs(w / h - src_size[0] / src_size[1]) <= src_size[0] / src_size[1] / min(w, h),
               f"{src}: aspect {w / h:.4f} instead of {src_size[0] / src_size[1]:.4f}")
        if compare:
            ref = pillow_reference(src)
            measured[src] = psnr(ref, img.convert(ref.mode))
            print(f"PSNR {os.path.basename(src):26s} {src_size[0]}x{src_size[1]} -> {w}x{h}: "
                  f"{measured[src]:.2f} dB against Pillow")
            expect(measured[src] >= MIN_PSNR,
                   f"{src}: PSNR {measured[src]:.2f} dB < {MIN_PSNR} dB against Pillow")
    return measured


# ---- cases ---------------------------------------------------------------------------------

def case_outputs_fit(tmp):
    """Three photos of different shapes: one JPEG each, Pillow's size, the right summary."""
    photos = [AQUA, FRESH_FLOWER, GREEN_MEADOW]  # 16:10, 1600x1203 (rounds), 5:4
    src, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    link_photos(src, photos)
    proc, summary = json_run(["--input", src, "--output", out], 0)
    check_summary(summary, "threads", 3, 0, out)
    check_outputs(out, photos)
    pixels = 0
    for p in photos:
        with Image.open(p) as img:
            pixels += img.width * img.height
    expect(abs(summary["megapixels"] - pixels / 1e6) < 1e-6,
           f"megapixels {summary['megapixels']}, the photos have {pixels / 1e6}")
    written = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    expect(summary["bytes"] == written, f"bytes {summary['bytes']}, files hold {written}")

    # The text summary says what was done, and where.
    shutil.rmtree(out)
    proc = run_cli(["--input", src, "--output", out, "--mode", "sequential"])
    expect(proc.returncode == 0, "the text run succeeds", proc)
    expect("3 of 3 image(s)" in proc.stdout and os.path.realpath(out) in proc.stdout and
           "Finished in" in proc.stdout, "the text summary names the work and the folder",
           proc)


def case_psnr_pillow(tmp):
    """Three photos (16:10, an aspect that rounds, and the largest, which Pillow and libvips
    both shrink by an integer factor first) against Pillow: at least 40 dB each."""
    photos = [AQUA, FRESH_FLOWER, BIG_ELEPHANTS]
    src, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    link_photos(src, photos)
    proc = run_cli(["--input", src, "--output", out])
    expect(proc.returncode == 0, "the photos are processed", proc)
    measured = check_outputs(out, photos, compare=True)

    # 30 dB would also let a blur of sigma 10 through (about 38 dB).  The blur is sigma 15:
    # the output is closer to Pillow's GaussianBlur(15) than to a 10% weaker or stronger one.
    for src_photo in photos[:2]:
        img = load_output(os.path.join(out, stem_jpg(src_photo))).convert("RGB")
        for sigma in (13.5, 16.5):
            value = psnr(pillow_reference(src_photo, sigma), img)
            print(f"PSNR {os.path.basename(src_photo)} against GaussianBlur({sigma}): "
                  f"{value:.2f} dB (against GaussianBlur(15): {measured[src_photo]:.2f} dB)")
            expect(value < measured[src_photo],
                   f"{src_photo}: closer to GaussianBlur({sigma}) than to GaussianBlur(15)")


def case_all_photos(tmp):
    """The default data: all 15 photos of mate-backgrounds, on a process pool, each at
    least 40 dB against Pillow's full-size pipeline, each decoded at a reduced scale (the
    point of the default), which the summary reports per photo."""
    out = os.path.join(tmp, "out")
    proc, summary = json_run(["--output", out, "--mode", "processes"], 0)
    check_summary(summary, "processes", 15, 0, out)
    measured = check_outputs(out, DEFAULT_PHOTOS, compare=True)
    print(f"PSNR over the 15 photos: min {min(measured.values()):.2f} dB, "
          f"max {max(measured.values()):.2f} dB")
    scales = summary["decoded_at"]
    print(f"decoded at: {scales}")
    expect(sorted(scales) == sorted(os.path.realpath(p) for p in DEFAULT_PHOTOS) and
           all(v in (2, 4, 8) for v in scales.values()),
           f"every photo decoded at 1/2, 1/4 or 1/8: {scales}", proc)


def case_exact(tmp):
    """--exact: the tutorial's full-size pipeline, every photo decoded at full size; within
    40 dB of Pillow too, and not the pixels of the default pipeline."""
    photos = [AQUA, GREEN_MEADOW, BIG_ELEPHANTS]
    src, out, fast = (os.path.join(tmp, d) for d in ("in", "out", "fast"))
    link_photos(src, photos)
    proc, summary = json_run(["--input", src, "--output", out, "--exact"], 0)
    expect(set(summary["decoded_at"].values()) == {1}, f"--exact decodes at full size: "
                                                       f"{summary['decoded_at']}", proc)
    check_outputs(out, photos, compare=True)
    proc, summary = json_run(["--input", src, "--output", fast], 0)
    for p in photos:
        a = load_output(os.path.join(out, stem_jpg(p)))
        b = load_output(os.path.join(fast, stem_jpg(p)))
        value = psnr(a, b)
        print(f"PSNR {stem_jpg(p)}: --exact against the default: {value:.2f} dB")
        expect(value != math.inf, f"{p}: --exact gave the default pipeline's pixels")


def case_other_sizes(tmp):
    """JPEGs of sizes the default photos do not have (smaller than the box, sizes that are
    no multiple of 8, a portrait, larger than any photo), each at least 40 dB against
    Pillow's full-size pipeline."""
    src, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    os.makedirs(src)
    made = []
    with Image.open(f"{MATE}/nature/LadyBird.jpg") as lady:
        lady.load()
        for name, size, img in (("small", (1300, 813), lady), ("tiny", (900, 562), lady),
                                ("odd", (4001, 2501), lady),
                                ("portrait", (1500, 2403), lady.rotate(90, expand=True))):
            path = os.path.join(src, name + ".jpg")
            img.resize(size).save(path, quality=92)
            made.append(path)
    with Image.open(BIG_ELEPHANTS) as big:
        path = os.path.join(src, "huge.jpg")
        big.resize((8000, 4500)).save(path, quality=90)
        made.append(path)
    proc, summary = json_run(["--input", src, "--output", out], 0)
    print(f"decoded at: {summary['decoded_at']}")
    check_outputs(out, made, compare=True)


def bad_files(tmp, mode):
    """A truncated JPEG and a text file named .jpg fail alone; the photos succeed."""
    src, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    photos = [AQUA, GREEN_MEADOW]
    link_photos(src, photos)
    with open(AQUA, "rb") as f:
        data = f.read()
    truncated, text = os.path.join(src, "Cut.jpg"), os.path.join(src, "notes.jpg")
    with open(truncated, "wb") as f:
        f.write(data[:len(data) // 2])
    with open(text, "w") as f:
        f.write("These are notes, not a photo.\n")

    proc, summary = json_run(["--input", src, "--output", out, "--mode", mode,
                              "--workers", "2"], 1)
    check_summary(summary, mode, 4, 2, out)
    errors = {e["label"]: e for e in summary["errors"]}
    expect(sorted(errors) == sorted([os.path.realpath(truncated), os.path.realpath(text)]),
           f"the failed items are the two bad files: {summary['errors']}", proc)
    for path, words in ((truncated, "Premature end"), (text, "not a known file format")):
        e = errors[os.path.realpath(path)]
        expect(e["error"] == "TASK" and e["code"] == EIO and words in e["message"],
               f"{path}: code {EIO} with libvips' reason ({words!r}): {e}", proc)
    # Only the photos' thumbnails: nothing, not even a temporary file, for the bad ones.
    check_outputs(out, photos)

    proc = run_cli(["--input", src, "--output", out, "--mode", mode])
    expect(proc.returncode == 1, "the text run fails too", proc)
    expect("2 of 4 items failed" in proc.stdout and
           f"FAILED {os.path.realpath(truncated)}: " in proc.stdout and
           f"FAILED {os.path.realpath(text)}: " in proc.stdout,
           "the text summary lists each failure", proc)


def case_corrupt_same_message(tmp):
    """A bit-flipped JPEG (libjpeg recovers and warns "Corrupt JPEG data") fails, in the
    default pipeline and with --exact, in every mode, with one message the same in all of
    them, and leaves no file; the photo beside it and a truncated copy behave as ever.
    Threads mode runs the bad files side by side, whose libvips messages share a buffer."""
    src = os.path.join(tmp, "in")
    link_photos(src, [GREEN_MEADOW])
    with open(AQUA, "rb") as f:
        data = bytearray(f.read())
    for k in range(20):  # in the entropy-coded data, well past the headers
        data[len(data) // 3 + 997 * k] ^= 0x10
    flipped = os.path.join(src, "Flipped.jpg")
    with open(flipped, "wb") as f:
        f.write(data)
    with open(os.path.join(src, "Cut.jpg"), "wb") as f:
        f.write(data[:len(data) // 4])
    seen = {}
    for extra in ([], ["--exact"]):
        for mode in MODES:
            out = os.path.join(tmp, mode + "".join(extra))
            proc, summary = json_run(["--input", src, "--output", out, "--mode", mode,
                                      "--workers", "2"] + extra, 1)
            errors = {os.path.basename(e["label"]): e["message"] for e in summary["errors"]}
            print(f"{mode} {extra}: {errors}")
            expect(sorted(errors) == ["Cut.jpg", "Flipped.jpg"],
                   f"{mode} {extra}: the two corrupt files fail: {summary['errors']}", proc)
            expect("Corrupt JPEG data" in errors["Flipped.jpg"],
                   f"{mode}: libjpeg's warning is the reason: {errors}", proc)
            check_outputs(out, [GREEN_MEADOW])
            for name, message in errors.items():
                expect(seen.setdefault(name, message) == message,
                       f"{name}: {message!r} in {mode} {extra}, {seen[name]!r} before", proc)


def interrupted(tmp, mode, signame):
    """A signal once the first thumbnail is written: no item starts after it, the folder
    holds only complete thumbnails (no temporary file: those of killed workers are removed,
    and so is the stale one an earlier killed run left), the summary counts what was done,
    the exit status is 128 + the signal, and nothing is reported as a lost worker."""
    out = os.path.join(tmp, "out")
    os.makedirs(out)
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = os.path.join(out, f".Aqua.jpg.part-{gone.pid}-0")
    with open(stale, "w") as f:
        f.write("half a JPEG")
    cmd = [ARGS.cfutures, "images", "--no-progress", "--json", "--output", out,
           "--mode", mode, "--workers", "1" if mode == "sequential" else "2"]
    proc, took = clitest.interrupt(
        cmd, signame, lambda: any(n.endswith(".jpg") and not n.startswith(".")
                                  for n in os.listdir(out)), timeout=60)
    want = 130 if signame == "SIGINT" else 143
    print(f"{mode} {signame}: exit {proc.returncode}, {took:.2f} s after the signal")
    expect(proc.returncode == want, f"exit status {want}", proc)
    summary = json.loads(proc.stdout)
    done = sorted(os.listdir(out))
    expect(all(not n.startswith(".") for n in done), f"no temporary file is left: {done}",
           proc)
    expect(summary["signal"] == signame and summary["failed"] == 0 and
           summary["succeeded"] == len(done) and summary["interrupted"] >= 1 and
           summary["succeeded"] + summary["interrupted"] == 15,
           f"{len(done)} thumbnails written, the rest interrupted: {summary}", proc)
    for e in summary["errors"]:
        expect(e["error"] == "CANCELLED" and e["message"].startswith("interrupted by "),
               f"interrupted, not failed: {e}", proc)
    for name in done:
        load_output(os.path.join(out, name))  # each one a whole JPEG


def case_interrupted_sequential(tmp):
    interrupted(tmp, "sequential", "SIGTERM")


def case_interrupted_threads(tmp):
    interrupted(tmp, "threads", "SIGINT")


def case_interrupted_processes(tmp):
    interrupted(tmp, "processes", "SIGINT")


def case_bad_files_sequential(tmp):
    bad_files(tmp, "sequential")


def case_bad_files_threads(tmp):
    bad_files(tmp, "threads")


def case_bad_files_processes(tmp):
    bad_files(tmp, "processes")


def case_modes_identical(tmp):
    """The three modes make the same pixels (PSNR between them: infinite)."""
    photos = [FRESH_FLOWER, GREEN_MEADOW]
    src = os.path.join(tmp, "in")
    link_photos(src, photos)
    outs = {}
    for mode in MODES:
        outs[mode] = os.path.join(tmp, mode)
        proc = run_cli(["--input", src, "--output", outs[mode], "--mode", mode])
        expect(proc.returncode == 0, f"{mode}: the photos are processed", proc)
    for p in photos:
        name = stem_jpg(p)
        first = load_output(os.path.join(outs[MODES[0]], name))
        for mode in MODES[1:]:
            other = load_output(os.path.join(outs[mode], name))
            value = psnr(first, other)
            print(f"PSNR {name}: {MODES[0]} against {mode}: {value} dB")
            expect(value == math.inf, f"{name}: {mode} differs from {MODES[0]} "
                                      f"({value:.2f} dB)")


def case_shapes_and_formats(tmp):
    """What the photos do not cover: a portrait (the height limits), an image already
    smaller than the box (never enlarged), a PNG with transparency (flattened onto white)
    and a 16-bit grey PNG (8-bit grey JPEG)."""
    src, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    os.makedirs(src)
    # A portrait with detail: the photo turned on its side, at a size that rounds.
    portrait = os.path.join(src, "portrait.png")
    with Image.open(AQUA) as img:
        img.transpose(Image.Transpose.ROTATE_90).resize((813, 1301)).save(portrait)
    small = os.path.join(src, "small.png")
    clear = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    clear.paste((200, 30, 30, 255), (0, 0, 150, 200))  # left half opaque red
    clear.save(small)
    grey = os.path.join(src, "grey16.png")
    ramp = Image.linear_gradient("L").resize((1500, 1000)).convert("I")
    ramp.point(lambda v: v * 257).convert("I;16").save(grey)  # 0 .. 65535

    proc = run_cli(["--input", src, "--output", out])
    expect(proc.returncode == 0, "every image is processed", proc)
    check_outputs(out, [portrait, small, grey])

    ref = pillow_reference(portrait)
    value = psnr(ref, load_output(os.path.join(out, "portrait.jpg")).convert("RGB"))
    print(f"PSNR portrait 813x1301 -> {ref.size[0]}x{ref.size[1]}: {value:.2f} dB")
    expect(value >= MIN_PSNR, f"portrait: PSNR {value:.2f} dB < {MIN_PSNR} dB against Pillow")

    img = load_output(os.path.join(out, "small.jpg"))
    expect(img.mode == "RGB" and img.size == (300, 200), f"small: {img.mode} {img.size}")
    # Far from the edge between the halves the blur leaves the colours as they were: the
    # transparent half is white, the opaque half red.
    for xy, want in (((295, 100), (255, 255, 255)), ((5, 100), (200, 30, 30))):
        got = img.getpixel(xy)
        expect(all(abs(g - w) <= 12 for g, w in zip(got, want)),
               f"small.jpg at {xy}: {got}, expected about {want}")

    img = load_output(os.path.join(out, "grey16.jpg"))
    expect(img.mode == "L" and img.size == (BOX, 800), f"grey16: {img.mode} {img.size}")
    # The gradient runs from black at the top to white at the bottom.
    top, bottom = img.getpixel((600, 100)), img.getpixel((600, 700))
    expect(top < 60 and bottom > 195, f"grey16.jpg: {top} near the top, {bottom} near the "
                                      f"bottom of a black-to-white gradient")


def case_duplicate_names(tmp):
    """Two inputs with one output name: the first (in name order) wins, the second fails at
    once with EEXIST, naming the first."""
    src, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    os.makedirs(src)
    jpg, png = os.path.join(src, "same.jpg"), os.path.join(src, "same.png")
    Image.new("RGB", (640, 480), (10, 120, 200)).save(jpg)
    Image.new("RGB", (320, 240), (200, 120, 10)).save(png)
    proc, summary = json_run(["--input", src, "--output", out], 1)
    check_summary(summary, "threads", 2, 1, out)
    e = summary["errors"][0]
    expect(e["label"] == os.path.realpath(png) and e["code"] == EEXIST and
           "same output name 'same.jpg'" in e["message"] and
           os.path.realpath(jpg) in e["message"], f"the .png is refused: {e}", proc)
    expect(os.listdir(out) == ["same.jpg"], f"output folder holds {os.listdir(out)}")
    expect(load_output(os.path.join(out, "same.jpg")).size == (640, 480),
           "same.jpg is the thumbnail of same.jpg")


def case_timeline(tmp):
    """--timeline draws every item, the failed one marked (clitest.check_timeline)."""
    src, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    link_photos(src, [FRESH_FLOWER, GREEN_MEADOW])
    with open(os.path.join(src, "Broken.jpg"), "w") as f:
        f.write("not a JPEG")
    svg = os.path.join(tmp, "run.svg")
    proc, summary = json_run(["--input", src, "--output", out, "--mode", "processes",
                              "--timeline", svg], 1)
    # Items go largest file first, so the 10-byte Broken.jpg is the last of the three.
    errors = summary["errors"]
    expect(len(errors) == 1 and errors[0]["item"] == 3 and
           errors[0]["label"].endswith("/Broken.jpg"), f"item 3 is Broken.jpg: {errors}", proc)
    try:
        clitest.check_timeline(svg, summary, failed_items=(3,))
    except clitest.Failure as e:
        raise clitest.Failure(f"{svg}: {e}")


def case_bad_options(tmp):
    src, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    link_photos(src, [GREEN_MEADOW])
    for args, words in [
        (["--input", src, "--output", src], "is a folder of the input images"),
        (["--input", src, "--output", ""], "--output"),
        (["--input", "", "--output", out], "--input"),
        (["--input", src, "--output", out, "extra"], "unexpected argument"),
        (["--input", src, "--output", out, "--mode", "fibers"], "--mode"),
        (["--input", src, "--output", out, "--workers", "0"], "--workers"),
        (["--input", src, "--output", out, "--sigma", "3"], "--sigma"),
    ]:
        proc = run_cli(args)
        expect(proc.returncode == 2, f"{args}: bad usage exits 2", proc)
        expect(words in proc.stderr and "Usage: cfutures images" in proc.stderr,
               f"{args}: the message names {words!r} and shows the usage", proc)
        expect(proc.stdout == "", f"{args}: nothing on stdout", proc)
    expect(not os.path.exists(out), "bad usage made no output folder")
    expect(sorted(os.listdir(src)) == ["GreenMeadow.jpg"], "bad usage wrote nothing")

    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    os.makedirs(os.path.join(empty, "sub"))  # folders are not images
    a_file = os.path.join(tmp, "file")
    with open(a_file, "w") as f:
        f.write("x")
    for args, words in [
        (["--input", os.path.join(tmp, "missing"), "--output", out], "No such file"),
        (["--input", a_file, "--output", out], "Not a directory"),
        (["--input", empty, "--output", out], "no files in"),
        (["--input", src, "--output", os.path.join(a_file, "sub")], "output folder"),
    ]:
        proc = run_cli(args)
        expect(proc.returncode == 1 and words in proc.stderr,
               f"{args}: the run cannot be done: exit status 1, {words!r} on stderr", proc)

    proc = run_cli(["--help"])
    expect(proc.returncode == 0, "--help exits 0", proc)
    for option in ("--input", "--output", "--mode", "--workers", "--json", "--timeline",
                   "--trace", "--progress", "mate-backgrounds", "EIO", "EEXIST"):
        expect(option in proc.stdout, f"--help documents {option}", proc)


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items())
         if name.startswith("case_")}


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", action="store_true", help="print the cases, one a line")
    parser.add_argument("--cfutures", help="the cfutures binary")
    parser.add_argument("case", nargs="?", choices=sorted(CASES))
    ARGS = parser.parse_args()
    if ARGS.list:
        print("\n".join(CASES))
        return 0
    if not ARGS.cfutures or not ARGS.case:
        parser.error("give --cfutures and a case (--list shows them)")
    ARGS.cfutures = os.path.abspath(ARGS.cfutures)
    tmp = tempfile.mkdtemp(prefix="cfutures-images-")
    try:
        CASES[ARGS.case](tmp)
    except clitest.Failure as e:
        print(f"FAILED {ARGS.case}: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ok {ARGS.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
