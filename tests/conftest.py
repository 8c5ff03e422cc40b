import logging
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _data_dir(name: str, marker: str) -> Path:
    env = os.environ.get("CROSSMODAL_TEST_DATA")
    root = Path(env) if env else SHARED
    d = root / name
    if not (d / marker).is_file():
        pytest.skip(f"real data {d / marker} not present")
    return d


@pytest.fixture(scope="session")
def wiki_dir() -> Path:
    return _data_dir("wiki", "raw_features.mat")


@pytest.fixture(scope="session")
def mirflickr_dir() -> Path:
    return _data_dir("mirflickr25k", "mirflickr25k-yall.mat")


@pytest.fixture(scope="session")
def uci_mat() -> Path:
    """The UCI handwritten digits as a paired two-view .mat (I_tr/T_tr/L_tr/I_te/T_te/L_te + P_tr/P_te)."""
    return _data_dir("uci-handwritten", "uci_all.mat") / "uci_all.mat"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def toy_small():
    from crossmodal.data.sources.toy import make_toy

    return make_toy(n=400, seed=3, n_query=60)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A randomly initialised CLIP (2 layers of width 16) with its tokenizer and image
    processor, saved to a local folder: what the featurizers load, with no download."""
    from tests.fakes import make_tiny_clip

    return make_tiny_clip(tmp_path_factory.mktemp("tinyclip"))


@pytest.fixture
def crossmodal_records(caplog):
    """``caplog`` that also sees the ``crossmodal`` logger's records: the CLI's
    :func:`~crossmodal.progress.configure_logging` stops that logger propagating to the root
    logger (where caplog listens), so whether a record arrives would depend on test order."""
    logger = logging.getLogger("crossmodal")
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
