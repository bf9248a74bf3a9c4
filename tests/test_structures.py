import numpy as np
import pytest
from ase.build import bulk

from pyiron_mlip_tradeoff.structures import (
    FAMILIES,
    configuration_features,
    farthest_point_selection,
    generate_candidates,
    generate_structures,
    min_pair_distance,
)


@pytest.fixture(scope="module")
def generated():
    return generate_structures(40, seed=5, oversample=3, max_atoms=12)


def test_reproducible_with_seed(generated):
    again, labels = generate_structures(40, seed=5, oversample=3, max_atoms=12)
    assert labels == generated[1]
    for a, b in zip(again, generated[0], strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell[:], b.cell[:])
    other, _ = generate_structures(40, seed=6, oversample=3, max_atoms=12)
    assert any(len(a) != len(b) or not np.allclose(a.positions, b.positions) for a, b in zip(other, generated[0], strict=True))


def test_sizes_distances_and_periodicity(generated):
    structures, labels = generated
    assert len(structures) == 40 and labels[0] == "ground_state_hcp"
    for atoms in structures:
        assert 2 <= len(atoms) <= 12 and atoms.pbc.all() and atoms.cell.volume > 0
        assert set(atoms.get_chemical_symbols()) == {"Be"}
        assert min_pair_distance(atoms) >= 1.5
    # every family is represented
    families = {next(name for name in FAMILIES if label.startswith(name)) for label in labels[1:]}
    assert families == set(FAMILIES)


def test_min_pair_distance_includes_periodic_images():
    atoms = bulk("Be", "hcp", a=2.29, c=3.58)
    assert min_pair_distance(atoms) == pytest.approx(2.22, abs=0.02)
    squeezed = bulk("Be", "bcc", a=1.2)  # the atom's own image at 1.04 Å
    assert min_pair_distance(squeezed) == pytest.approx(1.2 * np.sqrt(3) / 2)


def test_selection_spreads_more_than_random():
    candidates, _ = generate_candidates(150, seed=3, max_atoms=8)
    features = configuration_features(candidates)
    picked = farthest_point_selection(features, 20)
    assert len(set(picked.tolist())) == 20

    def min_spacing(idx):
        sub = features[idx]
        d = np.linalg.norm(sub[:, None] - sub[None], axis=2)
        return d[np.triu_indices(len(idx), 1)].min()

    rng = np.random.default_rng(0)
    random_spacings = [min_spacing(rng.choice(150, 20, replace=False)) for _ in range(20)]
    assert min_spacing(picked) > max(random_spacings)


def test_quotas_limit_each_family():
    features = np.random.default_rng(1).normal(size=(30, 4))
    groups = ["a"] * 10 + ["b"] * 20
    features[:10] *= 10  # family "a" is far more spread out and would otherwise be picked first
    picked = farthest_point_selection(features, 10, groups=groups, quotas={"a": 3, "b": 7})
    assert sum(groups[i] == "a" for i in picked) == 3


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate_candidates(0)
    with pytest.raises(ValueError):
        farthest_point_selection(np.zeros((3, 2)), 4)


def test_bundled_structures_unchanged():
    """The generator still makes the bundled dataset's 410 cells (cached in the repository's unit store)."""
    import json

    import h5io

    from pyiron_mlip_tradeoff.bundled import BUNDLED_SEED, DEFAULT_UNIT_STORE, MAX_ATOMS, N_BUNDLED
    from pyiron_mlip_tradeoff.dataset import arrays_to_atoms

    cache = DEFAULT_UNIT_STORE / "structures.h5"
    if not cache.is_file():
        pytest.skip("no bundled structure cache in this checkout")
    data = h5io.read_hdf5(str(cache), title="bundled_structures")
    fresh, labels = generate_structures(N_BUNDLED, seed=BUNDLED_SEED, max_atoms=MAX_ATOMS)
    assert labels == json.loads(data["labels"])
    for a, b in zip(fresh, arrays_to_atoms(data), strict=True):
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.cell[:], b.cell[:], rtol=0, atol=1e-12)


def test_other_element_from_ase_reference_data():
    structures, labels = generate_structures(12, seed=1, oversample=2, elements="W", max_atoms=8)
    assert labels[0] == "ground_state_bcc"
    assert structures[0].cell.lengths()[0] == pytest.approx(3.16 * np.sqrt(3) / 2)  # ASE's bcc W, primitive cell
    ratio = (structures[0].get_volume() / len(structures[0]) / 8.1) ** (1 / 3)
    for atoms in structures:
        assert set(atoms.get_chemical_symbols()) == {"W"}
        assert min_pair_distance(atoms) >= 1.5 * ratio - 1e-9  # distances scale with the element's size


def test_binary_compositions_and_ground_states():
    compositions = [{"Ni": 0.75, "Al": 0.25}, {"Ni": 0.5, "Al": 0.5}]
    structures, labels = generate_structures(24, seed=2, oversample=3, compositions=compositions, max_atoms=8)
    assert labels[:2] == ["ground_state_Ni_fcc", "ground_state_Al_fcc"]
    assert structures[0].get_chemical_symbols() == ["Ni"] and structures[1].get_chemical_symbols() == ["Al"]
    mixed = [a for a in structures[2:] if len(a) >= 4 and not labels[structures.index(a)].startswith("vacancy")]
    assert mixed
    for atoms in mixed:
        symbols = atoms.get_chemical_symbols()
        share = symbols.count("Al") / len(symbols)
        # the counts of one of the compositions, rounded to whole atoms
        assert min(abs(share - 0.25), abs(share - 0.5)) <= 0.5 / len(symbols) + 1e-12
    again, _ = generate_structures(24, seed=2, oversample=3, compositions=compositions, max_atoms=8)
    assert [a.get_chemical_symbols() for a in again] == [a.get_chemical_symbols() for a in structures]


def test_user_crystal_keeps_its_order():
    crystal = bulk("InP", "zincblende", a=5.87)
    structures, labels = generate_structures(12, seed=3, oversample=2, crystal=crystal, max_atoms=8)
    assert labels[0] == "ground_state_In_bct" and "ground_state_crystal" in labels
    made = [a for a, label in zip(structures, labels, strict=True) if label.startswith(("strained", "rattled"))]
    assert made
    for atoms in made:  # cells made from the crystal keep one In per P
        symbols = atoms.get_chemical_symbols()
        assert symbols.count("In") == symbols.count("P")


def test_crystal_with_repeated_species_names_each_element_once():
    """A crystal with several atoms of one element (L1_2 Al3Cu, diamond Si) gives each element once: one perfect
    crystal per element, and a one-element crystal stays a one-element system."""
    from pyiron_mlip_tradeoff.structures import chemical_system

    al3cu = bulk("Al", "fcc", a=4.02, cubic=True)
    al3cu[0].symbol = "Cu"
    system = chemical_system(crystal=al3cu)
    assert system.elements == ("Cu", "Al")
    assert [label for _, label in system.ground_states] == [
        "ground_state_Cu_fcc", "ground_state_Al_fcc", "ground_state_crystal"]
    structures, labels = generate_structures(8, seed=0, oversample=2, crystal=al3cu, max_atoms=8)
    assert labels[:3] == ["ground_state_Cu_fcc", "ground_state_Al_fcc", "ground_state_crystal"]
    assert labels.count("ground_state_Al_fcc") == 1
    assert chemical_system(crystal=bulk("Si", "diamond", a=5.43)).elements == ("Si",)


def test_clear_errors():
    from pyiron_mlip_tradeoff.structures import chemical_system

    with pytest.raises(ValueError, match="unknown element 'Qq'"):
        chemical_system("Qq")
    with pytest.raises(ValueError, match="sum to 0.9"):
        chemical_system(None, {"Ni": 0.5, "Al": 0.4})
    with pytest.raises(ValueError, match=r"no crystal reference state in ASE for \['O'\]"):
        chemical_system(["Ti", "O"])
    with pytest.raises(ValueError, match="not one of the elements"):
        chemical_system(["Ni"], {"Al": 1.0})
    system = chemical_system(["Ti", "O"], crystal=bulk("TiO", "rocksalt", a=4.2))  # a user crystal fixes it
    assert system.elements == ("Ti", "O") and system.prototypes == ("crystal",)
