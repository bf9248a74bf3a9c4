"""Descriptors of a large pool, computed in chunks of configurations into a resumable, content-addressed cache.

A *chunked cache* is one folder per (structures, elements, settings, chunk size):

* ``manifest.json`` — written before any LAMMPS work: ``twojmax``, ``elements``, the resolved ``settings``,
  ``virial``, ``chunk_size``, ``n_configs``, the atoms of every configuration and, per chunk, the cache key of its
  structures (:func:`~pyiron_mlip_tradeoff.descriptors.descriptor_key` of that chunk: a SHA-256 of its atomic
  numbers, positions, cells, pbc and the settings);
* ``chunk_00000.h5``, ``chunk_00001.h5``, … — one :class:`~pyiron_mlip_tradeoff.descriptors.DescriptorStore` per
  chunk, each written under a temporary name and renamed when complete. A chunk is done when its file opens as a
  complete store whose key is the manifest's key of that chunk.

A run that is killed (Ctrl-C, ``kill -9``, a queue's time limit) leaves the finished chunks; the next run computes
only the others and gives the same rows. Rows are never gathered in memory: each chunk streams block by block into
its own file (in a worker process with ``n_workers`` > 1, chunks side by side, one LAMMPS each), so the memory of a
run does not grow with the number of configurations; ``structures`` may be any sequence that can be sliced
(``structures[a:b]``), e.g. a pool read from disk chunk by chunk.

The folder is named by the key of the whole pool (a hash of the chunk keys), or by ``name`` when one is given; a
named cache whose structures changed is refused with the chunks that differ, before any work.

Nothing in this module imports pyiron.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from .descriptors import (
    DescriptorBlock,
    DescriptorSet,
    DescriptorStore,
    _check_workers,
    _collect,
    _width,
    descriptor_key,
    resolve_elements,
    resolve_settings,
    validate_structures,
)

__all__ = [
    "CHUNKED_FORMAT_VERSION",
    "ChunkedDescriptorCache",
    "check_chunk_size",
    "check_writable_folder",
    "compute_chunked_descriptors",
    "prepare_chunked_cache",
]

CHUNKED_FORMAT_VERSION = 1
MANIFEST = "manifest.json"


# ---------------------------------------------------------------------------------------------------------------
# validation
def check_chunk_size(chunk_size) -> int:
    """``chunk_size`` as a positive int (configurations per chunk); ``ValueError`` otherwise."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer (configurations per chunk), got {chunk_size!r}")
    return int(chunk_size)


def check_writable_folder(folder: str | os.PathLike, what: str = "descriptor cache folder") -> Path:
    """Create ``folder`` if needed and prove it writable by writing a file there; ``PermissionError`` otherwise.

    (A real write, not ``os.access``: that says yes to root on a read-only file system.)
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{what} {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write_test_"):
            pass
    except OSError as err:
        raise PermissionError(f"{what} {folder} is not writable ({err.strerror or err})") from err
    return folder


def _bounds(n_configs: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(a, min(a + chunk_size, n_configs)) for a in range(0, n_configs, chunk_size)]


def _chunk_keys(structures: Sequence[Atoms], bounds, twojmax: int, names, settings: dict) -> tuple[list[str], list]:
    """Validate the structures chunk by chunk (one chunk in memory at a time); their keys and atom counts."""
    keys, n_atoms = [], []
    for k, (a, b) in enumerate(bounds):
        part = structures[a:b]
        try:
            part = validate_structures(part, elements=names)
        except (ValueError, TypeError) as err:
            raise type(err)(f"chunk {k} (configurations {a}..{b - 1}; 'structure i' is configuration {a} + i): "
                            f"{err}") from None
        keys.append(descriptor_key(part, twojmax, elements=names, **settings))
        n_atoms.extend(len(atoms) for atoms in part)
    return keys, n_atoms


def _pool_key(chunk_keys: Sequence[str], chunk_size: int, virial: bool) -> str:
    digest = hashlib.sha256(json.dumps({"format": CHUNKED_FORMAT_VERSION, "chunk_size": chunk_size,
                                        "virial": bool(virial)}).encode())
    for key in chunk_keys:
        digest.update(key.encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
#: chunks of a cache up to which :meth:`ChunkedDescriptorCache.kept_open` keeps its files open
KEPT_OPEN_FILES = 128


class ChunkedDescriptorCache:
    """An existing chunked cache folder (see the module docstring): which chunks are done, and their rows.

    Args:
        path: the cache folder (holding ``manifest.json``).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.is_file():
            raise FileNotFoundError(f"no chunked descriptor cache at {self.path} (no {MANIFEST})")
        try:
            m = json.loads(manifest.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{manifest} is not valid JSON: {err}") from None
        if m.get("format") != CHUNKED_FORMAT_VERSION:
            raise ValueError(f"{manifest} has format {m.get('format')!r}, this code reads {CHUNKED_FORMAT_VERSION}")
        self.manifest = m
        self.twojmax = int(m["twojmax"])
        self.elements = tuple(m["elements"])
        self.settings = dict(m["settings"])
        self.virial = bool(m["virial"])
        self.chunk_size = int(m["chunk_size"])
        self.key = str(m["key"])
        self.chunk_keys = [str(k) for k in m["chunk_keys"]]
        self.n_atoms = np.asarray(m["n_atoms"], dtype=np.int64)
        self.bounds = _bounds(len(self.n_atoms), self.chunk_size)
        self.n_columns = _width({"twojmax": self.twojmax, **self.settings}, len(self.elements))
        self._finished: dict[int, tuple[tuple, DescriptorStore]] = {}
        self._keep: tuple[contextlib.ExitStack, set] | None = None  # inside kept_open(): the files held open

    @property
    def n_configs(self) -> int:
        return int(len(self.n_atoms))

    @property
    def n_chunks(self) -> int:
        return len(self.bounds)

    def chunk_path(self, index: int) -> Path:
        return self.path / f"chunk_{int(index):05d}.h5"

    def _settings_kwargs(self) -> dict:
        return {k: v for k, v in self.settings.items() if k != "twojmax"}

    def chunk_store(self, index: int) -> DescriptorStore | None:
        """The finished store of chunk ``index``, or ``None`` (not computed, half written, or for other structures).

        A finished store is kept while its file is unchanged (same inode, size and modification time), so reading
        many configurations in many calls opens each chunk's metadata once."""
        path = self.chunk_path(index)
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        known = self._finished.get(index)
        if known is not None and known[0] == stamp:
            return known[1]
        if not path.is_file():
            return None
        try:
            store = DescriptorStore(path)
        except (OSError, ValueError, KeyError):
            return None
        if store.key != self.chunk_keys[index] or (self.virial and not store.has_virial):
            return None
        self._finished[index] = (stamp, store)
        return store

    def done_chunks(self) -> list[int]:
        return [k for k in range(self.n_chunks) if self.chunk_store(k) is not None]

    def missing_chunks(self) -> list[int]:
        return [k for k in range(self.n_chunks) if self.chunk_store(k) is None]

    @property
    def complete(self) -> bool:
        return not self.missing_chunks()

    def check_chunk_structures(self, index: int, structures: Sequence[Atoms]) -> list[Atoms]:
        """Validate the structures of chunk ``index`` against the manifest (count and key); ``ValueError`` names
        the chunk when they are not the ones the cache was set up for."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < self.n_chunks:
            raise ValueError(f"chunk index {index!r} is out of range: {self.path} has {self.n_chunks} chunks")
        a, b = self.bounds[index]
        structures = validate_structures(structures, elements=self.elements)
        if len(structures) != b - a:
            raise ValueError(f"chunk {index} of {self.path} holds {b - a} configurations ({a}..{b - 1}), "
                             f"got {len(structures)} structures")
        key = descriptor_key(structures, self.twojmax, elements=self.elements, **self._settings_kwargs())
        if key != self.chunk_keys[index]:
            raise ValueError(f"the structures of chunk {index} (configurations {a}..{b - 1}) differ from those the "
                             f"cache {self.path} was set up for (content hash {key[:12]}… vs {self.chunk_keys[index][:12]}…)")
        return structures

    def compute_chunk(self, index: int, structures: Sequence[Atoms]) -> bool:
        """Compute chunk ``index`` from its structures (checked first) unless it is done; whether it computed."""
        structures = self.check_chunk_structures(index, structures)
        if self.chunk_store(index) is not None:
            return False
        _compute_chunk_file((str(self.chunk_path(index)), structures, self.twojmax, self.elements, self.virial,
                             self._settings_kwargs()))
        if self.chunk_store(index) is None:
            raise RuntimeError(f"chunk {index} of {self.path} was written but does not read back as complete")
        return True

    # -- reading ---------------------------------------------------------------------------------------------
    def _require(self, chunks: Iterable[int]) -> None:
        missing = [k for k in sorted(set(chunks)) if self.chunk_store(k) is None]
        if missing:
            raise ValueError(f"{self.path}: chunk(s) {missing[:10]} are not computed yet "
                             f"({len(missing)} of {self.n_chunks} missing)")

    def _indices(self, indices: Iterable[int] | None) -> np.ndarray:
        if indices is None:
            return np.arange(self.n_configs)
        idx = np.asarray(list(indices), dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_configs):
            raise IndexError(f"configuration index out of range for {self.n_configs} configurations")
        return idx

    def iter_blocks(self, indices: Iterable[int] | None = None, forces: bool = True) -> Iterator[DescriptorBlock]:
        """Blocks of the given configurations (all by default, global indices), one at a time from the chunk files."""
        idx = self._indices(indices)
        chunk_of = idx // self.chunk_size
        self._require(chunk_of.tolist())
        start = 0
        while start < idx.size:  # runs of consecutive indices in the same chunk share one open store
            k = int(chunk_of[start])
            stop = start
            while stop < idx.size and chunk_of[stop] == k:
                stop += 1
            first = self.bounds[k][0]
            store = self.chunk_store(k)
            if self._keep is not None and id(store) not in self._keep[1]:
                self._keep[0].enter_context(store.kept_open())
                self._keep[1].add(id(store))
            for block in store.iter_blocks(idx[start:stop] - first, forces=forces):
                block.index += first
                yield block
            start = stop

    @contextlib.contextmanager
    def kept_open(self, max_open: int | None = None) -> Iterator[ChunkedDescriptorCache]:
        """Within this block every chunk file :meth:`iter_blocks` reads is opened once and kept open (see
        ``DescriptorStore.kept_open``) — if the cache has at most ``max_open`` chunks (default
        :data:`KEPT_OPEN_FILES`); else files are opened per read as usual. Reading nested subsets segment by segment then opens each chunk once, not once per segment.

        Each open HDF5 file holds memory (mostly the library's metadata-cache table), which the cap bounds. All or
        nothing: with only some of the files open every further open was slower than with none open (HDF5 looks
        through its open files on every open), so a draw's pass cost more than keeping none; ``benchmarks/
        study_scale.py --keep-chunks-open N`` measures a grid either way."""
        if self._keep is not None or self.n_chunks > (KEPT_OPEN_FILES if max_open is None else max_open):
            yield self
            return
        with contextlib.ExitStack() as stack:
            self._keep = (stack, set())
            try:
                yield self
            finally:
                self._keep = None

    def energy_rows(self, indices: Iterable[int] | None = None) -> np.ndarray:
        """(len(indices), p) energy rows of the given configurations (all by default)."""
        idx = self._indices(indices)
        out = np.empty((idx.size, self.n_columns))
        for k, block in enumerate(self.iter_blocks(idx, forces=False)):
            out[k] = block.energy_row
        return out

    def load(self, indices: Sequence[int] | None = None) -> DescriptorSet:
        """The given configurations (all by default) in memory, as one :class:`DescriptorSet`."""
        idx = self._indices(indices)
        blocks = list(self.iter_blocks(idx))
        for k, block in enumerate(blocks):
            block.index = k
        energy, forces, virials, volumes = _collect(blocks, self.n_atoms[idx], self.n_columns, self.virial)
        return DescriptorSet(energy, forces, self.n_atoms[idx], self.twojmax,
                             {"twojmax": self.twojmax, **self.settings}, self.elements, virials, volumes)

    def __repr__(self) -> str:
        return (f"ChunkedDescriptorCache({self.path}, {self.n_configs} configurations in {self.n_chunks} chunks of "
                f"{self.chunk_size}, {'-'.join(self.elements)}, 2Jmax {self.twojmax}, p={self.n_columns})")


# ---------------------------------------------------------------------------------------------------------------
def prepare_chunked_cache(
    cache_dir: str | os.PathLike,
    structures: Sequence[Atoms],
    twojmax: int = 6,
    *,
    chunk_size: int = 50,
    element: str | None = None,
    elements: Sequence[str] | None = None,
    virial: bool = False,
    name: str | None = None,
    write: bool = True,
    **settings,
) -> ChunkedDescriptorCache | Path:
    """Validate everything and write (or re-check) the manifest of a chunked cache; no LAMMPS work.

    Args:
        cache_dir: parent folder of the caches (created; must be writable).
        structures: the pool, any sliceable sequence of periodic ASE structures (read one chunk at a time).
        twojmax, element, elements, **settings: as for :func:`~pyiron_mlip_tradeoff.descriptors.compute_descriptors`.
        chunk_size: configurations per chunk (≥ 1).
        virial: also compute the 6 virial rows per configuration.
        name: folder name of the cache; default: ``qsnap_2j<T>_<hash of the pool>`` (content addressed).
        write: ``False`` only validates and returns the cache folder the input belongs to (nothing written).

    Returns:
        the :class:`ChunkedDescriptorCache` (its folder with ``write=False``).

    Raises:
        ValueError / TypeError: bad chunk size, elements, settings or structures (the message names the chunk and
            configuration), or a named cache set up for other structures or settings.
        PermissionError / NotADirectoryError: ``cache_dir`` cannot be written.
    """
    chunk_size = check_chunk_size(chunk_size)
    names = resolve_elements(element, elements)
    resolved = resolve_settings(twojmax, settings, len(names))
    n_configs = len(structures)
    if n_configs == 0:
        raise ValueError("no structures given: descriptors need at least one configuration")
    if name is not None and (not isinstance(name, str) or not name or Path(name).name != name):
        raise ValueError(f"name must be a plain folder name, got {name!r}")
    root = check_writable_folder(cache_dir)
    bounds = _bounds(n_configs, chunk_size)
    keys, n_atoms = _chunk_keys(structures, bounds, twojmax, names, settings)
    key = _pool_key(keys, chunk_size, virial)
    path = root / (name or f"qsnap_2j{int(twojmax)}_{key[:32]}")
    manifest = {
        "format": CHUNKED_FORMAT_VERSION, "key": key, "twojmax": int(twojmax), "elements": list(names),
        "settings": {k: v for k, v in resolved.items() if k != "twojmax"}, "virial": bool(virial),
        "chunk_size": chunk_size, "n_configs": n_configs, "chunk_keys": keys, "n_atoms": [int(n) for n in n_atoms],
    }
    if (path / MANIFEST).is_file():
        old = ChunkedDescriptorCache(path)
        if old.key == key:
            return old if write else path
        if (old.chunk_size, old.n_configs, old.twojmax, old.elements, old.settings, old.virial) != (
                chunk_size, n_configs, int(twojmax), names, manifest["settings"], bool(virial)):
            raise ValueError(
                f"the descriptor cache {path} was set up for other settings ({old.n_configs} configurations in chunks "
                f"of {old.chunk_size}, elements {list(old.elements)}, 2Jmax {old.twojmax}, virial {old.virial}); "
                "use another name or delete the folder"
            )
        changed = [k for k, (a, b) in enumerate(zip(old.chunk_keys, keys, strict=True)) if a != b]
        first = [f"{k} (configurations {bounds[k][0]}..{bounds[k][1] - 1})" for k in changed[:5]]
        raise ValueError(
            f"the structures changed under the descriptor cache {path}: chunk(s) {', '.join(first)}"
            f"{' …' if len(changed) > 5 else ''} ({len(changed)} of {len(keys)}) hash differently from when it was "
            "set up; use another name or delete the folder"
        )
    if not write:
        return path
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest))
    os.replace(tmp, path / MANIFEST)
    return ChunkedDescriptorCache(path)


def _compute_chunk_file(task: tuple) -> tuple[str, float]:
    """Worker: one chunk's structures → a complete store file (written block by block, renamed when complete)."""
    path, structures, twojmax, elements, virial, settings = task
    start = time.perf_counter()
    DescriptorStore.create(path, structures, twojmax, elements=elements, virial=virial, n_workers=1, **settings)
    return path, time.perf_counter() - start


def compute_chunked_descriptors(
    cache_dir: str | os.PathLike,
    structures: Sequence[Atoms],
    twojmax: int = 6,
    *,
    chunk_size: int = 50,
    n_workers: int = 1,
    element: str | None = None,
    elements: Sequence[str] | None = None,
    virial: bool = False,
    name: str | None = None,
    chunks: Iterable[int] | None = None,
    on_chunk: Callable[[int, float], None] | None = None,
    **settings,
) -> ChunkedDescriptorCache:
    """Descriptors of ``structures`` in chunks, ``n_workers`` chunks side by side, into a resumable cache.

    Everything is validated first (:func:`prepare_chunked_cache`); then every chunk that is not done (of
    ``chunks``, all by default) is computed, each by one worker process (spawned, one LAMMPS each) straight into its
    file. Finished chunks of an earlier, interrupted run are kept. At most ``2 · n_workers`` chunks are in flight,
    so the memory of this process holds a few chunks' structures and no rows.

    Args:
        n_workers: worker processes (1: in this process).
        chunks: only these chunk indices (e.g. one queue job's share).
        on_chunk: called as ``on_chunk(index, seconds)`` after each computed chunk (progress).
        (others: see :func:`prepare_chunked_cache`)

    Returns:
        the :class:`ChunkedDescriptorCache`.
    """
    n_workers = _check_workers(n_workers)
    n_chunks = len(_bounds(len(structures), check_chunk_size(chunk_size)))
    wanted = range(n_chunks) if chunks is None else sorted({int(k) for k in chunks})
    for k in wanted:
        if not 0 <= k < n_chunks:
            raise ValueError(f"chunk index {k} is out of range: the pool has {n_chunks} chunks")
    cache = prepare_chunked_cache(cache_dir, structures, twojmax, chunk_size=chunk_size, element=element,
                                  elements=elements, virial=virial, name=name, **settings)
    todo = [k for k in wanted if cache.chunk_store(k) is None]
    kwargs = cache._settings_kwargs()

    def task(k: int) -> tuple:
        a, b = cache.bounds[k]
        return (str(cache.chunk_path(k)), list(structures[a:b]), cache.twojmax, cache.elements, cache.virial, kwargs)

    def done(k: int, seconds: float) -> None:
        if cache.chunk_store(k) is None:
            raise RuntimeError(f"chunk {k} of {cache.path} was written but does not read back as complete")
        if on_chunk is not None:
            on_chunk(k, seconds)

    if n_workers == 1 or len(todo) <= 1:
        for k in todo:
            done(k, _compute_chunk_file(task(k))[1])
        return cache
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: dict = {}
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < 2 * n_workers:
                k = queue.pop(0)
                pending[pool.submit(_compute_chunk_file, task(k))] = k
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                k = pending.pop(future)
                done(k, future.result()[1])
    return cache
