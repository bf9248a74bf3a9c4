"""The VASP path up to input writing, and output parsing with pyiron's OUTCAR parser on a real VASP OUTCAR."""

from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest

from pyiron_mlip_tradeoff.dft.vasp import configure_vasp_job, incar_parameters, kpoints_text, parse_outcar
from pyiron_mlip_tradeoff.precision import REFERENCE_LADDER, PrecisionLevel

# a real VASP 5.3.3 OUTCAR shipped with ASE's test data (18 Ni atoms, Γ-only, ISMEAR = 1)
OUTCAR = Path(ase.__file__).parent / "test" / "testdata" / "vasp" / "OUTCAR_example_1"


def _written(job, tmp_path):
    job.input.incar.write_file(file_name="INCAR", cwd=str(tmp_path))
    job.input.kpoints.write_file(file_name="KPOINTS", cwd=str(tmp_path))
    return (tmp_path / "INCAR").read_text(), (tmp_path / "KPOINTS").read_text()


def test_incar_and_kpoints_exact_for_level_2(project, hcp_be, tmp_path):
    job = configure_vasp_job(project.create.job.Vasp("be_l2"), hcp_be, REFERENCE_LADDER[2])
    incar, kpoints = _written(job, tmp_path)
    assert incar == (
        "SYSTEM=be_l2 #jobname\nPREC=Accurate\nALGO=Normal\nLREAL=.FALSE.\nLWAVE=.FALSE.\nLORBIT=0\nEDIFF=1e-06\n"
        "IBRION=-1\nNSW=0\nISIF=2\nLCHARG=.FALSE.\nENCUT=300.0\nISMEAR=1\nSIGMA=0.2\n"
    )
    assert kpoints == "Gamma-centred mesh, L2: k 1 1/Å, 300 eV\n0\nGamma\n4 4 2\n0 0 0\n"
    assert job.input.potcar["xc"] == "PBE"


@pytest.mark.parametrize("number", [1, 3, 4, 5, 6])
def test_every_reference_level_maps_to_vasp_input(project, hcp_be, tmp_path, number):
    level = REFERENCE_LADDER[number]
    job = configure_vasp_job(project.create.job.Vasp(f"be_l{number}"), hcp_be, level)
    incar, kpoints = _written(job, tmp_path)
    tags = dict(line.split("#")[0].strip().split("=", 1) for line in incar.splitlines())
    assert float(tags["ENCUT"]) == level.cutoff and tags["ISMEAR"] == "1" and float(tags["SIGMA"]) == 0.2
    assert "KSPACING" not in tags  # the explicit Γ-centred mesh below is what VASP uses
    lines = kpoints.splitlines()
    assert lines[2] == "Gamma" and tuple(int(v) for v in lines[3].split()) == level.kpoint_mesh(hcp_be.cell[:])
    assert kpoints == kpoints_text(hcp_be, level)


def test_other_smearing_methods():
    assert incar_parameters(PrecisionLevel(7, 0.5, 400, smearing="gaussian", smearing_width=0.05))["ISMEAR"] == 0
    assert incar_parameters(PrecisionLevel(7, 0.5, 400, smearing="fermi-dirac"))["ISMEAR"] == -1
    assert incar_parameters(PrecisionLevel(7, 0.5, 400, smearing_order=2))["ISMEAR"] == 2


def test_outcar_parsed_by_pyiron_matches_ase_reader():
    result = parse_outcar(OUTCAR, kmesh=(1, 1, 1))
    reference = ase.io.read(OUTCAR, format="vasp-out")  # ASE's independent OUTCAR reader
    assert result.energy == pytest.approx(reference.get_potential_energy(force_consistent=True), abs=1e-8)
    assert result.energy_zero_width == pytest.approx(reference.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(result.forces, reference.get_forces(), atol=1e-8)
    np.testing.assert_allclose(result.stress, reference.get_stress(), atol=1e-9)
    assert result.wall_seconds == pytest.approx(124.967) and result.core_seconds == pytest.approx(124.972)
    assert result.engine == "vasp" and result.engine_version.startswith("vasp.5")
    assert not result.failed


# ---------------------------------------------------------------------------------------------------------------
# engine options and magnetic moments reach the written input
def test_engine_options_reach_incar_and_potcar_choice(project, tmp_path):
    from ase.build import bulk

    iron = bulk("Fe", "bcc", a=2.83, cubic=True)
    iron.set_initial_magnetic_moments([2.5, -2.5])  # antiferromagnetic start
    options = {"incar": {"algo": "Fast", "NCORE": 2, "LASPH": True}, "potcar": {"xc": "PBE", "Fe": "Fe_pv"}}
    job = configure_vasp_job(project.create.job.Vasp("fe_l2"), iron, REFERENCE_LADDER[2], options)
    job.write_magmoms()  # what write_input does before writing INCAR (POTCAR files need VASP's potentials)
    incar, kpoints = _written(job, tmp_path)
    tags = dict(line.split("#")[0].strip().split("=", 1) for line in incar.splitlines())
    assert tags["ALGO"] == "Fast" and tags["NCORE"] == "2" and tags["LASPH"] == ".TRUE."
    assert float(tags["ENCUT"]) == 300.0 and tags["ISMEAR"] == "1"  # the level's own tags stay
    assert tags["ISPIN"] == "2" and [float(m) for m in tags["MAGMOM"].split()] == [2.5, -2.5]
    assert job.potential.to_dict() == {"Fe": "Fe_pv"} and job.input.potcar["xc"] == "PBE"
    assert kpoints.splitlines()[3] == " ".join(map(str, REFERENCE_LADDER[2].kpoint_mesh(iron.cell[:])))


@pytest.mark.parametrize(
    "options, match",
    [
        ({"kpoints": 3}, r"unknown VASP engine option\(s\) \['kpoints'\]"),
        ({"incar": {"ENCUT": 600}}, "ENCUT is set by the precision level"),
        ({"incar": {"MAGMOM": [1, 2]}}, "not a number, string or boolean"),
        ({"potcar": {"xc": "PW91"}}, "xc must be one of"),
        ({"potcar": {"W": "W_sv"}}, "'W', which is in none of the structures"),
        ({"potcar": {"Be": "Fe_pv"}}, "POTCAR of Be"),
    ],
)
def test_bad_vasp_options_rejected_before_anything_runs(hcp_be, options, match):
    from pyiron_mlip_tradeoff.dft.base import InputError
    from pyiron_mlip_tradeoff.ladder import validate_ladder_input

    with pytest.raises(InputError, match=match):
        validate_ladder_input([hcp_be], [1], "vasp", options)


def test_finished_vasp_job_without_outcar_is_failed(project, hcp_be):
    """A VASP job that says finished but left no OUTCAR is a failed calculation, never a success with NaN."""
    from pyiron_mlip_tradeoff.dft.vasp import result_from_vasp_job

    job = project.create.job.ScriptJob("no_outcar")  # a real pyiron job that finished without any VASP output
    job.save()
    job.status.finished = True
    result = result_from_vasp_job(job, hcp_be, REFERENCE_LADDER[1])
    assert result.failed and "without an OUTCAR" in result.error and np.isnan(result.energy)


def test_queue_ladder_makes_one_vasp_job_per_calculation(project, hcp_be, rattled_be, tmp_path):
    """With a queue, a VASP ladder is cut into one ``Vasp`` job per calculation, each with its own input."""
    job = project.create.job.PrecisionLadder("vasp_queue")
    job.input.structures = [hcp_be, rattled_be]
    job.input.levels = [1, 2]
    job.input.engine = "vasp"
    job.input.engine_options = {"incar": {"ALGO": "Fast"}}
    job.input.unit_store = str(tmp_path / "store")
    chunks = job._queue_chunks()
    assert [len(c.items) for c in chunks] == [1, 1, 1, 1]
    assert [c.items[0].name for c in chunks] == ["c00000_L1", "c00001_L1", "c00000_L2", "c00001_L2"]
    child = job._new_chunk_job(chunks[3], "vasp_queue_chunk00003")
    assert child.__class__.__name__ == "Vasp" and job._chunk_matches(child, chunks[3])
    assert not job._chunk_matches(child, chunks[2])
    incar, kpoints = _written(child, tmp_path)
    assert "ALGO=Fast" in incar and "ENCUT=300.0" in incar and kpoints.splitlines()[3] == "4 4 2"


def _potcar_header(name: str, valence: float, enmax: float) -> str:
    """The lines of a POTCAR that pyiron reads (title, valence electrons, ENMAX on line 15) — a header only, no
    potential: VASP's PAW files are licensed and not installed here; the test checks which file pyiron picks."""
    lines = [f"  PAW_PBE {name} 01Jan2000", f" {valence:.13f}", " parameters from PSCTR are:"]
    lines += [f"   placeholder line {i}" for i in range(3, 14)]
    lines += [f"   ENMAX  =  {enmax:.3f}; ENMIN  =  200.000 eV", "   (header only)"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def vasp_potentials(tmp_path):
    """A pyiron resource folder with two Fe POTCAR headers (Fe, Fe_pv) and pyiron's potential tables."""
    from pyiron_base import state

    root = tmp_path / "resources"
    pots = root / "vasp" / "potentials"
    for name, valence, enmax in (("Fe", 8.0, 267.883), ("Fe_pv", 14.0, 293.238)):
        (pots / "paw-gga-pbe" / name).mkdir(parents=True)
        (pots / "paw-gga-pbe" / name / "POTCAR").write_text(_potcar_header(name, valence, enmax))
    (pots / "potentials_vasp.csv").write_text(
        ",Config,Filename,Model,Name,Species\n"
        "0,[],['paw-gga-pbe/Fe/POTCAR'],gga-pbe,Fe-gga-pbe,['Fe']\n"
        "1,[],['paw-gga-pbe/Fe_pv/POTCAR'],gga-pbe,Fe_pv-gga-pbe,['Fe']\n"
    )
    (pots / "potentials_vasp_pbe_default.csv").write_text(",Name\nFe,Fe-gga-pbe\n")
    state.settings.resource_paths.insert(0, str(root))
    yield root
    state.settings.resource_paths.remove(str(root))


@pytest.mark.parametrize("potcar, title", [({}, "PAW_PBE Fe "), ({"xc": "PBE", "Fe": "Fe_pv"}, "PAW_PBE Fe_pv ")],
                         ids=["default", "Fe_pv"])
def test_written_input_files_of_a_vasp_job(project, vasp_potentials, potcar, title):
    """``write_input`` of the pyiron Vasp job (VASP is not run): INCAR with the options and MAGMOM, the chosen
    POTCAR, the level's KPOINTS."""
    from ase.build import bulk

    iron = bulk("Fe", "bcc", a=2.83, cubic=True)
    iron.set_initial_magnetic_moments([2.2, 2.2])
    job = configure_vasp_job(project.create.job.Vasp(f"fe_input_{len(potcar)}"), iron, REFERENCE_LADDER[3],
                             {"incar": {"ALGO": "Fast", "NELM": 80}, "potcar": potcar})
    folder = Path(job.working_directory)
    folder.mkdir(parents=True, exist_ok=True)
    job.write_input()
    incar = (folder / "INCAR").read_text()
    tags = dict(line.split("#")[0].strip().split("=", 1) for line in incar.splitlines() if "=" in line)
    assert tags["ALGO"] == "Fast" and tags["NELM"] == "80" and float(tags["ENCUT"]) == 400.0
    assert tags["ISPIN"] == "2" and [float(m) for m in tags["MAGMOM"].split()] == [2.2, 2.2]
    assert (folder / "POTCAR").read_text().startswith(f"  {title}")
    assert (folder / "KPOINTS").read_text() == kpoints_text(iron, REFERENCE_LADDER[3])
