"""Export a random-weight network with the exact Real-ESRGAN general x4v3 architecture to ONNX, for benchmarks.

SRVGGNetCompact as Real-ESRGAN defines it for realesr-general-x4v3 (num_feat 64, num_conv 32, upscale 4, PReLU):
a 3x3 convolution and PReLU, 32 more of each, a last convolution to 3 x 4 x 4 channels, a pixel shuffle, and the
input's nearest-neighbour 4x upsampling added; 1.21 M parameters. The weights are random (no model hub is
reachable), the architecture and the contract (`image` (1, 3, H, W) in 0..1 -> `upscaled_image` (1, 3, 4H, 4W),
dynamic height and width) are the real model's, so the timings are. Needs torch: `make bench` runs it in
.venv-bench (Python 3.11).
Usage: python scripts/export_compact_upscaler.py OUT.onnx
"""

import sys

import torch
from torch import nn


class CompactUpscaler(nn.Module):
    def __init__(self, features=64, convolutions=32, scale=4):
        super().__init__()
        layers = [nn.Conv2d(3, features, 3, 1, 1), nn.PReLU(num_parameters=features)]
        for _ in range(convolutions):
            layers += [nn.Conv2d(features, features, 3, 1, 1), nn.PReLU(num_parameters=features)]
        layers += [nn.Conv2d(features, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)
        self.scale = scale

    def forward(self, image):
        return self.body(image) + nn.functional.interpolate(image, scale_factor=self.scale, mode="nearest")


if __name__ == "__main__":
    torch.manual_seed(0)
    model = CompactUpscaler().eval()
    parameters = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        torch.onnx.export(
            model, (torch.rand(1, 3, 64, 64),), sys.argv[1], input_names=["image"], output_names=["upscaled_image"],
            dynamic_axes={"image": {2: "height", 3: "width"}, "upscaled_image": {2: "out_height", 3: "out_width"}},
            opset_version=17, dynamo=False,
        )
    print(f"{sys.argv[1]}: SRVGGNetCompact x4, {parameters / 1e6:.2f} M parameters (random weights)")
