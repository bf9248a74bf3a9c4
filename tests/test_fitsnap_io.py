"""read_fitsnap on FitSNAP's own InP and Fe examples, against the raw JSON files and FitSNAP's screen output."""

import json
import math
import re
import shutil

import numpy as np
import pytest
from _shared_data import example
from ase import units

from pyiron_mlip_tradeoff.fitsnap_io import BAR_PER_EV_PER_A3, FitSnapInputError, read_fitsnap

# group sizes FitSNAP printed for these inputs (20May21_Standard/screen.out: "<group> : Detected N ...")
INP_GROUPS = {"aa": 20, "aIn": 54, "aP": 21, "Bulk": 1, "EOS": 268, "iIn": 41, "iP": 100, "s_aa": 18, "s_aIn": 121,
              "s_aP": 72, "Shear": 346, "s_iIn": 144, "s_iP": 337, "Strain": 163, "s_vIn": 17, "s_vP": 77,
              "s_vv": 65, "vP": 10, "vv": 19}


def _raw(path):
    text = path.read_text()
    return json.loads(text[text.index("{"):])["Dataset"]


@pytest.fixture(scope="module")
def inp():
    return read_fitsnap(example("InP_JPCA2020", "InP-example.in"))


def test_inp_counts_match_fitsnap(inp):
    screen = example("InP_JPCA2020", "20May21_Standard", "screen.out").read_text()
    printed = {m[0]: int(m[1]) for m in re.findall(r"^(\S+) : Detected\s+(\d+)", screen, flags=re.M)}
    assert printed == INP_GROUPS
    ds = inp.dataset
    assert ds.n_configs == 1894 and ds.levels == (1,) and int(ds.n_atoms.sum()) == 118214
    assert {g: int((ds.groups == g).sum()) for g in ds.group_names} == INP_GROUPS
    assert list(ds.group_names) == list(INP_GROUPS)  # the [GROUPS] order
    assert ds.elements == ("P", "In")  # atomic-number order; FitSNAP's type order is in job_input
    assert len(inp.train_indices) == 1894 and inp.test_indices.size == 0  # testing fraction 0 in every group
    assert ds.energy[0, 0] == -1042.70785622 and ds.energy[0, -1] == -1030.84672186
    assert ds.metadata["files"][0] == "aa/aa_0_C3v_tdA_sc3k2cl_d0lda1.json"
    assert ds.metadata["files"][-1] == "vv/vv_0_Cspair_tdA_sc3k2cl_d0lda4.json"


def test_inp_values_equal_the_json_files(inp):
    """Energies, forces, positions, cells as in the files; stress converted kB (pressure sign) → eV/Å³ ASE sign."""
    ds = inp.dataset
    data = example("InP_JPCA2020", "JSON")
    for i in np.random.default_rng(3).choice(ds.n_configs, 25, replace=False):
        raw = _raw(data / ds.metadata["files"][i])
        assert raw["StressStyle"] == "kB"
        c = raw["Data"][0]
        assert ds.energy[0, i] == c["Energy"]
        np.testing.assert_array_equal(ds.config_forces(1, i), c["Forces"])
        np.testing.assert_array_equal(ds.structures[i].positions, c["Positions"])
        np.testing.assert_array_equal(ds.structures[i].cell[:], c["Lattice"])
        assert ds.structures[i].get_chemical_symbols() == c["AtomTypes"]
        s = -np.array(c["Stress"]) * 0.1 * units.GPa  # kB → GPa → eV/Å³ with ASE's constant, sign flipped
        expected = [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]
        np.testing.assert_allclose(ds.stress[0, i], expected, rtol=1e-7)  # ASE's constants are CODATA 2014


def test_stress_sign_from_the_equation_of_state(inp):
    """On InP's EOS series (200 volumes) the mean ASE stress equals dE/dV: negative for compressed cells, positive
    for expanded ones, i.e. the JSON's kB values are pressure-positive. The sign is checked by the data themselves."""
    ds = inp.dataset
    series = [i for i, f in enumerate(ds.metadata["files"]) if re.fullmatch(r"EOS/InP_eos_\d{3,4}1\.json", f)]
    assert len(series) > 20
    volume = np.array([ds.structures[i].get_volume() for i in series])
    order = np.argsort(volume)
    v = volume[order]
    e = ds.energy[0, series][order]
    hydro = ds.stress[0, series][order][:, :3].mean(axis=1)
    dedv = np.diff(e) / np.diff(v)
    middle = 0.5 * (hydro[1:] + hydro[:-1])
    assert middle[0] < -0.5 and middle[-1] > 0.06  # eV/Å³: compressed negative, expanded positive
    np.testing.assert_allclose(middle, dedv, atol=1.5e-3)  # finite differences of E(V) agree to 1e-3 eV/Å³


def test_inp_job_input(inp):
    ji = inp.job_input
    assert ji["elements"] == ["In", "P"] and ji["twojmax"] == 6
    d = ji["descriptor_settings"]
    assert d["rcutfac"] == 1.0 and d["rfac0"] == 0.99363 and d["rmin0"] == 0.0
    assert d["radelem"] == [3.812045629514403, 3.829453817954964] and d["wj"] == [1.0, 0.9293160905266721]
    assert d["chemflag"] and d["bnormflag"] and d["wselfallflag"] and d["bzeroflag"]
    assert not d["quadraticflag"] and d["switchflag"]
    assert ji["reference_potential"] == {
        "pair_style": "hybrid/overlay zero 10.0 zbl 4.0 4.2",
        "pair_coeff": ["* * zero", "1 1 zbl 49 49", "1 2 zbl 49 15", "2 2 zbl 15 15"],
    }
    assert ji["reference_energies"] == {"In": 1.65967588701534, "P": -4.38159549501534}  # = −ESHIFT
    assert (ji["energy_weight"], ji["force_weight"], ji["stress_weight"]) == (1.0, 1.0, 1.0)
    gw = ji["group_weights"]
    assert set(gw) == set(INP_GROUPS)
    assert gw["Bulk"]["energy"] == 747239.126417448 and gw["Bulk"]["force"] == 1609572.6749909
    assert gw["aa"]["stress"] == pytest.approx(1.0e-12 * 1.602176634e6, rel=1e-15)


def test_stress_weight_conversion_keeps_the_loss():
    """A stress residual weighted as FitSNAP weights it (in bar) equals ours (in eV/Å³ with the converted weight)."""
    vweight, residual_ev_a3 = 1.0e-12, 3.7e-4
    fitsnap_term = (vweight * residual_ev_a3 / units.bar) ** 2  # ase.units.bar is eV/Å³ per bar
    ours = (vweight * BAR_PER_EV_PER_A3 * residual_ev_a3) ** 2
    assert ours == pytest.approx(fitsnap_term, rel=1e-7)  # ASE: CODATA 2014; ours: exact SI 2019


def test_fe_example():
    setup = read_fitsnap(example("Fe_Linear_NPJ2021", "Fe-example.in"))
    ds = setup.dataset
    screen = example("Fe_Linear_NPJ2021", "20May21_Standard", "screen.out").read_text()
    printed = {m[0]: int(m[1]) for m in re.findall(r"^(\S+) : Detected\s+(\d+)", screen, flags=re.M)}
    assert {g: int((ds.groups == g).sum()) for g in ds.group_names} == printed
    assert ds.n_configs == 2038 == sum(printed.values())
    assert setup.unused == ["EOS_001_Jun2020"]  # a folder the [GROUPS] table does not list (FitSNAP skips it too)
    assert ds.elements == ("Fe",) and setup.job_input["elements"] == ["Fe"]
    assert setup.job_input["reference_energies"] == {"Fe": 0.0}
    assert setup.job_input["descriptor_settings"]["rcutfac"] == 4.519796866
    first = _raw(setup.data_path / ds.metadata["files"][0])["Data"][0]
    assert ds.energy[0, 0] == first["Energy"] and ds.n_atoms[0] == first["NumAtoms"]
    assert np.isfinite(ds.stress).all()


# ---- bad input --------------------------------------------------------------------------------------------------
SMALL_INPUT = """[BISPECTRUM]
numTypes = 2
twojmax = 6 6
rcutfac = 1.0
rfac0 = 0.99363
rmin0 = 0.0
wj = 1.0 0.93
radelem = 3.81 3.83
type = In P
chemflag = 1
bzeroflag = 1

[CALCULATOR]
calculator = LAMMPSSNAP
energy = 1
force = 1
stress = 1

[ESHIFT]
In = -1.5
P = 4.5

[SCRAPER]
scraper = JSON

[PATH]
dataPath = JSON

[GROUPS]
group_sections = name training_size testing_size eweight fweight vweight
group_types = str float float float float float
random_sampling = 0
aa = 0.5 0.5 100.0 1.0 1.0e-12
vv = 1.0 0.0 50.0 2.0 1.0e-12
"""


@pytest.fixture
def small(tmp_path):
    """A two-group set-up of 6 + 4 real InP configurations copied into a temporary folder."""
    source = example("InP_JPCA2020", "JSON")
    for group, n in (("aa", 6), ("vv", 4)):
        (tmp_path / "JSON" / group).mkdir(parents=True)
        for f in sorted((source / group).glob("*.json"))[:n]:
            shutil.copy(f, tmp_path / "JSON" / group / f.name)
    (tmp_path / "in.in").write_text(SMALL_INPUT)
    return tmp_path


def test_split_fractions(small):
    setup = read_fitsnap(small / "in.in")
    assert setup.dataset.n_configs == 10
    np.testing.assert_array_equal(setup.train_indices, [0, 1, 2, 6, 7, 8, 9])
    np.testing.assert_array_equal(setup.test_indices, [3, 4, 5])  # the last half of aa (FitSNAP pops from the end)
    text = SMALL_INPUT.replace("random_sampling = 0", "random_sampling = 1\nrandom_seed = 11")
    (small / "in.in").write_text(text)
    a, b = read_fitsnap(small / "in.in"), read_fitsnap(small / "in.in")
    np.testing.assert_array_equal(a.train_indices, b.train_indices)  # seeded: reproducible
    assert len(a.test_indices) == 3 and set(a.test_indices) <= {0, 1, 2, 3, 4, 5}
    assert set(a.train_indices) | set(a.test_indices) == set(range(10))


@pytest.mark.parametrize(
    "change, error, match",
    [
        (("dataPath = JSON", "dataPath = nowhere"), FileNotFoundError, "data folder"),
        (("[PATH]", "[PATHS]"), FitSnapInputError, r"unknown section \[PATHS\]"),
        (("rcutfac = 1.0", "rcutfac = 1.0\nrcut = 4.0"), FitSnapInputError, r"unknown key.*rcut.*BISPECTRUM"),
        (("radelem = 3.81 3.83", "radelem = 3.81"), FitSnapInputError, "radelem has 1 value"),
        (("wj = 1.0 0.93", "wj = 1.0 0.93 1.0"), FitSnapInputError, "wj has 3 value"),
        (("vv = 1.0", "cc = 1.0"), FitSnapInputError, "group 'cc' has no folder"),
        (("100.0 1.0", "-100.0 1.0"), FitSnapInputError, "eweight = -100.0"),
        (("50.0 2.0", "50.0 nan"), FitSnapInputError, "fweight = nan"),
        (("aa = 0.5 0.5 100.0", "aa = 0.5 100.0"), FitSnapInputError, "group 'aa' has 4 value"),
        (("type = In P", "type = In Px"), FitSnapInputError, "not a chemical symbol"),
        (("scraper = JSON", "scraper = VASP"), FitSnapInputError, "read_vasp_runs"),
    ],
)
def test_bad_input_is_refused_before_reading(small, change, error, match):
    (small / "in.in").write_text(SMALL_INPUT.replace(*change))
    with pytest.raises(error, match=match):
        read_fitsnap(small / "in.in")


def test_garbled_and_inconsistent_files_are_named(small):
    victim = sorted((small / "JSON" / "vv").glob("*.json"))[2]
    good = victim.read_text()
    victim.write_text(good[: len(good) // 2])
    with pytest.raises(FitSnapInputError, match=re.escape(victim.name) + ".*not valid JSON"):
        read_fitsnap(small / "in.in")
    data = json.loads(good[good.index("{"):])
    data["Dataset"]["Data"][0]["Forces"] = data["Dataset"]["Data"][0]["Forces"][:-1]
    victim.write_text(json.dumps(data))
    with pytest.raises(FitSnapInputError, match=re.escape(victim.name) + ".*Forces"):
        read_fitsnap(small / "in.in")
    data = json.loads(good[good.index("{"):])
    data["Dataset"]["Data"][0]["AtomTypes"][0] = "Ga"
    victim.write_text(json.dumps(data))
    with pytest.raises(FitSnapInputError, match=re.escape(victim.name) + r".*\['Ga'\]"):
        read_fitsnap(small / "in.in")
    data = json.loads(good[good.index("{"):])
    data["Dataset"]["StressStyle"] = "GPa"
    victim.write_text(json.dumps(data))  # a file's own style is honoured (no comment line: FitSNAP allows that)
    setup = read_fitsnap(small / "in.in")
    i = setup.dataset.metadata["files"].index(f"vv/{victim.name}")
    stress = np.array(data["Dataset"]["Data"][0]["Stress"])
    assert setup.dataset.stress[0, i, 0] == pytest.approx(-stress[0, 0] * units.GPa, rel=1e-7)


def test_xyz_scraper(tmp_path):
    """FitSNAP's XYZ layout: one <group>.xyz per group; stress read as FitSNAP reads it (bar, pressure sign)."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    (tmp_path / "XYZ").mkdir()
    frames = []
    for k in range(3):
        atoms = bulk("Fe", "bcc", a=2.83 + 0.01 * k, cubic=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-8.0 - k, forces=np.full((2, 3), 0.1 * k),
                                           stress=np.array([100.0, 100.0, 100.0, 0.0, 0.0, 5.0 * k]))
        frames.append(atoms)
    write(tmp_path / "XYZ" / "bcc.xyz", frames, format="extxyz")
    text = SMALL_INPUT.replace("numTypes = 2", "numTypes = 1").replace("twojmax = 6 6", "twojmax = 6")
    text = text.replace("wj = 1.0 0.93", "wj = 1.0").replace("radelem = 3.81 3.83", "radelem = 0.5")
    text = text.replace("type = In P", "type = Fe").replace("chemflag = 1", "chemflag = 0")
    text = text.replace("In = -1.5\nP = 4.5", "Fe = 0.0").replace("scraper = JSON", "scraper = XYZ")
    text = text.replace("dataPath = JSON", "dataPath = XYZ").split("aa = ")[0] + "bcc = 1.0 0.0 1.0 1.0 1.0\n"
    (tmp_path / "in.in").write_text(text)
    setup = read_fitsnap(tmp_path / "in.in")
    ds = setup.dataset
    assert ds.n_configs == 3 and list(ds.groups) == ["bcc"] * 3
    np.testing.assert_allclose(ds.energy[0], [-8.0, -9.0, -10.0])
    np.testing.assert_allclose(ds.stress[0, 2], np.array([-100, -100, -100, 0, 0, -10.0]) * units.bar, rtol=1e-7)
    assert math.isclose(ds.config_forces(1, 2)[0, 0], 0.2)


def test_same_data_as_fitsnaps_own_scraper(inp):
    """FitSNAP 3.1.0.4's JSON scraper, run live on the same input, sees the same configurations: its energies are
    ours plus ESHIFT per atom (= ours − reference_energies), its forces and stresses ours rotated into LAMMPS' frame,
    its stresses in bar with the pressure sign, its weights our group weights (stress weight / 1.602176634e6)."""
    from pyiron_mlip_tradeoff._fitsnap_compat import make_fitsnap

    fs = make_fitsnap(inp.input_file)
    fs.scrape_configs()
    ds, ji = inp.dataset, inp.job_input
    where = {f: i for i, f in enumerate(ds.metadata["files"])}
    assert len(fs.data) == ds.n_configs
    for d in fs.data:
        i = where[f"{d['Group']}/{d['File']}"]
        assert ds.groups[i] == d["Group"] and ds.n_atoms[i] == d["NumAtoms"]
        shift = sum(ji["reference_energies"][el] for el in d["AtomTypes"])
        assert d["Energy"] == pytest.approx(ds.energy[0, i] - shift, abs=1e-9)
        rot = d["Rotation"]
        np.testing.assert_allclose(d["Forces"], ds.config_forces(1, i) @ rot.T, atol=1e-10)
        xx, yy, zz, yz, xz, xy = -ds.stress[0, i] * BAR_PER_EV_PER_A3
        ours_bar = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
        np.testing.assert_allclose(d["Stress"], rot @ ours_bar @ rot.T, rtol=1e-9, atol=1e-9)
        weights = ji["group_weights"][d["Group"]]
        assert (d["eweight"], d["fweight"]) == (weights["energy"], weights["force"])
        assert d["vweight"] * BAR_PER_EV_PER_A3 == pytest.approx(weights["stress"], rel=1e-15)
