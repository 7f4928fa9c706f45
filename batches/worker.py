"""A batch's worker process: `cli.py --batch-worker`, its own Blender module instance, models loaded once.

JSON lines (the protocol of inference/runtime/jobs.py's ProcessJob, with many requests): the first line on stdin is
the run's hello {"runtime": RuntimeSettings fields, "online", "accept_license"}; then one request a line {"photo",
"depth_map", "outputs", "settings"}, each answered on stdout by {"event": "result", "result"} (every output in
place) or {"event": "error", "message"}. The worker ends at the end of its input, on SIGTERM once the photo in
hand is written or dropped (its outputs all together or none), and with its parent (Linux).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from ..inference.errors import InputError
from ..inference.settings import MeshSettings


def serve(cli) -> int:
    """The worker's life; `cli` is the CLI module that started it (its interruptions, models and sentences)."""
    _end_with_parent()
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 PID` prints where a stuck worker is, on the batch's stderr
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # Blender and its exporters print on stdout: the protocol's lines alone go to the channel
    with cli._Interrupts() as interrupts:
        models = None
        try:  # stopped while still loading (the batch ended before this worker's first photo): no traceback
            hello = sys.stdin.readline()
            if not hello:  # the driver ended before it said hello
                return 0
            cli.load_blender(interrupts)
            models = _models(cli, json.loads(hello))
            interrupts.cancel = models.cancel
            for line in sys.stdin:
                # SIGTERM stops the photo at its next checkpoint (a model run at once), never between its outputs
                # moved into place and its answer: the driver journals every photo that is written.
                with interrupts.shielded():
                    answer = convert_request(json.loads(line), models, interrupts, cli)
                    if not _answer(channel, answer):
                        return 128 + signal.SIGTERM  # the driver is gone: nobody left to answer
                interrupts.checkpoint()
        except cli.Interrupted as interrupted:
            return interrupted.exit_status
        finally:
            if models is not None:
                models.workers.close()
    return 0


def _models(cli, hello: dict):
    """The models of the run's hello: its runtime settings, downloads allowed or not, licences accepted or not."""
    return cli._model_access(argparse.Namespace(online=hello["online"], accept_license=hello["accept_license"],
                                                **hello["runtime"]))


_here: dict = {}  # convert_here's models, made once per process


def convert_here(cli, hello: dict, request: dict, return_files: bool) -> dict:
    """One photo in a process another engine runs (a Ray worker), the models kept for the photos that follow. With
    `return_files`, the outputs (request["outputs"]: names) are written into a temporary folder here and come
    back in the answer ("files": name -> bytes, sidecar files included) for the caller to write."""
    if "models" not in _here:
        _here["models"], _here["interrupts"] = _models(cli, hello), cli._Interrupts()  # no signal handling here
    if not return_files:
        return convert_request(request, _here["models"], _here["interrupts"], cli)
    with tempfile.TemporaryDirectory(prefix="image_to_mesh-") as folder:
        outputs = [str(Path(folder) / name) for name in request["outputs"]]
        answer = convert_request(dict(request, outputs=outputs), _here["models"], _here["interrupts"], cli)
        if answer["event"] == "result":
            answer["files"] = {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}
    return answer


def request_of(photo: Path, depth_map: Path | None, outputs: list[Path], settings: MeshSettings) -> dict:
    return {"photo": str(photo), "depth_map": depth_map and str(depth_map), "outputs": [str(o) for o in outputs],
            "settings": asdict(settings)}


def convert_request(request: dict, models, interrupts, cli) -> dict:
    """One photo of a batch, converted here: its answer, a result or a failure's sentence."""
    from ..inference.pipeline import check_sources
    from ..operators.builders.convert import convert_file

    photo = Path(request["photo"])
    depth_map = Path(request["depth_map"]) if request["depth_map"] else None
    settings = MeshSettings(**request["settings"])
    try:
        check_sources(settings, depth_map is not None, models)
        result = convert_file(photo, depth_map, [Path(o) for o in request["outputs"]], settings, models,
                              interrupts.checkpoint, interrupts.shielded)
    except InputError as err:
        interrupts.checkpoint()  # a model run cancelled by the signal: the interruption, not a failure
        return {"event": "error", "message": str(err)}
    except (cli.Interrupted, KeyboardInterrupt):
        raise
    except Exception as err:  # a bug in one photo: the details in a log file, the batch goes on
        return {"event": "error", "message": cli._unexpected(err, photo)}
    return {"event": "result", "result": cli._finite(result)}


def _answer(channel, answer: dict) -> bool:
    """Send an answer to the driver; False when the driver has died (its end of the pipe closed)."""
    try:
        channel.write(json.dumps(answer, allow_nan=False) + "\n")
        channel.flush()
    except BrokenPipeError:
        return False
    return True


def _end_with_parent() -> None:
    """SIGTERM when the batch's driver dies, even by SIGKILL (Linux): no orphan goes on writing into the folder."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the driver died before the line above
            sys.exit(143)
