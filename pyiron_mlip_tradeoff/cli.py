"""Command line: ``pyiron-mlip-tradeoff demo`` (and more subcommands as the package grows)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pyiron_atomistics import Project

    from .dataset import LadderDataset


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
    run_demo_grid(pr, output)
    return 0


def demo_dataset() -> tuple[LadderDataset | None, str]:
    """The bundled dataset (interim while its top levels are computed: the levels finished for all 410 configurations)."""
    from .dataset import load_bundled

    try:
        dataset = load_bundled(warn_interim=False)  # the description below says it
    except FileNotFoundError:
        return None, "no bundled dataset in this installation"
    pending = dataset.metadata.get("pending_levels") or []
    note = f"; levels {pending} still being computed" if pending else ""
    return dataset, f"bundled dataset ({dataset.n_configs} configurations, levels {list(dataset.levels)}{note})"


def run_demo_grid(pr: Project, output: Path) -> None:
    """A small trade-off grid on the bundled data: Pareto figures and a recommended recipe."""
    from .plots import plot_pareto, plot_subset_size, plot_weight_tradeoff

    dataset, description = demo_dataset()
    if dataset is None:
        print(f"\ntrade-off grid skipped: {description}")
        return
    path = dataset.save(output / "demo_grid_dataset.h5")
    pool = (dataset.n_configs + 1) // 2  # the training pool of the default 50/25/25 split
    sizes = sorted({max(4, pool // 8), max(6, pool // 4), max(8, pool // 2), pool})
    grid = pr.create.job.TradeoffGrid("be_demo_grid")
    if not grid.status.finished:
        grid.input.dataset = str(path)
        grid.input.subset_sizes = sizes
        grid.input.twojmax = [4]
        grid.input.sampling = ["energy", "block", "random"]
        grid.input.repetitions = 1
        grid.run()
    table = grid.get_table()
    top = int(table.reference_level.iloc[0])
    print(f"\nTrade-off grid on the {description}: {len(table)} qSNAP fits (2Jmax 4), errors vs level {top}")
    for plot, filename in ((plot_pareto, "pareto_fronts.png"), (plot_weight_tradeoff, "energy_force_weights.png"),
                           (plot_subset_size, "error_vs_subset_size.png")):
        plot(table, path=output / filename)
        print(f"figure: {output / filename}")
    best_energy, best_force = table.validation_energy_rmse.min(), table.validation_force_rmse.min()
    target_energy, target_force = 1.5 * best_energy, 1.5 * best_force
    choice = grid.recommend(max_energy_rmse=target_energy, max_force_rmse=target_force, max_twojmax=4)
    print(f"example target: energy ≤ {target_energy:.1f} meV/atom and forces ≤ {target_force:.0f} meV/Å "
          "(1.5× the best validation errors in the grid; the recipe is chosen on the validation set, the test set "
          "is only reported)")
    print(choice.message)
    print("recipe:", choice.recipe())


#: the study's Table 3 (VASP, Be, vs level 6): energy RMS meV/atom unshifted, bulk-shifted, mean-shifted; force meV/Å
STUDY_TABLE3 = {
    1: (497.05, 437.96, 221.72, 417.76),
    2: (64.31, 192.14, 47.46, 163.07),
    3: (15.34, 20.21, 15.28, 77.64),
    4: (5.59, 59.34, 5.39, 51.17),
    5: (0.54, 2.42, 0.50, 10.17),
}
#: the study's mean seconds per configuration (A100, ~50 atoms)
STUDY_SECONDS = {1: 8.33, 2: 10.02, 3: 14.80, 4: 19.18, 5: 91.99, 6: 996.14}


def print_dft_errors(dataset_path: str | None, figure: str | None, reference_level: int | None = None) -> int:
    """Print the DFT error report (Table 3 analogue) next to the study's numbers, against ``reference_level``
    (default: the dataset's most precise level by its settings)."""
    from .dataset import LadderDataset, load_bundled
    from .dft_errors import dft_error_table, plot_level_vs_reference

    dataset = load_bundled() if dataset_path is None else LadderDataset.load(dataset_path)
    if dataset.failed.any():
        print(f"dropping {int(dataset.failed.any(axis=0).sum())} configuration(s) with failed calculations")
        dataset = dataset.drop_failed()
    table = dft_error_table(dataset, reference_level)
    reference_level = table.attrs["reference_level"]
    print(f"{dataset.n_configs} configurations, errors vs level {reference_level}")
    # CPU seconds where the dataset has them: wall seconds depend on what else the machine was doing
    cpu = bool(np.isfinite(table.core_seconds_per_config).all())
    cost = table.core_seconds_per_config if cpu else table.seconds_per_config
    cost_label = "CPU s/cfg" if cpu else "s/config"
    print(f"{'level':>5} | {'E unshifted':>11} {'E bulk':>8} {'E mean':>8} {'F':>8} {cost_label:>9} |"
          f" study: {'E uns.':>7} {'E bulk':>7} {'E mean':>7} {'F':>7} {'s/config':>8}")
    for level, row in table.iterrows():
        study = STUDY_TABLE3.get(level, (0.0, 0.0, 0.0, 0.0))
        print(f"{level:>5} | {row.energy_rmse:>11.2f} {row.energy_rmse_bulk:>8.2f} {row.energy_rmse_mean:>8.2f}"
              f" {row.force_rmse:>8.2f} {cost[level]:>9.2f} |"
              f"        {study[0]:>7.2f} {study[1]:>7.2f} {study[2]:>7.2f} {study[3]:>7.2f}"
              f" {STUDY_SECONDS.get(level, float('nan')):>8.2f}")
    print("energies in meV/atom, forces in meV/Å; ours: GPAW, one core per calculation, small cells"
          f" ({'CPU' if cpu else 'wall'} seconds); study: VASP on an A100, ~50 atoms (wall seconds)")
    if figure:
        plot_level_vs_reference(dataset, figure, reference_level)
        print(f"figure written to {figure}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyiron-mlip-tradeoff", description="qSNAP cost/accuracy trade-off tools")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a small GPAW precision ladder on Be structures")
    demo.add_argument("--output", default="demo_output", help="folder for the pyiron project and dataset")
    demo.add_argument("--levels", type=int, nargs="+", default=[1, 2, 3])
    demo.add_argument("--cores", type=int, default=2, help="calculations run side by side")
    errors = sub.add_parser("dft-errors", help="DFT error of every precision level vs the reference level (Table 3)")
    errors.add_argument("--dataset", default=None, help="LadderDataset HDF5 file (default: the bundled dataset)")
    errors.add_argument("--figure", default=None, help="write the level-vs-reference scatter plot here")
    errors.add_argument("--reference-level", type=int, default=None,
                        help="level to compare with (default: the most precise level by k-mesh, then cutoff)")
    make = sub.add_parser("make-dataset", help="compute (or resume) the bundled Be dataset with GPAW")
    make.add_argument("--project", default="bundled_dataset_project", help="pyiron project folder")
    make.add_argument("--unit-store", default=None, help="folder of finished calculations (default: data/be_ladder)")
    make.add_argument("--levels", type=int, nargs="+", default=None, help="embedded levels to compute now")
    make.add_argument("--cores", type=int, default=2)
    sub.add_parser("dataset-status", help="progress of the bundled dataset's calculations per level")
    check = sub.add_parser("validate-ladder", help="embedded level 6 vs the reference level 6 on sample configurations")
    check.add_argument("--n-configs", type=int, default=10)
    check.add_argument("--cores", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "dataset-status":
        from .bundled import store_status

        print(store_status().to_string(float_format=lambda v: f"{v:.2f}"))
        return 0
    if args.command == "validate-ladder":
        from .bundled import validate_top_level

        table = validate_top_level(args.n_configs, cores=args.cores)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(f"max |energy difference| {table.energy_diff.abs().max():.3f} meV/atom, "
              f"RMS {float((table.energy_diff ** 2).mean() ** 0.5):.3f} meV/atom; "
              f"force RMS {float((table.force_rmse ** 2).mean() ** 0.5):.3f} meV/Å, "
              f"largest per-configuration {table.force_rmse.max():.3f} meV/Å")
        return 0
    if args.command == "demo":
        return run_demo(Path(args.output), args.levels, args.cores)
    if args.command == "dft-errors":
        return print_dft_errors(args.dataset, args.figure, args.reference_level)
    if args.command == "make-dataset":
        from .bundled import DEFAULT_UNIT_STORE, make_bundled_dataset

        dataset = make_bundled_dataset(
            Path(args.project).resolve(), unit_store=args.unit_store or DEFAULT_UNIT_STORE, cores=args.cores,
            levels=args.levels,
        )
        print(dataset)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
