"""The embedded Be dataset: how it is made (structures, ladder, seed) and how to regenerate it.

The reference study's 20,000 VASP configurations are not obtainable, so the package ships its own: diverse Be
configurations from :mod:`pyiron_mlip_tradeoff.structures`, every one computed with GPAW at all six levels of the
*embedded ladder* by the ``PrecisionLadder`` job. Levels 1–4 are the reference ladder unchanged; the reference
levels 5 and 6 (0.25 Å⁻¹/700 eV and 0.10 Å⁻¹/900 eV) cost hours per small cell on 2 cores, so the embedded top
levels are cheaper settings (see :data:`EMBEDDED_LADDER`), and ``validate_top_level`` shows how close the embedded
level 6 is to the reference level 6 on a sample of configurations.

Every finished calculation is kept as one small JSON file in a *unit store* (``data/be_ladder_units`` in the
repository), so the computation resumes across sittings and machines; ``make_bundled_dataset`` assembles the
store into the compact HDF5 file inside the package once every calculation is present.
"""

from __future__ import annotations

import os
from pathlib import Path

from .dataset import BUNDLED_PATH, LadderDataset
from .precision import REFERENCE_LADDER, PrecisionLevel

__all__ = [
    "EMBEDDED_LADDER",
    "BUNDLED_SEED",
    "N_BUNDLED",
    "MAX_ATOMS",
    "bundled_structures",
    "make_bundled_dataset",
    "DEFAULT_UNIT_STORE",
]

#: the embedded ladder: reference levels 1–4, then cheaper top levels (k-spacing 1/Å, cutoff eV)
EMBEDDED_LADDER: dict[int, PrecisionLevel] = {
    1: REFERENCE_LADDER[1],
    2: REFERENCE_LADDER[2],
    3: REFERENCE_LADDER[3],
    4: REFERENCE_LADDER[4],
    5: PrecisionLevel(5, 0.35, 600.0),
    6: PrecisionLevel(6, 0.20, 700.0),
}

#: generator seed, number of configurations and largest cell of the bundled dataset
BUNDLED_SEED = 2026
N_BUNDLED = 420
MAX_ATOMS = 12

#: where the repository keeps the finished calculations of the bundled dataset
DEFAULT_UNIT_STORE = Path(__file__).resolve().parent.parent / "data" / "be_ladder_units"


def bundled_structures() -> tuple[list, list[str]]:
    """The bundled dataset's structures and family labels (the ground-state hcp cell first)."""
    from .structures import generate_structures

    return generate_structures(N_BUNDLED, seed=BUNDLED_SEED, max_atoms=MAX_ATOMS)


def make_bundled_dataset(
    project_path: str | os.PathLike,
    unit_store: str | os.PathLike = DEFAULT_UNIT_STORE,
    output: str | os.PathLike = BUNDLED_PATH,
    cores: int = 2,
    levels: list[int] | None = None,
) -> LadderDataset:
    """Run (or resume) the bundled ladder with the ``PrecisionLadder`` job and write the HDF5 file.

    Args:
        project_path: pyiron project folder for the ladder job.
        unit_store: folder of finished calculations (resumed from, added to).
        output: HDF5 file to write once all levels are complete.
        cores: calculations run side by side.
        levels: subset of the embedded levels to compute now (default all six); the file is written only when
            all six are present.
    """
    from pyiron_atomistics import Project

    import pyiron_mlip_tradeoff  # noqa: F401  (registers the job classes)

    structures, labels = bundled_structures()
    chosen = sorted(EMBEDDED_LADDER) if levels is None else list(levels)
    pr = Project(str(project_path))
    name = "be_bundled_ladder_" + "_".join(str(lv) for lv in chosen)
    job = pr.create.job.PrecisionLadder(name)
    if not job.status.finished:
        job.input.structures = structures
        job.input.levels = [EMBEDDED_LADDER[lv] for lv in chosen]
        job.input.cores = cores
        job.input.unit_store = str(unit_store)
        job.run()
    dataset = job.to_dataset()
    dataset.metadata.update(
        {
            "ground_state_index": 0,
            "generator": "pyiron_mlip_tradeoff.structures.generate_structures",
            "generator_seed": BUNDLED_SEED,
            "max_atoms": MAX_ATOMS,
            "families": labels,
            "ladder": "embedded ladder (pyiron_mlip_tradeoff.bundled.EMBEDDED_LADDER)",
        }
    )
    if chosen == sorted(EMBEDDED_LADDER):
        dataset.save(output)
    return dataset
