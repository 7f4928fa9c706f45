"""Benchmark: a depth model through the whole CLI path, against bare ONNX Runtime, in one run.

Model: the exact Depth Anything V2 Small architecture with random weights (scripts/export_depth_anything.py,
cached under .cache/). Photo: a 1024 x 768 JPEG. Each measurement runs in a fresh process and times from after
its imports (interpreter start and `import bpy` excluded):
  bare   onnxruntime session creation + one inference at the pipeline's input size (686 x 518);
  whole  cli.main: photo -> preprocessing -> session -> inference -> upsampling -> mesh in Blender -> .blend.
Target: whole <= 1.25 x bare. Medians of alternating repetitions (this machine is noisy).
Usage: python scripts/bench_model.py MODEL.onnx [REPEATS]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUT_SIZE = (686, 518)  # Depth Anything's rule for 1024 x 768: short side 518, multiples of 14

BARE = """
import json, sys, time
import numpy as np
import onnxruntime as ort
model = sys.argv[1]
start = time.perf_counter()
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
created = time.perf_counter()
session.run(None, {"pixel_values": np.random.rand(1, 3, %d, %d).astype(np.float32)})
done = time.perf_counter()
print(json.dumps({"total": done - start, "session": created - start, "inference": done - created}))
""" % (INPUT_SIZE[1], INPUT_SIZE[0])

WHOLE = """
import contextlib, io, json, os, sys, time
os.environ["BLENDER_USER_RESOURCES"] = sys.argv[4]
import bpy
sys.path.insert(0, sys.argv[1])
import cli
out = io.StringIO()
start = time.perf_counter()
with contextlib.redirect_stdout(out):
    code = cli.main([sys.argv[2], "--model", "depth-anything-v2-small", "--model-file", sys.argv[3],
                     "-o", os.path.join(sys.argv[4], "bench.blend"), "--json"])
done = time.perf_counter()
text = out.getvalue()  # Blender's own "Info:" lines land here too, before the JSON
stages = json.loads(text[text.index("{"):])["results"][0]["timings"] if code == 0 else {}
print("BENCH" + json.dumps({"total": done - start, "code": code, "stages": stages}))
"""


def photo(folder: Path) -> Path:
    """A real photo at 1024 x 768: the Middlebury motorcycle, resized, as a JPEG."""
    from PIL import Image
    from skimage.data import stereo_motorcycle

    path = folder / "photo_1024x768.jpg"
    Image.fromarray(stereo_motorcycle()[0]).resize((1024, 768), Image.Resampling.LANCZOS).save(path, quality=92)
    return path


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout
    line = next(line for line in reversed(out.splitlines()) if line.startswith(("{", "BENCH")))
    return json.loads(line.removeprefix("BENCH"))


def main(model: Path, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        jpeg = photo(folder)
        bare, whole = [], []
        for _ in range(repeats):
            bare.append(run(BARE, str(model)))
            result = run(WHOLE, str(ROOT), str(jpeg), str(model), str(folder))
            assert result["code"] == 0, "the CLI failed"
            whole.append(result)
    b = statistics.median(r["total"] for r in bare)
    w = statistics.median(r["total"] for r in whole)
    print(f"Depth Anything V2 Small architecture (random weights), {model.stat().st_size / 1e6:.1f} MB ONNX, "
          f"photo 1024x768 JPEG, input {INPUT_SIZE[0]}x{INPUT_SIZE[1]}, {os.cpu_count()} CPUs, medians of {repeats}")
    print(f"  bare ONNX Runtime   {b:6.2f} s  (session {statistics.median(r['session'] for r in bare):.2f} s + "
          f"inference {statistics.median(r['inference'] for r in bare):.2f} s)")
    stages = {k: statistics.median(r["stages"][k] for r in whole) for k in whole[0]["stages"] if k != "total"}
    print(f"  whole CLI path      {w:6.2f} s  (photo -> mesh in Blender -> .blend): "
          + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    print(f"  ratio whole/bare    {w / b:6.2f}   target <= 1.25: {'met' if w / b <= 1.25 else 'NOT met'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3)
