"""Where the real FitSNAP/VASP example data live (``<repo>/../shared/data``, else ``/work/shared/data``)."""

from pathlib import Path

import pytest


def shared_data() -> Path | None:
    for candidate in (Path(__file__).resolve().parents[1] / ".." / "shared" / "data", Path("/work/shared/data")):
        if (candidate / "fitsnap_examples").is_dir():
            return candidate.resolve()
    return None


def example(*parts: str) -> Path:
    """Path of a shared example; skips the test with the reason when the folder is absent."""
    root = shared_data()
    if root is None:
        pytest.skip("the shared DFT data folder (../shared/data) is not present in this checkout")
    path = root.joinpath("fitsnap_examples", *parts)
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return path
