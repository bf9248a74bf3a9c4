"""The PrecisionLadder pyiron job: database integration, resume after kill -9, faults and bad input."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from pyiron_mlip_tradeoff.dft.base import InputError
from pyiron_mlip_tradeoff.precision import PrecisionLevel


def _units(job):
    return sorted((Path(job.working_directory) / "units").glob("*.json"))


def test_ladder_job_runs_and_is_queryable(project, hcp_be, rattled_be):
    job = project.create.job.PrecisionLadder("be_ladder")
    job.input.structures = [hcp_be, rattled_be]
    job.input.levels = [1, 2]
    job.input.cores = 2
    job.run()
    assert job.status.finished
    assert job.output.energy.shape == (2, 2) and job.output.forces.shape == (2, 4, 3)
    assert job.output.kmesh[1, 0].tolist() == [4, 4, 2]
    assert (job.output.seconds > 0).all() and not job.output.failed.any()

    table = project.job_table()
    assert table.loc[table.job == "be_ladder", "hamilton"].item() == "PrecisionLadder"
    assert table.loc[table.job == "be_ladder", "status"].item() == "finished"

    loaded = project.load("be_ladder")
    dataset = loaded.to_dataset()
    assert dataset.levels == (1, 2) and dataset.n_configs == 2
    np.testing.assert_allclose(dataset.structures[1].positions, rattled_be.positions)
    np.testing.assert_array_equal(dataset.energy, job.output.energy)
    assert dataset.level_settings[2].kspacing == 1.0

    pyiron_table = project.create_table("ladder_table")
    pyiron_table.db_filter_function = lambda df: df.hamilton == "PrecisionLadder"
    pyiron_table.add["total_seconds"] = lambda j: j.content["storage/output/total_seconds"]
    pyiron_table.add["n_failed"] = lambda j: j.content["storage/output/n_failed"]
    pyiron_table.run()
    frame = pyiron_table.get_dataframe()
    assert len(frame) == 1 and frame.n_failed.item() == 0
    assert frame.total_seconds.item() == pytest.approx(float(np.sum(job.output.seconds)))


def test_job_class_available_on_pyiron_base_project(session_dir):
    from pyiron_base import Project

    import pyiron_mlip_tradeoff  # noqa: F401

    pr = Project(str(session_dir / "base_project"))
    job = pr.create.job.PrecisionLadder("from_base")
    assert type(job).__name__ == "PrecisionLadder"
    assert job.input.engine == "gpaw" and list(job.input.levels) == [1, 2, 3, 4, 5, 6]


_KILL_SCRIPT = """
from ase.build import bulk
from pyiron_atomistics import Project
import pyiron_mlip_tradeoff
pr = Project({path!r})
job = pr.create.job.PrecisionLadder("killed")
a = bulk("Be", "hcp", a=2.29, c=3.58)
b = a.copy()
b.positions[0] += [0.05, 0.02, 0.0]
job.input.structures = [a, b]
job.input.levels = [1, 2, 3]
job.run()
"""


def test_kill_9_then_rerun_resumes(project):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_KILL_SCRIPT.format(path=project.path))],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    units_dir = Path(project.path) / "killed_hdf5" / "killed" / "units"
    deadline = time.time() + 180
    try:
        while time.time() < deadline and len(list(units_dir.glob("*.json"))) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 of the ladder process and its worker
        proc.wait()
    before = {f.name: f.stat().st_mtime_ns for f in units_dir.glob("*.json")}
    assert 2 <= len(before) < 6, "the ladder must be killed mid-way"

    job = project.load("killed")
    assert job.status.string == "running"  # what a killed process leaves in the database
    job.run()
    assert job.status.finished
    after = {f.name: f.stat().st_mtime_ns for f in _units(job)}
    assert len(after) == 6
    assert all(after[name] == stamp for name, stamp in before.items()), "finished calculations were recomputed"
    assert np.isfinite(job.output.energy).all() and not job.output.failed.any()


def test_failed_calculation_marked_and_rest_complete(project, hcp_be):
    job = project.create.job.PrecisionLadder("partly_failing")
    job.input.structures = [hcp_be]
    job.input.levels = [1, PrecisionLevel(7, None, 2.0)]  # GPAW fails on a 2 eV cutoff
    job.run()
    assert job.status.finished
    assert job.output.failed.tolist() == [[False], [True]]
    assert job.output.messages[1][0] and job.output.messages[0][0] == ""
    assert np.isfinite(job.output.energy[0, 0])
    with pytest.raises(Exception, match="drop_failed"):
        job.to_dataset().require_complete()
    assert job.to_dataset().drop_failed().n_configs == 0


def _bad_inputs(hcp_be):
    close = hcp_be.copy()
    close.positions[1] = close.positions[0] + [0.3, 0.0, 0.0]
    no_cell = Atoms("Be2", positions=[[0, 0, 0], [0, 0, 2.0]])
    not_periodic = hcp_be.copy()
    not_periodic.pbc = [True, True, False]
    technetium = hcp_be.copy()
    technetium.symbols[0] = "Tc"
    return {
        "empty": (dict(structures=[]), "empty"),
        "too close": (dict(structures=[close]), "closer than 0.5"),
        "no cell": (dict(structures=[no_cell]), "periodic|no cell"),
        "not periodic": (dict(structures=[not_periodic]), "not periodic"),
        "unknown level": (dict(structures=[hcp_be], levels=[1, 9]), "unknown precision level 9"),
        "negative cutoff": (dict(structures=[hcp_be], levels=[{"level": 7, "kspacing": 0.5, "cutoff": -1}]),
                            "cutoff must be positive"),
        "zero kspacing": (dict(structures=[hcp_be], levels=[{"level": 7, "kspacing": 0.0, "cutoff": 300}]),
                          "kspacing must be a positive"),
        "unknown engine": (dict(structures=[hcp_be], engine="abinit"), "unknown DFT engine"),
        "no setup": (dict(structures=[technetium]), "no GPAW PAW setup.*Tc"),
        "vasp not installed": (dict(structures=[hcp_be], engine="vasp"), "VASP set up"),
        "bad cores": (dict(structures=[hcp_be], cores=0), "cores"),
        "bad option": (dict(structures=[hcp_be], engine_options={"kpts": 3}), "unknown GPAW engine option"),
    }


@pytest.mark.parametrize("case", list(_bad_inputs(bulk("Be", "hcp", a=2.29, c=3.58))))
def test_bad_input_rejected_before_anything_runs(project, hcp_be, case):
    settings, message = _bad_inputs(hcp_be)[case]
    job = project.create.job.PrecisionLadder("bad")
    for key, value in settings.items():
        job.input[key] = value
    with pytest.raises(InputError, match=message):
        job.run()
    assert len(project.job_table()) == 0, "bad input must not create a job in the database"
    assert not Path(job.working_directory).exists() or not any(Path(job.working_directory).iterdir())


def test_two_ladder_jobs_share_a_unit_store(project, hcp_be, rattled_be, tmp_path):
    """A second ladder job with another structure list reuses every calculation the first one stored."""
    store = tmp_path / "shared_store"
    first = project.create.job.PrecisionLadder("first")
    first.input.structures = [hcp_be, rattled_be]
    first.input.levels = [1]
    first.input.unit_store = str(store)
    first.run()
    stamps = {f: f.stat().st_mtime_ns for f in (store / "units").glob("*.json")}
    assert len(stamps) == 2

    bcc = bulk("Be", "bcc", a=2.55)
    second = project.create.job.PrecisionLadder("second")
    second.input.structures = [rattled_be, bcc, hcp_be]
    second.input.levels = [1]
    second.input.unit_store = str(store)
    second.run()
    assert len(list((store / "units").glob("*.json"))) == 3  # only bcc was computed
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps
    np.testing.assert_array_equal(second.output.energy[0, [2, 0]], first.output.energy[0])
    assert project.load("first").output.energy[0].tolist() == first.output.energy[0].tolist()


def test_structures_keep_magnetic_moments_through_hdf5():
    from pyiron_mlip_tradeoff.jobs.base import _pack, _unpack

    iron = bulk("Fe", "bcc", a=2.83, cubic=True)
    iron.set_initial_magnetic_moments([2.0, -2.0])
    beryllium = bulk("Be", "hcp", a=2.29, c=3.58)
    beryllium.set_initial_magnetic_moments([0.0, 0.0])
    back = _unpack(_pack([beryllium, iron]))
    assert back[1].get_initial_magnetic_moments().tolist() == [2.0, -2.0]
    assert back[0].get_initial_magnetic_moments().tolist() == [0.0, 0.0]
    assert "initial_magmoms" not in _pack([beryllium])  # nothing extra stored for non-magnetic input
