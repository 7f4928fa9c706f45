"""`make bench`: a batch's photos per minute, one command converting --photos photos (default 50) into GLBs.

Two methods: a depth map (scikit-image's Middlebury motorcycle, 500 x 741, with its true depth) and inflate
(scikit-image's coffee cup, 400 x 600, subject mask by U2-Net-p). Each photo is a copy with one pixel changed, so
no result is reused. Four ways, each from a fresh output folder:
  one process   cli.py PHOTO ... -o FOLDER: the photos one after another in one process (the baseline)
  --jobs 1      --batch, one worker process, and the journal
  --jobs 2      --batch, two worker processes
  Ray           --batch --ray: a head node and a second node on 127.0.0.1, one CPU each (already running)
The Ray path's per-photo overhead is its time less --jobs 2's (the same two workers' worth of CPUs), per photo.
Wall-clock on a shared machine: compare the columns of one run, not runs.

Usage: python scripts/bench_batch.py [--photos N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def make_photos(folder: Path, method: str, count: int) -> list[str]:
    """`count` photos of the method's subject (each with its depth map beside it, for a depth map), and the extra
    options the method takes."""
    folder.mkdir(parents=True)
    if method == "depth-map":
        photo, _right, disparity = data.stereo_motorcycle()
        # Middlebury's calibration at this size (DESIGN.md): depth in metres; no disparity, no surface.
        depth = np.where(disparity > 0, 193.001 * 994.978 / (disparity + 31.086) / 1000, 0).astype(np.float32)
        extra = ["--focal-px", "994.978"]
    else:
        photo, depth, extra = data.coffee(), None, ["--method", "inflate"]
    for i in range(count):
        copy = photo.copy()
        copy[0, 0] = (i % 256, i // 256, 7)
        Image.fromarray(copy).save(folder / f"photo{i:03d}.png")
        if depth is not None:
            np.save(folder / f"photo{i:03d}_depth.npy", depth)
    return extra


def timed(*args) -> float:
    start = time.perf_counter()
    run = subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"cli.py {' '.join(map(str, args))} failed:\n{run.stderr[-2000:]}")
    return seconds


def bench(method: str, count: int, work: Path, ray_address: str | None) -> dict[str, float]:
    src = work / method
    extra = make_photos(src, method, count)
    photos = sorted(p for p in src.glob("*.png"))
    seconds = {"one process": timed(*photos, *(["--depth-map", src] if method == "depth-map" else []),
                                    "-o", work / f"{method}-plain", *extra)}
    for jobs in (1, 2):
        seconds[f"--jobs {jobs}"] = timed("--batch", src, "-o", work / f"{method}-jobs{jobs}", "--jobs", jobs, *extra)
    if ray_address:
        seconds["Ray, 2 nodes"] = timed("--batch", src, "-o", work / f"{method}-ray", "--ray", ray_address, *extra)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=50)
    count = parser.parse_args().photos
    try:
        import ray  # noqa: F401
        from local_ray import head_node, kill_node, start_node, wait_for_nodes
    except ImportError:
        head_node = None
        print("Ray is not installed (pip install -r requirements/ray.txt): no Ray column.")
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        if head_node is None:
            results = {method: bench(method, count, work, None) for method in ("depth-map", "inflate")}
        else:
            with head_node() as address:
                node = start_node("--address", address)
                try:
                    wait_for_nodes(address, 2)
                    results = {method: bench(method, count, work, address) for method in ("depth-map", "inflate")}
                finally:
                    kill_node(node)
    print(f"Batch of {count} photos to GLB, photos per minute (wall-clock; the baseline: one process):")
    for method, seconds in results.items():
        base = seconds["one process"]
        row = ", ".join(f"{way} {count / s * 60:.1f} ({base / s:.2f}x)" for way, s in seconds.items())
        print(f"  {method:9s}  {row}")
        if "Ray, 2 nodes" in seconds:
            overhead = (seconds["Ray, 2 nodes"] - seconds["--jobs 2"]) / count
            print(f"  {'':9s}  Ray's overhead per photo against --jobs 2: {overhead * 1000:+.0f} ms")


if __name__ == "__main__":
    main()
