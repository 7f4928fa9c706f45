"""The tiny TripoSR fixture's weights, made from their names and shapes (tests/fixtures/triposr/parameters.txt) and
a seed, so that no weights file is committed: the authors' reference run (scripts/make_triposr_fixture.py) and the
tests make the same checkpoint with the same torch (the generator environment's).

    python tests/triposr_weights.py FIXTURE_FOLDER OUT_FOLDER [--safetensors]
    (writes OUT/config.yaml and OUT/model.ckpt, or OUT/model.safetensors: the same weights without a pickle)
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

SEED = 12


def parameters(listing: Path) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of each tensor, in the state dict's order, from "name d0xd1x..." lines."""
    rows = [line.split() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(name, tuple(int(d) for d in dims.split("x"))) for name, dims in rows]


def tiny_state_dict(listing: Path, density_shift: float) -> dict[str, torch.Tensor]:
    """Random weights of a sensible size for each tensor (matrices scaled by their fan-in, norms' scales near one,
    the rest small), every one away from any initial value so that a wrongly mapped tensor shows; the density
    output's bias moved by `density_shift` (the fixture script picks it so a sixth of the grid is inside)."""
    generator = torch.Generator().manual_seed(SEED)
    state = {}
    for name, shape in parameters(listing):
        noise = torch.randn(shape, generator=generator)
        if len(shape) > 1:
            state[name] = noise / math.sqrt(math.prod(shape[1:]))
        elif name.endswith("weight"):
            state[name] = 1.0 + 0.3 * noise
        else:
            state[name] = 0.1 * noise
    density_bias = [name for name in state if name.startswith("decoder.") and name.endswith(".bias")][-1]
    state[density_bias][0] += density_shift
    return state


def write_model(fixture: Path, out: Path, safetensors: bool = False) -> Path:
    """The tiny model's folder in `out`: config.yaml + model.ckpt, the authors' form, or model.safetensors."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(fixture / "config.yaml", out / "config.yaml")
    shift = float(np.load(fixture / "reference.npz")["density_shift"])
    state = tiny_state_dict(fixture / "parameters.txt", shift)
    if safetensors:
        from safetensors.torch import save_file

        save_file(state, out / "model.safetensors")
    else:
        torch.save(state, out / "model.ckpt")
    return out


if __name__ == "__main__":
    print(write_model(Path(sys.argv[1]), Path(sys.argv[2]), safetensors="--safetensors" in sys.argv[3:]))
