"""Test-wide fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _logging_config_is_restored() -> Iterator[None]:
    """A test that configures logging (a level, a stream it then closes) must not leave it
    so for the next: ``structlog.testing.capture_logs`` swaps only the processors, so a level
    filter left at "error" would hide every event a later test waits for."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
