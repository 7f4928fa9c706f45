"""ONNX Runtime sessions: one per (model file, device, threads), on the device the user chose or the CPU."""

from __future__ import annotations

import threading
from pathlib import Path

import onnxruntime as ort

from ..errors import InputError
from .jobs import CancelToken

# device -> (ONNX Runtime's execution provider, label, description)
DEVICES = {
    "cpu": ("CPUExecutionProvider", "CPU", "Every machine"),
    "cuda": ("CUDAExecutionProvider", "CUDA", "NVIDIA GPUs (needs ONNX Runtime's CUDA build and drivers)"),
    "directml": ("DmlExecutionProvider", "DirectML", "Any GPU on Windows (needs onnxruntime-directml)"),
    "coreml": ("CoreMLExecutionProvider", "Core ML", "Apple silicon"),
}

_sessions: dict[tuple, tuple[ort.InferenceSession, list[str]]] = {}
_lock = threading.Lock()


def onnx_session(path: Path, device: str = "cpu", threads: int = 0) -> tuple[ort.InferenceSession, list[str]]:
    """A cached session for `path`, and notices (e.g. the fallback to the CPU). threads 0 = ONNX Runtime's choice."""
    if device not in DEVICES:
        raise InputError(f"Unknown device '{device}': use one of {', '.join(DEVICES)}.")
    path = Path(path).resolve()
    key = (str(path), path.stat().st_mtime_ns, device, threads)
    with _lock:
        if key not in _sessions:
            _sessions[key] = _create(path, device, threads)
        return _sessions[key]


def run_session(session: ort.InferenceSession, names: list[str], feeds: dict, cancel: CancelToken | None = None) -> list:
    """session.run, ended at once when `cancel` is set (ONNX Runtime's RunOptions.terminate); Cancelled then."""
    options = ort.RunOptions()
    options.log_severity_level = 4  # a cancelled run is no error to log
    if cancel is None:
        return session.run(names, feeds, options)
    cancel.watch(options)
    try:
        return session.run(names, feeds, options)
    except Exception:
        cancel.check()  # a terminated run raises ONNX Runtime's own error: report the cancel instead
        raise
    finally:
        cancel.unwatch(options)


def _create(path: Path, device: str, threads: int) -> tuple[ort.InferenceSession, list[str]]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 4  # fatal only: its errors reach the user as our own sentences
    wanted = DEVICES[device][0]
    notices = []
    if wanted not in ort.get_available_providers():
        notices.append(f"{wanted} is not available in this ONNX Runtime build: running on the CPU.")
        wanted = "CPUExecutionProvider"
    try:
        providers = list(dict.fromkeys([wanted, "CPUExecutionProvider"]))
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as err:  # ONNX Runtime raises its own exception types for unreadable graphs
        if wanted != "CPUExecutionProvider":
            notices.append(f"{wanted} failed to start ({err}): running on the CPU.")
            return _create(path, "cpu", threads)[0], notices
        raise InputError(f"The model file '{path.name}' is not a valid ONNX model ({_first_line(err)}).") from err
    if session.get_providers()[0] != wanted:
        notices.append(f"{wanted} could not load (missing drivers or libraries?): running on the CPU.")
    return session, notices


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
