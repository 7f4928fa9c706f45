"""Export a random-weight network with the exact Depth Anything V2 Small architecture to ONNX, for benchmarks.

The weights are random (no model hub is reachable); the architecture, parameter count (24.8 M) and the
input/output contract (`pixel_values` -> `predicted_depth`, dynamic height and width) are the real model's,
so the timings are. Needs torch and transformers: `make bench` runs it in .venv-bench (Python 3.11).
Usage: python scripts/export_depth_anything.py OUT.onnx
"""

import sys

import torch
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

# The configuration of depth-anything/Depth-Anything-V2-Small-hf.
SMALL = DepthAnythingConfig(
    backbone_config=Dinov2Config(
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, patch_size=14, image_size=518,
        out_indices=[3, 6, 9, 12], out_features=["stage3", "stage6", "stage9", "stage12"],
        reshape_hidden_states=False,
    ),
    patch_size=14,
    reassemble_hidden_size=384,
    reassemble_factors=[4, 2, 1, 0.5],
    neck_hidden_sizes=[48, 96, 192, 384],
    fusion_hidden_size=64,
    head_hidden_size=32,
    head_in_index=-1,
    depth_estimation_type="relative",
)

if __name__ == "__main__":
    torch.manual_seed(0)
    model = DepthAnythingForDepthEstimation(SMALL).eval()
    parameters = sum(p.numel() for p in model.parameters())
    example = torch.rand(1, 3, 518, 686)
    with torch.no_grad():
        torch.onnx.export(
            model, (example,), sys.argv[1], input_names=["pixel_values"], output_names=["predicted_depth"],
            dynamic_axes={"pixel_values": {2: "height", 3: "width"}, "predicted_depth": {1: "height", 2: "width"}},
            opset_version=17, dynamo=False,
        )
    print(f"{sys.argv[1]}: Depth Anything V2 Small architecture, {parameters / 1e6:.2f} M parameters, random weights")
