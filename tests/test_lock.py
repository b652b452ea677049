"""requirements.lock (pip, Docker) must pin exactly what uv.lock pins."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _uv() -> str:
    local = ROOT / ".tools" / "bin" / "uv"
    found = str(local) if local.exists() else shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed here (make test installs it into .tools/)")
    return found


def test_requirements_lock_matches_uv_lock() -> None:
    exported = subprocess.run(
        [
            _uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--format",
            "requirements-txt",
            "--no-header",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    committed = (ROOT / "requirements.lock").read_text()
    body = "\n".join(line for line in committed.splitlines() if not line.startswith("#"))
    assert body.strip() == exported.strip(), "run `make lock` and commit requirements.lock"
