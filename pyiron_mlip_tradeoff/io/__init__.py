"""Importers and exporters of ``LadderDataset`` (one io area).

* ASE ``Atoms`` / extended XYZ: :func:`from_atoms`, :func:`from_extxyz`, :func:`to_atoms`, :func:`to_extxyz`;
* pyiron: :func:`from_training_container`, :func:`to_training_container` (pyiron_potentialfit), :func:`from_pyiron_jobs`
  (finished DFT jobs);
* VASP run folders: :func:`read_vasp_runs` (pyiron's OUTCAR parser);
* FitSNAP set-ups: :func:`read_fitsnap` (in :mod:`pyiron_mlip_tradeoff.fitsnap_io`).

The same functions are reachable as ``LadderDataset.from_atoms(...)``, ``dataset.to_extxyz(...)`` etc.
"""

from ..fitsnap_io import FitSnapInputError, FitSnapSetup, read_fitsnap
from .ase_io import from_atoms, from_extxyz, to_atoms, to_extxyz
from .pyiron_io import from_pyiron_jobs, from_training_container, to_training_container
from .vasp import read_outcar, read_vasp_runs

__all__ = [
    "from_atoms", "from_extxyz", "to_atoms", "to_extxyz", "from_training_container", "to_training_container",
    "from_pyiron_jobs", "read_vasp_runs", "read_outcar", "read_fitsnap", "FitSnapSetup", "FitSnapInputError",
]
