"""Reference potential by LAMMPS: finite-difference consistency, sign conventions, frames, bad specs."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from pyiron_mlip_tradeoff import reference as reference_module
from pyiron_mlip_tradeoff.reference import check_reference, reference_contributions, reference_lines

ZBL = {
    "pair_style": "hybrid/overlay zero 6.0 zbl 2.0 2.5",
    "pair_coeff": ["* * zero", "1 1 zbl 49 49", "1 2 zbl 49 15", "2 2 zbl 15 15"],
}
ELEMENTS = ["In", "P"]


def _cell(seed=0, strain=None):
    atoms = Atoms("In2P2", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.25, 0.25, 0.25], [0.75, 0.7, 0.3]],
                  cell=[[3.2, 0.2, 0.1], [0.3, 3.1, -0.2], [0.1, 0.4, 3.3]], pbc=True)
    atoms.rattle(0.15, seed=seed)
    if strain is not None:
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + strain), scale_atoms=True)
    return atoms


def test_forces_and_stress_are_derivatives_of_the_energy():
    atoms = _cell()
    h = 1e-5
    plus, minus = atoms.copy(), atoms.copy()
    plus.positions[2, 1] += h
    minus.positions[2, 1] -= h
    strained = []
    for sign in (1, -1):
        eps = np.zeros((3, 3))
        eps[0, 2] = eps[2, 0] = sign * h / 2  # symmetric xz strain ±h/2: E(+) − E(−) = 2 V σ_xz h
        strained.append(_cell(strain=eps))
    out = reference_contributions([atoms, plus, minus, *strained], ELEMENTS, ZBL)
    assert np.abs(out.forces[0]).max() > 0.1  # the rattled pairs are inside the ZBL range
    force = -(out.energies[1] - out.energies[2]) / (2 * h)
    np.testing.assert_allclose(out.forces[0][2, 1], force, rtol=1e-6)
    stress_xz = (out.energies[3] - out.energies[4]) / (2 * h * atoms.get_volume())  # Voigt index 4
    np.testing.assert_allclose(out.stresses[0][4], stress_xz, rtol=1e-5)
    assert out.force_rows.shape == (3 * 4 * 5,)


def test_compressed_repulsive_pair_has_negative_ase_stress_and_rotates_with_the_cell():
    atoms = Atoms("InP", positions=[[0, 0, 0], [1.2, 0.3, 0.1]], cell=[6, 6, 6], pbc=True)  # close pair: repulsive
    turned = atoms.copy()
    turned.rotate(40, (1, 1, 0), rotate_cell=True)
    out = reference_contributions([atoms, turned], ELEMENTS, ZBL)
    assert out.stresses[0][0] < 0  # ASE sign: compressed (pushed apart) is negative
    np.testing.assert_allclose(out.energies[1], out.energies[0], rtol=1e-12)
    q = np.linalg.solve(atoms.cell[:], turned.cell[:]).T
    np.testing.assert_allclose(out.forces[1], out.forces[0] @ q.T, atol=1e-9)
    v = out.stresses[0]
    tensor = np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])
    turned_tensor = q @ tensor @ q.T
    np.testing.assert_allclose(out.stresses[1], turned_tensor[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]], atol=1e-9)


def test_no_reference_is_zero_without_lammps(monkeypatch):
    monkeypatch.setattr(reference_module, "_lammps_instance", lambda: (_ for _ in ()).throw(AssertionError))
    out = reference_contributions([_cell()], ELEMENTS, None)
    assert out.energies.tolist() == [0.0] and out.stresses.shape == (1, 6) and out.forces[0].shape == (4, 3)


@pytest.mark.parametrize(
    "spec, error, match",
    [
        ("zbl 4 4.2", TypeError, "must be a dict"),
        ({"pair_style": "zbl 4 4.2"}, ValueError, r"missing key\(s\) \['pair_coeff'\]"),
        ({"pair_style": "zbl 4 4.2", "pair_coeff": ["* * 49 49"], "units": "metal"}, ValueError, "unknown key"),
        ({"pair_style": "", "pair_coeff": ["* *"]}, ValueError, "non-empty string"),
        ({"pair_style": "zbl 4 4.2", "pair_coeff": []}, ValueError, "non-empty list"),
        ({"pair_style": "zbl 4 4.2", "pair_coeff": ["pair_coeff * * 49 49"]}, ValueError, "without the command"),
        ({"pair_style": "zbl 4 4.2\nrun 10", "pair_coeff": ["* *"]}, ValueError, "one LAMMPS command"),
        ({"pair_style": "nosuchstyle 3.0", "pair_coeff": ["* *"]}, ValueError,
         r"'pair_style nosuchstyle 3.0'.*Unrecognized pair style 'nosuchstyle'"),
        ({"pair_style": "zbl 4.0 4.2", "pair_coeff": ["1 1 49 49"]}, ValueError, "All pair coeffs are not set"),
    ],
)
def test_bad_reference_is_rejected_before_any_configuration(spec, error, match, monkeypatch):
    calls = []
    original = reference_module._PairEvaluator.compute
    monkeypatch.setattr(reference_module._PairEvaluator, "compute",
                        lambda self, atoms: calls.append(len(atoms)) or original(self, atoms))
    with pytest.raises(error, match=match):
        reference_contributions([_cell(1), _cell(2)], ELEMENTS, spec)
    assert all(n == 2 for n in calls)  # at most the two-atom test cell ran, never a configuration


def test_reference_lines_and_check():
    assert reference_lines({"pair_style": " zbl  4.0 4.2", "pair_coeff": "* * 49 49"}) == [
        "pair_style zbl 4.0 4.2", "pair_coeff * * 49 49"]
    assert check_reference(ZBL, ELEMENTS)[0] == "pair_style hybrid/overlay zero 6.0 zbl 2.0 2.5"
    with pytest.raises(ValueError, match=r"contains \['Ga'\]"):
        reference_contributions([Atoms("Ga", cell=[3, 3, 3], pbc=True)], ELEMENTS, ZBL)
