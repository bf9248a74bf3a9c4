"""ASE Atoms / extended XYZ in and out of a LadderDataset: round trips, several levels, missing data, bad input."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from pyiron_mlip_tradeoff.dataset import DatasetError, LadderDataset


def _frames(n=4, seed=0, shift=0.0, stress=True):
    """Structures of two elements with made-up labels (a format test: no physics is claimed for the numbers).

    Positions and forces carry 8 decimals, as many as ASE's extended XYZ writer keeps (DFT codes print fewer), so
    that a round trip through the file must give identical arrays."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        atoms = bulk("NaCl", "rocksalt", a=5.6 + 0.05 * i).repeat((1, 1, 1 + i % 2))
        atoms.positions += np.random.default_rng(100 + i).normal(scale=0.02, size=atoms.positions.shape)
        atoms.positions = np.round(atoms.positions, 8)
        results = {"energy": -3.2 * len(atoms) + rng.normal() + shift,
                   "forces": np.round(rng.normal(size=(len(atoms), 3)), 8)}
        if stress:
            results["stress"] = rng.normal(scale=1e-3, size=6)
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["group"] = "small" if len(atoms) == 2 else "large"
        out.append(atoms)
    return out


def _same(a: LadderDataset, b: LadderDataset):
    for name in ("energy", "forces", "stress", "missing", "failed"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert list(a.groups) == list(b.groups) and a.levels == b.levels
    for s, t in zip(a.structures, b.structures, strict=True):
        np.testing.assert_array_equal(s.positions, t.positions)
        np.testing.assert_array_equal(s.cell[:], t.cell[:])
        np.testing.assert_array_equal(s.numbers, t.numbers)


def test_atoms_to_dataset_to_extxyz_and_back(tmp_path):
    frames = _frames()
    ds = LadderDataset.from_atoms(frames)
    assert ds.n_configs == 4 and ds.levels == (1,) and ds.elements == ("Na", "Cl")
    assert list(ds.groups) == ["small", "large", "small", "large"]
    for i, atoms in enumerate(frames):
        assert ds.energy[0, i] == atoms.get_potential_energy()
        np.testing.assert_array_equal(ds.config_forces(1, i), atoms.get_forces())
        np.testing.assert_array_equal(ds.stress[0, i], atoms.get_stress())
    path = ds.to_extxyz(tmp_path / "d.xyz")
    back = LadderDataset.from_extxyz(path)
    _same(ds, back)


def test_levels_from_an_info_key_and_missing_configurations(tmp_path):
    low, high = _frames(seed=1), _frames(seed=2, shift=0.5)
    for a in low:
        a.info["precision"] = 1
    for a in high:
        a.info["precision"] = 3
    flat = low + high[:2]  # configurations 2 and 3 have no level-3 calculation
    ds = LadderDataset.from_atoms(flat, level_key="precision")
    assert ds.levels == (1, 3) and ds.n_configs == 4
    np.testing.assert_array_equal(ds.missing, [[False] * 4, [False, False, True, True]])
    assert np.isnan(ds.energy[1, 2:]).all() and ds.energy[1, 1] == high[1].get_potential_energy()
    assert ds.drop_incomplete().n_configs == 2
    # the same from one list per level (None marks a missing configuration) and from two files
    nested = LadderDataset.from_atoms([low, high[:2] + [None, None]], levels=[1, 3])
    _same(ds, nested)
    ds.to_extxyz(tmp_path / "l1.xyz", level=1)
    with pytest.warns(UserWarning, match="2 configuration"):
        ds.to_extxyz(tmp_path / "l3.xyz", level=3)
    with pytest.raises(ValueError, match="say which one"):
        ds.to_extxyz(tmp_path / "x.xyz")
    from_files = LadderDataset.from_extxyz([tmp_path / "l1.xyz", tmp_path / "l3.xyz"], level_key="level")
    _same(ds, from_files)


def test_bad_frames():
    frames = _frames()
    bare = bulk("Cu")
    with pytest.raises(DatasetError, match="frame 1: the structure has no calculator results"):
        LadderDataset.from_atoms([frames[0], bare])
    wrong = frames[1].copy()
    wrong.calc = SinglePointCalculator(wrong, energy=-1.0, forces=np.zeros((len(wrong) + 1, 3)))
    with pytest.raises(DatasetError, match=r"frame 1: forces have shape \(5, 3\), expected \(4, 3\)"):
        LadderDataset.from_atoms([frames[0], wrong])
    no_energy = frames[0].copy()
    no_energy.calc = SinglePointCalculator(no_energy, forces=np.zeros((2, 3)))
    with pytest.raises(DatasetError, match="frame 0: no energy"):
        LadderDataset.from_atoms([no_energy])
    for a in frames[:3]:
        a.info["level"] = 2
    with pytest.raises(DatasetError, match="frame 3: no level key 'level'"):
        LadderDataset.from_atoms(frames, level_key="level")
    moved = _frames(seed=5)
    moved[0].positions[0] += 0.1
    with pytest.raises(DatasetError, match="configuration.*differ: positions differ by up to 0.1"):
        LadderDataset.from_atoms([_frames(), moved])
    with pytest.raises(DatasetError, match="different lengths"):
        LadderDataset.from_atoms([_frames(), _frames()[:3]])
