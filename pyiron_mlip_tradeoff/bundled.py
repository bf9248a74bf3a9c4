"""The embedded Be dataset: how it is made (structures, ladder, seed) and how to regenerate it.

The reference study's 20,000 VASP configurations are not obtainable, so the package ships its own: diverse Be
configurations from :mod:`pyiron_mlip_tradeoff.structures`, every one computed with GPAW at all six levels of the
*embedded ladder* by the ``PrecisionLadder`` job. Levels 1–4 are the reference ladder unchanged; the reference
levels 5 and 6 (0.25 Å⁻¹/700 eV and 0.10 Å⁻¹/900 eV) cost hours per small cell on 2 cores, so the embedded top
levels are cheaper settings (see :data:`EMBEDDED_LADDER`), and ``validate_top_level`` shows how close the embedded
level 6 is to the reference level 6 on a sample of configurations.

Every finished calculation is kept as one small JSON file in a *unit store* (``data/be_ladder/units`` in the
repository), named by the calculation's fingerprint (structure, level settings, engine options; see
:mod:`pyiron_mlip_tradeoff.ladder`), so the computation resumes across sittings and machines; ``make_bundled_dataset`` assembles the
store into the compact HDF5 file inside the package once every calculation is present.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .dataset import BUNDLED_PATH, LadderDataset
from .precision import REFERENCE_LADDER, PrecisionLevel

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "validate_top_level",
    "validation_sample",
    "REFERENCE_TOP_LEVEL",
    "EMBEDDED_LADDER",
    "BUNDLED_SEED",
    "N_BUNDLED",
    "MAX_ATOMS",
    "bundled_structures",
    "collect_bundled",
    "store_status",
    "make_bundled_dataset",
    "write_bundled",
    "complete_levels",
    "DEFAULT_UNIT_STORE",
]

#: the embedded ladder: reference levels 1–4, then cheaper top levels (k-spacing 1/Å, cutoff eV)
EMBEDDED_LADDER: dict[int, PrecisionLevel] = {
    1: REFERENCE_LADDER[1],
    2: REFERENCE_LADDER[2],
    3: REFERENCE_LADDER[3],
    4: REFERENCE_LADDER[4],
    5: PrecisionLevel(5, 0.35, 600.0),
    6: PrecisionLevel(6, 0.25, 700.0),
}

#: generator seed, number of configurations and largest cell of the bundled dataset
BUNDLED_SEED = 2026
N_BUNDLED = 410
MAX_ATOMS = 10

#: where the repository keeps the reference-level-6 check of the embedded top level
DEFAULT_VALIDATION_STORE = Path(__file__).resolve().parent.parent / "data" / "be_top_level_check"

#: where the repository keeps the finished calculations of the bundled dataset
DEFAULT_UNIT_STORE = Path(__file__).resolve().parent.parent / "data" / "be_ladder"


def bundled_structures(cache: str | os.PathLike | None = None) -> tuple[list, list[str]]:
    """The bundled dataset's structures and family labels (the ground-state hcp cell first).

    Generating them takes about a minute; they are cached in ``<unit store>/structures.h5`` together with the
    generator settings, and regenerated whenever those settings change.
    """
    import json

    import h5io

    from .dataset import arrays_to_atoms, atoms_to_arrays
    from .structures import generate_structures

    cache = DEFAULT_UNIT_STORE / "structures.h5" if cache is None else Path(cache)
    settings = json.dumps({"n": N_BUNDLED, "seed": BUNDLED_SEED, "max_atoms": MAX_ATOMS})
    if cache.is_file():
        data = h5io.read_hdf5(str(cache), title="bundled_structures")
        if data.get("settings") == settings:
            return arrays_to_atoms(data), list(json.loads(data["labels"]))
    structures, labels = generate_structures(N_BUNDLED, seed=BUNDLED_SEED, max_atoms=MAX_ATOMS)
    cache.parent.mkdir(parents=True, exist_ok=True)
    data = atoms_to_arrays(structures)
    data.update({"settings": settings, "labels": json.dumps(labels)})
    h5io.write_hdf5(str(cache), data, title="bundled_structures", overwrite=True)
    return structures, labels


def collect_bundled(levels: list[int] | None = None, unit_store: str | os.PathLike = DEFAULT_UNIT_STORE) -> LadderDataset:
    """The bundled configurations that are finished at all ``levels`` (default: all six), read from the unit store.

    Lets every later step run on the part of the dataset computed so far, before the HDF5 file is complete.
    """
    from .ladder import collect_ladder

    structures, labels = bundled_structures()
    chosen = sorted(EMBEDDED_LADDER) if levels is None else list(levels)
    results = collect_ladder(structures, [EMBEDDED_LADDER[lv] for lv in chosen], unit_store, "gpaw", {})
    dataset = results.to_dataset()
    dataset.metadata.update({"ground_state_index": 0, "families": labels, "generator_seed": BUNDLED_SEED})
    complete = np.flatnonzero(~dataset.failed.any(axis=0))
    subset = dataset.subset(complete)
    subset.metadata["bundled_indices"] = complete.tolist()
    subset.metadata["ground_state_index"] = 0 if (complete.size and complete[0] == 0) else -1
    return subset


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
        output: the bundled HDF5 file (written by :func:`write_bundled`).
        cores: calculations run side by side.
        levels: subset of the embedded levels to compute now (default all six). The file is (re)written from the
            unit store afterwards with every level finished for all configurations (see :func:`write_bundled`).
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
    dataset.metadata.update(_provenance(labels))
    write_bundled(unit_store, output)
    return dataset


def _provenance(labels: list[str]) -> dict:
    """How the bundled configurations were made and computed (stored in the dataset's metadata)."""
    return {
        "ground_state_index": 0,
        "generator": "pyiron_mlip_tradeoff.structures.generate_structures",
        "generator_seed": BUNDLED_SEED,
        "max_atoms": MAX_ATOMS,
        "families": labels,
        "ladder": "embedded ladder (pyiron_mlip_tradeoff.bundled.EMBEDDED_LADDER)",
        "ladder_settings": {lv: EMBEDDED_LADDER[lv].describe() for lv in sorted(EMBEDDED_LADDER)},
    }


def complete_levels(unit_store: str | os.PathLike = DEFAULT_UNIT_STORE) -> list[int]:
    """The embedded levels 1…k finished (and not failed) for every bundled configuration (the longest such prefix)."""
    status = store_status(unit_store)
    done: list[int] = []
    for level in sorted(EMBEDDED_LADDER):
        if status.loc[level, "finished"] != N_BUNDLED:
            break
        done.append(level)
    return done


def write_bundled(
    unit_store: str | os.PathLike = DEFAULT_UNIT_STORE, output: str | os.PathLike = BUNDLED_PATH
) -> LadderDataset | None:
    """Assemble the compact HDF5 file of the bundled dataset from the unit store.

    The file holds every configuration at the levels 1…k that are finished for all of them. While the top levels
    are still being computed it is an *interim* file: ``metadata["pending_levels"]`` lists the missing levels and
    :func:`~pyiron_mlip_tradeoff.dataset.load_bundled` says so. Returns ``None`` (and writes nothing) when not even
    level 1 is complete.
    """
    levels = complete_levels(unit_store)
    if not levels:
        return None
    dataset = collect_bundled(levels, unit_store)
    _, labels = bundled_structures()
    dataset.metadata.update(_provenance(labels))
    dataset.metadata["pending_levels"] = [lv for lv in sorted(EMBEDDED_LADDER) if lv not in levels]
    dataset.metadata.pop("bundled_indices", None)
    dataset.save(output)
    return dataset


#: the reference study's level 6 (0.10 Å⁻¹, 900 eV), numbered 60 so that it is told apart from the embedded 6 in tables
REFERENCE_TOP_LEVEL = PrecisionLevel(60, REFERENCE_LADDER[6].kspacing, REFERENCE_LADDER[6].cutoff)


def validation_sample(structures: list, labels: list[str], n_configs: int, reference: PrecisionLevel) -> list[int]:
    """Indices of the ``n_configs`` cheapest configurations at ``reference`` (atoms × k-points), the cheapest
    member of every structure family (the label before its first ``_``) first, then the cheapest of the rest."""
    cost = np.array([len(a) * np.prod(reference.kpoint_mesh(a.cell[:])) for a in structures])
    families = [label.split("_")[0] for label in labels]
    order = [int(i) for i in np.argsort(cost, kind="stable")]
    chosen: list[int] = []
    seen: set[str] = set()
    for i in order:
        if families[i] not in seen:
            seen.add(families[i])
            chosen.append(i)
    chosen = chosen[:n_configs]
    return chosen + [i for i in order if i not in chosen][: n_configs - len(chosen)]


def validate_top_level(
    n_configs: int = 10, unit_store: str | os.PathLike = DEFAULT_VALIDATION_STORE, cores: int = 2,
    progress: bool = True, embedded: PrecisionLevel = EMBEDDED_LADDER[6],
    reference: PrecisionLevel = REFERENCE_TOP_LEVEL,
) -> pd.DataFrame:
    """Compare the embedded level 6 with the reference level 6 (0.10 Å⁻¹, 900 eV) on bundled configurations.

    The ``n_configs`` configurations of :func:`validation_sample` (so that crystals, defects, surfaces and random
    packings are all represented) are computed at both settings; finished calculations in ``unit_store`` are
    reused, so the check resumes. ``embedded`` and ``reference`` default to the two level-6 settings (the tests use
    cheap levels).

    Returns:
        DataFrame, one row per configuration: ``config``, ``family``, ``n_atoms``, ``energy_diff`` (meV/atom, embedded
        minus reference), ``force_rmse`` (meV/Å), ``max_force_diff`` (meV/Å), and the CPU seconds of both.
    """
    import pandas as pd

    from .ladder import run_ladder

    structures, labels = bundled_structures()
    chosen = validation_sample(structures, labels, n_configs, reference)
    sample = [structures[i] for i in chosen]
    results = run_ladder(sample, [embedded, reference], unit_store, cores=cores, progress=progress)
    rows = []
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in sample])])
    for k, index in enumerate(chosen):
        n = len(sample[k])
        dforce = (results.forces[0, offsets[k] : offsets[k + 1]] - results.forces[1, offsets[k] : offsets[k + 1]]) * 1e3
        rows.append(
            {
                "config": index,
                "family": labels[index],
                "n_atoms": n,
                "energy_diff": (results.energy[0, k] - results.energy[1, k]) / n * 1e3,
                "force_rmse": float(np.sqrt(np.mean(dforce**2))),
                "max_force_diff": float(np.abs(dforce).max()),
                "core_seconds_embedded": results.core_seconds[0, k],
                "core_seconds_reference": results.core_seconds[1, k],
            }
        )
    return pd.DataFrame(rows)


def store_status(unit_store: str | os.PathLike = DEFAULT_UNIT_STORE) -> pd.DataFrame:
    """Progress of the bundled ladder: per embedded level the finished, failed and missing calculations and the
    mean wall and CPU seconds of the finished ones (a DataFrame indexed by level)."""
    import pandas as pd

    from .ladder import collect_ladder

    structures, _ = bundled_structures()
    levels = [EMBEDDED_LADDER[lv] for lv in sorted(EMBEDDED_LADDER)]
    results = collect_ladder(structures, levels, unit_store, "gpaw", {})
    pending = np.array([[m == "not computed" for m in row] for row in results.messages])
    done = ~pending
    rows = []
    for i, level in enumerate(levels):
        rows.append(
            {
                "level": level.level,
                "settings": level.describe(),
                "finished": int((done[i] & ~results.failed[i]).sum()),
                "failed": int((done[i] & results.failed[i]).sum()),
                "missing": int(pending[i].sum()),
                "mean_seconds": float(np.nanmean(results.seconds[i])) if done[i].any() else float("nan"),
                "mean_core_seconds": float(np.nanmean(results.core_seconds[i])) if done[i].any() else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("level")
