"""qSNAP descriptors: column counts, FitSNAP equivalence, symmetry, small/odd cells, streaming, cache, bad input."""

import h5py
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from pyiron_mlip_tradeoff import descriptors
from pyiron_mlip_tradeoff.descriptors import (
    DescriptorStore,
    compute_descriptors,
    descriptor_key,
    iter_descriptor_blocks,
    lammps_frame,
    n_columns,
)


def _hcp(rep=(1, 1, 1), rattle=0.05, seed=0, strain=None):
    atoms = bulk("Be", "hcp", a=2.29, c=3.58) * rep
    if strain is not None:
        atoms.set_cell(atoms.cell @ (np.eye(3) + np.asarray(strain)), scale_atoms=True)
    atoms.positions += np.random.default_rng(seed).normal(scale=rattle, size=atoms.positions.shape)
    return atoms


def _triclinic():
    return Atoms(
        "Be3",
        cell=[[3.1, 0.2, 0.1], [0.9, 3.0, -0.3], [0.4, 0.5, 3.4]],
        scaled_positions=[[0, 0, 0], [0.4, 0.3, 0.5], [0.7, 0.8, 0.2]],
        pbc=True,
    )


@pytest.fixture(scope="module")
def cells():
    """A handful of small Be cells: 2-atom (smaller than the cutoff), supercells, strained, triclinic."""
    return [
        _hcp(seed=1),
        _hcp((2, 1, 1), seed=2),
        _hcp((1, 2, 1), seed=3, strain=[[0.02, 0.03, 0], [0, -0.01, 0.02], [0, 0, 0.01]]),
        _triclinic(),
        _hcp((2, 2, 1), rattle=0.1, seed=4),
    ]


def _close(ours, ref, rtol=1e-10):
    """|ours - ref| ≤ rtol · (largest |ref| of the column), column by column."""
    scale = np.abs(ref).max(axis=0)
    scale[scale == 0] = 1.0
    return np.all(np.abs(ours - ref) <= rtol * scale)


def _no_lammps(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("LAMMPS was started")

    monkeypatch.setattr(descriptors, "_lammps_instance", fail)


# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("twojmax, expected", [(4, 120), (6, 496), (8, 1596), (10, 4278)])
def test_column_counts(twojmax, expected):
    assert n_columns(twojmax) == expected
    assert n_columns(twojmax, quadraticflag=1, bzeroflag=1) == expected - 1
    atoms = bulk("Be", "hcp", a=2.29, c=3.58)
    d = compute_descriptors([atoms], twojmax)
    assert d.energy_rows.shape == (1, expected)
    assert d.force_rows.shape == (6, expected)
    assert d.n_columns == expected
    np.testing.assert_array_equal(d.energy_rows[:, 0], 1.0)  # constant column (bzeroflag 0), per atom
    np.testing.assert_array_equal(d.force_rows[:, 0], 0.0)


def test_linear_and_bzero_variants_drop_columns():
    atoms = _hcp(seed=5)
    full = compute_descriptors([atoms], 4)
    linear = compute_descriptors([atoms], 4, quadraticflag=0)
    assert linear.n_columns == 15 == n_columns(4, quadraticflag=0)
    np.testing.assert_allclose(linear.energy_rows, full.energy_rows[:, :15], rtol=1e-12)
    no_constant = compute_descriptors([atoms], 4, bzeroflag=1)
    assert no_constant.n_columns == 119


@pytest.mark.parametrize("twojmax", [4, 6])
def test_matches_fitsnap(cells, twojmax):
    from fitsnap3lib.scrapers.ase_funcs import get_apre

    from pyiron_mlip_tradeoff._fitsnap_compat import fitsnap_rows, fitsnap_settings, make_fitsnap

    fs = make_fitsnap(fitsnap_settings(twojmax))
    ref_energy, ref_forces, ref_stress = fitsnap_rows(fs, cells)
    ours = compute_descriptors(cells, twojmax, virial=True)
    p = ours.n_columns
    assert ref_energy.shape == ours.energy_rows.shape
    assert _close(ours.energy_rows, ref_energy)
    # FitSNAP works in its rotated LAMMPS frame x' = x @ R; ours are in the structure's own frame
    forces, stress = [], []
    for i, atoms in enumerate(cells):
        rot = np.linalg.inv(atoms.cell) @ get_apre(atoms.cell)
        block = ours.block(i)
        forces.append(np.einsum("ji,njk->nik", rot, block.force_rows.reshape(-1, 3, p)).reshape(-1, p))
        v = block.virial_rows
        full = np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])
        tensor = np.einsum("ai,abk,bj->ijk", rot, full, rot)
        stress.append(tensor[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]] * 1.6021765e6 / atoms.get_volume())
    assert _close(np.concatenate(forces), ref_forces)
    assert _close(np.concatenate(stress), ref_stress)
    # the comparison is not vacuous: the rows carry signal in every column group
    assert np.abs(ref_forces[:, 1:]).max() > 1.0


def test_energy_row_invariant_under_rotation_and_translation():
    atoms = _hcp((2, 1, 1), seed=6, strain=[[0.01, 0.02, 0.0], [0.0, 0.03, 0.0], [0.0, 0.0, -0.02]])
    moved = atoms.copy()
    moved.rotate(37.0, (1.0, 2.0, -0.5), rotate_cell=True)
    moved.translate([0.3, -1.7, 5.2])
    a, b = compute_descriptors([atoms, moved], 6).iter_blocks()
    assert _close(b.energy_row[None], a.energy_row[None])
    # forces rotate with the structure: F' = Q F
    q = np.linalg.solve(atoms.cell[:], moved.cell[:]).T  # moved.cell = atoms.cell @ q.T
    p = a.force_rows.shape[1]
    expected = np.einsum("ij,njk->nik", q, a.force_rows.reshape(-1, 3, p)).reshape(-1, p)
    assert _close(b.force_rows, expected, rtol=1e-9)
    # and the rows are not trivially equal (the rotation does change the force rows)
    assert not np.allclose(b.force_rows, a.force_rows)


def test_cell_smaller_than_cutoff_equals_supercell():
    small = _hcp(seed=7)  # a = 2.29 Å, far below the 4.81 Å cutoff
    big = small * (3, 3, 2)
    d = compute_descriptors([small, big], 6)
    small_block, big_block = d.block(0), d.block(1)
    assert _close(big_block.energy_row[None], small_block.energy_row[None])
    assert _close(big_block.force_rows[:6], small_block.force_rows)


def test_left_handed_and_highly_tilted_cells():
    atoms = _triclinic()
    a, b, c = atoms.cell[:]
    left = atoms.copy()
    left.set_cell([a, c, b], scale_atoms=False)  # same lattice, left-handed basis
    tilted = atoms.copy()
    tilted.set_cell([a, b + 3 * a, c - 2 * b], scale_atoms=False)  # same lattice, tilt far beyond half a box
    d = compute_descriptors([atoms, left, tilted], 4)
    for i in (1, 2):
        assert _close(d.energy_rows[i : i + 1], d.energy_rows[:1])
        assert _close(d.block(i).force_rows, d.block(0).force_rows)


def test_lammps_frame_is_a_rotation_of_the_same_lattice():
    atoms = _triclinic()
    cell = atoms.cell[:].copy()
    cell[[1, 2]] = cell[[2, 1]]  # left-handed
    lower, wrapped, rot = lammps_frame(cell, atoms.positions)
    assert np.isclose(np.linalg.det(rot), 1.0)
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-14)
    assert np.all(np.triu(lower, 1) == 0) and np.all(np.diag(lower) > 0)
    # lower spans the rotated lattice: integer combinations of the rotated cell vectors
    n = np.linalg.solve((cell @ rot).T, lower.T).T
    np.testing.assert_allclose(n, np.round(n), atol=1e-10)
    frac = wrapped @ np.linalg.inv(lower)
    assert np.all((frac >= 0) & (frac < 1))


def test_streaming_store_and_subsets(cells, tmp_path):
    d = compute_descriptors(cells, 4, virial=True)
    blocks = list(iter_descriptor_blocks(cells, 4))
    assert [b.index for b in blocks] == list(range(len(cells)))
    for block in blocks:
        np.testing.assert_array_equal(block.energy_row, d.energy_rows[block.index])
        np.testing.assert_array_equal(block.force_rows, d.block(block.index).force_rows)

    store = DescriptorStore.create(tmp_path / "d.h5", cells, 4, virial=True)
    assert store.n_configs == len(cells) and store.n_columns == 120
    np.testing.assert_array_equal(store.force_offsets, d.force_offsets)
    subset = [3, 0, 4]
    np.testing.assert_array_equal(store.energy_rows(subset), d.energy_rows[subset])
    loaded = store.load(subset)
    reference = d.subset(subset)
    np.testing.assert_array_equal(loaded.force_rows, reference.force_rows)
    np.testing.assert_array_equal(loaded.virial_rows, reference.virial_rows)
    np.testing.assert_array_equal(loaded.n_atoms, [len(cells[i]) for i in subset])
    with h5py.File(store.path) as f:
        assert f["force_rows"].chunks is not None and f["energy_rows"].chunks is not None
        assert f.attrs["complete"]


def test_cache_computes_once(cells, tmp_path, monkeypatch):
    first = compute_descriptors(cells[:3], 4, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.h5"))
    assert len(files) == 1 and descriptor_key(cells[:3], 4)[:32] in files[0].name
    _no_lammps(monkeypatch)  # a second call must come from the cache
    second = compute_descriptors(cells[:3], 4, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.force_rows, second.force_rows)
    # other settings or other structures are a different key
    assert descriptor_key(cells[:3], 4, rfac0=0.9) != descriptor_key(cells[:3], 4)
    moved = [a.copy() for a in cells[:3]]
    moved[1].positions[0, 0] += 1e-9
    assert descriptor_key(moved, 4) != descriptor_key(cells[:3], 4)
    with pytest.raises(AssertionError, match="LAMMPS was started"):
        compute_descriptors(moved, 4, cache_dir=tmp_path)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"twojmax": 5}, ValueError, "even"),
        ({"twojmax": -2}, ValueError, "non-negative"),
        ({"twojmax": 12}, ValueError, "explodes"),
        ({"twojmax": 6.0}, TypeError, "integer"),
        ({"rcutfac": 0.0}, ValueError, "rcutfac must be positive"),
        ({"rcutfac": -1.0}, ValueError, "rcutfac must be positive"),
        ({"rcut": 5.0}, ValueError, "unknown descriptor setting"),
        ({"quadraticflag": 2}, ValueError, "0 or 1"),
        ({"rfac0": 1.5}, ValueError, "rfac0"),
    ],
)
def test_bad_settings_rejected_before_lammps(monkeypatch, kwargs, error, match):
    _no_lammps(monkeypatch)
    kwargs = {"twojmax": 6, **kwargs}
    twojmax = kwargs.pop("twojmax")
    with pytest.raises(error, match=match):
        compute_descriptors([_hcp()], twojmax, **kwargs)
    with pytest.raises(error, match=match):
        iter_descriptor_blocks([_hcp()], twojmax, **kwargs)


def test_bad_structures_rejected_before_lammps(monkeypatch, tmp_path):
    _no_lammps(monkeypatch)
    with pytest.raises(ValueError, match="no structures"):
        compute_descriptors([], 6)
    alloy = _hcp()
    alloy[1].symbol = "Mg"
    with pytest.raises(ValueError, match=r"structure 1 contains \['Mg'\]"):
        compute_descriptors([_hcp(), alloy], 6)
    with pytest.raises(ValueError, match="periodic"):
        compute_descriptors([Atoms("Be2", positions=[[0, 0, 0], [0, 0, 2]], cell=[5, 5, 5], pbc=False)], 6)
    with pytest.raises(ValueError, match="no atoms"):
        compute_descriptors([Atoms(cell=[3, 3, 3], pbc=True)], 6)
    with pytest.raises(ValueError, match="contains"):
        DescriptorStore.open_or_compute(tmp_path, [alloy], 6)
    assert not list(tmp_path.iterdir())


def test_force_rows_are_minus_the_gradient_of_the_descriptor_sum():
    atoms = _triclinic()
    h = 1e-5
    plus, minus = atoms.copy(), atoms.copy()
    plus.positions[1, 2] += h
    minus.positions[1, 2] -= h
    d = compute_descriptors([atoms, plus, minus], 4)
    n = len(atoms)
    gradient = (d.energy_rows[1] - d.energy_rows[2]) * n / (2 * h)  # d(Σ_atoms B)/dz_1
    force_row = d.block(0).force_rows[3 * 1 + 2]  # atom 1, z
    assert _close(force_row[None], -gradient[None], rtol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# several elements
def _alloy(seed=0):
    """A rattled 2×2×1 hcp cell with Be and Mg atoms (a two-element test structure)."""
    atoms = _hcp((2, 2, 1), rattle=0.08, seed=seed)
    atoms.symbols[[1, 4, 6]] = "Mg"
    return atoms


TWO = dict(elements=["Be", "Mg"], radelem=[0.5, 0.55], wj=[1.0, 0.8])


def test_two_elements_columns_and_element_order():
    cells = [_alloy(1), _alloy(2)]
    d = compute_descriptors(cells, 4, virial=True, **TWO)
    per = n_columns(4)  # 120 per element with the defaults
    assert d.n_columns == 2 * per == n_columns(4, n_elements=2)
    assert d.elements == ("Be", "Mg")
    np.testing.assert_array_equal(d.energy_rows[:, [0, per]], [[5 / 8, 3 / 8]] * 2)  # fractions of the atoms
    np.testing.assert_array_equal(d.force_rows[:, [0, per]], 0.0)
    # swapping the element order (with its per-element settings) swaps the two column blocks
    swapped = compute_descriptors(cells, 4, virial=True, elements=["Mg", "Be"], radelem=[0.55, 0.5], wj=[0.8, 1.0])
    for ours, theirs in ((d.energy_rows, swapped.energy_rows), (d.force_rows, swapped.force_rows),
                         (d.virial_rows, swapped.virial_rows)):
        assert _close(ours, np.concatenate([theirs[:, per:], theirs[:, :per]], axis=1), rtol=1e-12)
    # the second element's block is not a copy of the first
    assert not np.allclose(d.energy_rows[:, 1:per], d.energy_rows[:, per + 1 :])
    # explicit multi-element: 8 element triples per element, no quadratic terms
    eme = compute_descriptors(cells, 4, chemflag=1, quadraticflag=0, bzeroflag=1, **TWO)
    assert eme.n_columns == 2 * 14 * 8 == n_columns(4, 0, 1, n_elements=2, chemflag=1)


def test_bzeroflag_subtracts_the_isolated_atom():
    alone = Atoms("BeMg", positions=[[0, 0, 0], [12, 12, 12]], cell=[25, 25, 25], pbc=True)  # no neighbours
    crowded = _alloy(3)
    zero = compute_descriptors([alone, crowded], 4, quadraticflag=0, bzeroflag=1, **TWO)
    np.testing.assert_allclose(zero.energy_rows[0], 0.0, atol=1e-14)
    plain = compute_descriptors([alone, crowded], 4, quadraticflag=0, bzeroflag=0, **TWO)
    # bzeroflag 0 rows (constant columns dropped) minus the isolated atoms' rows = bzeroflag 1 rows
    keep = np.ones(plain.n_columns, bool)
    keep[[0, plain.n_columns // 2]] = False
    n_be, n_mg = 5, 3
    isolated = plain.energy_rows[0, keep] * 2  # one atom of each element, summed
    shift = np.concatenate([isolated[:14] * n_be, isolated[14:] * n_mg]) / 8
    assert _close(plain.energy_rows[1:, keep] - shift, zero.energy_rows[1:], rtol=1e-12)
    np.testing.assert_allclose(plain.force_rows[6:, keep], zero.force_rows[6:], rtol=1e-12, atol=1e-14)


def test_stress_rows_are_minus_virial_over_volume(cells, tmp_path):
    d = compute_descriptors(cells[:3], 4, virial=True)
    volumes = np.array([a.get_volume() for a in cells[:3]])
    np.testing.assert_allclose(d.volumes, volumes, rtol=1e-12)
    np.testing.assert_allclose(d.stress_rows, -d.virial_rows / np.repeat(volumes, 6)[:, None], rtol=1e-14)
    np.testing.assert_array_equal(d.block(1).stress_rows, d.stress_rows[6:12])
    store = DescriptorStore.create(tmp_path / "s.h5", cells[:3], 4, virial=True)
    np.testing.assert_array_equal(store.load().stress_rows, d.stress_rows)
    with pytest.raises(ValueError, match="virial"):
        _ = compute_descriptors(cells[:1], 4).stress_rows


def test_two_element_store_and_cache_key(tmp_path, monkeypatch):
    cells = [_alloy(4), _alloy(5)]
    d = compute_descriptors(cells, 4, **TWO)
    cached = compute_descriptors(cells, 4, cache_dir=tmp_path, **TWO)
    np.testing.assert_array_equal(cached.force_rows, d.force_rows)
    assert cached.elements == ("Be", "Mg") and DescriptorStore(next(tmp_path.glob("*.h5"))).elements == ("Be", "Mg")
    key = descriptor_key(cells, 4, **TWO)
    assert key != descriptor_key(cells, 4, elements=["Mg", "Be"], radelem=[0.5, 0.55], wj=[1.0, 0.8])
    assert key != descriptor_key(cells, 4, elements=["Be", "Mg"], radelem=[0.5, 0.55], wj=[1.0, 0.9])
    assert key != descriptor_key(cells, 4, chemflag=1, quadraticflag=0, **TWO)
    assert descriptor_key(cells[:1], 4) == descriptor_key(cells[:1], 4, element="Be") == descriptor_key(
        cells[:1], 4, elements=["Be"])
    _no_lammps(monkeypatch)
    np.testing.assert_array_equal(compute_descriptors(cells, 4, cache_dir=tmp_path, **TWO).energy_rows,
                                  d.energy_rows)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"elements": ["Be", "Mg"], "radelem": [0.5, 0.5, 0.5]}, ValueError, r"radelem has 3 values.*2 element"),
        ({"elements": ["Be", "Mg"], "wj": [1.0]}, ValueError, r"wj has 1 values"),
        ({"elements": ["Be", "Mg"], "wj": [1.0, -1.0]}, ValueError, "wj must be positive"),
        ({"elements": ["Be", "Xx"]}, ValueError, "unknown chemical symbol 'Xx'"),
        ({"elements": ["Be", "Be"]}, ValueError, "repeat"),
        ({"elements": []}, ValueError, "empty"),
        ({"elements": ["Be", "Mg"], "element": "Be"}, ValueError, "disagree"),
        ({"elements": ["Be", "Mg"], "chemflag": 1}, ValueError, "chemflag 1 with quadraticflag 1"),
        ({"elements": ["Be", "Mg"], "chemflag": 2, "quadraticflag": 0}, ValueError, "0 or 1"),
        ({"elements": ["Be"]}, ValueError, r"structure 1 \(odd one\) contains \['Mg'\].*'Be' only"),
        ({"elements": ["Be", "Al"]}, ValueError, r"structure 1 \(odd one\) contains \['Mg'\].*\['Be', 'Al'\]"),
    ],
)
def test_bad_multi_element_input_rejected_before_lammps(monkeypatch, tmp_path, kwargs, error, match):
    _no_lammps(monkeypatch)
    odd = _alloy()
    odd.info["name"] = "odd one"
    for call in (compute_descriptors, iter_descriptor_blocks):
        with pytest.raises(error, match=match):
            call([_hcp(), odd], 4, **kwargs)
    with pytest.raises(error, match=match):
        DescriptorStore.open_or_compute(tmp_path, [_hcp(), odd], 4, **kwargs)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("twojmax", [2, 4])
def test_chem_equivalent_columns_are_the_identical_columns(twojmax):
    from pyiron_mlip_tradeoff.descriptors import chem_equivalent_columns

    cells = [_alloy(6), _alloy(7)]
    d = compute_descriptors(cells, twojmax, chemflag=1, quadraticflag=0, bzeroflag=1, virial=True, **TWO)
    x = np.vstack([d.energy_rows, d.force_rows, d.virial_rows])
    p = x.shape[1] // 2
    for block in (0, p):  # both elements' blocks have the same duplicates
        cols = x[:, block : block + p]
        found, seen = set(), set()
        for i in range(p):
            if i not in seen:
                same = np.flatnonzero(np.all(np.abs(cols - cols[:, [i]]) <= 1e-12 * np.abs(cols[:, i]).max(), axis=0))
                seen.update(same.tolist())
                if same.size > 1:
                    found.add(tuple(same.tolist()))
        assert found == {tuple(sorted(g.tolist())) for g in chem_equivalent_columns(twojmax, 2)}
        assert found  # there are duplicates to find


def test_worker_processes_give_the_same_rows(cells, tmp_path):
    one = compute_descriptors(cells, 4, virial=True)
    store = DescriptorStore.create(tmp_path / "w.h5", cells, 4, virial=True, n_workers=2)  # spawns 2 processes
    two = store.load()
    for name in ("energy_rows", "force_rows", "virial_rows", "volumes"):
        np.testing.assert_array_equal(getattr(two, name), getattr(one, name))
    with pytest.raises(ValueError, match="n_workers"):
        compute_descriptors(cells, 4, n_workers=0)


@pytest.mark.parametrize("chemflag", [0, 1])
def test_one_lammps_for_many_cells_equals_a_fresh_lammps_per_cell(cells, chemflag):
    """The engine keeps its LAMMPS system from one configuration to the next and only replaces atoms and box;
    every row must equal, bit for bit, the rows of a fresh LAMMPS set up for that configuration alone — over cells
    of different sizes (the same atom count twice in a row, too), shapes, a cell smaller than the cutoff, after a
    configuration LAMMPS refused, with two elements and virial rows."""
    mixed = [_alloy(1), _alloy(2), *cells, _alloy(3), _hcp((2, 2, 1), rattle=0.1, seed=9)]
    options = {k: v for k, v in TWO.items() if k != "elements"}
    if chemflag:
        options.update(chemflag=1, quadraticflag=0)  # chemflag needs linear columns
    settings = descriptors.resolve_settings(4, options, 2)
    names = tuple(TWO["elements"])
    alone = []
    for k, atoms in enumerate(mixed):
        with descriptors._SnapEngine(settings, names, True) as engine:
            alone.append(engine.compute(k, atoms))
    with descriptors._SnapEngine(settings, names, True) as engine:
        for k, atoms in enumerate(mixed):
            if k == 3:  # a failure half-way through replacing the atoms: the next configuration starts afresh
                create = engine.lmp.create_atoms
                engine.lmp.create_atoms = None
                with pytest.raises(TypeError):
                    engine.compute(k, atoms)
                engine.lmp.create_atoms = create
            block = engine.compute(k, atoms)
            ref = alone[k]
            for name in ("energy_row", "force_rows", "virial_rows"):
                np.testing.assert_array_equal(getattr(block, name), getattr(ref, name), err_msg=f"{k} {name}")
            assert block.volume == ref.volume
