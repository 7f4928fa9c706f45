"""Benchmark: upscaling a 600 px photo to 2400 px by tiles, against bare ONNX Runtime on the whole photo, in one run.

Model: the exact Real-ESRGAN general x4v3 architecture (SRVGGNetCompact) with random weights
(scripts/export_compact_upscaler.py, cached under .cache/). Photo: scikit-image's coffee (600 x 400, CC0).
  bare   one session.run on the whole photo (the network's own cost, memory unbounded);
  tiled  inference.photo.upscale.upscale_with_network with the card's contract: overlapping tiles of at most
         512 px, blended, 8-bit (what the pipeline runs on a dynamic graph; memory bounded);
  128    the same with 128 px tiles, the static input of Qualcomm's export that the card downloads.
The tiled result is compared with the whole-photo run: the joins must not show.
Both on one session created beforehand, with all cores. Target: tiled <= 10 s on a 2-core CPU, and close to bare.
Medians of alternating repetitions (this machine is noisy).
Usage: python scripts/bench_upscale.py MODEL.onnx [REPEATS]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from skimage.data import coffee

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

STATIC_TILE = 128  # the input size of Qualcomm's ONNX export, which the real card downloads

cli.load_package()
from image_to_mesh.inference.photo.upscale import run_tiled, upscale_with_network  # noqa: E402
from image_to_mesh.inference.runtime.cards import model_card  # noqa: E402


def main(model: str, repeats: int) -> None:
    photo = coffee()
    h, w = photo.shape[:2]
    size = (4 * w, 4 * h)
    contract = model_card("realesr-general-x4v3", task="upscale").input
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    feed = {"image": np.ascontiguousarray(photo.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255)}
    session.run(None, feed)  # warm-up: the first run allocates
    bare, tiled, small = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        whole = session.run(None, feed)[0]
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        out = upscale_with_network(session, photo, size, contract)
        tiled.append(time.perf_counter() - start)
        start = time.perf_counter()
        run_tiled(session, photo, contract.normalise, STATIC_TILE)
        small.append(time.perf_counter() - start)
    assert out.shape == (size[1], size[0], 3)
    reference = np.clip(whole[0].transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    difference = np.abs(out.astype(int) - reference)
    b, t, s = statistics.median(bare), statistics.median(tiled), statistics.median(small)
    print(f"upscale {w}x{h} -> {size[0]}x{size[1]} (SRVGGNetCompact x4, random weights, {repeats} runs): "
          f"tiled {t:.2f} s, bare ONNX Runtime {b:.2f} s, tiled/bare {t / b:.2f} (target: tiled <= 10 s); "
          f"{STATIC_TILE} px tiles (Qualcomm's static export) {s:.2f} s; tiled vs whole: mean "
          f"{difference.mean():.3f}, max {difference.max()} levels")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
