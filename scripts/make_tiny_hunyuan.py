"""Hunyuan3D-2 models with random weights, built with hy3dgen's own classes in the official folder layout.

No model hub is reachable here, and weights are never committed: tests build a tiny model at test time, the
benchmark builds the real architectures. A model folder holds config.yaml and model.fp16.safetensors whose keys
carry the `model.` / `vae.` / `conditioner.` prefixes, exactly what hy3dgen's from_single_file loads; a VAE folder
(the turbo VAE that FlashVDM decodes with) holds a ShapeVAE's config.yaml and unprefixed weights.

Run with the generator environment's Python (it needs torch and hy3dgen):
    .cache/generator-env/bin/python scripts/make_tiny_hunyuan.py OUT_FOLDER
writes OUT_FOLDER/hunyuan3d-dit-v2-mini-tiny (flow matching with classifier-free guidance, like 2mini),
OUT_FOLDER/hunyuan3d-dit-v2-mini-tiny-turbo (guidance-distilled, the consistency scheduler, like 2mini-turbo) and
OUT_FOLDER/hunyuan3d-vae-v2-mini-tiny (a VAE folder, like the turbo VAE) and OUT_FOLDER/hunyuan3d-dit-v2-mv-tiny
(multi-view: a view-aware DINOv2 encoder and preprocessor, like Hunyuan3D-2mv).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "inference" / "generate"))

import torch  # noqa: E402
import yaml  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torchvision_stand_in import import_hy3dgen  # noqa: E402

import_hy3dgen()
from hy3dgen.shapegen.pipelines import instantiate_from_config  # noqa: E402

# DESIGN.md's tiny model: DiT hidden 64 with one block of each kind, 16 latent channels; ShapeVAE width 64 with
# 32 latents; a one-layer DINOv2 (224 px input instead of 518: the same code path, 5x fewer tokens). Two Fourier
# frequencies instead of 8 make the random occupancy field smooth: a few blobs rather than noise, so a test mesh
# has thousands of faces, not hundreds of thousands.
TINY = dict(dit=dict(hidden_size=64, num_heads=4, depth=1, depth_single_blocks=1),
            vae=dict(num_latents=32, embed_dim=16, width=64, heads=4, num_decoder_layers=1, num_freqs=2),
            dino=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, use_swiglu_ffn=False),
            image_size=224)
# Hunyuan3D-2mini (tencent/Hunyuan3D-2mini, hunyuan3d-dit-v2-mini*/config.yaml): a 0.6 B DiT, the 512-latent
# ShapeVAE and DINOv2 giant at 518 px.
MINI = dict(dit=dict(hidden_size=1024, num_heads=16, depth=8, depth_single_blocks=16),
            vae=dict(num_latents=512, embed_dim=64, width=1024, heads=16, num_decoder_layers=16,
                     scale_factor=1.0188137142395404),
            dino=dict(hidden_size=1536, num_hidden_layers=40, num_attention_heads=24, use_swiglu_ffn=True),
            image_size=518)


def vae_params(size: dict) -> dict:
    return {"num_freqs": 8, "include_pi": False, "qkv_bias": False, "qk_norm": True, "scale_factor": 1.0,
            "geo_decoder_mlp_expand_ratio": 4, "geo_decoder_downsample_ratio": 1, "geo_decoder_ln_post": True,
            **size["vae"]}


def pipeline_config(size: dict, distilled: bool = False, turbo: bool = False, multiview: bool = False) -> dict:
    """hy3dgen's config.yaml for a DiT folder. distilled: guidance-embedded (the -fast and -turbo DiTs);
    turbo: the consistency scheduler the -turbo DiT samples with in a few steps; multiview: Hunyuan3D-2mv's
    encoder (a view embedding for each of front, left, back, right) and preprocessor (a dict of views)."""
    dit, dino = size["dit"], size["dino"]
    scheduler = "ConsistencyFlowMatchEulerDiscreteScheduler" if turbo else "FlowMatchEulerDiscreteScheduler"
    encoder, processor = ("DinoImageEncoderMV", "MVImageProcessorV2") if multiview else \
        ("DinoImageEncoder", "ImageProcessorV2")
    return {
        "model": {"target": "hy3dgen.shapegen.models.Hunyuan3DDiT", "params": {
            "in_channels": size["vae"]["embed_dim"], "context_in_dim": dino["hidden_size"], "mlp_ratio": 4.0,
            "axes_dim": [dit["hidden_size"] // dit["num_heads"]], "theta": 10000, "qkv_bias": True,
            "guidance_embed": distilled, **dit}},
        "vae": {"target": "hy3dgen.shapegen.models.ShapeVAE", "params": vae_params(size)},
        "conditioner": {"target": "hy3dgen.shapegen.models.SingleImageEncoder", "params": {"main_image_encoder": {
            "type": encoder, "kwargs": {"image_size": size["image_size"], "use_cls_token": True,
                                        **({"view_num": 4} if multiview else {}), "config": {
                "model_type": "dinov2", "image_size": 518, "patch_size": 14, "num_channels": 3, "mlp_ratio": 4,
                "hidden_act": "gelu", "layer_norm_eps": 1e-6, "layerscale_value": 1.0, "qkv_bias": True,
                "drop_path_rate": 0.0, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, **dino}}}}},
        "scheduler": {"target": f"hy3dgen.shapegen.schedulers.{scheduler}",
                      "params": {"num_train_timesteps": 1000, **({"pcm_timesteps": 100} if turbo else {})}},
        "image_processor": {"target": f"hy3dgen.shapegen.preprocessors.{processor}",
                            "params": {"size": 512, "border_ratio": 0.15}},
    }


def build_modules(config: dict, seed: int = 0) -> dict[str, torch.nn.Module]:
    """The DiT, VAE and conditioner of a config, with random weights (seeded)."""
    torch.manual_seed(seed)
    return {part: instantiate_from_config(config[part]).eval() for part in ("model", "vae", "conditioner")}


def _save(state: dict[str, torch.Tensor], path: Path) -> None:
    # Clones: safetensors refuses tensors that share memory; float16 like the published files.
    save_file({key: value.detach().to(torch.float16).clone().contiguous() for key, value in state.items()}, str(path))


def write_model(folder: Path, config: dict, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    modules = build_modules(config, seed)
    state = {f"{part}.{key}": value for part, module in modules.items() for key, value in module.state_dict().items()}
    _save(state, folder / "model.fp16.safetensors")
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def write_vae(folder: Path, size: dict, seed: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"target": "hy3dgen.shapegen.models.ShapeVAE", "params": vae_params(size)}
    torch.manual_seed(seed)
    _save(instantiate_from_config(config).state_dict(), folder / "model.fp16.safetensors")
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def make_tiny(out: Path, turbo: bool = False) -> tuple[Path, Path | None]:
    """A tiny DiT folder (and, for turbo, a tiny VAE folder) under `out`."""
    name = "hunyuan3d-dit-v2-mini-tiny" + ("-turbo" if turbo else "")
    dit = write_model(out / name, pipeline_config(TINY, distilled=turbo, turbo=turbo))
    return dit, write_vae(out / "hunyuan3d-vae-v2-mini-tiny", TINY) if turbo else None


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = Path(sys.argv[1])
    for path in (*make_tiny(out), *make_tiny(out, turbo=True),
                 write_model(out / "hunyuan3d-dit-v2-mv-tiny", pipeline_config(TINY, multiview=True))):
        if path:
            print(path)
