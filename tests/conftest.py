"""Test set-up: every test session gets its own pyiron SQLite database and project folder.

The environment variables are set before pyiron is imported anywhere, so the user's ``~/pyiron.db`` and
``~/.pyiron`` are never touched by the tests.
"""

import os
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="pyiron_mlip_tradeoff_tests_"))
os.environ["PYIRONSQLFILE"] = str(_SESSION_DIR / "pyiron.db")
os.environ["PYIRONPROJECTPATHS"] = str(_SESSION_DIR)
os.environ["PYIRONPROJECTCHECKENABLED"] = "False"
os.environ["PYIRONDISABLE"] = "False"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from ase.build import bulk  # noqa: E402


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture
def project(request, session_dir):
    """A fresh pyiron_atomistics Project in the session folder, removed after the test."""
    from pyiron_atomistics import Project

    import pyiron_mlip_tradeoff  # noqa: F401  (registers the job classes)

    name = request.node.name.replace("[", "_").replace("]", "_").replace("-", "_")
    pr = Project(str(session_dir / name))
    yield pr
    pr.remove(enable=True, enforce=True)


@pytest.fixture
def hcp_be():
    """The 2-atom hcp Be cell (a = 2.29 Å, c = 3.58 Å)."""
    return bulk("Be", "hcp", a=2.29, c=3.58)


@pytest.fixture
def rattled_be(hcp_be):
    atoms = hcp_be.copy()
    atoms.positions += np.random.default_rng(7).normal(scale=0.05, size=atoms.positions.shape)
    return atoms


@pytest.fixture(scope="session")
def small_dataset(session_dir):
    """A real (GPAW) LadderDataset shared by the fitting tests: 12 diverse Be cells of 2–4 atoms at levels 1–3.

    Computed once per test session (about half a minute on 2 cores)."""
    from pyiron_mlip_tradeoff.ladder import run_ladder
    from pyiron_mlip_tradeoff.structures import generate_structures

    structures, _ = generate_structures(12, seed=11, oversample=3, max_atoms=4)
    results = run_ladder(structures, [1, 2, 3], session_dir / "small_dataset_ladder", cores=2)
    dataset = results.to_dataset()
    assert not dataset.failed.any()
    return dataset
