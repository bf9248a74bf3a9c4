"""Diverse configurations of a unary metal (Be by default) for training-set generation.

The generator draws a large pool of candidates from several families — strained and sheared hcp/bcc/fcc cells,
random displacements at several amplitudes, vacancies, slabs with vacuum, compressed and expanded cells, random
dense packings with a minimum pair distance — and then keeps the candidates that spread most in a descriptor space
(greedy farthest-point selection on per-configuration summaries of per-atom radial descriptors). This follows the
spirit of information-entropy maximisation: later picks are the ones least like anything already picked.

Everything is seeded and reproducible: the same ``seed`` gives the same structures on any machine.
Lengths are in Å.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk, hcp0001
from ase.neighborlist import neighbor_list

__all__ = [
    "FAMILIES",
    "generate_candidates",
    "radial_descriptors",
    "configuration_features",
    "farthest_point_selection",
    "generate_structures",
    "min_pair_distance",
]

#: lattice constants of Be used as the starting point (Å): hcp a, c; bcc a; fcc a
BE_LATTICE = {"hcp": (2.29, 3.58), "bcc": 2.55, "fcc": 3.17}


def min_pair_distance(atoms: Atoms, cutoff: float = 6.0) -> float:
    """Shortest distance between two atoms (periodic images included), Å; ``inf`` if none within ``cutoff``."""
    dist = neighbor_list("d", atoms, cutoff)
    return float(dist.min()) if len(dist) else float("inf")


def _lattice(kind: str, element: str) -> Atoms:
    if kind == "hcp":
        a, c = BE_LATTICE["hcp"]
        return bulk(element, "hcp", a=a, c=c)
    if kind == "bcc":
        return bulk(element, "bcc", a=BE_LATTICE["bcc"], cubic=True)
    return bulk(element, "fcc", a=BE_LATTICE["fcc"])


def _repeat_to(atoms: Atoms, max_atoms: int, rng: np.random.Generator) -> Atoms:
    """Repeat ``atoms`` along random axes while it stays at or under ``max_atoms``."""
    reps = [1, 1, 1]
    for _ in range(6):
        axis = int(rng.integers(3))
        trial = list(reps)
        trial[axis] += 1
        if len(atoms) * np.prod(trial) > max_atoms:
            break
        reps = trial
    return atoms.repeat(reps)


def _deform(atoms: Atoms, rng: np.random.Generator, strain: float, volume_scale: float = 1.0) -> Atoms:
    """Apply a random symmetric strain (components up to ``strain``) and a volume scale, atoms following the cell."""
    eps = rng.uniform(-strain, strain, size=(3, 3))
    eps = 0.5 * (eps + eps.T)
    deformation = (np.eye(3) + eps) * volume_scale ** (1.0 / 3.0)
    out = atoms.copy()
    out.set_cell(atoms.cell[:] @ deformation, scale_atoms=True)
    return out


def _rattle(atoms: Atoms, rng: np.random.Generator, amplitude: float) -> Atoms:
    out = atoms.copy()
    out.positions += rng.normal(scale=amplitude, size=out.positions.shape)
    return out


def _strained(rng, element, max_atoms):
    kind = str(rng.choice(["hcp", "bcc", "fcc"]))
    atoms = _lattice(kind, element)
    return _deform(atoms, rng, strain=rng.uniform(0.02, 0.12)), f"strained_{kind}"


def _rattled(rng, element, max_atoms):
    kind = str(rng.choice(["hcp", "bcc", "fcc"]))
    atoms = _repeat_to(_lattice(kind, element), max_atoms, rng)
    amplitude = float(rng.choice([0.03, 0.08, 0.15, 0.25]))
    return _rattle(_deform(atoms, rng, 0.03), rng, amplitude), f"rattled_{kind}_{amplitude:g}"


def _vacancy(rng, element, max_atoms):
    kind = str(rng.choice(["hcp", "bcc", "fcc"]))
    atoms = _repeat_to(_lattice(kind, element), max_atoms + 1, rng)
    while len(atoms) < 4:
        atoms = atoms.repeat((2, 1, 1))
    del atoms[int(rng.integers(len(atoms)))]
    return _rattle(atoms, rng, 0.05), f"vacancy_{kind}"


def _slab(rng, element, max_atoms):
    a, c = BE_LATTICE["hcp"]
    layers = int(rng.integers(3, 7))
    atoms = hcp0001(element, size=(1, 1, layers), a=a, c=c, vacuum=float(rng.uniform(3.0, 5.0)), periodic=True)
    if len(atoms) * 2 <= max_atoms and rng.random() < 0.4:
        atoms = atoms.repeat((2, 1, 1))
    return _rattle(atoms, rng, float(rng.uniform(0.02, 0.1))), f"slab_{layers}"


def _density(rng, element, max_atoms):
    kind = str(rng.choice(["hcp", "bcc", "fcc"]))
    scale = float(rng.choice([rng.uniform(0.72, 0.9), rng.uniform(1.1, 1.45)]))
    atoms = _repeat_to(_lattice(kind, element), min(max_atoms, 8), rng)
    return _rattle(_deform(atoms, rng, 0.02, volume_scale=scale), rng, 0.04), f"density_{kind}_{scale:.2f}"


def _random_packing(rng, element, max_atoms, min_distance=1.75):
    """Random positions in a random orthorhombic cell at about the crystal's density, no pair closer than
    ``min_distance`` Å (minimum-image distances, rejection sampling; the cell grows if placement stalls)."""
    n_atoms = int(rng.integers(3, min(max_atoms, 10) + 1))
    volume = n_atoms * rng.uniform(7.5, 11.0)  # Å^3 per atom around the crystal's 8.1
    lengths = rng.uniform(0.8, 1.25, size=3)
    lengths *= (volume / np.prod(lengths)) ** (1.0 / 3.0)
    while True:
        if lengths.min() < min_distance:
            lengths = lengths * 1.05
            continue
        fractional = np.zeros((0, 3))
        for _ in range(200 * n_atoms):
            trial = rng.uniform(size=3)
            delta = fractional - trial
            delta -= np.round(delta)
            if len(fractional) == 0 or np.linalg.norm(delta * lengths, axis=1).min() >= min_distance:
                fractional = np.vstack([fractional, trial])
                if len(fractional) == n_atoms:
                    atoms = Atoms(element * n_atoms, scaled_positions=fractional, cell=np.diag(lengths), pbc=True)
                    return atoms, "random_packing"
        lengths = lengths * 1.05


#: candidate families and their share of the pool
FAMILIES: dict[str, tuple[Callable, float]] = {
    "strained": (_strained, 0.15),
    "rattled": (_rattled, 0.30),
    "vacancy": (_vacancy, 0.12),
    "slab": (_slab, 0.13),
    "density": (_density, 0.15),
    "random_packing": (_random_packing, 0.15),
}


def generate_candidates(
    n_candidates: int, seed: int = 0, element: str = "Be", max_atoms: int = 16, min_distance: float = 1.5
) -> tuple[list[Atoms], list[str]]:
    """Draw ``n_candidates`` structures (2 to ``max_atoms`` atoms, all pairs ≥ ``min_distance`` Å apart).

    Returns:
        The structures and, for each, a family label (e.g. ``"rattled_hcp_0.08"``).
    """
    if n_candidates < 1:
        raise ValueError("n_candidates must be positive")
    if max_atoms < 2:
        raise ValueError("max_atoms must be at least 2")
    rng = np.random.default_rng(seed)
    names = list(FAMILIES)
    weights = np.array([FAMILIES[n][1] for n in names])
    structures, labels = [], []
    while len(structures) < n_candidates:
        family = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        atoms, label = FAMILIES[family][0](rng, element, max_atoms)
        if not 2 <= len(atoms) <= max_atoms or min_pair_distance(atoms) < min_distance:
            continue
        atoms.wrap()
        structures.append(atoms)
        labels.append(label)
    return structures, labels


def radial_descriptors(atoms: Atoms, cutoff: float = 5.0, n_radial: int = 12, width: float = 0.35) -> np.ndarray:
    """Per-atom radial fingerprints: Gaussian-smeared neighbour counts on ``n_radial`` shells up to ``cutoff`` Å,
    with a smooth cosine cut-off. Shape (n_atoms, n_radial)."""
    centres = np.linspace(1.5, cutoff, n_radial)
    i, d = neighbor_list("id", atoms, cutoff)
    fc = 0.5 * (np.cos(np.pi * d / cutoff) + 1.0)
    contributions = np.exp(-((d[:, None] - centres[None, :]) ** 2) / (2 * width**2)) * fc[:, None]
    out = np.zeros((len(atoms), n_radial))
    np.add.at(out, i, contributions)
    return out


def configuration_features(structures: Sequence[Atoms]) -> np.ndarray:
    """Per-configuration summary of the per-atom descriptors: mean, standard deviation and minimum over atoms,
    plus the volume per atom (Å³). Standardised column-wise. Shape (n_configs, 3·n_radial + 1)."""
    rows = []
    for atoms in structures:
        desc = radial_descriptors(atoms)
        rows.append(np.concatenate([desc.mean(0), desc.std(0), desc.min(0), [atoms.get_volume() / len(atoms)]]))
    features = np.array(rows)
    spread = features.std(axis=0)
    spread[spread == 0] = 1.0
    return (features - features.mean(axis=0)) / spread


def farthest_point_selection(
    features: np.ndarray, n_select: int, first: int = 0, groups: Sequence[str] | None = None,
    quotas: dict[str, int] | None = None,
) -> np.ndarray:
    """Greedy farthest-point order: each pick maximises its distance to the nearest already-picked row.

    With ``groups`` (a label per row) and ``quotas`` (maximum picks per label), a label that has reached its quota
    is skipped, so no family of candidates crowds out the others while each family is still spread out.
    """
    n = len(features)
    if not 1 <= n_select <= n:
        raise ValueError(f"cannot select {n_select} of {n} candidates")
    allowed = np.ones(n, dtype=bool)
    counts: dict[str, int] = {}
    chosen = []
    nearest = np.full(n, np.inf)
    pick = first
    for _ in range(n_select):
        chosen.append(pick)
        allowed[pick] = False
        if groups is not None and quotas is not None:
            label = groups[pick]
            counts[label] = counts.get(label, 0) + 1
            if counts[label] >= quotas.get(label, n):
                allowed &= np.array([g != label for g in groups])
        nearest = np.minimum(nearest, np.linalg.norm(features - features[pick], axis=1))
        if not allowed.any():
            allowed = np.ones(n, dtype=bool)
            allowed[chosen] = False
        pick = int(np.argmax(np.where(allowed, nearest, -1.0)))
    return np.array(chosen)


def generate_structures(
    n_structures: int, seed: int = 0, oversample: int = 4, element: str = "Be", max_atoms: int = 16,
    min_distance: float = 1.5, include_ground_state: bool = True,
) -> tuple[list[Atoms], list[str]]:
    """Diverse structures: ``oversample × n_structures`` candidates, thinned by farthest-point selection with a
    quota per candidate family (each family's share of :data:`FAMILIES`).

    With ``include_ground_state`` the perfect 2-atom hcp cell is the first structure (the reference for
    bulk-shifted energy errors) and the selection starts from it.

    Returns:
        ``n_structures`` structures and their family labels, in selection order.
    """
    candidates, labels = generate_candidates(n_structures * oversample, seed, element, max_atoms, min_distance)
    if include_ground_state:
        candidates.insert(0, _lattice("hcp", element))
        labels.insert(0, "ground_state_hcp")
    families = [next((name for name in FAMILIES if label.startswith(name)), label) for label in labels]
    total = sum(share for _, share in FAMILIES.values())
    quotas = {name: int(np.ceil(n_structures * share / total)) for name, (_, share) in FAMILIES.items()}
    order = farthest_point_selection(
        configuration_features(candidates), n_structures, first=0, groups=families, quotas=quotas
    )
    return [candidates[i] for i in order], [labels[i] for i in order]
