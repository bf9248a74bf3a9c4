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
