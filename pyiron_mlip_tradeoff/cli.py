"""Command line: ``pyiron-mlip-tradeoff demo`` (and more subcommands as the package grows)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def demo_structures() -> list:
    """A few small Be structures: perfect and rattled hcp, a strained bcc cell, an fcc cell with a shear."""
    from ase.build import bulk

    rng = np.random.default_rng(2024)
    hcp = bulk("Be", "hcp", a=2.29, c=3.58)
    rattled = hcp.repeat((2, 1, 1))
    rattled.positions += rng.normal(scale=0.08, size=rattled.positions.shape)
    bcc = bulk("Be", "bcc", a=2.55, cubic=True)
    bcc.set_cell(bcc.cell[:] @ np.diag([1.03, 0.98, 1.0]), scale_atoms=True)
    fcc = bulk("Be", "fcc", a=3.2)
    shear = np.eye(3)
    shear[0, 1] = 0.04
    fcc.set_cell(fcc.cell[:] @ shear, scale_atoms=True)
    return [hcp, rattled, bcc, fcc]


def run_demo(output: Path, levels: list[int], cores: int) -> int:
    """Run a small GPAW precision ladder in a pyiron project under ``output`` and print where results are."""
    from pyiron_atomistics import Project

    import pyiron_mlip_tradeoff  # noqa: F401  (registers the job classes)

    output = Path(output).resolve()
    pr = Project(str(output / "demo_project"))
    job = pr.create.job.PrecisionLadder("be_demo_ladder")
    if not job.status.finished:
        job.input.structures = demo_structures()
        job.input.levels = levels
        job.input.cores = cores
        job.run()
    dataset = job.to_dataset()
    dataset_path = dataset.save(output / "be_demo_ladder.h5")

    print("\nPrecision ladder (GPAW): free energy per atom (eV) and wall seconds per calculation")
    header = "config  atoms " + " ".join(f"{'L' + str(lv):>10}" for lv in dataset.levels)
    print(header)
    for c in range(dataset.n_configs):
        per_atom = dataset.energy[:, c] / dataset.n_atoms[c]
        print(f"{c:>6} {dataset.n_atoms[c]:>6} " + " ".join(f"{e:>10.4f}" for e in per_atom))
    print("seconds       " + " ".join(f"{s:>10.2f}" for s in np.nanmean(dataset.seconds, axis=1)))
    print(f"\nfailed calculations: {int(dataset.failed.sum())}")
    print(f"pyiron project:   {pr.path}")
    print(f"ladder job:       {job.job_name} (id {job.job_id}), HDF5 {job.project_hdf5.file_name}")
    print(f"LadderDataset:    {dataset_path}")
    print("job table:")
    print(pr.job_table()[["id", "job", "hamilton", "status"]].to_string(index=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyiron-mlip-tradeoff", description="qSNAP cost/accuracy trade-off tools")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a small GPAW precision ladder on Be structures")
    demo.add_argument("--output", default="demo_output", help="folder for the pyiron project and dataset")
    demo.add_argument("--levels", type=int, nargs="+", default=[1, 2, 3])
    demo.add_argument("--cores", type=int, default=2, help="calculations run side by side")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo(Path(args.output), args.levels, args.cores)
    return 1


if __name__ == "__main__":
    sys.exit(main())
