"""Fixtures for schema tests: the shared corpus (skipped when absent) and a
schema written to a temporary folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not present in this checkout")
    return CORPUS


@pytest.fixture
def write_schema(tmp_path: Path) -> Callable[..., Path]:
    """Write files (name -> text) and return the path of the first one."""

    def write(files: dict[str, str] | str) -> Path:
        if isinstance(files, str):
            files = {"schema.json": files}
        first = None
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            first = first or path
        assert first is not None
        return first

    return write
