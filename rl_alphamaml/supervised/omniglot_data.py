"""Omniglot images: find them, check the layout, shrink them to 28×28 once and cache the result.

Omniglot [1] has 1623 handwritten characters from 50 alphabets, each drawn once by 20 different people
("drawers"). The official release comes as two sets:

* ``images_background`` — 30 alphabets, 964 characters (Lake's training alphabets),
* ``images_evaluation`` — 20 alphabets, 659 characters (Lake's held-out alphabets),

each laid out as ``images_<set>/<Alphabet>/<characterNN>/<NNNN_DD>.png`` (105×105, 1-bit, black ink
on white, ``DD`` = drawer 01…20). Each set may be given as an extracted folder or as the official zip.

Preprocessing follows the MAML recipe [2] (``data/omniglot_resized/resize_images.py``:
PIL resize to 28×28 with a Lanczos filter), done on a float image so the anti-aliasing is kept:

1. decode, convert to greyscale and **invert**: ink = 1.0, background = 0.0 (MAML feeds
   ``1 - pixel/255`` to its network too);
2. resize the float image with Pillow (``LANCZOS`` by default, ``BOX`` optional) and clip to [0, 1]
   (Lanczos rings slightly outside the range);
3. store as ``uint8`` (value × 255, rounded) — 25 MB for the whole set, 1/510 quantisation error.

Use :meth:`OmniglotDataset.float_images` (or the task sampler in
:mod:`rl_alphamaml.supervised.omniglot`) to get float32 images with ink = 1.0 on background 0.0.

The result is cached as a compressed ``.npz`` in a cache folder, keyed by the source files (the zip's
path, size and modification time; for a folder, every file's relative name, size and modification
time) and by the preprocessing settings, so any change to the data or the recipe builds a new cache
file. The file is written atomically (temporary file + ``os.replace``); an unreadable or mismatched
cache file is rebuilt with a warning, never fatal.

Example::

    from rl_alphamaml.supervised.omniglot_data import load_omniglot

    data = load_omniglot("/path/to/omniglot")   # or set RL_ALPHAMAML_OMNIGLOT
    data.images.shape                            # (1623, 20, 28, 28), uint8, ink = 255
    data.characters[0].key                       # 'background/Alphabet_of_the_Magi/character01'

References:
    [1] Lake, Salakhutdinov & Tenenbaum, "Human-level concept learning through probabilistic program
        induction", Science 2015. https://doi.org/10.1126/science.aab3050
    [2] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [3] Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, "Matching Networks for One Shot Learning",
        NeurIPS 2016. https://arxiv.org/abs/1606.04080
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import time
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from rl_alphamaml.atomic import write_atomic
from rl_alphamaml.supervised.omniglot_download import ENV_ROOT, data_folder

__all__ = [
    "ENV_CACHE",
    "ENV_ROOT",
    "EXPECTED_LAYOUT",
    "FULL_COUNTS",
    "NUM_DRAWERS",
    "SETS",
    "CharacterId",
    "OmniglotDataError",
    "OmniglotDataset",
    "Resample",
    "default_cache_dir",
    "load_omniglot",
    "resolve_root",
]

log = logging.getLogger(__name__)


ENV_CACHE = "RL_ALPHAMAML_CACHE"
"""Environment variable naming the toolkit's cache root; Omniglot uses its ``omniglot/`` subfolder."""

SETS: tuple[str, str] = ("background", "evaluation")
NUM_DRAWERS = 20
SOURCE_IMAGE_SIZE = 105
FULL_COUNTS: dict[str, tuple[int, int]] = {"background": (30, 964), "evaluation": (20, 659)}
"""(alphabets, characters) per set in the official release."""

CACHE_FORMAT_VERSION = 1
Resample = Literal["lanczos", "box"]
_RESAMPLE = {"lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX}
_PNG_NAME = re.compile(r"^\d+_(\d+)\.png$", re.IGNORECASE)
_MAX_LISTED_PROBLEMS = 8

EXPECTED_LAYOUT = """\
Expected Omniglot layout (Lake et al. 2015) under the root folder:
    <root>/images_background/  or  <root>/images_background.zip
    <root>/images_evaluation/  or  <root>/images_evaluation.zip
each holding images_<set>/<Alphabet>/<characterNN>/<NNNN_DD>.png (105x105 PNG, drawers DD = 01..20,
20 images per character); the full set has 964 background and 659 evaluation characters.
Give the root as data.root in the config or in the environment variable RL_ALPHAMAML_OMNIGLOT, or run
`rl-alphamaml data omniglot` to download the official zips (github.com/brendenlake/omniglot, python/) to the
user data folder, which is then found without either."""


class OmniglotDataError(ValueError):
    """The Omniglot data is missing, partial or malformed. The message names the path and the layout."""


def _fail(path: Path | str, problems: str | list[str], hint: str = "") -> OmniglotDataError:
    if isinstance(problems, str):
        problems = [problems]
    shown = problems[:_MAX_LISTED_PROBLEMS]
    lines = [f"Omniglot data at {path} is not usable:"]
    lines += [f"  - {p}" for p in shown]
    if len(problems) > len(shown):
        lines.append(f"  - ... and {len(problems) - len(shown)} more problem(s)")
    if hint:
        lines.append(hint)
    lines.append(EXPECTED_LAYOUT)
    return OmniglotDataError("\n".join(lines))


@dataclass(frozen=True, order=True)
class CharacterId:
    """Identity of one Omniglot character: set (``background``/``evaluation``), alphabet, character folder."""

    set_name: str
    alphabet: str
    character: str

    @property
    def key(self) -> str:
        """``'<set>/<Alphabet>/<characterNN>'``, the form stored in split JSON files."""
        return f"{self.set_name}/{self.alphabet}/{self.character}"

    @classmethod
    def from_key(cls, key: str) -> CharacterId:
        parts = key.split("/")
        if len(parts) != 3 or parts[0] not in SETS or not all(parts):
            raise ValueError(f"not an Omniglot character id: {key!r} (expected '<set>/<Alphabet>/<character>')")
        return cls(parts[0], parts[1], parts[2])

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, eq=False)
class OmniglotDataset:
    """All preprocessed Omniglot images, one row per character, in a single contiguous array.

    Attributes:
        images: ``uint8`` array of shape ``(characters, 20, S, S)``; 0 = background, 255 = ink. Row ``i``
            holds the 20 drawers (01…20, in order) of ``characters[i]``. Read-only.
        characters: the identity of every row, background set first, then evaluation, each sorted by
            alphabet and character folder name.
        root: the data root the images came from.
        cache_file: the cache file used (read or written), if any.
        from_cache: whether the arrays came from the cache.
    """

    images: np.ndarray = field(repr=False)
    characters: tuple[CharacterId, ...]
    root: Path | None = None
    cache_file: Path | None = None
    from_cache: bool = False
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        im = self.images
        if im.dtype != np.uint8 or im.ndim != 4 or im.shape[2] != im.shape[3]:
            raise ValueError(f"images must be uint8 (characters, drawers, S, S), got {im.dtype} {im.shape}")
        if im.shape[0] != len(self.characters):
            raise ValueError(f"{im.shape[0]} image rows but {len(self.characters)} character ids")
        im = np.ascontiguousarray(im)
        im.setflags(write=False)
        object.__setattr__(self, "images", im)
        index = {c.key: i for i, c in enumerate(self.characters)}
        if len(index) != len(self.characters):
            raise ValueError("duplicate character ids")
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.characters)

    def __contains__(self, character: object) -> bool:
        key = character.key if isinstance(character, CharacterId) else character
        return isinstance(key, str) and key in self._index

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={len(self.indices_of_set(s))}" for s in SETS)
        return (
            f"OmniglotDataset({len(self)} characters [{counts}], {self.num_drawers} drawers, "
            f"{self.image_size}x{self.image_size}, root={self.root}, from_cache={self.from_cache})"
        )

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def num_drawers(self) -> int:
        return int(self.images.shape[1])

    def keys(self) -> list[str]:
        """Character keys (``'<set>/<Alphabet>/<character>'``) in row order."""
        return [c.key for c in self.characters]

    def index_of(self, character: str | CharacterId) -> int:
        """Row of a character given by key or :class:`CharacterId`."""
        key = character.key if isinstance(character, CharacterId) else character
        try:
            return self._index[key]
        except KeyError:
            raise KeyError(f"character {key!r} is not in this Omniglot dataset (root {self.root})") from None

    def indices(self, characters: Iterable[str | CharacterId]) -> np.ndarray:
        """Rows (``int64`` array) of several characters."""
        return np.fromiter((self.index_of(c) for c in characters), dtype=np.int64)

    def indices_of_set(self, set_name: str) -> np.ndarray:
        """Rows of all characters of one set (``'background'`` or ``'evaluation'``)."""
        if set_name not in SETS:
            raise ValueError(f"unknown Omniglot set {set_name!r}; expected one of {SETS}")
        return np.array([i for i, c in enumerate(self.characters) if c.set_name == set_name], dtype=np.int64)

    def alphabets(self, set_name: str | None = None) -> list[str]:
        """Sorted alphabet names, of one set or of both."""
        return sorted({c.alphabet for c in self.characters if set_name is None or c.set_name == set_name})

    def float_images(self, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """``float32`` images in [0, 1] with ink = 1.0 on background 0.0, of the given rows (default all)."""
        sel = self.images if rows is None else self.images[rows]
        return np.divide(sel, np.float32(255.0), dtype=np.float32)


# --------------------------------------------------------------------------------------------- locating


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The Omniglot root: ``root`` if given, else the environment variable ``RL_ALPHAMAML_OMNIGLOT``, else the
    user data folder that ``rl-alphamaml data omniglot`` fills (:func:`~.omniglot_download.default_data_dir`).

    Only resolves the path; :func:`load_omniglot` checks the layout.
    """
    folder = data_folder(root)
    given = (root is not None and str(root) != "") or os.environ.get(ENV_ROOT)
    if not given and not any((folder / f"images_{s}{ext}").exists() for s in SETS for ext in ("", ".zip")):
        raise OmniglotDataError(
            f"No Omniglot data: run `rl-alphamaml data omniglot` (downloads it to {folder}), or give a "
            f"folder holding it as data.root in the config or as {ENV_ROOT}=/path/to/omniglot.\n{EXPECTED_LAYOUT}"
        )
    return folder


def default_cache_dir() -> Path:
    """``$RL_ALPHAMAML_CACHE/omniglot`` if that variable is set, else ``~/.cache/rl_alphamaml/omniglot``.

    ``$XDG_CACHE_HOME`` replaces ``~/.cache`` when it is set.
    """
    env = os.environ.get(ENV_CACHE, "")
    if env:
        return Path(env).expanduser().absolute() / "omniglot"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base.absolute() / "rl_alphamaml" / "omniglot"


@dataclass(frozen=True)
class _SetSource:
    set_name: str
    kind: Literal["folder", "zip"]
    path: Path


def _locate(root: Path) -> list[_SetSource]:
    if not root.exists():
        raise _fail(root, "the folder does not exist")
    if not root.is_dir():
        hint = ""
        if root.name.startswith("images_"):
            hint = f"Give the folder that contains {root.name} as the root: {root.parent}"
        raise _fail(root, "this is a file, not a folder", hint)
    sources: list[_SetSource] = []
    missing: list[str] = []
    for s in SETS:
        folder, archive = root / f"images_{s}", root / f"images_{s}.zip"
        if folder.is_dir():
            sources.append(_SetSource(s, "folder", folder))
        elif archive.is_file():
            sources.append(_SetSource(s, "zip", archive))
        else:
            missing.append(f"neither images_{s}/ nor images_{s}.zip is there")
    if missing:
        present = sorted(p.name for p in root.iterdir())[:12]
        raise _fail(root, missing, f"The folder holds: {present or 'nothing'}")
    return sources


def _is_hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX"


def _index_layout(
    entries: Iterable[tuple[str, bool]], where: Path
) -> dict[tuple[str, str], dict[int, str]]:
    """Map (alphabet, character) -> {drawer: entry name} from relative posix paths (``is_dir`` flags)."""
    chars: dict[tuple[str, str], dict[int, str]] = {}
    alphabets: set[str] = set()
    problems: list[str] = []
    for rel, is_dir in entries:
        parts = [p for p in rel.split("/") if p]
        if not parts or any(_is_hidden(p) for p in parts):
            continue
        if is_dir:
            if len(parts) == 1:
                alphabets.add(parts[0])
            elif len(parts) == 2:
                alphabets.add(parts[0])
                chars.setdefault((parts[0], parts[1]), {})
            else:
                problems.append(f"unexpected folder {rel} (character folders hold only PNG files)")
            continue
        if not parts[-1].lower().endswith(".png"):
            continue  # README, Thumbs.db and the like
        if len(parts) != 3:
            problems.append(f"PNG file at the wrong depth: {rel}")
            continue
        m = _PNG_NAME.match(parts[2])
        if m is None:
            problems.append(f"PNG name is not NNNN_DD.png: {rel}")
            continue
        alphabets.add(parts[0])
        drawers = chars.setdefault((parts[0], parts[1]), {})
        d = int(m.group(1))
        if d in drawers:
            problems.append(f"drawer {d:02d} appears twice in {parts[0]}/{parts[1]}")
        drawers[d] = rel
    if not alphabets and not problems:
        problems.append("no alphabet folders")
    for a in sorted(alphabets - {a for a, _ in chars}):
        problems.append(f"alphabet {a} has no character folders")
    expected = set(range(1, NUM_DRAWERS + 1))
    for (a, c), drawers in sorted(chars.items()):
        if set(drawers) != expected:
            have = len(drawers)
            extra = sorted(set(drawers) - expected)
            detail = f"{have} images" + (f", unexpected drawers {extra}" if extra else "")
            problems.append(f"{a}/{c} should hold drawers 01..{NUM_DRAWERS} ({detail})")
    if problems:
        hint = ""
        if alphabets == {where.name} or any(p.startswith(f"{where.name}/") for p in alphabets):
            hint = f"It looks doubly nested: move the contents of {where / where.name} up one level."
        raise _fail(where, problems, hint)
    return chars


def _walk_folder(folder: Path) -> Iterator[tuple[str, bool, os.stat_result | None]]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        base = Path(dirpath)
        rel_base = base.relative_to(folder).as_posix()
        prefix = "" if rel_base == "." else rel_base + "/"
        for d in dirnames:
            yield prefix + d, True, None
        for f in sorted(filenames):
            if not _is_hidden(f):
                yield prefix + f, False, (base / f).stat()


def _fingerprint(src: _SetSource) -> dict[str, object]:
    """What the cache key depends on for one set."""
    try:
        if src.kind == "zip":
            zst = src.path.stat()
            return {"set": src.set_name, "kind": "zip", "path": str(src.path.resolve()),
                    "size": zst.st_size, "mtime_ns": zst.st_mtime_ns}
        h = hashlib.sha256()
        n = 0
        for rel, is_dir, st in _walk_folder(src.path):
            if not is_dir and st is not None:
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
                n += 1
        return {"set": src.set_name, "kind": "folder", "path": str(src.path.resolve()),
                "files": n, "digest": h.hexdigest()}
    except OSError as exc:
        raise _fail(src.path, f"cannot read: {exc}") from exc


# ------------------------------------------------------------------------------------------ decoding


def _decode_png(data: bytes, name: str, size: int, resample: Image.Resampling) -> np.ndarray:
    """One Omniglot PNG -> ``uint8`` (size, size) image, ink = 255 on background 0 (anti-aliased)."""
    with Image.open(io.BytesIO(data)) as im:
        if im.size != (SOURCE_IMAGE_SIZE, SOURCE_IMAGE_SIZE):
            raise ValueError(f"{name} is {im.size[0]}x{im.size[1]}, expected 105x105")
        grey = np.asarray(im.convert("L"), dtype=np.float32)
    ink = 1.0 - grey / np.float32(255.0)  # ink = 1.0, background = 0.0
    small = np.asarray(Image.fromarray(ink).resize((size, size), resample), dtype=np.float32)
    return np.rint(np.clip(small, 0.0, 1.0) * 255.0).astype(np.uint8)


def _read_set(
    src: _SetSource, size: int, resample: Image.Resampling, progress: bool
) -> tuple[list[CharacterId], np.ndarray]:
    zf: zipfile.ZipFile | None = None
    try:
        if src.kind == "zip":
            try:
                zf = zipfile.ZipFile(src.path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise _fail(src.path, f"not a readable zip file ({exc})") from exc
            prefix = f"images_{src.set_name}/"
            entries: list[tuple[str, bool]] = []
            outside: list[str] = []
            for info in zf.infolist():
                name = info.filename
                if name.startswith(prefix):
                    entries.append((name[len(prefix):], info.is_dir()))
                elif name.lower().endswith(".png") and not any(_is_hidden(p) for p in name.split("/")):
                    outside.append(f"PNG outside the top folder {prefix}: {name}")
            if outside:
                raise _fail(src.path, outside)
            layout = _index_layout(entries, src.path)
        else:
            try:
                layout = _index_layout(((r, d) for r, d, _ in _walk_folder(src.path)), src.path)
            except OSError as exc:
                raise _fail(src.path, f"cannot read: {exc}") from exc

        keys = sorted(layout)
        images = np.empty((len(keys), NUM_DRAWERS, size, size), dtype=np.uint8)
        problems: list[str] = []
        iterator: Iterable[tuple[int, tuple[str, str]]] = enumerate(keys)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, total=len(keys), desc=f"Omniglot {src.set_name}", unit="char")
        for i, key in iterator:
            for d in range(1, NUM_DRAWERS + 1):
                rel = layout[key][d]
                try:
                    data = zf.read(f"images_{src.set_name}/{rel}") if zf else (src.path / rel).read_bytes()
                    images[i, d - 1] = _decode_png(data, rel, size, resample)
                except Exception as exc:  # any decoding failure is a data problem, reported together
                    problems.append(f"cannot decode {rel}: {exc}")
        if problems:
            raise _fail(src.path, problems)
        return [CharacterId(src.set_name, a, c) for a, c in keys], images
    finally:
        if zf is not None:
            zf.close()


# --------------------------------------------------------------------------------------------- cache


def _cache_key(fingerprints: list[dict[str, object]], size: int, resample: str) -> str:
    blob = json.dumps(
        {"format": CACHE_FORMAT_VERSION, "image_size": size, "resample": resample, "sets": fingerprints},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _load_cache(path: Path, key: str, size: int) -> tuple[list[CharacterId], np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                raise ValueError("cache key mismatch")
            images = z["images"]
            ids = [CharacterId(str(s), str(a), str(c))
                   for s, a, c in zip(z["set_name"], z["alphabet"], z["character"], strict=True)]
        if images.dtype != np.uint8 or images.shape[1:] != (NUM_DRAWERS, size, size) or len(ids) != len(images):
            raise ValueError(f"unexpected arrays {images.dtype} {images.shape}")
        return ids, images
    except Exception as exc:  # a cache is disposable: anything wrong with it means rebuild
        warnings.warn(f"Omniglot cache file {path} is unreadable ({exc}); rebuilding it", stacklevel=3)
        return None


def _save_cache(path: Path, key: str, ids: list[CharacterId], images: np.ndarray) -> bool:
    try:
        write_atomic(path, lambda f: np.savez_compressed(
            f,
            key=np.array(key),
            images=images,
            set_name=np.array([c.set_name for c in ids]),
            alphabet=np.array([c.alphabet for c in ids]),
            character=np.array([c.character for c in ids]),
        ))
        return True
    except OSError as exc:
        warnings.warn(f"cannot write the Omniglot cache {path} ({exc}); continuing without it", stacklevel=3)
        return False


# ---------------------------------------------------------------------------------------------- load


def load_omniglot(
    root: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    image_size: int = 28,
    resample: Resample = "lanczos",
    require_complete: bool = True,
    progress: bool = False,
) -> OmniglotDataset:
    """Load Omniglot [1] as one ``uint8`` array, preprocessing and caching on first use.

    Args:
        root: folder holding ``images_background`` and ``images_evaluation`` (folders or ``.zip``; a
            folder wins when both are there). ``None``: the environment variable ``RL_ALPHAMAML_OMNIGLOT``.
        cache_dir: where the preprocessed arrays are cached; ``None``: :func:`default_cache_dir`.
        use_cache: read and write the cache (``False``: always preprocess, write nothing).
        image_size: side of the square output images (28 in MAML [2] / Vinyals et al. [3]).
        resample: Pillow filter for the float image, ``"lanczos"`` (as MAML) or ``"box"`` (area average).
        require_complete: demand the official counts (30 + 20 alphabets, 964 + 659 characters); set
            ``False`` to use a subset of alphabets.
        progress: show a progress bar while preprocessing.

    Raises:
        OmniglotDataError: no root, or the data is missing, partial or malformed (one message naming
            the path, the problems found and the expected layout).
    """
    if resample not in _RESAMPLE:
        raise ValueError(f"resample must be one of {sorted(_RESAMPLE)}, got {resample!r}")
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    root_path = resolve_root(root)
    sources = _locate(root_path)

    cache_file: Path | None = None
    loaded: tuple[list[CharacterId], np.ndarray] | None = None
    key = ""
    if use_cache:
        key = _cache_key([_fingerprint(s) for s in sources], image_size, resample)
        folder = Path(cache_dir).expanduser().absolute() if cache_dir is not None else default_cache_dir()
        cache_file = folder / f"omniglot-{image_size}px-{key}.npz"
        loaded = _load_cache(cache_file, key, image_size)
    from_cache = loaded is not None
    if loaded is None:
        t0 = time.perf_counter()
        log.info("Preprocessing Omniglot from %s to %dx%d (once; then cached)", root_path, image_size, image_size)
        try:
            parts = [_read_set(s, image_size, _RESAMPLE[resample], progress) for s in sources]
        except OmniglotDataError as exc:
            shadowed = [s.path for s in sources if s.kind == "folder" and s.path.with_suffix(".zip").is_file()]
            if not shadowed:
                raise
            note = "; ".join(f"the folder {p} is read instead of {p.name}.zip next to it" for p in shadowed)
            raise OmniglotDataError(f"{exc}\nNote: {note}. Remove or rename the folder to use the zip.") from None
        ids = [c for p in parts for c in p[0]]
        images = np.concatenate([p[1] for p in parts], axis=0)
        log.info("Preprocessed %d characters in %.1f s", len(ids), time.perf_counter() - t0)
        if cache_file is not None and not _save_cache(cache_file, key, ids, images):
            cache_file = None
    else:
        ids, images = loaded

    dataset = OmniglotDataset(images, tuple(ids), root_path, cache_file, from_cache)
    if require_complete:
        problems = []
        for s in SETS:
            want_a, want_c = FULL_COUNTS[s]
            have_a, have_c = len(dataset.alphabets(s)), len(dataset.indices_of_set(s))
            if (have_a, have_c) != (want_a, want_c):
                problems.append(
                    f"images_{s} has {have_a} alphabets and {have_c} characters, expected {want_a} and {want_c}"
                )
        if problems:
            raise _fail(root_path, problems, "To use a subset on purpose, pass require_complete=False.")
    return dataset
