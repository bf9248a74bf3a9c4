"""pyiron in and out: TrainingContainer round trip, real GPAW jobs through pyiron_atomistics, VASP run folders."""

import warnings

import numpy as np
import pytest
from _shared_data import example
from ase.calculators.singlepoint import SinglePointCalculator

from pyiron_mlip_tradeoff.dataset import DatasetError, LadderDataset


def _dataset():
    from ase.build import bulk

    frames = []
    rng = np.random.default_rng(4)
    for i in range(5):
        atoms = bulk("Be", "hcp", a=2.29, c=3.58).repeat((1, 1, 1 + i % 2))
        atoms.positions += np.round(rng.normal(scale=0.03, size=atoms.positions.shape), 8)
        atoms.calc = SinglePointCalculator(atoms, energy=-3.7 * len(atoms) + rng.normal(),
                                           forces=rng.normal(size=(len(atoms), 3)), stress=rng.normal(size=6) * 1e-3)
        atoms.info["group"] = "bulk" if i < 3 else "strained"
        frames.append(atoms)
    return LadderDataset.from_atoms(frames)  # made-up labels: a format test


def test_training_container_round_trip(project):
    ds = _dataset()
    container = ds.to_training_container(project=project, name="tc")
    container.run()
    loaded = project.load("tc")
    table = loaded.to_pandas()
    assert list(table["name"]) == ["bulk/0", "bulk/1", "bulk/2", "strained/3", "strained/4"]
    np.testing.assert_array_equal(table["stress"][1], -ds.stress[0, 1])  # pyiron's pressure-positive convention
    back = LadderDataset.from_training_container(loaded)
    for name in ("energy", "forces", "stress"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ds, name), err_msg=name)
    assert list(back.groups) == list(ds.groups)
    for s, t in zip(ds.structures, back.structures, strict=True):
        np.testing.assert_array_equal(s.positions, t.positions)
        np.testing.assert_array_equal(s.numbers, t.numbers)


def _gpaw_job(project, name, structure, cutoff, kpoints):
    """A real GPAW calculation through pyiron_atomistics' Gpaw job (pyiron's wrapper builds GPAW's new calculator,
    which lacks the ``set_label`` pyiron calls, so the job gets GPAW's classic calculator, as pyiron's AseJob allows)."""
    from gpaw import PW
    from gpaw.calculator import GPAW

    job = project.create.job.Gpaw(name)
    job.structure = structure.copy()
    job.structure.calc = GPAW(mode=PW(cutoff), kpts=(kpoints,) * 3, xc="PBE", txt=None,
                              occupations={"name": "fermi-dirac", "width": 0.1}, convergence={"energy": 1e-4})
    job.run()
    return job


def test_real_gpaw_jobs_at_two_levels(project):
    structure = project.create.structure.bulk("Be")
    structure.positions[1] += [0.03, 0.0, 0.0]
    other = project.create.structure.bulk("Be", a=2.35)
    jobs = [
        _gpaw_job(project, "be_L1", structure, 200, 2),
        _gpaw_job(project, "be_L2", structure, 250, 3),
        _gpaw_job(project, "be_wide_L1", other, 200, 2),
    ]
    ds = LadderDataset.from_pyiron_jobs(jobs, level_of=lambda job: int(job.job_name[-1]))
    assert ds.levels == (1, 2) and ds.n_configs == 2
    np.testing.assert_array_equal(ds.missing, [[False, False], [False, True]])
    assert ds.energy[0, 0] == jobs[0].output.energy_pot[-1] and ds.energy[1, 0] == jobs[1].output.energy_pot[-1]
    assert ds.energy[0, 0] != ds.energy[1, 0]  # two different precisions of one structure
    np.testing.assert_array_equal(ds.config_forces(2, 0), jobs[1].output.forces[-1])
    pressure = jobs[1].content["output/generic/pressures"][-1]
    np.testing.assert_allclose(ds.stress[1, 0], -pressure[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]])
    np.testing.assert_allclose(ds.structures[0].positions, structure.positions)
    # reloaded from the database, matched by a user identity
    reloaded = [project.load(j.job_name) for j in jobs[:2]]
    same = LadderDataset.from_pyiron_jobs(reloaded, level_of=lambda job: int(job.job_name[-1]),
                                          identity_of=lambda job: job.job_name[:-1])
    np.testing.assert_array_equal(same.energy[:, 0], ds.energy[:, 0])
    # one identity, two different structures
    with pytest.raises(DatasetError, match="be_wide_L1.*be_L1.*structures differ: cells differ"):
        LadderDataset.from_pyiron_jobs([jobs[0], jobs[2]], level_of=lambda job: 1 if job.job_name == "be_L1" else 2,
                                       identity_of=lambda job: "Be")
    # a job that has not run
    fresh = project.create.job.Gpaw("not_run")
    fresh.structure = structure.copy()
    with pytest.raises(DatasetError, match="'not_run'.*not finished"):
        LadderDataset.from_pyiron_jobs([jobs[0], fresh])


def test_finished_job_without_forces(project):
    def nothing():
        return 1

    job = project.wrap_python_function(nothing)
    job.run()
    assert job.status.finished
    with pytest.raises(DatasetError, match="no forces"):
        LadderDataset.from_pyiron_jobs([job])


def test_vasp_run_folders_match_ase():
    """Every completed ionic step, through pyiron's OUTCAR parser, equals ASE's independent reader."""
    from ase.io import read

    root = example("InP_VASP", "VASP")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = LadderDataset.from_vasp_runs(root)
    messages = [str(w.message) for w in caught]
    assert any("Defects_iP/incomplete_but_repaired/OUTCAR: 1 ionic step(s) did not finish" in m for m in messages)
    assert ds.metadata["folders_without_outcar"][:2] == ["Defects_aP/type3", "Defects_iP_crash/incomplete_with_crash"]
    assert any("have no OUTCAR" in m and "Defects_aP/type3" in m for m in messages)
    assert {g: int((ds.groups == g).sum()) for g in ds.group_names} == {
        "Defects_aP": 11, "Defects_iP": 24, "Defects_iP_crash": 18}
    files = ds.metadata["files"]
    assert ds.elements == ("P", "In")
    for outcar in sorted({f.split("#")[0] for f in files}):
        reference = read(root / outcar, index=":", format="vasp-out")
        rows = [i for i, f in enumerate(files) if f.split("#")[0] == outcar]
        assert len(rows) == len(reference)
        for atoms, i in zip(reference, rows, strict=True):
            assert ds.energy[0, i] == pytest.approx(atoms.get_potential_energy(force_consistent=True), abs=1e-9)
            np.testing.assert_allclose(ds.config_forces(1, i), atoms.get_forces(), atol=1e-9)
            np.testing.assert_allclose(ds.stress[0, i], atoms.get_stress(), atol=1e-12)
            np.testing.assert_allclose(ds.structures[i].positions, atoms.positions, atol=1e-9)
            np.testing.assert_allclose(ds.structures[i].cell[:], atoms.cell[:], atol=1e-9)
            assert ds.structures[i].get_chemical_symbols() == atoms.get_chemical_symbols()
    incomplete = [i for i, f in enumerate(files) if f.startswith("Defects_iP/incomplete_but_repaired")]
    assert len(incomplete) == 6
