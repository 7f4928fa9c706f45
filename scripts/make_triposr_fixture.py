"""Regenerate tests/fixtures/triposr/ from the authors' TripoSR code (never committed here).

    python scripts/make_triposr_fixture.py REFERENCE_CHECKOUT [OUT_DIR]

REFERENCE_CHECKOUT is a checkout of github.com/VAST-AI-Research/TripoSR (its tsr/ package is imported from there).
Run it with a Python that has the authors' pinned transformers (4.35.0: the checkpoint's ViT key names and its
position-embedding resampling), omegaconf, einops, trimesh, imageio and torch, e.g. a venv beside the generator
environment: `python -m venv v && v/bin/pip install transformers==4.35.0 omegaconf==2.3.0` plus a .pth file naming
the generator environment's site-packages.

What it writes (the authors' code ran every number; this repository's implementation reads them in the test):
  config.yaml            a tiny TripoSR configuration in the authors' format, plus `image_tokenizer.vit` (the tiny
                         ViT's sizes, which the authors' code reads from the hub's config.json instead)
  parameters.txt         its tensors' names (the authors' key names) and shapes, "name d0xd1x..." per line: the
                         tests make its random weights from these (tests/triposr_weights.py), no weights committed
  subject.png            a cut-out photo (RGBA)
  reference.npz          from the authors' code: image tokens, triplanes, the density grid and the marching-cubes
                         mesh at RESOLUTION (TripoSR's frame, as trimesh keeps it) with its vertex colours; and
                         density_shift, the density bias's offset the weights were made with
  authors_parameters.txt the real configuration's 549 parameter names and shapes, "name d0xd1x..." per line
  authors_config.yaml    the real configuration (stabilityai/TripoSR's config.yaml values), which built them

The authors' code cannot run here unchanged; only what it imports is replaced, never its model code:
  - torchmcubes (a compiled extension) -> scikit-image's marching cubes, returning torchmcubes's axis order (the
    volume's last index first, which their code swaps back) and scikit-image's triangles;
  - rembg (background removal: the subject comes cut out) -> an empty module;
  - hf_hub_download of facebook/dino-vitb16's config.json -> the tiny ViT's config.json, written locally.
So the meshes compared are the same marching-cubes algorithm on the two density grids: the test checks the grid,
the threshold, the axes and the scale, not torchmcubes's triangle table.
"""

from __future__ import annotations

import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from triposr_weights import tiny_state_dict  # noqa: E402
RESOLUTION = 32  # marching cubes' grid for the fixture
THRESHOLD = 25.0
CHUNK = 4096  # the authors' renderer chunk size here (the test uses another: chunking must not matter)
VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=224,
           patch_size=16, num_channels=3, qkv_bias=True, layer_norm_eps=1e-12, hidden_act="gelu")
TINY = {
    "cond_image_size": 512,
    "image_tokenizer_cls": "tsr.models.tokenizers.image.DINOSingleImageTokenizer",
    "image_tokenizer": {"pretrained_model_name_or_path": "facebook/dino-vitb16"},
    "tokenizer_cls": "tsr.models.tokenizers.triplane.Triplane1DTokenizer",
    "tokenizer": {"plane_size": 8, "num_channels": 32},
    "backbone_cls": "tsr.models.transformer.transformer_1d.Transformer1D",
    "backbone": {"in_channels": "${tokenizer.num_channels}", "num_attention_heads": 2, "attention_head_dim": 16,
                 "num_layers": 2, "cross_attention_dim": VIT["hidden_size"]},
    "post_processor_cls": "tsr.models.network_utils.TriplaneUpsampleNetwork",
    "post_processor": {"in_channels": 32, "out_channels": 8},
    "decoder_cls": "tsr.models.network_utils.NeRFMLP",
    "decoder": {"in_channels": 24, "n_neurons": 16, "n_hidden_layers": 3, "activation": "silu"},
    "renderer_cls": "tsr.models.nerf_renderer.TriplaneNeRFRenderer",
    "renderer": {"radius": 0.87, "feature_reduction": "concat", "density_activation": "exp", "density_bias": -1.0,
                 "num_samples_per_ray": 128},
}
REAL = {**TINY, "tokenizer": {"plane_size": 32, "num_channels": 1024},
        "backbone": {"in_channels": "${tokenizer.num_channels}", "num_attention_heads": 16, "attention_head_dim": 64,
                     "num_layers": 16, "cross_attention_dim": 768},
        "post_processor": {"in_channels": 1024, "out_channels": 40},
        "decoder": {"in_channels": 120, "n_neurons": 64, "n_hidden_layers": 9, "activation": "silu"}}
DINO_VITB16 = dict(VIT, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)


def stand_ins(vit_config_folder: Path, volumes: list) -> None:
    """What the authors' code imports that cannot run here (see the module's docstring)."""
    from skimage.measure import marching_cubes

    def torchmcubes_marching_cubes(volume: torch.Tensor, level: float):
        volumes.append(volume.numpy().copy())
        if not volume.min() < level < volume.max():  # torchmcubes: an empty mesh
            return torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64)
        vertices, faces, _, _ = marching_cubes(volume.numpy(), level)
        return torch.from_numpy(vertices[:, ::-1].copy()), torch.from_numpy(faces.astype(np.int64))

    sys.modules["torchmcubes"] = types.SimpleNamespace(marching_cubes=torchmcubes_marching_cubes)
    sys.modules["rembg"] = types.ModuleType("rembg")
    import tsr.models.tokenizers.image as image_tokenizer

    image_tokenizer.hf_hub_download = lambda repo_id, filename: str(vit_config_folder / filename)


def build(config: dict, vit: dict, folder: Path):
    from omegaconf import OmegaConf
    from transformers import ViTConfig
    from tsr.system import TSR

    ViTConfig(**vit).save_pretrained(folder)  # the config.json the hub stand-in hands over
    cfg = OmegaConf.create(config)
    OmegaConf.resolve(cfg)
    return TSR(cfg)


def subject_photo() -> Image.Image:
    """A 120 x 90 cut-out: a lit ball and a box, off-centre, on a transparent background."""
    h, w = 90, 120
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    ball = ((xx - 50) / 28) ** 2 + ((yy - 48) / 30) ** 2 < 1
    box = (xx > 70) & (xx < 100) & (yy > 30) & (yy < 75)
    rgb = np.stack([150 + 100 * np.cos(xx / 9), 90 + 80 * np.sin(yy / 7), 60 + xx], axis=-1).clip(0, 255)
    alpha = np.where(ball | box, 255, 0)
    alpha[ball & ~box & (((xx - 50) / 28) ** 2 + ((yy - 48) / 30) ** 2 > 0.85)] = 128  # a soft edge
    return Image.fromarray(np.dstack([rgb, alpha]).astype(np.uint8), "RGBA")


def authors_conditioning(photo: Image.Image) -> Image.Image:
    """run.py's steps after background removal: resize_foreground, then grey compositing to 8 bits."""
    from tsr.utils import resize_foreground

    image = np.array(resize_foreground(photo, 0.85)).astype(np.float32) / 255.0
    image = image[:, :, :3] * image[:, :, 3:4] + (1 - image[:, :, 3:4]) * 0.5
    return Image.fromarray((image * 255.0).astype(np.uint8))


def main() -> None:
    reference, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2] if len(sys.argv) > 2 else
                                                         ROOT / "tests" / "fixtures" / "triposr")
    sys.path.insert(0, str(reference))
    out.mkdir(parents=True, exist_ok=True)
    volumes: list = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        stand_ins(scratch, volumes)
        model = build(TINY, VIT, scratch)
        listing = out / "parameters.txt"
        listing.write_text("".join(f"{name} {'x'.join(map(str, value.shape))}\n"
                                   for name, value in model.state_dict().items()), encoding="utf-8")
        model.load_state_dict(tiny_state_dict(listing, 0.0))
        model.eval()
        model.renderer.set_chunk_size(CHUNK)

        photo = subject_photo()
        tokens = []
        model.image_tokenizer.register_forward_hook(lambda module, args, output: tokens.append(output))
        with torch.no_grad():
            triplanes = model([authors_conditioning(photo)], device="cpu")
        # Random weights put the density anywhere: shift the density output so that about a sixth of the grid
        # is inside the surface, then extract it.
        model.extract_mesh(triplanes, False, resolution=RESOLUTION, threshold=THRESHOLD)
        density = volumes.pop() + THRESHOLD
        shift = float(np.log(THRESHOLD) - np.log(np.quantile(density, 0.83)))
        model.load_state_dict(tiny_state_dict(listing, shift))
        (mesh,) = model.extract_mesh(triplanes, False, resolution=RESOLUTION, threshold=THRESHOLD)
        density = volumes.pop() + THRESHOLD
        with torch.no_grad():  # what extract_mesh(has_vertex_color=True) computes, before trimesh's 8-bit rounding
            colours = model.renderer.query_triplane(model.decoder, torch.from_numpy(np.asarray(mesh.vertices,
                                                                                              np.float32)),
                                                    triplanes[0])["color"]

        real = build(REAL, DINO_VITB16, scratch)
        names = [f"{name} {'x'.join(map(str, value.shape))}" for name, value in real.state_dict().items()]

    tiny = {**TINY, "image_tokenizer": {**TINY["image_tokenizer"], "vit": {
        key: VIT[key] for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")}}}
    (out / "config.yaml").write_text(yaml.safe_dump(tiny, sort_keys=False), encoding="utf-8")
    photo.save(out / "subject.png")
    np.savez_compressed(out / "reference.npz", image_tokens=tokens[0][:, 0].transpose(1, 2).numpy(), triplanes=triplanes.numpy(),
                        density=density.astype(np.float32), vertices=np.asarray(mesh.vertices, np.float32),
                        faces=np.asarray(mesh.faces, np.int32), colours=colours.numpy(), resolution=RESOLUTION,
                        threshold=THRESHOLD, density_shift=shift)
    (out / "authors_parameters.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    (out / "authors_config.yaml").write_text(yaml.safe_dump(REAL, sort_keys=False), encoding="utf-8")
    print(f"{len(names)} real parameters ({sum(int(np.prod(real.state_dict()[n.split()[0]].shape)) for n in names)}"
          f" values); tiny mesh {len(mesh.vertices)} vertices, {len(mesh.faces)} faces; inside "
          f"{float((density > THRESHOLD).mean()):.2f} of the grid")


if __name__ == "__main__":
    main()
