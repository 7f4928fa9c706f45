"""Which depth model runs for a photo, getting it, and running it.

--method auto (the default): a model that is already on disk (the chosen one first), else the chosen model is
downloaded when downloads are allowed, else one sentence says what to do. --method model: the chosen model,
downloaded if needed. --model-file: the chosen card's contract with local weights (no hash check).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from ..errors import InputError
from ..photo.photo import Photo
from ..record import ModelRun
from ..runtime.access import ModelAccess
from ..runtime.cache import content_hash, file_key
from ..runtime.cards import ModelCard, model_card, task_cards
from ..runtime.onnx_session import onnx_session
from ..runtime.store import ModelStore
from .predict import DepthPrediction, model_outputs, prediction_from


def run_depth_model(
    photo: Photo,
    model_id: str,
    method: str,
    model_file: str | None,
    access: ModelAccess,
    size: tuple[int, int],
    fov_x_deg: float | None,
) -> tuple[DepthPrediction, ModelRun, dict[str, float], list[str]]:
    """The prediction at `size`, what ran, its timings (for the report), and notices for the user."""
    card = model_card(model_id)
    notices = []
    start = time.perf_counter()
    if model_file:
        path = Path(model_file)
        notices.append(f"Using the local file {path.name} for {card.name}; its hash was not checked.")
    else:
        card = card if method == "model" else present_or(card, access.store)
        path = access.fetch(card)[0]
    fetched = time.perf_counter()
    # The model's raw outputs depend on the photo and the model alone: meshing again at another size (resolution)
    # or with other settings takes them from the cache and runs no model.
    key = ["depth", content_hash(photo.rgb), card.id, file_key(path)]
    cached = access.cache.get(key)
    if cached is not None:
        outputs, meta = cached
        run = ModelRun(**{**meta, "cached": True})
    else:
        session, session_notices = onnx_session(path, access.device, access.threads)
        notices += session_notices
        outputs = model_outputs(session, card, photo, access.cancel)
        run = ModelRun(card.id, card.name, card.license, card.commercial, str(path), session.get_providers()[0],
                       card.output_kind)
        access.cache.put(key, outputs, asdict(run))
    prediction = prediction_from(outputs, card, photo, size, fov_x_deg)
    done = time.perf_counter()
    if prediction.kind == "relative-disparity":
        notices.append(f"{card.name} gives relative depth, which carries no true scale: Near and Far set the size.")
    return prediction, run, {"model": fetched - start, "inference": done - fetched}, notices


def present_or(card: ModelCard, store: ModelStore) -> ModelCard:
    """The chosen card if its files are here, else the first card whose files are, else the chosen card."""
    if store.is_present(card):
        return card
    return next((c for c in task_cards("depth").values() if store.is_present(c)), card)
