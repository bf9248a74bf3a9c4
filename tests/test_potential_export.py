"""Multi-element SNAP potentials with a reference pair: written, read back, and run in LAMMPS exactly as fitted.

The proof: LAMMPS energy, forces and stress of the exported model (``pair_style hybrid/overlay <reference> snap``)
equal descriptor rows · β + the reference contribution to 1e-8 — for FitSNAP's published InP model (read from its
own files) and for a two-element quadratic model fitted here to InP DFT data.
"""

from __future__ import annotations

import numpy as np
import pytest
from _fitsnap_json import INP_BISPECTRUM, INP_ELEMENTS, INP_PUBLISHED_FLAGS, INP_REFERENCE, ROOT, inp_sample

from pyiron_mlip_tradeoff.descriptors import chem_equivalent_columns, compute_descriptors
from pyiron_mlip_tradeoff.lammps import (
    check_snap_potential,
    evaluate_snap,
    pair_style_lines,
    read_snapcoeff,
    read_snapcoeff_elements,
    read_snapparam,
    snap_file_coefficients,
    write_potential_include,
    write_snap_potential,
)
from pyiron_mlip_tradeoff.reference import reference_contributions

pytestmark = pytest.mark.skipif(ROOT is None, reason="FitSNAP example data (shared/data/fitsnap_examples) not found")
PUBLISHED = None if ROOT is None else ROOT / "InP_JPCA2020" / "20May21_Standard"


@pytest.fixture(scope="module")
def cells():
    sample = inp_sample()
    for atoms in sample[:2]:  # bring some pairs into the ZBL range so the reference matters
        atoms.rattle(0.25, seed=11)
    return sample


def _assert_lammps_equals_fit(cells, coeff, param, beta, settings, element_energies=None, twojmax=6, rtol=1e-8):
    """LAMMPS (exported files + reference) against rows · β + reference, configuration by configuration."""
    d = compute_descriptors(cells, twojmax, elements=INP_ELEMENTS, virial=True, **settings)
    ref = reference_contributions(cells, INP_ELEMENTS, INP_REFERENCE)
    shift = np.zeros(len(INP_ELEMENTS)) if element_energies is None else np.asarray(element_energies)
    for i, atoms in enumerate(cells):
        block = d.block(i)
        counts = np.array([atoms.get_chemical_symbols().count(e) for e in INP_ELEMENTS])
        energy = block.energy_row @ beta * len(atoms) + counts @ shift + ref.energies[i]
        forces = (block.force_rows @ beta).reshape(-1, 3) + ref.forces[i]
        stress = block.stress_rows @ beta + ref.stresses[i]
        e, f, s = evaluate_snap(atoms, coeff, param, elements=INP_ELEMENTS, reference=INP_REFERENCE, stress=True)
        assert e == pytest.approx(energy, rel=1e-8, abs=1e-8)
        np.testing.assert_allclose(f, forces, rtol=0, atol=rtol * max(1.0, np.abs(forces).max()))
        np.testing.assert_allclose(s, stress, rtol=0, atol=rtol * max(1e-3, np.abs(stress).max()))
        assert np.abs(forces).max() > 0.1 and np.abs(ref.forces[i]).max() > 0 or i >= 2  # not between zeros


def test_published_inp_files_read_back():
    blocks = read_snapcoeff_elements(PUBLISHED / "InP_pot.snapcoeff")
    assert [b.name for b in blocks] == INP_ELEMENTS
    assert [b.radelem for b in blocks] == INP_BISPECTRUM["radelem"]
    assert [b.wj for b in blocks] == [1.0, 0.9293160905266721]
    assert all(b.coefficients.size == 241 for b in blocks)  # β_0 + 30 components × 8 element triples
    params = read_snapparam(PUBLISHED / "InP_pot.snapparam")
    assert params == {"rcutfac": 1.0, "twojmax": 6, "rfac0": 0.99363, "rmin0": 0.0, "bzeroflag": 1,
                      "quadraticflag": 0, "wselfallflag": 1, "chemflag": 1, "bnormflag": 1}
    info = check_snap_potential(PUBLISHED / "InP_pot.snapcoeff", PUBLISHED / "InP_pot.snapparam",
                                elements=["P", "In"])  # any order of the same elements
    assert info.elements == ("In", "P") and info.n_coefficients == 241 and info.twojmax == 6
    assert info.cutoff == pytest.approx(2 * 3.829453817954964)
    assert info.model_coefficients().size == 480
    with pytest.raises(ValueError, match=r"potential for \['In', 'P'\].*set up for \['In', 'Ga'\]"):
        check_snap_potential(PUBLISHED / "InP_pot.snapcoeff", PUBLISHED / "InP_pot.snapparam",
                             elements=["In", "Ga"])
    with pytest.raises(ValueError, match="one-element file was expected"):
        read_snapcoeff(PUBLISHED / "InP_pot.snapcoeff")


def test_published_inp_model_in_lammps_equals_rows_times_beta(cells, tmp_path):
    info = check_snap_potential(PUBLISHED / "InP_pot.snapcoeff", PUBLISHED / "InP_pot.snapparam",
                                elements=INP_ELEMENTS)
    beta = info.model_coefficients()
    settings = {**INP_BISPECTRUM, **INP_PUBLISHED_FLAGS}
    # FitSNAP's own files: its β differs slightly (1e-8 relative) between identical EME columns, for which
    # pair_style snap's forces and virial are not exactly the gradient of its energy; agreement to 1e-5
    _assert_lammps_equals_fit(cells, PUBLISHED / "InP_pot.snapcoeff", PUBLISHED / "InP_pot.snapparam", beta,
                              settings, rtol=1e-5)
    # our writer: the same numbers up to equalising identical columns, and then LAMMPS = rows · β to 1e-8
    coeff, param = write_snap_potential(tmp_path / "InP", beta, 6, settings, elements=INP_ELEMENTS,
                                        comment="FitSNAP 20May21_Standard rewritten")
    again = check_snap_potential(coeff, param, elements=INP_ELEMENTS)
    assert again.settings == info.settings and again.elements == info.elements
    np.testing.assert_allclose(again.coefficients, info.coefficients, rtol=0,
                               atol=1e-6 * np.abs(info.coefficients).max())
    assert read_snapparam(param) == read_snapparam(PUBLISHED / "InP_pot.snapparam") | {"switchflag": 1}
    _assert_lammps_equals_fit(cells, coeff, param, beta, settings)


def test_eme_export_equalises_identical_columns(cells, tmp_path):
    """A β that differs on identical chemflag-1 columns predicts the same rows but must still run exactly."""
    settings = {**INP_BISPECTRUM, **INP_PUBLISHED_FLAGS}
    info = check_snap_potential(PUBLISHED / "InP_pot.snapcoeff", PUBLISHED / "InP_pot.snapparam",
                                elements=INP_ELEMENTS)
    beta = info.model_coefficients()
    groups = chem_equivalent_columns(6, 2)
    assert len(groups) == 44
    tilted = beta.copy()
    rng = np.random.default_rng(5)
    for block in (0, 240):
        for group in groups:
            shift = rng.normal(size=group.size) * 0.05
            tilted[block + group] += shift - shift.mean()  # a null-space direction of the descriptor rows
    d = compute_descriptors(cells, 6, elements=INP_ELEMENTS, virial=True, **settings)
    np.testing.assert_allclose(d.force_rows @ tilted, d.force_rows @ beta, rtol=0, atol=1e-9)
    coeff, param = write_snap_potential(tmp_path / "tilted", tilted, 6, settings, elements=INP_ELEMENTS)
    _assert_lammps_equals_fit(cells, coeff, param, tilted, settings)
    # written as is, LAMMPS would be far off: the check above can fail
    raw = tmp_path / "raw.snapcoeff"
    blocks = np.concatenate([np.zeros((2, 1)), tilted.reshape(2, -1)], axis=1)
    raw.write_text(coeff.read_text().split("\n")[0] + "\n2 241\n" + "".join(
        f"{name} {r!r} {w!r}\n" + "".join(f"{float(v)!r}\n" for v in block)
        for name, r, w, block in zip(INP_ELEMENTS, INP_BISPECTRUM["radelem"], INP_BISPECTRUM["wj"], blocks,
                                     strict=True)))
    _, forces = evaluate_snap(cells[3], raw, param, elements=INP_ELEMENTS)
    assert np.abs(forces - (d.block(3).force_rows @ tilted).reshape(-1, 3)).max() > 1e-3


def test_fitted_two_element_qsnap_with_reference_runs_as_fitted(cells, tmp_path):
    """A quadratic 2Jmax-4 InP model (bzeroflag 0) fitted here by dense least squares to DFT minus reference."""
    settings = {**INP_BISPECTRUM, "quadraticflag": 1, "bzeroflag": 0, "chemflag": 0}
    train = inp_sample()  # unrattled: the DFT labels belong to these positions
    d = compute_descriptors(train, 4, elements=INP_ELEMENTS, **settings)
    ref = reference_contributions(train, INP_ELEMENTS, INP_REFERENCE)
    n = d.n_atoms
    y_e = (np.array([a.get_potential_energy() for a in train]) - ref.energies) / n
    y_f = np.concatenate([a.get_forces().ravel() for a in train]) - ref.force_rows
    x = np.vstack([100.0 * d.energy_rows, d.force_rows])
    beta = np.linalg.lstsq(x, np.concatenate([100.0 * y_e, y_f]), rcond=1e-8)[0]
    assert beta.size == 2 * 120
    coeff, param = write_snap_potential(tmp_path / "qsnap", beta, 4, settings, elements=INP_ELEMENTS)
    np.testing.assert_array_equal(check_snap_potential(coeff, param, elements=INP_ELEMENTS).model_coefficients(),
                                  beta)
    _assert_lammps_equals_fit(cells, coeff, param, beta, settings, twojmax=4)
    # the include file holds exactly the lines LAMMPS ran, and LAMMPS accepts it
    include = write_potential_include(tmp_path / "qsnap.mod", coeff, param, elements=INP_ELEMENTS,
                                      reference=INP_REFERENCE)
    lines = pair_style_lines(coeff, param, elements=INP_ELEMENTS, reference=INP_REFERENCE)
    assert include.read_text().splitlines()[1:] == [line.rstrip("\n") for line in lines]
    assert lines[0] == "pair_style hybrid/overlay zero 10.0 zbl 4.0 4.2 snap\n"
    assert lines[-1] == "pair_coeff * * snap qsnap.snapcoeff qsnap.snapparam In P\n"
    assert _energy_via_include(cells[0], include) == pytest.approx(
        evaluate_snap(cells[0], coeff, param, elements=INP_ELEMENTS, reference=INP_REFERENCE)[0], rel=1e-12)


def _energy_via_include(atoms, include):
    """Potential energy of ``atoms`` in a LAMMPS run that reads the potential with ``include`` (cwd = its folder)."""
    import os

    from ase.io import write

    from pyiron_mlip_tradeoff.descriptors import _lammps_instance

    folder = include.parent
    write(folder / "cell.data", atoms, format="lammps-data", specorder=INP_ELEMENTS, masses=True)
    here = os.getcwd()
    lmp = _lammps_instance()
    try:
        os.chdir(folder)
        lmp.commands_string(f"units metal\natom_style atomic\nread_data cell.data\ninclude {include.name}\n"
                            "thermo_style custom step pe\nrun 0\n")
        return float(lmp.get_thermo("pe"))
    finally:
        os.chdir(here)
        lmp.close()


def test_export_rejects_bad_models(tmp_path):
    settings = {**INP_BISPECTRUM, **INP_PUBLISHED_FLAGS}
    with pytest.raises(ValueError, match=r"479 coefficients do not match 2Jmax 6.*2 elements.*needs 480"):
        write_snap_potential(tmp_path / "bad", np.zeros(479), 6, settings, elements=INP_ELEMENTS)
    with pytest.raises(ValueError, match="radelem has 3 values"):
        write_snap_potential(tmp_path / "bad", np.zeros(480), 6, {**settings, "radelem": [1, 2, 3]},
                             elements=INP_ELEMENTS)
    with pytest.raises(ValueError, match="element_energies names"):
        snap_file_coefficients(np.zeros(480), 6, settings, elements=INP_ELEMENTS, element_energies={"Ga": 1.0})
    blocks = snap_file_coefficients(np.ones(480), 6, settings, elements=INP_ELEMENTS,
                                    element_energies={"In": -1.66, "P": 4.38})
    assert blocks.shape == (2, 241) and blocks[:, 0].tolist() == [-1.66, 4.38]
    with pytest.raises(ValueError, match="hybrid/overlay"):
        pair_style_lines("a", "b", elements=INP_ELEMENTS, reference={"pair_style": "hybrid zbl 4 4.2",
                                                                      "pair_coeff": ["* * zbl 1 1"]})
    plain = pair_style_lines("a", "b", elements=INP_ELEMENTS, reference={"pair_style": "zbl 4.0 4.2",
                                                                          "pair_coeff": ["1 1 49 49"]})
    assert plain[:2] == ["pair_style hybrid/overlay zbl 4.0 4.2 snap\n", "pair_coeff 1 1 zbl 49 49\n"]
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="Unrecognized pair style"):
        write_potential_include(tmp_path / "x.mod", "a", "b", elements=INP_ELEMENTS,
                                reference={"pair_style": "nosuch 1.0", "pair_coeff": ["* *"]})
