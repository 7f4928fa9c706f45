"""The Python wheels the extension zips carry: locked with hashes, downloaded unmodified from PyPI.

One zip per platform serves both of Blender's Pythons: cp311 (Blender 4.5 LTS and 5.0, numpy 1.26) and cp313
(5.1 and newer, numpy 2). Left out: what Blender bundles itself (numpy, requests and its dependencies,
zstandard, Cython, cattrs/attrs: bpy's own requirements); onnxruntime's dependencies that inference never
imports (sympy, mpmath, coloredlogs, humanfriendly: used only by its model-conversion tools); and hf-xet,
which huggingface_hub only uses when importable (without it, downloads take the plain HTTP path whose progress,
cancel and resume the tests cover, and the linux zip keeps room for the bundled U2-Net-p under 100 MB).

    python scripts/extension_wheels.py lock   # resolve requirements/extension.txt for every target -> requirements/wheels.lock
    python scripts/extension_wheels.py download linux-x64   # fill the download cache (the tests' seed)
    (the build calls download() for the targets it builds; each file must match the lock's name and SHA-256)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements" / "extension.txt"
LOCK = ROOT / "requirements" / "wheels.lock"
CACHE = ROOT / ".cache" / "wheels"

# Blender platform -> wheel platform tags pip may take (for macOS it also takes older versions by itself;
# for Linux each manylinux tag must be named).
PLATFORMS = {
    "windows-x64": ["win_amd64"],
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "macos-arm64": ["macosx_14_0_arm64"],
    "macos-x64": ["macosx_14_0_x86_64"],
}
PYTHONS = ("3.11", "3.13")
BUNDLED_WITH_BLENDER = {"numpy", "requests", "urllib3", "idna", "certifi", "charset-normalizer", "zstandard",
                        "cython", "cattrs", "attrs"}
UNUSED_AT_RUNTIME = {"sympy", "mpmath", "coloredlogs", "humanfriendly", "hf-xet"}


def project_name(wheel: str) -> str:
    return wheel.split("-")[0].lower().replace("_", "-")


def _pip_download(directory: Path, tags: list[str], python: str, *requirements: str, deps: bool) -> None:
    platforms = [arg for tag in tags for arg in ("--platform", tag)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", *platforms,
         "--python-version", python, "--dest", str(directory), *([] if deps else ["--no-deps"]), *requirements],
        check=True,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock() -> None:
    """Resolve the requirements for every platform and Python; record each wheel kept and its hash."""
    lines = ["# Blender platform, Python, wheel file, SHA-256: written by `python scripts/extension_wheels.py lock`."]
    for platform, tags in PLATFORMS.items():
        for python in PYTHONS:
            with tempfile.TemporaryDirectory() as tmp:
                _pip_download(Path(tmp), tags, python, "-r", str(REQUIREMENTS), deps=True)
                for wheel in sorted(Path(tmp).glob("*.whl")):
                    if project_name(wheel.name) not in BUNDLED_WITH_BLENDER | UNUSED_AT_RUNTIME:
                        lines.append(f"{platform} {python} {wheel.name} {_sha256(wheel)}")
    LOCK.write_text("\n".join(lines) + "\n")
    print(f"{LOCK}: {len(lines) - 1} wheels")


def locked(platforms: list[str]) -> list[tuple[str, str, str, str]]:
    """(platform, python, wheel file, sha256) for the given platforms."""
    rows = [line.split() for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    return [tuple(row) for row in rows if row[0] in platforms]


def download(platforms: list[str]) -> list[Path]:
    """Every locked wheel for `platforms`, from the download cache or PyPI, each checked against its hash."""
    wheels = {}
    for platform, python, name, sha in locked(platforms):
        path = CACHE / name
        if not (path.is_file() and _sha256(path) == sha):
            pin = f"{name.split('-')[0]}=={name.split('-')[1]}"
            with tempfile.TemporaryDirectory() as tmp:
                _pip_download(Path(tmp), PLATFORMS[platform], python, pin, deps=False)
                got = Path(tmp) / name
                if not got.is_file() or _sha256(got) != sha:
                    raise SystemExit(f"{name}: PyPI did not give the locked file and hash; refusing to build.")
                CACHE.mkdir(parents=True, exist_ok=True)
                got.replace(path)
        wheels[name] = path
    return sorted(wheels.values())


if __name__ == "__main__":
    if sys.argv[1:] == ["lock"]:
        lock()
    elif sys.argv[1:2] == ["download"] and set(sys.argv[2:]) <= set(PLATFORMS):
        print(f"{len(download(sys.argv[2:]))} wheels in {CACHE}")
    else:
        raise SystemExit(__doc__)
