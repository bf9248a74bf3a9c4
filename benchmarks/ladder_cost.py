"""Measured GPAW cost per precision level for a 2-atom and a 16-atom Be cell (levels 1–5).

Each calculation runs exactly as in a PrecisionLadder (one single-threaded worker process per calculation);
the wall seconds are GPAW's own time, without the worker's Python start-up; CPU seconds are printed too, since
on a shared machine they are the steadier measure. Cells are rattled by 0.05 Å
(seeded) so that, like the study's configurations, they have no symmetry to exploit.

    python benchmarks/ladder_cost.py [--levels 1 2 3 4 5] [--sizes 2 16]
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
from ase.build import bulk

from pyiron_mlip_tradeoff.ladder import run_ladder


def be_cell(n_atoms: int, seed: int = 0):
    repeats = {2: (1, 1, 1), 4: (2, 1, 1), 8: (2, 2, 1), 16: (2, 2, 2)}[n_atoms]
    atoms = bulk("Be", "hcp", a=2.29, c=3.58).repeat(repeats)
    atoms.positions += np.random.default_rng(seed).normal(scale=0.05, size=atoms.positions.shape)
    return atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 16])
    args = parser.parse_args()
    print(f"{'atoms':>5} {'level':>5} {'k-mesh':>9} {'SCF it':>6} {'wall s':>9} {'CPU s':>9} "
          f"{'wall/L1':>8} {'CPU/L1':>8}")
    for n_atoms in args.sizes:
        with tempfile.TemporaryDirectory() as workdir:
            results = run_ladder([be_cell(n_atoms)], args.levels, workdir)
        wall, cpu = results.seconds[:, 0], results.core_seconds[:, 0]
        for i, level in enumerate(results.levels):
            mesh = "x".join(str(int(k)) for k in results.kmesh[i, 0])
            print(
                f"{n_atoms:>5} {level.level:>5} {mesh:>9} {results.scf_iterations[i, 0]:>6} {wall[i]:>9.2f} "
                f"{cpu[i]:>9.2f} {wall[i] / wall[0]:>8.1f} {cpu[i] / cpu[0]:>8.1f}"
            )
        if results.failed.any():
            print("failed:", [m for row in results.messages for m in row if m])


if __name__ == "__main__":
    main()
