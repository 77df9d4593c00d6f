import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests (tests/*/test_fuzz_*.py) draw the same examples on every run, so a CI failure
# replays locally; no example database is written into the checkout.
settings.register_profile("mien", derandomize=True, database=None, deadline=None,
                          print_blob=True)
settings.load_profile("mien")

ROOT = Path(__file__).resolve().parents[1]


def _shared() -> Path:
    return Path(os.environ.get("MIEN_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = Path(os.environ["MIEN_DATA"]) if os.environ.get("MIEN_DATA") else _shared() / "data"
    if not path.is_dir():
        pytest.skip(f"shared face data not found at {path}; set MIEN_DATA")
    return path


@pytest.fixture(scope="session")
def shared_models() -> Path:
    path = _shared() / "models"
    if not path.is_dir():
        pytest.skip(f"shared model files not found at {path}")
    return path
