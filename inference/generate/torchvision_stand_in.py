"""A stand-in for `torchvision.transforms`, for hy3dgen's shape path in the generator's worker (never in Blender).

hy3dgen 2.0.2 imports torchvision at import time, for four names used in its image encoder: transforms.Compose,
Resize, CenterCrop and Normalize, applied to 4-D float tensors. PyPI's Linux torchvision wheels are CUDA builds
that fail beside a CPU torch ("operator torchvision::nms does not exist"), so the generator's environment has no
torchvision: `import_hy3dgen()` registers this module as `torchvision.transforms` only while hy3dgen is imported,
then removes it again, so transformers and diffusers, which use torchvision wherever they find one, never see it.

Each transform follows torchvision's tensor code path: Resize with an int resizes the shorter side keeping the
aspect (the longer side truncated to an int), bilinear/bicubic with align_corners=False and antialiasing;
CenterCrop rounds the top-left corner and pads with zeros when the image is smaller; Normalize is per channel.
"""

from __future__ import annotations

import contextlib
import enum
import importlib.machinery
import sys
import types

import torch
import torch.nn.functional as F


class InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image):
        for transform in self.transforms:
            image = transform(image)
        return image


class Resize:
    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
        if max_size is not None:
            raise NotImplementedError("the torchvision stand-in has no max_size")
        self.size, self.mode, self.antialias = size, InterpolationMode(interpolation), antialias

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if not isinstance(self.size, int):
            return tuple(self.size) if len(self.size) == 2 else Resize(self.size[0]).output_size(height, width)
        short, long = sorted((height, width))
        new_short, new_long = self.size, int(self.size * long / short)
        return (new_long, new_short) if width <= height else (new_short, new_long)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        size = self.output_size(*image.shape[-2:])
        if size == tuple(image.shape[-2:]):
            return image
        smooth = self.mode is not InterpolationMode.NEAREST
        return F.interpolate(image, size=size, mode=self.mode.value, align_corners=False if smooth else None,
                             antialias=self.antialias and smooth)


class CenterCrop:
    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        (height, width), (crop_h, crop_w) = image.shape[-2:], self.size
        if crop_h > height or crop_w > width:
            pad_w, pad_h = max(crop_w - width, 0), max(crop_h - height, 0)
            image = F.pad(image, [pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2])
            height, width = image.shape[-2:]
        top, left = int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0))
        return image[..., top:top + crop_h, left:left + crop_w]


class Normalize:
    def __init__(self, mean, std, inplace=False):
        self.mean, self.std = list(mean), list(std)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.mean, dtype=image.dtype, device=image.device).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=image.dtype, device=image.device).view(-1, 1, 1)
        return (image - mean) / std


def import_hy3dgen():
    """Import hy3dgen.shapegen with this module standing in for torchvision.transforms; return it.

    transformers and diffusers decide at import time whether torchvision exists (and then import it for image
    processing this worker never does): they are imported first, while it does not. hy3dgen's image encoder then
    binds this module as its `transforms`, and torchvision disappears again."""
    import diffusers  # noqa: F401
    from transformers import CLIPVisionModelWithProjection, Dinov2Model  # noqa: F401  (what hy3dgen imports)

    with registered_as_torchvision():
        import hy3dgen.shapegen
    return hy3dgen.shapegen


@contextlib.contextmanager
def registered_as_torchvision():
    """`import torchvision` / `from torchvision import transforms` give this module inside the block only."""
    package = types.ModuleType("torchvision")
    package.__spec__ = importlib.machinery.ModuleSpec("torchvision", None, is_package=True)
    package.transforms = sys.modules[__name__]
    names = ("torchvision", "torchvision.transforms")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.modules.update({"torchvision": package, "torchvision.transforms": package.transforms})
    try:
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
