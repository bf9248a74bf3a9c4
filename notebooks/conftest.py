"""Notebook tests (collected by nbmake, ``--nbmake`` in pyproject.toml): each test session runs the notebooks with
their pyiron database and projects in a fresh temporary folder, so two sessions never share a database and a run
by hand (which uses ``notebooks/pyiron_work``) is left alone. Notebook kernels inherit this environment variable.
The folder is removed when the session passes and kept for inspection when it fails."""

import os
import shutil
import tempfile

_WORK = tempfile.mkdtemp(prefix="pyiron_mlip_tradeoff_notebooks_")
os.environ["PYIRON_MLIP_TRADEOFF_NOTEBOOK_WORK"] = _WORK


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == 0:
        shutil.rmtree(_WORK, ignore_errors=True)
