"""qSNAP models in LAMMPS: pair_style snap against the descriptor model, real MD, the MDSpeed job, bad input.

The potential is fitted in the test from the shared GPAW dataset (``small_dataset``: 12 Be cells, levels 1–3) at
2Jmax 4, so every MD here runs a real fitted model, not made-up numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyiron_mlip_tradeoff.descriptors import compute_descriptors
from pyiron_mlip_tradeoff.lammps import (
    LammpsError,
    MDSettings,
    assess_stability,
    check_md_settings,
    check_snap_potential,
    energy_drift,
    evaluate_snap,
    hcp_supercell,
    is_instability_error,
    md_protocol_lines,
    min_pair_distance,
    parse_log,
    write_snap_potential,
)
from pyiron_mlip_tradeoff.regression import configuration_blocks, fit, statistics_from_blocks

TWOJMAX = 4
#: a small cell and short runs keep each MD below a few seconds on one core
SMALL = dict(n_atoms=32, steps=40, nvt_steps=100, nve_steps=200, timestep=0.5, n_print=10)


def _fit_model(dataset, folder, quadraticflag: int) -> dict:
    descriptors = compute_descriptors(dataset.structures, TWOJMAX, quadraticflag=quadraticflag)
    blocks = configuration_blocks(
        descriptors.energy_rows, descriptors.force_rows, descriptors.n_atoms, dataset.energy, dataset.forces
    )
    stats = statistics_from_blocks(blocks, levels=dataset.levels)
    beta = fit(stats, 3, 150.0, 1.0, ridge=1e-3).coefficients
    settings = {"quadraticflag": quadraticflag}
    coeff, param = write_snap_potential(folder / f"be_2j4_q{quadraticflag}", beta, TWOJMAX, settings)
    return {"beta": beta, "coeff": coeff, "param": param, "descriptors": descriptors, "settings": settings}


@pytest.fixture(scope="module")
def fitted(small_dataset, tmp_path_factory):
    """Linear 2Jmax-4 qSNAP (15 coefficients) fitted to level 3 with w_E 150, w_F 1 and a small ridge.

    This is the model the MD runs use. With 12 tiny training cells, the 120-coefficient quadratic model
    interpolates the training data but explodes within 100 fs of MD in an hcp cell (it is reported unstable,
    see :func:`test_quadratic_model_from_twelve_cells_is_unstable`); the linear model is smooth and stable.
    """
    return _fit_model(small_dataset, tmp_path_factory.mktemp("linear"), 0)


@pytest.fixture(scope="module")
def fitted_quadratic(small_dataset, tmp_path_factory):
    """The study's quadratic 2Jmax-4 qSNAP (120 coefficients), fitted the same way."""
    return _fit_model(small_dataset, tmp_path_factory.mktemp("quadratic"), 1)


# ---------------------------------------------------------------------------------------------------------------
# pure functions
def test_hcp_supercell_size_and_spacing():
    cell = hcp_supercell(2000)
    assert abs(len(cell) - 2000) <= 40 and len(cell) % 4 == 0
    lengths = cell.cell.lengths()
    assert lengths.max() / lengths.min() < 1.3
    # hcp nearest neighbours: in-plane a = 2.29 Å, out-of-plane sqrt(a²/3 + c²/4) = 2.2253 Å
    assert min_pair_distance(cell) == pytest.approx(np.sqrt(2.29**2 / 3 + 3.58**2 / 4), abs=1e-9)
    assert len(hcp_supercell(1)) == 4


def test_parse_log_performance_and_loop_fallback():
    text = """LAMMPS (22 Jul 2025 - Update 4)
   Step          Temp          TotEng        Atoms
         0   600   -100.0   64
        10   300   -100.5   64
WARNING: Lost atoms: original 64 current 63 (src/thermo.cpp:500)
        20   310   -101.0   63
Loop time of 0.5 on 2 procs for 20 steps with 63 atoms

Performance: 3.456 ns/day, 6.944 hours/ns, 40.000 timesteps/s, 2.520 katom-step/s
   Step          Temp          TotEng        Atoms
        20   310   -nan   63
Loop time of 2.0 on 2 procs for 100 steps with 50 atoms
   Step          Temp          TotEng        Atoms
       120   1e9   inf   10
ERROR: Non-numeric atom coords - simulation unstable (src/domain.cpp:1155)
"""
    log = parse_log(text)
    assert len(log.runs) == 3
    first, second, third = log.runs
    np.testing.assert_array_equal(first.column("step"), [0, 10, 20])
    np.testing.assert_array_equal(first.column("Atoms"), [64, 64, 63])
    assert first.atom_steps_per_second == pytest.approx(2520.0)
    assert (first.procs, first.steps, first.atoms) == (2, 20, 63)
    assert np.isnan(second.column("TotEng")[0])
    assert second.atom_steps_per_second == pytest.approx(100 * 50 / 2.0)  # no Performance line: N·M / loop time
    assert not third.completed and np.isinf(third.column("TotEng")[0])
    assert log.error.startswith("ERROR: Non-numeric atom coords")
    assert is_instability_error(log.error)
    assert not is_instability_error("ERROR: Unknown parameter 'foo' in SNAP parameter file")


def test_energy_drift_units():
    t = np.linspace(0.0, 2.0, 21)  # ps
    energy = -300.0 + 0.05 * t  # eV for 100 atoms: 50 meV/ps in total
    assert energy_drift(t, energy, 100) == pytest.approx(0.5)  # meV/atom/ps
    assert np.isnan(energy_drift(t[:1], energy[:1], 100))
    assert np.isnan(energy_drift(t, np.full_like(t, np.nan), 100))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps"),
        ({"steps": -10}, "steps"),
        ({"n_atoms": 0}, "cell size"),
        ({"n_atoms": -5}, "cell size"),
        ({"nvt_steps": -1}, "nvt_steps"),
        ({"timestep": 0.0}, "timestep"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": 0.0}, "NVT run needs a temperature"),
        ({"steps": 2.5}, "integer"),
    ],
)
def test_md_settings_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_md_settings(**kwargs)


def test_potential_file_checks(fitted_quadratic, tmp_path):
    fitted = fitted_quadratic
    info = check_snap_potential(fitted["coeff"], fitted["param"])
    assert info.twojmax == TWOJMAX and info.n_coefficients == 120 and info.cutoff == pytest.approx(4.812302818)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_snap_potential(tmp_path / "none.snapcoeff", fitted["param"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_snap_potential(fitted["coeff"], tmp_path / "none.snapparam")
    with pytest.raises(ValueError, match="potential for 'Be'.*set up for 'W'"):
        check_snap_potential(fitted["coeff"], fitted["param"], element="W")
    # a 2Jmax-4 coefficient file next to a 2Jmax-6 parameter file
    coeff6, param6 = write_snap_potential(tmp_path / "six", np.zeros(496), 6)
    with pytest.raises(ValueError, match="120 coefficients do not match 2Jmax 6.*needs 496"):
        check_snap_potential(fitted["coeff"], param6)
    # the same coefficients with the quadratic terms switched off
    linear_param = tmp_path / "linear.snapparam"
    linear_param.write_text(fitted["param"].read_text().replace("quadraticflag 1", "quadraticflag 0"))
    with pytest.raises(ValueError, match="needs 15"):
        check_snap_potential(fitted["coeff"], linear_param)
    with pytest.raises(ValueError, match="496 coefficients do not match 2Jmax 4.*needs 120"):
        check_snap_potential(coeff6, fitted["param"])
    assert check_snap_potential(coeff6, param6).twojmax == 6


# ---------------------------------------------------------------------------------------------------------------
# LAMMPS: pair_style snap reproduces the linear model
@pytest.mark.parametrize("model", ["fitted", "fitted_quadratic"])
def test_pair_style_snap_equals_descriptor_model(model, small_dataset, request):
    fitted = request.getfixturevalue(model)
    beta, descriptors = fitted["beta"], fitted["descriptors"]
    offsets = descriptors.force_offsets
    for i in np.argsort(descriptors.n_atoms)[-3:]:  # the three largest cells (strained, rattled)
        atoms = small_dataset.structures[i]
        energy, forces = evaluate_snap(atoms, fitted["coeff"], fitted["param"])
        predicted_energy = descriptors.energy_rows[i] @ beta * len(atoms)
        predicted_forces = (descriptors.force_rows[offsets[i] : offsets[i + 1]] @ beta).reshape(-1, 3)
        # same numbers through two code paths of LAMMPS (compute snap vs pair snap): round-off only
        assert energy == pytest.approx(predicted_energy, rel=1e-11, abs=1e-9)
        np.testing.assert_allclose(forces, predicted_forces, rtol=0, atol=1e-9)
        assert np.abs(predicted_forces).max() > 0.01  # the comparison is not between zeros


# ---------------------------------------------------------------------------------------------------------------
# the pyiron job
def test_mdspeed_job_fitted_model(project, fitted):
    job = project.create.job.MDSpeed("md_fitted")
    job.input.snapcoeff = str(fitted["coeff"])
    job.input.snapparam = str(fitted["param"])
    for key, value in SMALL.items():
        job.input[key] = value
    job.run()
    out = job.output
    table = project.job_table()
    row = table[table.job == "md_fitted"].iloc[0]
    assert row.status == "finished" and row.hamilton == "MDSpeed"
    child = table[table.job == "md_fitted_lammps"].iloc[0]
    assert child.hamilton == "Lammps" and child.masterid == row.id and child.status == "finished"
    assert out.atom_steps_per_second > 0 and np.isfinite(out.atom_steps_per_second)
    assert out.twojmax == TWOJMAX and out.n_coefficients == 15 and out.n_atoms == 32 and out.atoms_lost == 0
    assert out.stable, out.stability_message
    # Be–Be pairs at 300 K stay far from a collapse (lattice nearest neighbour 2.23 Å)
    assert 1.6 < out.min_distance < 2.3
    # energy conservation in NVE: velocity Verlet with 0.5 fs (Be phonon periods are ≥ 50 fs) keeps the total
    # energy within its O(dt²) shadow-Hamiltonian wiggle; 0.2 meV/atom over 100 fs is far below the ~25 meV/atom
    # exchanged between kinetic and potential energy at 300 K, so broken forces (wrong sign, frame or scale) fail
    energy = np.asarray(out.nve_total_energy)
    assert len(energy) == SMALL["nve_steps"] // SMALL["n_print"] + 1
    assert np.ptp(energy) / out.n_atoms < 2e-4
    assert abs(out.energy_drift) < 1.0  # meV/atom/ps


def test_mdspeed_from_qsnapfit_job(project, small_dataset, fitted, tmp_path):
    """``input.fit_job``: the potential files a QSnapFit job wrote (its coefficients when the files are gone)."""
    pytest.importorskip("pyiron_mlip_tradeoff.jobs.fit")
    path = small_dataset.save(tmp_path / "small.h5")
    fit_job = project.create.job.QSnapFit("fit_lin")
    fit_job.input.dataset = str(path)
    fit_job.input.training_level = 3
    fit_job.input.train_indices = list(range(small_dataset.n_configs - 2))
    fit_job.input.test_indices = [small_dataset.n_configs - 2, small_dataset.n_configs - 1]
    fit_job.input.twojmax = TWOJMAX
    fit_job.input.descriptor_settings = fitted["settings"]
    fit_job.input.ridge = 1e-3
    fit_job.run()
    md = project.create.job.MDSpeed("md_from_fit")
    md.input.fit_job = fit_job  # a job object is stored by its id
    for key, value in {**SMALL, "nvt_steps": 20, "nve_steps": 20}.items():
        md.input[key] = value
    md.run()
    assert md.output.n_coefficients == 15 and md.output.twojmax == TWOJMAX
    assert md.output.potential_files[0] == str(fit_job.output.snapcoeff)
    assert md.output.atom_steps_per_second > 0 and md.output.stable, md.output.stability_message

    Path(fit_job.output.snapcoeff).unlink()  # rebuilt from output.coefficients and input.twojmax
    again = project.create.job.MDSpeed("md_from_fit_coefficients")
    again.input.fit_job = "fit_lin"
    for key, value in {**SMALL, "nvt_steps": 0, "nve_steps": 0}.items():
        again.input[key] = value
    again.run()
    assert again.output.n_coefficients == 15 and again.output.potential_files[0].startswith(again.working_directory)


def test_mdspeed_runs_lammps_with_mpi(project, fitted):
    job = project.create.job.MDSpeed("md_mpi")
    _configure(job, fitted, cores=2, nvt_steps=0, nve_steps=0, n_atoms=64)
    job.run()
    assert job.output.lammps_procs == 2 and job.output.cores == 2
    assert job.output.atom_steps_per_second_per_core == pytest.approx(job.output.atom_steps_per_second / 2)


def test_quadratic_model_from_twelve_cells_is_unstable(project, fitted_quadratic):
    job = project.create.job.MDSpeed("md_quadratic")
    job.input.snapcoeff = str(fitted_quadratic["coeff"])
    job.input.snapparam = str(fitted_quadratic["param"])
    for key, value in SMALL.items():
        job.input[key] = value
    job.run()
    assert job.status.finished and not job.output.stable
    assert job.output.n_coefficients == 120


def test_broken_model_reported_unstable(project, fitted):
    rng = np.random.default_rng(5)
    job = project.create.job.MDSpeed("md_broken")
    job.input.coefficients = rng.normal(scale=50.0, size=fitted["beta"].size)
    job.input.twojmax = TWOJMAX
    job.input.descriptor_settings = fitted["settings"]
    for key, value in SMALL.items():
        job.input[key] = value
    job.run()  # no exception: an exploding model is a result, not an error
    assert job.status.finished
    assert not job.output.stable
    assert job.output.stability_message


def test_lammps_failure_surfaces_lammps_message(project, fitted, tmp_path):
    param = tmp_path / "odd.snapparam"
    param.write_text(fitted["param"].read_text() + "notakeyword 1\n")
    job = project.create.job.MDSpeed("md_lammps_error")
    job.input.snapcoeff = str(fitted["coeff"])
    job.input.snapparam = str(param)
    for key, value in SMALL.items():
        job.input[key] = value
    with pytest.raises(LammpsError, match="notakeyword"):
        job.run()


# ---------------------------------------------------------------------------------------------------------------
# bad input: raised before anything is saved or started
def _configure(job, fitted, **inputs):
    job.input.snapcoeff = str(fitted["coeff"])
    job.input.snapparam = str(fitted["param"])
    for key, value in {**SMALL, **inputs}.items():
        job.input[key] = value


@pytest.mark.parametrize(
    "inputs, error, match",
    [
        ({"steps": 0}, ValueError, "steps"),
        ({"steps": -3}, ValueError, "steps"),
        ({"n_atoms": 0}, ValueError, "cell size"),
        ({"n_atoms": -100}, ValueError, "cell size"),
        ({"cores": 0}, ValueError, "cores"),
        ({"element": "W"}, ValueError, "potential for 'Be'"),
        ({"snapcoeff": "/nonexistent/model.snapcoeff"}, FileNotFoundError, "does not exist"),
        ({"snapparam": "/nonexistent/model.snapparam"}, FileNotFoundError, "does not exist"),
    ],
)
def test_bad_input_raises_before_lammps(project, fitted, inputs, error, match):
    job = project.create.job.MDSpeed("md_bad")
    _configure(job, fitted, **inputs)
    with pytest.raises(error, match=match):
        job.run()
    assert len(project.job_table()) == 0  # neither the job nor a Lammps child was created


def test_bad_coefficient_count_raises_before_lammps(project, fitted_quadratic):
    fitted = fitted_quadratic
    job = project.create.job.MDSpeed("md_bad_count")
    job.input.coefficients = fitted["beta"][:-1]
    job.input.twojmax = TWOJMAX
    with pytest.raises(ValueError, match="119 coefficients do not match 2Jmax 4"):
        job.run()
    job = project.create.job.MDSpeed("md_bad_twojmax")
    job.input.coefficients = fitted["beta"]
    job.input.twojmax = 6
    with pytest.raises(ValueError, match="120 coefficients do not match 2Jmax 6"):
        job.run()
    assert len(project.job_table()) == 0


def test_protocol_lines_follow_settings():
    settings = MDSettings(n_atoms=10, steps=7, nvt_steps=0, nve_steps=5, temperature=100.0, timestep=2.0)
    text = "".join(md_protocol_lines(settings))
    assert settings.phases == ["nve", "speed"]
    assert "fix ensemble all nvt" not in text and text.count("\nrun ") == 2
    assert "timestep 0.002\n" in text and "velocity all create 200.0" in text
    report = assess_stability(parse_log(""), settings, 10)
    assert report.atoms_lost == 0 and np.isnan(report.energy_drift)


# ---------------------------------------------------------------------------------------------------------------
# the user's own structure
def test_supercell_of_a_user_structure():
    from ase.build import bulk

    from pyiron_mlip_tradeoff.lammps import supercell

    bcc = bulk("Be", "bcc", a=2.55, cubic=True)
    assert supercell(bcc, None) is not bcc and len(supercell(bcc, None)) == 2
    big = supercell(bcc, 250)
    assert len(big) == 250 and np.allclose(big.cell.lengths(), 5 * 2.55)  # 5 × 5 × 5 cubic repeats
    skewed = supercell(bulk("Be", "hcp", a=2.29, c=3.58), 200)  # a non-orthogonal cell: repeats by cell heights
    assert abs(len(skewed) - 200) <= 20
    from pyiron_atomistics import ase_to_pyiron

    from_pyiron = supercell(ase_to_pyiron(bcc), 16)  # a pyiron structure works the same
    assert len(from_pyiron) == 16 and from_pyiron.get_chemical_symbols() == ["Be"] * 16
    with pytest.raises(ValueError, match="periodic"):
        supercell(bulk("Be", "bcc", a=2.55, cubic=True).copy().__class__("Be", positions=[[0, 0, 0]]), 10)


def test_read_dump_frames_maps_types_to_the_element_list(tmp_path):
    from pyiron_mlip_tradeoff.lammps import read_dump_frames

    dump = tmp_path / "dump.out"
    dump.write_text(
        "ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n3\nITEM: BOX BOUNDS pp pp pp\n0 4\n0 4\n0 4\n"
        "ITEM: ATOMS id type xsu ysu zsu\n1 2 0 0 0\n2 1 0.5 0.5 0.5\n3 2 0.25 0.25 0.25\n"
    )
    (frame,) = read_dump_frames(dump, ["Ni", "Al"])
    assert frame.get_chemical_symbols() == ["Al", "Ni", "Al"]
    with pytest.raises(ValueError, match=r"atom types \[1, 2\] do not fit the element list \['Ni'\]"):
        read_dump_frames(dump, "Ni")


@pytest.mark.parametrize("n_atoms, expected", [(None, 16), (120, 128)])
def test_mdspeed_on_a_user_bcc_cell(project, fitted, n_atoms, expected):
    """The Be model runs on the user's bcc Be crystal as given (16 atoms) and on a supercell of it near 120 atoms (2 × 2 × 2 repeats);
    the structure survives the job's HDF5 round trip and pyiron writes ASE's mass of Be."""
    from ase.build import bulk
    from ase.data import atomic_masses

    crystal = bulk("Be", "bcc", a=2.55, cubic=True).repeat((2, 2, 2))
    crystal.rattle(0.02, seed=3)
    job = project.create.job.MDSpeed(f"md_bcc_{expected}")
    job.input.snapcoeff = str(fitted["coeff"])
    job.input.snapparam = str(fitted["param"])
    for key, value in {**SMALL, "nvt_steps": 20, "nve_steps": 20, "steps": 20}.items():
        job.input[key] = value
    job.input.structure = crystal
    job.input.n_atoms = n_atoms
    job.run()
    out = job.output
    assert out.n_atoms == expected and out.atoms_lost == 0 and list(out.elements) == ["Be"]
    assert out.atom_steps_per_second > 0 and np.isfinite(out.atom_steps_per_second)
    assert 1.5 < out.min_distance < 2.4  # bcc Be nearest neighbours at 2.21 Å, thermal motion around them
    loaded = project.load(job.job_name)
    stored = loaded.input.structure
    np.testing.assert_allclose(stored.positions, crystal.positions, atol=1e-12)
    child = project.load(f"{job.job_name}_lammps")
    if child.is_compressed():
        child.decompress()
    text = (Path(child.working_directory) / "structure.inp").read_text()
    masses = text.split("Masses")[1].split("Atoms")[0].split()
    assert masses[:2] == ["1", f"{atomic_masses[4]:.6f}"]


def test_mdspeed_structure_checked_before_lammps(project, fitted):
    from ase.build import bulk

    job = project.create.job.MDSpeed("md_wrong_species")
    _configure(job, fitted)
    job.input.structure = bulk("W", "bcc", a=3.16, cubic=True)
    with pytest.raises(ValueError, match="potential for 'Be'"):
        job.run()
    job = project.create.job.MDSpeed("md_no_cell")
    _configure(job, fitted)
    job.input.structure = bulk("Be", "bcc", a=2.55, cubic=True)
    job.input.structure.pbc = False
    with pytest.raises(ValueError, match="periodic"):
        job.run()
    assert len(project.job_table()) == 0


def test_md_speed_table_on_the_users_crystal(project):
    from ase.build import bulk

    from pyiron_mlip_tradeoff.jobs.md import md_speed_table

    crystal = bulk("Be", "bcc", a=2.55, cubic=True)
    table = md_speed_table(project, crystal, twojmax=(2, 4), n_atoms=54, steps=20, name="bcc_speed")
    assert list(table.index) == [2, 4] and (table.n_atoms == 54).all()
    assert table.n_coefficients.tolist() == [21, 120]  # quadratic qSNAP columns with the constant
    assert (table.atom_steps_per_second > 0).all()
    # a larger model costs more per step (2Jmax 4 quadratic has ~6× the terms of 2Jmax 2)
    assert table.atom_steps_per_second[2] > table.atom_steps_per_second[4]


def test_mdspeed_runs_the_model_with_its_reference_pair(project, fitted):
    """A model fitted on top of a reference pair runs in MD as fitted: ``hybrid/overlay <reference> snap``; a
    reference LAMMPS cannot load is refused before anything is saved."""
    zbl = {"pair_style": "zbl 1.0 1.5", "pair_coeff": ["* * 4 4"]}
    job = project.create.job.MDSpeed("md_with_zbl")
    _configure(job, fitted)
    job.input.reference_potential = zbl
    job.run()
    assert job.output.atom_steps_per_second > 0
    child = project.load("md_with_zbl_lammps")
    config = "".join(child.potential["Config"][0])
    assert "pair_style hybrid/overlay zbl 1.0 1.5 snap" in config and "pair_coeff * * zbl 4 4" in config
    log = Path(child.working_directory) / "log.lammps"
    if not log.is_file():
        child.decompress()
    assert "hybrid/overlay" in log.read_text()

    bad = project.create.job.MDSpeed("md_bad_reference")
    _configure(bad, fitted)
    bad.input.reference_potential = {"pair_style": "no_such_style 4.0", "pair_coeff": ["* *"]}
    with pytest.raises(ValueError, match="reference_potential.*no_such_style"):
        bad.run()
    assert "md_bad_reference" not in list(project.job_table().job)
