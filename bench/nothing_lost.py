"""Nothing lost: the programs of issue 14, measured as a user would run them.

    python bench/nothing_lost.py [--devices cpu,reference] [--threads 8] [--calls 500]

Prints, for each device, the counter total after `threads` threads each call
`inc = graphc.function([], c, updates={c: c + 1.0})` `calls` times on a fresh function
(cold) and after one call first (warm); the value of a 0-d Variable whose update the
optimizer merges with a fetched output; and, each in a fresh process, how much resident
memory grows while 300 functions are built, called and dropped, while 300 Variables of
256 KiB are created and dropped, and while one saved file is loaded and dropped 100
times. Expected: every total exact, `array(6.)`, and growth near zero.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import threading

import numpy as np

import graphc


def count(device: str, threads: int, calls: int, warm: bool) -> float:
    c = graphc.Variable(np.array(0.0), name="c")
    inc = graphc.function([], c, updates={c: c + 1.0}, device=device)
    if warm:
        inc()
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        for _ in range(calls):
            inc()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return float(c.value) - (1.0 if warm else 0.0)


def zero_d(device: str) -> str:
    a = graphc.Variable(np.array(2.0), name="a")
    b = graphc.Variable(np.array(3.0), name="b")
    graphc.function([], a * b, updates={a: a + b, b: a * b}, device=device)()
    return repr(b.value)


GROWTH = textwrap.dedent(
    """
    import gc, os, sys
    import numpy as np
    import graphc

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    what, path = sys.argv[1], sys.argv[2]
    x = graphc.placeholder((None,), "float32", name="x")
    xs = np.ones(100, np.float32)
    graphc.save(path, graphc.function([x], x * 2.0 + 1.0))
    f = graphc.function([x], x * 2.0 + 1.0); f(xs); del f  # loads the code once
    f = graphc.load(path); f(xs); del f
    gc.collect()
    start = rss_mb()
    if what == "functions":
        for _ in range(300):
            f = graphc.function([x], x * 2.0 + 1.0); f(xs); del f
    elif what == "variables":
        for _ in range(300):
            v = graphc.Variable(np.zeros(65536, np.float32)); del v
    else:
        for _ in range(100):
            f = graphc.load(path); f(xs); del f
    gc.collect()
    print(f"{rss_mb() - start:.2f}")
    """
)


def growth(what: str) -> float:
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, "-c", GROWTH, what, os.path.join(folder, "f.graphc")],
            capture_output=True,
            text=True,
            check=True,
        )
    return float(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="cpu,reference")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    expected = args.threads * args.calls
    for device in args.devices.split(","):
        for warm in (False, True):
            total = count(device, args.threads, args.calls, warm)
            state = "warm" if warm else "cold"
            verdict = "exact" if total == expected else "LOST UPDATES"
            print(f"{device:9} {state}: counter {total:.0f} of {expected} ({verdict})")
        print(f"{device:9} 0-d update merged with an output: b.value = {zero_d(device)}")
    for what, label in (
        ("functions", "300 functions built, called, dropped"),
        ("variables", "300 Variables of 256 KiB created, dropped"),
        ("loads", "100 loads of one file, called, dropped"),
    ):
        print(f"resident memory growth, {label}: {growth(what):.2f} MB")


if __name__ == "__main__":
    main()
