"""Diverse configurations of any chemical system (Be by default) for training-set generation.

A *chemical system* (:func:`chemical_system`) is one or more elements, optionally the compositions to sample
(fractions per element) and optionally the user's own starting crystal (an ASE/pyiron ``Atoms``). Its
*prototypes* are the crystals the families below start from: hcp, bcc and fcc cells at the system's volume per
atom (lattice constants from ASE's reference data, :data:`ase.data.reference_states`, via :func:`ase.build.bulk`),
and the starting crystal — the user's, or ASE's reference crystal of an element that is not hcp/bcc/fcc.

The generator draws a large pool of candidates from several families — strained and sheared cells, random
displacements at several amplitudes, vacancies, slabs with vacuum, compressed and expanded cells, random dense
packings with a minimum pair distance — and then keeps the candidates that spread most in a descriptor space
(greedy farthest-point selection on per-configuration summaries of per-atom radial descriptors). This follows the
spirit of information-entropy maximisation: later picks are the ones least like anything already picked. In a
system of several elements the sites of the simple lattices and of the random packings are occupied at random
with the counts of a composition; cells made from the starting crystal keep its own order. A perfect crystal of
each element (and the starting crystal) comes first.

Everything is seeded and reproducible: the same ``seed`` gives the same structures on any machine. For Be the
generator reproduces the structures of earlier versions exactly (the bundled dataset is made from them).
Lengths are in Å, volumes in Å³.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.build import bcc110, bulk, fcc111, hcp0001, surface
from ase.data import atomic_numbers, reference_states
from ase.neighborlist import neighbor_list

__all__ = [
    "FAMILIES",
    "ChemicalSystem",
    "chemical_system",
    "reference_crystal",
    "generate_candidates",
    "radial_descriptors",
    "configuration_features",
    "farthest_point_selection",
    "generate_structures",
    "min_pair_distance",
]

#: lattice constants of Be used as the starting point (Å): hcp a, c; bcc a; fcc a (the bundled dataset's values)
BE_LATTICE = {"hcp": (2.29, 3.58), "bcc": 2.55, "fcc": 3.17}

#: hand-set prototypes that take the place of ASE-derived ones: lattice constants (Å) and the volume per atom (Å³)
#: the family settings are scaled from (Be: the values the bundled dataset was generated with)
TUNED_LATTICES: dict[str, dict] = {"Be": {**BE_LATTICE, "volume": 8.1}}

#: volume per atom (Å³) the family settings (packing densities, minimum distances, vacuum) were chosen for (Be)
_BASE_VOLUME = 8.1
#: the simple lattices every system is sampled on
SIMPLE_LATTICES = ("hcp", "bcc", "fcc")
_IDEAL_C_OVER_A = float(np.sqrt(8.0 / 3.0))


def min_pair_distance(atoms: Atoms, cutoff: float = 6.0) -> float:
    """Shortest distance between two atoms (periodic images included), Å; ``inf`` if none within ``cutoff``."""
    dist = neighbor_list("d", atoms, cutoff)
    return float(dist.min()) if len(dist) else float("inf")


def _check_element(symbol) -> str:
    if not isinstance(symbol, str) or symbol not in atomic_numbers or symbol == "X":
        raise ValueError(f"unknown element {symbol!r}: give a chemical symbol such as 'Be' or 'Ni'")
    return symbol


def reference_crystal(element: str) -> tuple[Atoms, str] | None:
    """ASE's reference crystal of ``element`` and its structure name (``"hcp"``, ``"diamond"``, …), or ``None``
    when ASE has no crystal for it (molecules such as H₂ or O₂, structures that need an atomic basis such as P).
    Be gets the bundled dataset's hcp cell (a = 2.29 Å, c = 3.58 Å)."""
    _check_element(element)
    if element in TUNED_LATTICES and "hcp" in TUNED_LATTICES[element]:
        a, c = TUNED_LATTICES[element]["hcp"]
        return bulk(element, "hcp", a=a, c=c), "hcp"
    state = reference_states[atomic_numbers[element]]
    if not state or state.get("symmetry") in ("diatom", "atom"):
        return None
    try:
        atoms = bulk(element)
    except (ValueError, RuntimeError, KeyError, NotImplementedError):
        return None
    return atoms, str(state["symmetry"])


def _reference_volume(element: str) -> float | None:
    if element in TUNED_LATTICES:
        return float(TUNED_LATTICES[element]["volume"])
    found = reference_crystal(element)
    return None if found is None else found[0].get_volume() / len(found[0])


@dataclass(frozen=True)
class ChemicalSystem:
    """What the structure generator samples (make one with :func:`chemical_system`).

    Attributes:
        elements: chemical symbols, in the order given.
        compositions: fractions per element the simple-lattice and random-packing sites are occupied with (one is
            drawn per candidate); empty for a single element.
        crystal: the starting crystal (user's, or ASE's reference crystal of an element that is not hcp/bcc/fcc),
            or ``None``.
        prototypes: names of the crystals the families start from (``"hcp"``, ``"bcc"``, ``"fcc"``, ``"crystal"``).
        lattice: lattice constants of the simple lattices (Å): ``{"hcp": (a, c), "bcc": a, "fcc": a}``.
        volume: volume per atom (Å³) of the prototypes.
        slab: prototype the slabs are cut from.
        ground_states: the perfect crystals put first, with their labels.
    """

    elements: tuple[str, ...]
    compositions: tuple[dict, ...]
    crystal: Atoms | None
    prototypes: tuple[str, ...]
    lattice: dict
    volume: float
    slab: str
    ground_states: tuple[tuple[Atoms, str], ...] = field(repr=False)

    @property
    def scale(self) -> float:
        """Length scale of the system relative to Be (1 for Be): distances and amplitudes are multiplied by it."""
        ratio = self.volume / _BASE_VOLUME
        return 1.0 if ratio == 1.0 else float(ratio ** (1.0 / 3.0))

    @property
    def volume_ratio(self) -> float:
        return self.volume / _BASE_VOLUME


def _normalise_compositions(compositions, elements: list[str] | None) -> list[dict]:
    if compositions is None:
        return []
    if isinstance(compositions, Mapping):
        compositions = [compositions]
    out = []
    for k, composition in enumerate(compositions):
        if not isinstance(composition, Mapping) or not composition:
            raise ValueError(f"composition {k} must be a non-empty mapping element → fraction, got {composition!r}")
        fractions = {}
        for symbol, fraction in composition.items():
            _check_element(symbol)
            if elements is not None and symbol not in elements:
                raise ValueError(f"composition {k} names {symbol!r}, which is not one of the elements {elements}")
            try:
                value = float(fraction)
            except (TypeError, ValueError):
                raise ValueError(f"composition {k}: the fraction of {symbol} must be a number, got {fraction!r}") from None
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"composition {k}: the fraction of {symbol} must be ≥ 0, got {fraction!r}")
            fractions[symbol] = value
        total = sum(fractions.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"composition {k} {dict(composition)}: the fractions sum to {total:g}, not 1")
        out.append({s: f for s, f in fractions.items() if f > 0})
    return out


def chemical_system(
    elements: str | Sequence[str] | None = None,
    compositions: Mapping[str, float] | Sequence[Mapping[str, float]] | None = None,
    crystal: Atoms | None = None,
    prototypes: Sequence[str] | None = None,
) -> ChemicalSystem:
    """The chemical system the generator samples, checked.

    Args:
        elements: one chemical symbol or several. ``None``: the elements of ``compositions`` or ``crystal``, and
            Be when neither is given.
        compositions: one mapping element → fraction (summing to 1) or several; each candidate of a system of
            several elements is occupied with one of them (drawn at random). Default: the starting crystal's
            stoichiometry, or equal parts of every element.
        crystal: the user's starting crystal (periodic ASE or pyiron ``Atoms``); its elements join ``elements``.
        prototypes: the crystals to start from, a subset of ``("hcp", "bcc", "fcc", "crystal")``. Default: the
            three simple lattices, plus ``"crystal"`` when there is a starting crystal; only ``("crystal",)`` when
            the user gives one.

    Raises:
        ValueError: an unknown element, a composition whose fractions do not sum to 1 or that names another
            element, an element without a crystal reference state in ASE and no starting crystal, a non-periodic
            starting crystal, an unknown prototype.
    """
    if crystal is not None:
        if not isinstance(crystal, Atoms) or len(crystal) == 0:
            raise ValueError(f"the starting crystal must be a non-empty ASE/pyiron Atoms, got {type(crystal).__name__}")
        if not crystal.pbc.all() or abs(crystal.cell.volume) < 1e-6:
            raise ValueError("the starting crystal must be periodic in all three directions with a cell")
        crystal = Atoms(crystal.get_chemical_symbols(), cell=crystal.cell[:], positions=crystal.positions, pbc=True)
        for symbol in crystal.get_chemical_symbols():
            _check_element(symbol)
    if elements is None and compositions is None and crystal is None:
        elements = ["Be"]
    if isinstance(elements, str):
        elements = [elements]
    given = None if elements is None else [_check_element(s) for s in elements]
    if given is not None and len(set(given)) != len(given):
        raise ValueError(f"elements {given} contain duplicates")
    comps = _normalise_compositions(compositions, None if (given is None or crystal is not None) else given)
    order: list[str] = list(given or [])
    for source in [list(c) for c in comps] + ([crystal.get_chemical_symbols()] if crystal is not None else []):
        order += [s for s in dict.fromkeys(source) if s not in order]  # each element once, in order of appearance
    if not order:
        raise ValueError("no elements: give elements, compositions or a starting crystal")
    elements = tuple(order)

    volumes = {s: _reference_volume(s) for s in elements}
    if crystal is None:
        lacking = [s for s in elements if volumes[s] is None]
        if lacking:
            states = {s: (reference_states[atomic_numbers[s]] or {}).get("symmetry") for s in lacking}
            raise ValueError(
                f"no crystal reference state in ASE for {lacking} (ASE has {states}); give your own starting "
                "crystal (crystal=Atoms) for this system"
            )

    if len(elements) > 1 and not comps:
        if crystal is not None:
            symbols = crystal.get_chemical_symbols()
            comps = [{s: symbols.count(s) / len(symbols) for s in elements if s in symbols}]
        else:
            comps = [{s: 1.0 / len(elements) for s in elements}]

    start = None
    ground_states: list[tuple[Atoms, str]] = []
    for s in elements:
        found = reference_crystal(s)
        if found is not None:
            label = f"ground_state_{found[1]}" if len(elements) == 1 else f"ground_state_{s}_{found[1]}"
            ground_states.append((found[0], label))

    if len(elements) == 1 and elements[0] in TUNED_LATTICES:
        tuned = TUNED_LATTICES[elements[0]]
        lattice = {k: tuned[k] for k in SIMPLE_LATTICES}
        volume = float(tuned["volume"])
        kind = "hcp"
    else:
        if crystal is not None:
            volume = crystal.get_volume() / len(crystal)
        else:
            weights = {s: np.mean([c.get(s, 0.0) for c in comps]) if comps else 1.0 for s in elements}
            volume = float(sum(weights[s] * volumes[s] for s in elements) / sum(weights.values()))
        lattice = {
            "hcp": ((4 * volume / (np.sqrt(3) * _IDEAL_C_OVER_A)) ** (1 / 3),
                    _IDEAL_C_OVER_A * (4 * volume / (np.sqrt(3) * _IDEAL_C_OVER_A)) ** (1 / 3)),
            "bcc": (2 * volume) ** (1 / 3),
            "fcc": (4 * volume) ** (1 / 3),
        }
        kind = None
        if len(elements) == 1:
            atoms, kind = reference_crystal(elements[0]) or (None, None)
            if kind in SIMPLE_LATTICES and crystal is None:
                state = reference_states[atomic_numbers[elements[0]]]
                a = float(state["a"])
                lattice[kind] = (a, a * float(state["c/a"])) if kind == "hcp" else a
            elif crystal is None and atoms is not None:
                start = atoms  # e.g. diamond Si: ASE's own crystal is a prototype too
    if crystal is not None:
        start = crystal
        ground_states.append((crystal.copy(), "ground_state_crystal"))

    if prototypes is None:
        prototypes = ("crystal",) if crystal is not None else SIMPLE_LATTICES + (("crystal",) if start is not None else ())
    prototypes = tuple(prototypes)
    unknown = [p for p in prototypes if p not in SIMPLE_LATTICES + ("crystal",)]
    if unknown or not prototypes:
        raise ValueError(f"unknown prototype(s) {unknown or prototypes}; choose from {SIMPLE_LATTICES + ('crystal',)}")
    if "crystal" in prototypes and start is None:
        raise ValueError("the prototype 'crystal' needs a starting crystal (crystal=Atoms)")
    slab = "crystal" if "crystal" in prototypes else (kind if kind in SIMPLE_LATTICES else "fcc")
    return ChemicalSystem(elements, tuple(comps), start, prototypes, lattice, float(volume), slab,
                          tuple(ground_states))


def _lattice(kind: str, system: ChemicalSystem) -> Atoms:
    """The prototype ``kind`` of ``system`` (simple lattices occupied by the first element until decorated)."""
    if kind == "crystal":
        return system.crystal.copy()
    element = system.elements[0]
    if kind == "hcp":
        a, c = system.lattice["hcp"]
        return bulk(element, "hcp", a=a, c=c)
    if kind == "bcc":
        return bulk(element, "bcc", a=system.lattice["bcc"], cubic=True)
    return bulk(element, "fcc", a=system.lattice["fcc"])


def _decorate(atoms: Atoms, system: ChemicalSystem, rng: np.random.Generator) -> Atoms:
    """Occupy the sites of ``atoms`` at random with the counts of one of the system's compositions (largest
    remainders), unless the system has a single element. Cells made from the starting crystal are not passed here."""
    if len(system.elements) == 1:
        return atoms
    comps = system.compositions
    composition = comps[int(rng.integers(len(comps)))] if len(comps) > 1 else comps[0]
    symbols = list(composition)
    exact = np.array([composition[s] for s in symbols]) * len(atoms)
    counts = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - counts), kind="stable")[: len(atoms) - counts.sum()]:
        counts[k] += 1
    species = np.repeat(symbols, counts)
    atoms.set_chemical_symbols(list(species[rng.permutation(len(atoms))]))
    return atoms


def _start(kind: str, system: ChemicalSystem, rng: np.random.Generator) -> Atoms:
    atoms = _lattice(kind, system)
    return atoms if kind == "crystal" else _decorate(atoms, system, rng)


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


def _kind(rng: np.random.Generator, system: ChemicalSystem) -> str:
    return str(rng.choice(list(system.prototypes)))


def _strained(rng, system, max_atoms):
    kind = _kind(rng, system)
    atoms = _lattice(kind, system)
    atoms = _deform(atoms, rng, strain=rng.uniform(0.02, 0.12))
    return (atoms if kind == "crystal" else _decorate(atoms, system, rng)), f"strained_{kind}"


def _rattled(rng, system, max_atoms):
    kind = _kind(rng, system)
    atoms = _repeat_to(_lattice(kind, system), max_atoms, rng)
    amplitude = float(rng.choice([0.03, 0.08, 0.15, 0.25]))
    atoms = _rattle(_deform(atoms, rng, 0.03), rng, amplitude * system.scale)
    return (atoms if kind == "crystal" else _decorate(atoms, system, rng)), f"rattled_{kind}_{amplitude:g}"


def _vacancy(rng, system, max_atoms):
    kind = _kind(rng, system)
    atoms = _repeat_to(_lattice(kind, system), max_atoms + 1, rng)
    while len(atoms) < 4:
        atoms = atoms.repeat((2, 1, 1))
    if kind != "crystal":
        atoms = _decorate(atoms, system, rng)
    del atoms[int(rng.integers(len(atoms)))]
    return _rattle(atoms, rng, 0.05 * system.scale), f"vacancy_{kind}"


def _slab(rng, system, max_atoms):
    layers = int(rng.integers(3, 7))
    vacuum = float(rng.uniform(3.0, 5.0)) * system.scale
    element = system.elements[0]
    if system.slab == "hcp":
        a, c = system.lattice["hcp"]
        atoms = hcp0001(element, size=(1, 1, layers), a=a, c=c, vacuum=vacuum, periodic=True)
    elif system.slab == "fcc":
        atoms = fcc111(element, size=(1, 1, layers), a=system.lattice["fcc"], vacuum=vacuum, periodic=True)
    elif system.slab == "bcc":
        atoms = bcc110(element, size=(1, 1, layers), a=system.lattice["bcc"], vacuum=vacuum, periodic=True)
    else:
        layers = max(1, min(layers, max_atoms // len(system.crystal)))
        atoms = surface(system.crystal, (0, 0, 1), layers, vacuum=vacuum, periodic=True)
    if len(atoms) * 2 <= max_atoms and rng.random() < 0.4:
        atoms = atoms.repeat((2, 1, 1))
    if system.slab != "crystal":
        atoms = _decorate(atoms, system, rng)
    return _rattle(atoms, rng, float(rng.uniform(0.02, 0.1)) * system.scale), f"slab_{layers}"


def _density(rng, system, max_atoms):
    kind = _kind(rng, system)
    scale = float(rng.choice([rng.uniform(0.72, 0.9), rng.uniform(1.1, 1.45)]))
    atoms = _repeat_to(_lattice(kind, system), min(max_atoms, max(8, len(_lattice(kind, system)))), rng)
    atoms = _rattle(_deform(atoms, rng, 0.02, volume_scale=scale), rng, 0.04 * system.scale)
    return (atoms if kind == "crystal" else _decorate(atoms, system, rng)), f"density_{kind}_{scale:.2f}"


def _random_packing(rng, system, max_atoms, min_distance=1.75):
    """Random positions in a random orthorhombic cell at about the crystal's density, no pair closer than
    ``min_distance`` Å (times the system's length scale; minimum-image distances, rejection sampling; the cell
    grows if placement stalls)."""
    min_distance = min_distance * system.scale
    n_atoms = int(rng.integers(3, min(max_atoms, 10) + 1))
    volume = n_atoms * rng.uniform(7.5, 11.0) * system.volume_ratio  # Å^3 per atom around the crystal's
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
                    atoms = Atoms(system.elements[0] * n_atoms, scaled_positions=fractional,
                                  cell=np.diag(lengths), pbc=True)
                    return _decorate(atoms, system, rng), "random_packing"
        lengths = lengths * 1.05


#: candidate families and their share of the pool; each is called as ``family(rng, system, max_atoms)``
FAMILIES: dict[str, tuple[Callable, float]] = {
    "strained": (_strained, 0.15),
    "rattled": (_rattled, 0.30),
    "vacancy": (_vacancy, 0.12),
    "slab": (_slab, 0.13),
    "density": (_density, 0.15),
    "random_packing": (_random_packing, 0.15),
}


def _candidates(
    n_candidates: int, seed: int, system: ChemicalSystem, max_atoms: int, min_distance: float | None
) -> tuple[list[Atoms], list[str]]:
    if n_candidates < 1:
        raise ValueError("n_candidates must be positive")
    if max_atoms < 2:
        raise ValueError("max_atoms must be at least 2")
    if system.crystal is not None and len(system.crystal) > max_atoms:
        raise ValueError(f"the starting crystal has {len(system.crystal)} atoms, more than max_atoms = {max_atoms}")
    min_distance = 1.5 * system.scale if min_distance is None else float(min_distance)
    rng = np.random.default_rng(seed)
    names = list(FAMILIES)
    weights = np.array([FAMILIES[n][1] for n in names])
    structures, labels = [], []
    attempts = 0
    while len(structures) < n_candidates:
        attempts += 1
        if attempts > 1000 * n_candidates:
            raise RuntimeError(
                f"only {len(structures)} of {n_candidates} candidates with 2 to {max_atoms} atoms at least "
                f"{min_distance:g} Å apart after {attempts - 1} draws; raise max_atoms or lower min_distance"
            )
        family = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        atoms, label = FAMILIES[family][0](rng, system, max_atoms)
        if not 2 <= len(atoms) <= max_atoms or min_pair_distance(atoms) < min_distance:
            continue
        atoms.wrap()
        structures.append(atoms)
        labels.append(label)
    return structures, labels


def generate_candidates(
    n_candidates: int, seed: int = 0, elements: str | Sequence[str] | None = None, max_atoms: int = 16,
    min_distance: float | None = None, *, compositions=None, crystal: Atoms | None = None,
    prototypes: Sequence[str] | None = None,
) -> tuple[list[Atoms], list[str]]:
    """Draw ``n_candidates`` structures (2 to ``max_atoms`` atoms, all pairs ≥ ``min_distance`` Å apart; default
    1.5 Å times the system's length scale, i.e. 1.5 Å for Be).

    ``elements``, ``compositions``, ``crystal`` and ``prototypes`` define the system (:func:`chemical_system`).

    Returns:
        The structures and, for each, a family label (e.g. ``"rattled_hcp_0.08"``).
    """
    system = chemical_system(elements, compositions, crystal, prototypes)
    return _candidates(n_candidates, seed, system, max_atoms, min_distance)


def radial_descriptors(
    atoms: Atoms, cutoff: float = 5.0, n_radial: int = 12, width: float = 0.35, start: float = 1.5
) -> np.ndarray:
    """Per-atom radial fingerprints: Gaussian-smeared (``width`` Å) neighbour counts on ``n_radial`` shells from
    ``start`` to ``cutoff`` Å, with a smooth cosine cut-off. Shape (n_atoms, n_radial)."""
    centres = np.linspace(start, cutoff, n_radial)
    i, d = neighbor_list("id", atoms, cutoff)
    fc = 0.5 * (np.cos(np.pi * d / cutoff) + 1.0)
    contributions = np.exp(-((d[:, None] - centres[None, :]) ** 2) / (2 * width**2)) * fc[:, None]
    out = np.zeros((len(atoms), n_radial))
    np.add.at(out, i, contributions)
    return out


def configuration_features(
    structures: Sequence[Atoms], elements: Sequence[str] | None = None, scale: float = 1.0
) -> np.ndarray:
    """Per-configuration summary of the per-atom descriptors: mean, standard deviation and minimum over atoms,
    plus the volume per atom (Å³); with several ``elements``, also the fraction of each element. Standardised
    column-wise. Shape (n_configs, 3·n_radial + 1 [+ n_elements]). ``scale`` stretches the radial shells (1 for Be,
    see :attr:`ChemicalSystem.scale`)."""
    rows = []
    for atoms in structures:
        desc = radial_descriptors(atoms, cutoff=5.0 * scale, width=0.35 * scale, start=1.5 * scale)
        row = [desc.mean(0), desc.std(0), desc.min(0), [atoms.get_volume() / len(atoms)]]
        if elements is not None and len(elements) > 1:
            symbols = atoms.get_chemical_symbols()
            row.append([symbols.count(s) / len(symbols) for s in elements])
        rows.append(np.concatenate(row))
    features = np.array(rows)
    spread = features.std(axis=0)
    spread[spread == 0] = 1.0
    return (features - features.mean(axis=0)) / spread


def farthest_point_selection(
    features: np.ndarray, n_select: int, first: int | Sequence[int] = 0, groups: Sequence[str] | None = None,
    quotas: dict[str, int] | None = None,
) -> np.ndarray:
    """Greedy farthest-point order: each pick maximises its distance to the nearest already-picked row.

    ``first`` is the row picked first, or several rows picked first in the given order (e.g. the perfect crystals).
    With ``groups`` (a label per row) and ``quotas`` (maximum picks per label), a label that has reached its quota
    is skipped, so no family of candidates crowds out the others while each family is still spread out.
    """
    n = len(features)
    if not 1 <= n_select <= n:
        raise ValueError(f"cannot select {n_select} of {n} candidates")
    forced = [int(first)] if isinstance(first, (int, np.integer)) else [int(f) for f in first]
    if not forced or len(set(forced)) != len(forced) or not all(0 <= f < n for f in forced):
        raise ValueError(f"first must name distinct rows of the {n} candidates, got {first!r}")
    allowed = np.ones(n, dtype=bool)
    counts: dict[str, int] = {}
    chosen = []
    nearest = np.full(n, np.inf)
    pick = forced[0]
    for step in range(n_select):
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
        if step + 1 < len(forced):
            pick = forced[step + 1]
        else:
            pick = int(np.argmax(np.where(allowed, nearest, -1.0)))
    return np.array(chosen)


def generate_structures(
    n_structures: int, seed: int = 0, oversample: int = 4, elements: str | Sequence[str] | None = None,
    max_atoms: int = 16, min_distance: float | None = None, include_ground_state: bool = True, *,
    compositions: Mapping[str, float] | Sequence[Mapping[str, float]] | None = None,
    crystal: Atoms | None = None, prototypes: Sequence[str] | None = None,
) -> tuple[list[Atoms], list[str]]:
    """Diverse structures of a chemical system: ``oversample × n_structures`` candidates, thinned by farthest-point
    selection with a quota per candidate family (each family's share of :data:`FAMILIES`).

    Args:
        n_structures: structures returned.
        seed: random seed (same seed, same structures).
        oversample: candidates drawn per structure returned.
        elements, compositions, crystal, prototypes: the system (see :func:`chemical_system`): e.g.
            ``elements="W"``; ``compositions=[{"Ni": 0.75, "Al": 0.25}, {"Ni": 0.5, "Al": 0.5}]``; or the user's
            own crystal, ``crystal=bulk("InP", "zincblende", a=5.87)``.
        max_atoms: largest cell (atoms).
        min_distance: smallest pair distance allowed (Å); default 1.5 Å times the system's length scale.
        include_ground_state: put the perfect crystal of each element (ASE's reference crystal; for Be the 2-atom
            hcp cell, the reference for bulk-shifted energy errors) and the starting crystal first; the selection
            starts from them.

    Returns:
        ``n_structures`` structures and their family labels (``"ground_state_hcp"`` for a unary system's perfect
        crystal, ``"ground_state_<element>_<structure>"`` with several elements, ``"ground_state_crystal"`` for the
        user's), in selection order.
    """
    system = chemical_system(elements, compositions, crystal, prototypes)
    candidates, labels = _candidates(n_structures * oversample, seed, system, max_atoms, min_distance)
    first: list[int] = [0]
    if include_ground_state:
        if not system.ground_states:
            raise ValueError(f"no perfect crystal of {system.elements} to put first; give crystal=Atoms")
        ground = [(atoms.copy(), label) for atoms, label in system.ground_states]
        if len(ground) > n_structures:
            raise ValueError(f"{len(ground)} perfect crystals do not fit in {n_structures} structures")
        candidates[:0] = [atoms for atoms, _ in ground]
        labels[:0] = [label for _, label in ground]
        first = list(range(len(ground)))
    families = [next((name for name in FAMILIES if label.startswith(name)), label) for label in labels]
    total = sum(share for _, share in FAMILIES.values())
    quotas = {name: int(np.ceil(n_structures * share / total)) for name, (_, share) in FAMILIES.items()}
    features = configuration_features(candidates, system.elements, system.scale)
    order = farthest_point_selection(features, n_structures, first=first, groups=families, quotas=quotas)
    return [candidates[i] for i in order], [labels[i] for i in order]
