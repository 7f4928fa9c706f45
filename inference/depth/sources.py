"""Which depth model runs for a photo, getting it, and running it.

--method auto (the default): a model that is already on disk (the chosen one first), else the chosen model is
downloaded when downloads are allowed, else one sentence says what to do. --method model: the chosen model,
downloaded if needed. --model-file: the chosen card's contract with local weights (no hash check).
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import InputError
from ..photo.photo import Photo
from ..record import ModelRun
from ..runtime.access import ModelAccess
from ..runtime.cards import ModelCard, model_card, task_cards
from ..runtime.onnx_session import onnx_session
from ..runtime.store import ModelStore
from .predict import DepthPrediction, predict_depth


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
    session, session_notices = onnx_session(path, access.device, access.threads)
    prediction = predict_depth(session, card, photo, size, fov_x_deg, access.cancel)
    done = time.perf_counter()
    if prediction.kind == "relative-disparity":
        notices.append(f"{card.name} gives relative depth, which carries no true scale: Near and Far set the size.")
    run = ModelRun(card.id, card.name, card.license, card.commercial, str(path), session.get_providers()[0],
                   card.output_kind)
    timings = {"model": fetched - start, "inference": done - fetched}
    return prediction, run, timings, notices + session_notices


def present_or(card: ModelCard, store: ModelStore) -> ModelCard:
    """The chosen card if its files are here, else the first card whose files are, else the chosen card."""
    if store.is_present(card):
        return card
    return next((c for c in task_cards("depth").values() if store.is_present(c)), card)
