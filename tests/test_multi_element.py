"""Multi-element data through the jobs: bad input refused before anything is saved, the trade-off grid with
elements, a reference potential, stresses and group weights (points = standalone fits), an in-memory dataset stored
with the grid. Data: one configuration per group of FitSNAP's InP example (real DFT; skipped where absent)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fitsnap_live_fit import subset_input  # noqa: E402
from _shared_data import example  # noqa: E402

from pyiron_mlip_tradeoff import descriptors as descriptors_module  # noqa: E402
from pyiron_mlip_tradeoff import reference as _reference  # noqa: E402, F401  (binds the real LAMMPS before any patch)
from pyiron_mlip_tradeoff.fitsnap_io import read_fitsnap  # noqa: E402
from pyiron_mlip_tradeoff.fitting import fit_qsnap, plan_grid, run_grid  # noqa: E402


@pytest.fixture(scope="module")
def inp_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inp_subset")
    return read_fitsnap(subset_input(example("InP_JPCA2020", "InP-example.in"), folder, 1))


NAN = float("nan")


@pytest.mark.parametrize(
    "change, match",
    [
        ({"elements": ["In"]}, r"input.elements \['In'\] does not list \['P'\]"),
        ({"elements": ["In", "P", "P"]}, "repeat|duplicate"),
        ({"descriptor_settings": {"radelem": [3.8, 3.8, 3.8]}}, "radelem"),
        ({"reference_potential": {"pair_style": "no_such_style 4.0", "pair_coeff": ["* *"]}},
         "input.reference_potential.*no_such_style"),
        ({"reference_potential": {"pair_style": "zbl 4.0 4.2", "pair_coeff": ["1 1 49 49"]}},
         "input.reference_potential"),
        ({"reference_energies": {"Fe": 1.0}}, r"input.reference_energies names 'Fe'"),
        ({"group_weights": {"NoSuchGroup": {"energy": 1.0}}}, "input.group_weights names group 'NoSuchGroup'"),
        ({"group_weights": {"Bulk": {"energy": -1.0}}}, r"input.group_weights\['Bulk'\]\['energy'\]"),
        ({"group_weights": {"EOS": {"force": NAN}}}, r"input.group_weights\['EOS'\]\['force'\]"),
        ({"group_weights": {"EOS": {"virial": 1.0}}}, "unknown key"),
        ({"stress_weight": -1.0}, "stress_weight"),
        ({"solver": "LASSO"}, "input.solver"),
    ],
)
def test_multi_element_bad_input_is_refused_before_saving(project, inp_setup, monkeypatch, change, match):
    def fail(*args, **kwargs):
        raise AssertionError("descriptors were computed")

    monkeypatch.setattr(descriptors_module, "_lammps_instance", fail)
    job = project.create.job.QSnapFit("bad_inp")
    job.input.dataset = inp_setup.dataset
    job.input.update(inp_setup.job_input)
    job.input.train_indices = inp_setup.train_indices
    job.input.test_indices = []
    for key, value in change.items():
        if key == "descriptor_settings":
            value = {**inp_setup.job_input["descriptor_settings"], **value}
        job.input[key] = value
    with pytest.raises((ValueError, TypeError), match=match):
        job.run()
    table = project.job_table()
    assert "bad_inp" not in (table.job.tolist() if len(table) else [])


def test_grid_with_elements_reference_stress_and_group_weights(inp_setup):
    j = inp_setup.job_input
    common = dict(elements=j["elements"], reference_potential=j["reference_potential"],
                  reference_energies=j["reference_energies"], group_weights=j["group_weights"], rcond=1e-13)
    spec = plan_grid(inp_setup.dataset, subset_sizes=[5, 8], weight_ratios=[1.0, 10.0], twojmax=[6],
                     sampling=["random"], descriptor_settings=j["descriptor_settings"], stress_weight=1.0, **common)
    points = list(run_grid(inp_setup.dataset, spec))
    assert len(points) == spec.n_points == 4
    for point in points:
        r = point.result
        single = fit_qsnap(inp_setup.dataset, r.train_indices, 1, r.energy_weight, r.force_weight, 6,
                           j["descriptor_settings"], test_indices=spec.test_indices,
                           validation_indices=spec.validation_indices, stress_weight=1.0, **common)
        # one pass over the draw vs the set folded in one go: the same fit up to rounding (coefficients to ~1e-6 in
        # directions of tiny singular values — rcond 1e-13 keeps them; every error of every set, group and level to
        # 1e-6, the summary errors below to 1e-7)
        values = ["energy_rmse", "energy_rmse_shifted", "force_rmse", "stress_rmse"]
        keys = ["set", "group", "reference_level"]  # the groups come in the order they were first folded in
        ours, theirs = (e.sort_values(keys).reset_index(drop=True) for e in (r.errors, single.errors))
        assert ours[keys].equals(theirs[keys])
        np.testing.assert_allclose(ours[values].to_numpy(float), theirs[values].to_numpy(float), rtol=1e-6, atol=1e-9)
        assert set(r.errors["group"]) >= {"*ALL"}
        for column in ("test_energy_rmse", "test_force_rmse", "test_stress_rmse", "validation_stress_rmse"):
            assert point.row()[column] == pytest.approx(single.summary()[column], rel=1e-7)
        assert np.isfinite(point.row()["test_stress_rmse"]) and point.row()["stress_weight"] == 1.0
    # w_V matters: without stress rows the fit is another one and has no stress errors
    plain = plan_grid(inp_setup.dataset, subset_sizes=[8], weight_ratios=[10.0], twojmax=[6], sampling=["random"],
                      descriptor_settings=j["descriptor_settings"], **common)
    (point,) = list(run_grid(inp_setup.dataset, plain))
    assert np.isnan(point.row()["test_stress_rmse"])


def test_grid_job_keeps_an_in_memory_dataset(project, inp_setup):
    j = inp_setup.job_input
    grid = project.create.job.TradeoffGrid("inp_grid")
    grid.input.dataset = inp_setup.dataset
    for key in ("elements", "descriptor_settings", "reference_potential", "reference_energies", "group_weights",
                "stress_weight"):
        grid.input[key] = j[key]
    grid.input.twojmax = [6]
    grid.input.subset_sizes = [6]
    grid.input.weight_ratios = [10.0]
    grid.input.sampling = ["random", "energy"]
    grid.input.rcond = 1e-13
    grid.run()
    assert grid.status.finished
    table = grid.get_table()
    assert len(table) == 2 and np.isfinite(table["test_stress_rmse"]).all()
    child = project.load(table["job_name"].iloc[0])
    assert child.input.dataset == "inp_grid"  # the point names the grid, which keeps the dataset
    assert project.load("inp_grid").to_dataset().n_configs == inp_setup.dataset.n_configs
    potential = child.get_potential()
    assert potential["Config"][0][0].startswith("pair_style hybrid/overlay")


def _lih_cells(n: int = 8) -> list:
    """Rocksalt LiH primitive cells (2 atoms), strained and rattled: a small binary training pool."""
    from ase.build import bulk

    rng = np.random.default_rng(3)
    cells = []
    for _ in range(n):
        atoms = bulk("LiH", "rocksalt", a=4.0 * (1 + rng.uniform(-0.04, 0.04)))
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + rng.normal(scale=0.02, size=(3, 3))), scale_atoms=True)
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        cells.append(atoms)
    return cells


def test_binary_ladder_end_to_end(project):
    """PrecisionLadder (real GPAW) → LeverageSelection → QSnapFit → TradeoffGrid → recommend → MDSpeed (real
    LAMMPS) for a two-element system (LiH), with stresses in the fit."""
    from ase.build import bulk

    elements = ["Li", "H"]
    ladder = project.create.job.PrecisionLadder("lih_ladder")
    ladder.input.structures = _lih_cells(6)
    ladder.input.levels = [1, 2]
    ladder.input.cores = 2
    ladder.run()
    assert ladder.status.finished
    dataset = ladder.to_dataset()
    assert dataset.elements == ("H", "Li") and dataset.stress is not None

    select = project.create.job.LeverageSelection("lih_select")
    select.input.dataset = "lih_ladder"
    select.input.elements = elements
    select.input.twojmax = 2
    select.input.method = "block"
    select.input.sizes = [3]
    select.run()
    fit = project.create.job.QSnapFit("lih_fit")
    fit.input.dataset = "lih_ladder"
    fit.input.elements = elements
    fit.input.twojmax = 2
    fit.input.selection_job = "lih_select"
    fit.input.selection_size = 3
    fit.input.energy_weight = 100.0
    fit.input.stress_weight = 1.0
    fit.run()
    assert np.isfinite(fit.output.test_stress_rmse) and fit.output.n_columns == 2 * (1 + 5 + 15)

    grid = project.create.job.TradeoffGrid("lih_grid")
    grid.input.dataset = "lih_ladder"
    grid.input.elements = elements
    grid.input.twojmax = [2]
    grid.input.subset_sizes = [2, 3]
    grid.input.weight_ratios = [10.0, 100.0]
    grid.input.sampling = ["random", "block"]
    grid.input.stress_weight = 1.0
    grid.run()
    table = grid.get_table()
    assert len(table) == 2 * 2 * 2 * 2 and np.isfinite(table["validation_stress_rmse"]).all()
    best = grid.recommend(max_energy_rmse=1e6, max_force_rmse=1e6)
    chosen = project.load(best.fit_job)
    assert list(chosen.get_potential()["Species"][0]) == elements

    md = project.create.job.MDSpeed("lih_md")
    md.input.fit_job = best.fit_job
    md.input.structure = bulk("LiH", "rocksalt", a=4.0, cubic=True)
    md.input.n_atoms = 216
    md.input.steps = 300
    md.input.nvt_steps = 0
    md.input.nve_steps = 0
    md.input.temperature = 100.0
    md.run()
    assert md.status.finished
    out = md.output
    assert list(out.elements) == elements and out.n_atoms == 216 and out.lammps_procs >= 1
    # a model fitted on a handful of 2-atom cells may well not hold 216 atoms together: the measurement says which
    if out.stable:
        assert out.atom_steps_per_second > 0 and np.isfinite(out.energy_drift)
    else:
        assert out.stability_message
