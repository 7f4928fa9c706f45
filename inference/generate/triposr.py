"""TripoSR (VAST-AI Research and Stability AI, MIT code and weights): one photo -> a whole object, in seconds on a
CPU. Our own implementation of the authors' inference, imported only inside the generator's worker process.

    photo (RGBA, alpha = the subject)
      -> the authors' preprocessing: the alpha box cropped, padded to a centred square, the subject at 85 % of the
         side, composited on 0.5 grey, resized (antialiased bilinear) to 512 x 512
      -> image tokenizer: DINO ViT-B/16 (transformers' ViTModel, built from a config written here: no hub), all
         1 + 32 x 32 output tokens (CLS included) after the final layer norm
      -> backbone: 3 x 32 x 32 learnt triplane tokens of 1024 channels, GroupNorm, 16 transformer blocks (self
         attention, cross attention to the image tokens, GEGLU feed-forward), a residual around the whole
      -> post-processor: a 2 x 2 stride-2 transposed convolution: three 64 x 64 planes of 40 channels
      -> decoder: each point's bilinear samples of the planes (xy, xz, yz; concatenated), a SiLU MLP -> density
         (exp(d - 1)) and colour (sigmoid); queried in chunks over a grid covering [-0.87, 0.87]^3
      -> marching cubes (scikit-image) at density 25 -> our frame, counter-clockwise faces -> optional clean-up, face
         budget (pymeshlab) and xatlas UVs -> the decoder's colour at every vertex (a texture fallback for what the
         photo cannot see).

Frames. TripoSR's world: the input photo is the view of a camera at (1.9, 0, 0) looking at the origin (its
renderer's default: distance 1.9, vertical field of view 40 degrees, azimuth 0), +Z up and +Y to the photo's
right, so +X points towards the viewer. Ours (shape_output): +X right, +Y up, +Z towards the viewer, hence
ours = (y, z, x): a rotation, which keeps the faces' winding. The report's "input_view" gives that camera and the
square of the photo it sees (the preprocessing's crop), the starting point for placing the object on the photo.

The checkpoint (`model.ckpt`, a pickle) is hashed before anything reads it, then opened with
`torch.load(weights_only=True)` only; the same state dict as `model.safetensors` (no pickle, nothing in it can run
code) is read without a pinned hash; config.yaml is read with yaml.safe_load and must name the authors' six
classes. Its ViT keys are transformers 4.35's (the version the authors pin); transformers 5 renamed ViT's modules,
so they are renamed here, one explicit table (VIT_RENAMES), and the unused pooler is dropped. transformers 4.35
also resampled the 14 x 14 position embeddings to the 32 x 32 patch grid on every call with a bicubic scale factor
of 32.1 / 14 (DINO's "+ 0.1"); transformers 5 resamples to the size, which gives other numbers. That resampling
is done here once, at load, the 4.35 way, and the ViT is built for 512-pixel inputs.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors
from shape_output import GenerationError, Progress, Shape, finished_shape  # sibling modules: the worker runs here
from shape_settings import ShapeSettings
from skimage.measure import marching_cubes
from torch import nn
from transformers import ViTConfig, ViTModel

CONFIG = "config.yaml"
CHECKPOINT = "model.ckpt"
SAFETENSORS = "model.safetensors"  # the same state dict without a pickle (shape_models.NEEDED)
FOREGROUND_RATIO = 0.85  # the subject's long side over the square's side
BACKGROUND = 0.5  # grey behind the subject
THRESHOLD = 25.0  # marching cubes' density level (the authors' extract_mesh default)
# The input view (the authors' renderer's default camera), in our frame: a pinhole at (0, 0, INPUT_VIEW_DISTANCE)
# looking down -Z, +Y up, whose vertical field of view spans the conditioning square (report["input_view"]).
INPUT_VIEW_DISTANCE = 1.9
INPUT_VIEW_FOV_Y = 40.0
CLASSES = {  # config.yaml's classes: exactly the authors' architecture, nothing else is built
    "image_tokenizer_cls": "tsr.models.tokenizers.image.DINOSingleImageTokenizer",
    "tokenizer_cls": "tsr.models.tokenizers.triplane.Triplane1DTokenizer",
    "backbone_cls": "tsr.models.transformer.transformer_1d.Transformer1D",
    "post_processor_cls": "tsr.models.network_utils.TriplaneUpsampleNetwork",
    "decoder_cls": "tsr.models.network_utils.NeRFMLP",
    "renderer_cls": "tsr.models.nerf_renderer.TriplaneNeRFRenderer",
}
# facebook/dino-vitb16's config.json, which the authors fetch from the hub at load time.
DINO_VITB16 = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                   image_size=224, patch_size=16, num_channels=3, qkv_bias=True, layer_norm_eps=1e-12,
                   hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# transformers 4.35 ViT names (the checkpoint's) -> transformers 5 names (the model's), under image_tokenizer.model.
VIT_RENAMES = (
    (r"encoder\.layer\.(\d+)\.attention\.attention\.query\.", r"layers.\1.attention.q_proj."),
    (r"encoder\.layer\.(\d+)\.attention\.attention\.key\.", r"layers.\1.attention.k_proj."),
    (r"encoder\.layer\.(\d+)\.attention\.attention\.value\.", r"layers.\1.attention.v_proj."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attention.o_proj."),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.mlp.fc1."),
    (r"encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.mlp.fc2."),
    (r"encoder\.layer\.(\d+)\.layernorm_(before|after)\.", r"layers.\1.layernorm_\2."),
)
VIT_PREFIX = "image_tokenizer.model."
POSITIONS = VIT_PREFIX + "embeddings.position_embeddings"
DENSITY_ACTIVATIONS = {"exp": torch.exp, "softplus": F.softplus, "sigmoid": torch.sigmoid, "none": lambda x: x}
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU}


# --- the configuration -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TripoSRConfig:
    """config.yaml, checked: the sizes of each part (the real model's in brackets)."""

    cond_image_size: int  # [512] input side in pixels
    plane_size: int  # [32] triplane tokens per side
    plane_channels: int  # [1024]
    heads: int  # [16] backbone attention heads
    head_dim: int  # [64]
    layers: int  # [16] backbone blocks
    norm_groups: int  # [32] the backbone's GroupNorm
    triplane_channels: int  # [40] channels of each upsampled plane
    mlp_width: int  # [64]
    mlp_hidden_layers: int  # [9]
    mlp_activation: str  # ["silu"]
    radius: float  # [0.87] the decoded cube is [-radius, radius]^3
    density_activation: str  # ["exp"]
    density_bias: float  # [-1.0]
    vit: dict = field(default_factory=lambda: dict(DINO_VITB16))  # the image tokenizer's ViTConfig

    @classmethod
    def from_yaml(cls, text: str) -> TripoSRConfig:
        """The authors' config.yaml. `image_tokenizer.vit` (not in theirs) may give another ViT's sizes; without
        it the tokenizer must be facebook/dino-vitb16, whose configuration is DINO_VITB16."""
        raw = yaml.safe_load(text)
        if {key: raw.get(key) for key in CLASSES} != CLASSES:
            raise ValueError("it names other classes than TripoSR's")
        raw = _resolved(raw, raw)
        tokenizer, backbone, decoder, renderer = raw["tokenizer"], raw["backbone"], raw["decoder"], raw["renderer"]
        image_tokenizer = raw["image_tokenizer"]
        vit = {**DINO_VITB16, **image_tokenizer.get("vit", {})}
        supported = {  # the authors' options this implementation has (for the others: their defaults only)
            "backbone.activation_fn": backbone.get("activation_fn", "geglu") == "geglu",
            "backbone.attention_bias": not backbone.get("attention_bias", False),
            "backbone.only_cross_attention": not backbone.get("only_cross_attention", False),
            "backbone.double_self_attention": not backbone.get("double_self_attention", False),
            "backbone.norm_type": backbone.get("norm_type", "layer_norm") == "layer_norm",
            "backbone.norm_elementwise_affine": backbone.get("norm_elementwise_affine", True),
            "backbone.in_channels": backbone["in_channels"] == tokenizer["num_channels"],
            "backbone.cross_attention_dim": backbone.get("cross_attention_dim") == vit["hidden_size"],
            "decoder.bias": decoder.get("bias", True),
            "decoder.in_channels": decoder["in_channels"] == 3 * raw["post_processor"]["out_channels"],
            "renderer.feature_reduction": renderer.get("feature_reduction", "concat") == "concat",
            "renderer.density_activation": renderer.get("density_activation") in DENSITY_ACTIVATIONS,
            "decoder.activation": decoder.get("activation", "relu") in ACTIVATIONS,
            "image_tokenizer": "vit" in image_tokenizer
            or image_tokenizer.get("pretrained_model_name_or_path") == "facebook/dino-vitb16",
        }
        wrong = [name for name, fine in supported.items() if not fine]
        if wrong:
            raise ValueError(f"unsupported settings: {', '.join(wrong)}")
        return cls(
            cond_image_size=int(raw["cond_image_size"]), plane_size=int(tokenizer["plane_size"]),
            plane_channels=int(tokenizer["num_channels"]), heads=int(backbone.get("num_attention_heads", 16)),
            head_dim=int(backbone.get("attention_head_dim", 88)), layers=int(backbone.get("num_layers", 1)),
            norm_groups=int(backbone.get("norm_num_groups", 32)),
            triplane_channels=int(raw["post_processor"]["out_channels"]), mlp_width=int(decoder["n_neurons"]),
            mlp_hidden_layers=int(decoder["n_hidden_layers"]), mlp_activation=decoder.get("activation", "relu"),
            radius=float(renderer["radius"]), density_activation=renderer["density_activation"],
            density_bias=float(renderer.get("density_bias", -1.0)), vit=vit)


def _resolved(node, root):
    """OmegaConf's "${a.b}" interpolations (the authors' config has one: backbone.in_channels), nothing else."""
    if isinstance(node, dict):
        return {key: _resolved(value, root) for key, value in node.items()}
    match = re.fullmatch(r"\$\{([\w.]+)\}", node) if isinstance(node, str) else None
    if match is None:
        return node
    target = root
    for key in match.group(1).split("."):
        target = target[key]
    return _resolved(target, root)


# --- the network -----------------------------------------------------------------------------------------------
# Module names are the checkpoint's (image_tokenizer, tokenizer, backbone, post_processor, decoder and their
# children), so that its state dict loads with strict=True once the ViT keys are renamed.


class ImageTokenizer(nn.Module):
    def __init__(self, config: TripoSRConfig):
        super().__init__()
        vit = ViTConfig(**{**config.vit, "image_size": config.cond_image_size})  # position grid resampled at load
        self.model = ViTModel(vit, add_pooling_layer=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [0, 1] -> (B, 1 + (S/16)^2, hidden) tokens."""
        return self.model((images - self.mean) / self.std).last_hidden_state


class Triplane(nn.Module):
    """The learnt query tokens: three planes (xy, xz, yz) of plane_size^2 tokens."""

    def __init__(self, config: TripoSRConfig):
        super().__init__()
        self.embeddings = nn.Parameter(torch.zeros(3, config.plane_channels, config.plane_size, config.plane_size))

    def tokens(self, batch: int) -> torch.Tensor:
        """(B, C, 3 * P * P): plane-major, then rows, then columns."""
        planes, channels, size, _ = self.embeddings.shape
        return self.embeddings.permute(1, 0, 2, 3).reshape(1, channels, planes * size * size).expand(batch, -1, -1)

    def planes(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, C, 3 * P * P) -> (B, 3, C, P, P)."""
        batch, channels, _ = tokens.shape
        size = self.embeddings.shape[-1]
        return tokens.view(batch, channels, 3, size, size).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: int | None = None):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim or dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim or dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim)])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        batch = x.shape[0]
        q, k, v = (projection(source).view(batch, source.shape[1], self.heads, -1).transpose(1, 2)
                   for projection, source in ((self.to_q, x), (self.to_k, context), (self.to_v, context)))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out[0](out.transpose(1, 2).reshape(batch, x.shape[1], -1))


class GEGLU(nn.Module):
    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        # net.1 is the authors' dropout slot (nothing at inference): the checkpoint calls the output layer net.2.
        self.net = nn.Sequential(GEGLU(dim, 4 * dim), nn.Identity(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Block(nn.Module):
    """Pre-norm: self attention, cross attention to the image tokens, a GEGLU feed-forward (4x)."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: int):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, head_dim)
        self.attn2 = Attention(dim, heads, head_dim, context_dim)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Backbone(nn.Module):
    def __init__(self, config: TripoSRConfig):
        super().__init__()
        channels, inner = config.plane_channels, config.heads * config.head_dim
        self.norm = nn.GroupNorm(config.norm_groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            Block(inner, config.heads, config.head_dim, config.vit["hidden_size"]) for _ in range(config.layers))
        self.proj_out = nn.Linear(inner, channels)

    def forward(self, tokens: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        """(B, C, N) triplane tokens attending to (B, M, hidden) image tokens -> (B, C, N)."""
        x = self.proj_in(self.norm(tokens).transpose(1, 2))
        for block in self.transformer_blocks:
            x = block(x, image_tokens)
        return self.proj_out(x).transpose(1, 2) + tokens


class Upsampler(nn.Module):
    def __init__(self, config: TripoSRConfig):
        super().__init__()
        self.upsample = nn.ConvTranspose2d(config.plane_channels, config.triplane_channels, kernel_size=2, stride=2)

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        """(B, 3, C, P, P) -> (B, 3, C', 2P, 2P)."""
        batch = planes.shape[0]
        up = self.upsample(planes.flatten(0, 1))
        return up.view(batch, 3, *up.shape[1:])


class Decoder(nn.Module):
    """The NeRF-style MLP: concatenated plane features -> (density, 3 colour features) before activation."""

    def __init__(self, config: TripoSRConfig):
        super().__init__()
        widths = [3 * config.triplane_channels] + [config.mlp_width] * config.mlp_hidden_layers
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths, widths[1:] + [4]):
            layers += [nn.Linear(width_in, width_out), ACTIVATIONS[config.mlp_activation]()]
        self.layers = nn.Sequential(*layers[:-1])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class TripoSR(nn.Module):
    def __init__(self, config: TripoSRConfig):
        super().__init__()
        self.config = config
        self.image_tokenizer = ImageTokenizer(config)
        self.tokenizer = Triplane(config)
        self.backbone = Backbone(config)
        self.post_processor = Upsampler(config)
        self.decoder = Decoder(config)

    def image_tokens(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) preprocessed images -> the ViT's tokens."""
        return self.image_tokenizer(image)

    def triplanes(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """Image tokens -> (B, 3, C', 2P, 2P) planes: xy, xz, yz."""
        tokens = self.backbone(self.tokenizer.tokens(image_tokens.shape[0]), image_tokens)
        return self.post_processor(self.tokenizer.planes(tokens))

    def decode(self, planes: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One object's (3, C', H, W) planes at (N, 3) points in [-radius, radius]^3 -> density (N,), colour
        (N, 3) in [0, 1]."""
        uv = (points / self.config.radius).to(planes.dtype)  # grid_sample's [-1, 1]
        pairs = torch.stack((uv[:, [0, 1]], uv[:, [0, 2]], uv[:, [1, 2]]))[:, None]  # (3, 1, N, 2)
        samples = F.grid_sample(planes, pairs, mode="bilinear", align_corners=False)  # (3, C', 1, N)
        features = samples[:, :, 0].permute(2, 0, 1).reshape(points.shape[0], -1)  # plane-major channels
        out = self.decoder(features)
        density = DENSITY_ACTIVATIONS[self.config.density_activation](out[:, 0] + self.config.density_bias)
        return density, torch.sigmoid(out[:, 1:])


# --- loading ---------------------------------------------------------------------------------------------------


def checkpoint_to_model(state: dict, config: TripoSRConfig) -> dict:
    """The authors' state dict -> this implementation's: ViT keys renamed (transformers 4.35 -> 5), the pooler
    dropped (TripoSR never uses it), the position embeddings resampled to the input's patch grid. Works on meta
    tensors too (the names and shapes check)."""
    out = {}
    for key, value in state.items():
        if key.startswith(VIT_PREFIX + "pooler."):
            continue
        if key.startswith(VIT_PREFIX):
            tail = key[len(VIT_PREFIX):]
            for pattern, replacement in VIT_RENAMES:
                tail = re.sub("^" + pattern, replacement, tail)
            key = VIT_PREFIX + tail
        out[key] = value
    out[POSITIONS] = resampled_positions(out[POSITIONS], config.cond_image_size // config.vit["patch_size"])
    return out


def resampled_positions(positions: torch.Tensor, grid: int) -> torch.Tensor:
    """(1, 1 + n^2, D) -> (1, 1 + grid^2, D) as transformers 4.35's ViT did at every call: bicubic with a scale
    factor of (grid + 0.1) / n (not a target size), the CLS position kept."""
    n = math.isqrt(positions.shape[1] - 1)
    cls, patches = positions[:, :1], positions[:, 1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
    scale = (grid + 0.1) / n
    patches = F.interpolate(patches, scale_factor=(scale, scale), mode="bicubic", align_corners=False)
    return torch.cat((cls, patches.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)), dim=1)


@dataclass
class ShapeModel:
    network: TripoSR
    device: str


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def load_model(folder: str | Path, checkpoint_sha256: str, device: str = "cpu") -> ShapeModel:
    """config.yaml + the weights, strict names and shapes: model.safetensors if the folder has it (no pickle: a
    converted or fine-tuned copy loads unpinned), else the authors' model.ckpt, its SHA-256 checked first, then
    loaded with weights_only=True."""
    folder = Path(folder)
    weights = folder / SAFETENSORS if (folder / SAFETENSORS).is_file() else folder / CHECKPOINT
    for path in (folder / CONFIG, weights):
        if not path.is_file():
            raise GenerationError(f"The model folder {folder} has no {path.name}: TripoSR needs {CONFIG} and "
                                  f"{CHECKPOINT} (or {SAFETENSORS}).")
    try:
        config = TripoSRConfig.from_yaml((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeError, yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise GenerationError(f"{folder / CONFIG} is not a TripoSR configuration ({err}).") from None
    if weights.name == CHECKPOINT:
        if not checkpoint_sha256:
            raise GenerationError(f"No SHA-256 was given for {weights}: it is not loaded unchecked.")
        if sha256_of(weights) != checkpoint_sha256.lower():
            raise GenerationError(f"{weights} is not the expected file (its SHA-256 differs): download it again.")
    try:
        if weights.name == CHECKPOINT:
            state = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
        else:
            state = load_safetensors(weights)
        network = TripoSR(config)
        network.load_state_dict(checkpoint_to_model(state, config), strict=True)
    except (pickle.UnpicklingError, SafetensorError, RuntimeError, OSError, KeyError, ValueError, AttributeError) \
            as err:
        # weights_only refuses anything but tensors; strict loading refuses other names or shapes.
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise GenerationError(f"{weights} is not a TripoSR checkpoint for its {CONFIG} ({reason}).") from None
    del state
    return ShapeModel(network.eval().to(device), device)


# --- generating ------------------------------------------------------------------------------------------------


def conditioning_image(subject: Image.Image, size: int) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """The authors' preprocessing (tsr.utils.resize_foreground, run.py's grey compositing, their resize):
    (1, 3, size, size) float32 in [0, 1], and where that square lies on the photo: (x, y, side) in photo pixels
    (it may reach past the photo's edges). Their quirks are kept, since the model was trained on them: the box's
    last row and column are cut (rows y1:y2 with y2 the last subject row), the 85 % square side is truncated,
    and the grey composite is truncated to 8 bits before resizing."""
    rgba = np.asarray(subject.convert("RGBA"))
    ys, xs = np.nonzero(rgba[..., 3] > 0)
    crop = rgba[ys.min():ys.max(), xs.min():xs.max()]
    side = max(crop.shape[:2])
    square = int(side / FOREGROUND_RATIO)
    top, left = (side - crop.shape[0]) // 2 + (square - side) // 2, (side - crop.shape[1]) // 2 + (square - side) // 2
    canvas = np.zeros((square, square, 4), np.uint8)  # transparent black, as their padding
    canvas[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
    pixels = canvas.astype(np.float32) / 255.0
    alpha = pixels[..., 3:4]
    grey = (pixels[..., :3] * alpha + (1 - alpha) * BACKGROUND) * 255.0
    image = torch.from_numpy(grey.astype(np.uint8).astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    image = F.interpolate(image, (size, size), mode="bilinear", align_corners=False, antialias=True)
    return image, (int(xs.min()) - left, int(ys.min()) - top, square)


def density_grid(model: ShapeModel, planes: torch.Tensor, resolution: int, chunk: int,
                 progress: Progress) -> np.ndarray:
    """Density at resolution^3 points spanning [-radius, radius]^3 (ends included), x the slowest axis."""
    radius = model.network.config.radius
    axis = torch.linspace(0.0, 1.0, resolution) * (2 * radius) - radius
    total = resolution**3
    chunks = math.ceil(total / chunk)
    out = np.empty(total, np.float32)
    for i in range(chunks):
        index = torch.arange(i * chunk, min(total, (i + 1) * chunk))
        points = torch.stack((axis[index // resolution**2], axis[index // resolution % resolution],
                              axis[index % resolution]), dim=1).to(model.device)
        density, _ = model.network.decode(planes, points)
        out[index.numpy()] = density.float().cpu().numpy()
        progress("density", i + 1, chunks)
    return out.reshape(resolution, resolution, resolution)


def surface(grid: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes at THRESHOLD in TripoSR's frame: vertices in [-radius, radius]^3, faces counter-clockwise
    from outside (scikit-image's triangles are clockwise there when the field grows inwards: reversed)."""
    vertices, faces, _normals, _values = marching_cubes(grid - THRESHOLD, 0.0)
    vertices = vertices / (grid.shape[0] - 1) * (2 * radius) - radius
    return vertices.astype(np.float32), np.ascontiguousarray(faces[:, ::-1])


def to_our_frame(vertices: np.ndarray) -> np.ndarray:
    """TripoSR (x towards the viewer, y right, z up) -> ours (x right, y up, z towards the viewer)."""
    return np.ascontiguousarray(vertices[:, [1, 2, 0]])


def vertex_colours(model: ShapeModel, planes: torch.Tensor, vertices: np.ndarray, chunk: int) -> np.ndarray:
    """The model's own colour field at (N, 3) vertices in TripoSR's frame: (N, 3) float32 in [0, 1], in the
    photo's colour space (the values its pixels would have), queried in chunks."""
    points = torch.from_numpy(np.ascontiguousarray(vertices, np.float32))
    with torch.inference_mode():
        colours = [model.network.decode(planes, part.to(model.device))[1].float().cpu()
                   for part in points.split(chunk)]
    return torch.cat(colours).numpy() if colours else np.zeros((0, 3), np.float32)


def clean_and_reduce(vertices: np.ndarray, faces: np.ndarray, remove_floaters: bool,
                     target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """pymeshlab: small disconnected pieces removed (under 0.5 % of the faces, as hy3dgen's FloaterRemover does),
    then quadric edge collapse to the face budget (0 = keep every face)."""
    import pymeshlab

    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(vertex_matrix=vertices.astype(np.float64), face_matrix=faces))
    if remove_floaters:
        meshes.apply_filter("compute_selection_by_small_disconnected_components_per_face", nbfaceratio=0.005)
        meshes.apply_filter("compute_selection_transfer_face_to_vertex", inclusive=False)
        meshes.apply_filter("meshing_remove_selected_vertices_and_faces")
    if target_faces and meshes.current_mesh().face_number() > target_faces:
        meshes.apply_filter("meshing_decimation_quadric_edge_collapse", targetfacenum=target_faces, qualitythr=1.0,
                            preserveboundary=True, boundaryweight=3, preservenormal=True, preservetopology=True,
                            autoclean=True)
    meshes.apply_filter("meshing_remove_unreferenced_vertices")
    mesh = meshes.current_mesh()
    return mesh.vertex_matrix().astype(np.float32), mesh.face_matrix().astype(np.int32)


def generate_shape(model: ShapeModel, image: Image.Image, settings: ShapeSettings,
                   progress: Progress = lambda stage, done, total: None) -> Shape:
    """One cut-out photo -> the object: settings.octree_resolution is the marching-cubes grid's side,
    settings.num_chunks the points per density query."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    network, resolution = model.network, settings.octree_resolution
    with torch.inference_mode():
        progress("triplane", 0, 2)
        pixels, square = conditioning_image(image, network.config.cond_image_size)
        tokens = network.image_tokens(pixels.to(model.device))
        lap("tokenizer")
        progress("triplane", 1, 2)
        planes = network.triplanes(tokens)[0]
        lap("backbone")
        progress("triplane", 2, 2)
        grid = density_grid(model, planes, resolution, settings.num_chunks, progress)
        lap("density")
    progress("surface", 0, 1)
    if not grid.max() > THRESHOLD:
        raise GenerationError("TripoSR found no object in this photo: try a photo where the subject stands out "
                              "clearly, cut out tightly.")
    vertices, faces = surface(grid, network.config.radius)
    del grid
    vertices = to_our_frame(vertices)
    progress("surface", 1, 1)
    lap("surface")
    report = {"mc_resolution": resolution, "raw_vertices": len(vertices), "raw_faces": len(faces),
              "input_view": {"camera_distance": INPUT_VIEW_DISTANCE, "fov_y_degrees": INPUT_VIEW_FOV_Y,
                             "square": list(square)}}
    progress("cleanup", 0, 1)
    vertices, faces = clean_and_reduce(vertices, faces, settings.remove_floaters, settings.target_faces)
    progress("cleanup", 1, 1)
    lap("cleanup")
    if len(faces) == 0:
        raise GenerationError("Nothing was left of TripoSR's shape after removing floating bits: try another photo.")
    report["seconds"] = seconds
    shape = finished_shape(vertices, faces, settings.uv, report, progress)
    progress("colour", 0, 1)
    start = time.perf_counter()
    shape.colours = vertex_colours(model, planes, shape.vertices[:, [2, 0, 1]], settings.num_chunks)  # ours -> theirs
    seconds["colour"] = round(time.perf_counter() - start, 3)
    progress("colour", 1, 1)
    return shape
