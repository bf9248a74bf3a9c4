"""Benchmark: descriptors (and reference potential) of FitSNAP's whole InP example, ours vs FitSNAP 3.1.0.4.

    nice -n 10 python benchmarks/descriptors_inp.py              # all configurations (minutes, ~1 GB)
    python benchmarks/descriptors_inp.py --limit 60              # a quick look

Data: ``shared/data/fitsnap_examples/InP_JPCA2020`` (JSON, real DFT; read by the test-side reader
``tests/_fitsnap_json.py``), settings of its ``InP-example.in``: EME-SNAP (chemflag 1), 2Jmax 6, bnormflag 1,
wselfallflag 1, bzeroflag 1, and the reference ``hybrid/overlay zero 10.0 zbl 4.0 4.2``.

FitSNAP's ``process_configs`` computes, per configuration in a fresh LAMMPS instance, the A-matrix rows and the
reference contributions together (compute snap's last column). Ours: :func:`compute_descriptors` (one LAMMPS
instance, ghost shell of the SNAP cutoff) and :func:`reference_contributions` (one LAMMPS instance). The
configurations are processed in interleaved chunks (ours, FitSNAP, ours, …) so that a change of machine load hits
both sides alike. Both run single-threaded (one BLAS thread, set below before numpy loads): FitSNAP multiplies every
block by a 480 × 480 diagonal matrix, and threaded BLAS on a busy machine would make that, not the descriptors,
dominate. The times are the sums over chunks of the calculation only (FitSNAP's data dictionaries and instance
set-up excluded). All rows are compared: energy, force and stress rows to 1e-10 relative (per column
scale), and the reference contributions against FitSNAP's targets (zero labels, so b = −reference).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # one core per side: a fair single-core comparison

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _fitsnap_json import (  # noqa: E402  (test-side reader, see the module docstring)
    INP_BISPECTRUM,
    INP_ELEMENTS,
    INP_PUBLISHED_FLAGS,
    INP_REFERENCE,
    ROOT,
    read_fitsnap_json,
)

from pyiron_mlip_tradeoff.descriptors import EV_PER_A3_IN_BAR, compute_descriptors  # noqa: E402
from pyiron_mlip_tradeoff.reference import reference_contributions  # noqa: E402

SETTINGS = {**INP_BISPECTRUM, **INP_PUBLISHED_FLAGS}
TWOJMAX = 6


def load(limit: int | None) -> list:
    files = sorted((ROOT / "InP_JPCA2020" / "JSON").glob("*/*.json"))
    if limit:
        files = files[:: max(1, len(files) // limit)][:limit]
    return [read_fitsnap_json(path) for path in files]


def _rotation(atoms) -> np.ndarray:
    from fitsnap3lib.scrapers.ase_funcs import get_apre

    return np.linalg.inv(atoms.cell[:]) @ get_apre(atoms.cell[:])


def _voigt_rotate(v: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """ASE-sign Voigt stress(es) (6, ...) → FitSNAP's rotated pressure rows in bar."""
    t = np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])
    t = np.einsum("ai,ab...,bj->ij...", rot, t, rot)
    return -EV_PER_A3_IN_BAR * t[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]


class _Worst:
    """Largest |ours − FitSNAP| per column against the largest |FitSNAP| of that column over ALL configurations.

    (A per-chunk scale would be meaningless where a chunk's rows vanish by symmetry, e.g. forces in perfect
    crystals, ~1e-14 on both sides.)
    """

    def __init__(self) -> None:
        self.diff: dict[str, np.ndarray] = {}
        self.scale: dict[str, np.ndarray] = {}

    def update(self, name: str, ours: np.ndarray, ref: np.ndarray) -> None:
        ours, ref = np.atleast_2d(ours.T).T, np.atleast_2d(ref.T).T  # 1-D: one column
        diff, scale = np.abs(ours - ref).max(axis=0), np.abs(ref).max(axis=0)
        self.diff[name] = np.maximum(self.diff.get(name, 0.0), diff)
        self.scale[name] = np.maximum(self.scale.get(name, 0.0), scale)

    @property
    def values(self) -> dict[str, float]:
        return {name: float((self.diff[name] / np.where(self.scale[name] == 0, 1.0, self.scale[name])).max())
                for name in self.diff}


def _compare(cells, ours, ref, out, worst: _Worst) -> None:
    a, b, row_type = out["a"], out["b"], out["row_type"]
    p = ours.n_columns
    forces, stresses, ref_forces, ref_stresses = [], [], [], []
    for i, atoms in enumerate(cells):
        rot = _rotation(atoms)
        block = ours.block(i)
        forces.append(np.einsum("ji,njk->nik", rot, block.force_rows.reshape(-1, 3, p)).reshape(-1, p))
        stresses.append(_voigt_rotate(block.stress_rows, rot))
        ref_forces.append((ref.forces[i] @ rot).ravel())
        ref_stresses.append(_voigt_rotate(ref.stresses[i], rot))
    worst.update("energy rows", ours.energy_rows, a[row_type == "Energy"])
    worst.update("force rows", np.concatenate(forces), a[row_type == "Force"])
    worst.update("stress rows", np.concatenate(stresses), a[row_type == "Stress"])
    n_atoms = np.array([len(c) for c in cells])
    worst.update("reference energy", ref.energies / n_atoms, -b[row_type == "Energy"])
    worst.update("reference forces", np.concatenate(ref_forces), -b[row_type == "Force"])
    worst.update("reference stress", np.concatenate(ref_stresses), -b[row_type == "Stress"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="use this many configurations (spread over groups)")
    parser.add_argument("--chunks", type=int, default=8, help="interleaved chunks")
    parser.add_argument("--workers", type=int, default=1,
                        help="also time our descriptors with this many worker processes (after the comparison)")
    args = parser.parse_args()
    if ROOT is None:
        sys.exit("FitSNAP example data not found (shared/data/fitsnap_examples)")
    from pyiron_mlip_tradeoff._fitsnap_compat import fitsnap_data, fitsnap_settings, make_fitsnap

    cells = load(args.limit)
    print(f"InP: {len(cells)} configurations, {sum(len(c) for c in cells)} atoms, 2Jmax {TWOJMAX} EME-SNAP "
          f"(480 columns), reference {INP_REFERENCE['pair_style']!r}")
    chunks = np.array_split(np.arange(len(cells)), max(1, min(args.chunks, len(cells))))
    t_desc = t_ref = t_fitsnap = 0.0
    worst = _Worst()
    energy_rows = []
    for k, idx in enumerate(chunks):
        part = [cells[i] for i in idx]
        start = time.perf_counter()
        ours = compute_descriptors(part, TWOJMAX, elements=INP_ELEMENTS, virial=True, **SETTINGS)
        t_desc += time.perf_counter() - start
        start = time.perf_counter()
        ref = reference_contributions(part, INP_ELEMENTS, INP_REFERENCE)
        t_ref += time.perf_counter() - start
        fs = make_fitsnap(fitsnap_settings(TWOJMAX, elements=INP_ELEMENTS, reference=INP_REFERENCE, **SETTINGS))
        data = fitsnap_data(part)
        start = time.perf_counter()
        fs.process_configs(data)
        t_fitsnap += time.perf_counter() - start
        out = {
            "a": np.array(fs.pt.shared_arrays["a"].array, copy=True),
            "b": np.array(fs.pt.shared_arrays["b"].array, copy=True),
            "row_type": np.asarray(fs.pt.fitsnap_dict["Row_Type"]),
        }
        del fs, data
        _compare(part, ours, ref, out, worst)
        energy_rows.append(ours.energy_rows)
        print(f"  chunk {k + 1}/{len(chunks)}: {len(part)} configurations; so far ours {t_desc + t_ref:.1f} s, "
              f"FitSNAP {t_fitsnap:.1f} s", flush=True)
    ours_total = t_desc + t_ref
    print(f"ours: descriptors {t_desc:.1f} s + reference {t_ref:.1f} s = {ours_total:.1f} s")
    print(f"FitSNAP process_configs (descriptors and reference together): {t_fitsnap:.1f} s")
    print(f"speed-up: {t_fitsnap / ours_total:.2f}x (descriptors alone {t_fitsnap / t_desc:.2f}x)")
    if args.workers > 1:
        start = time.perf_counter()
        parallel = compute_descriptors(cells, TWOJMAX, elements=INP_ELEMENTS, virial=True, n_workers=args.workers,
                                       **SETTINGS)
        t_par = time.perf_counter() - start
        same = np.array_equal(parallel.energy_rows, np.concatenate(energy_rows))
        print(f"ours, descriptors with {args.workers} worker processes (one pass over all): {t_par:.1f} s; "
              f"vs FitSNAP (one process) {t_fitsnap / (t_par + t_ref):.2f}x with the reference; "
              f"energy rows identical to the one-process pass: {same}")
        del parallel
    for name, value in worst.values.items():
        print(f"max relative difference, {name}: {value:.2e}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")
    if max(worst.values.values()) > 1e-10:
        sys.exit("rows differ by more than 1e-10")


if __name__ == "__main__":
    main()
