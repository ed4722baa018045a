"""Omniglot few-shot classification: character splits and the N-way K-shot task sampler.

The images come from :mod:`rl_alphamaml.supervised.omniglot_data` (re-exported here), which reads the
official layout of Lake, Salakhutdinov & Tenenbaum [1] and caches 28×28 arrays (ink = 1.0 on
background 0.0 once converted to float).

Two split protocols are provided, both over whole characters (all 20 drawings and all rotations of a
character always fall in the same part):

``"vinyals"`` — Vinyals et al. [2], as used by MAML [3]: the 1623 characters of both sets are pooled,
    shuffled with ``seed``, the first ``num_train`` (1200) go to meta-training and the remaining 423 to
    meta-testing. The validation characters are the **last** ``num_val`` (default 100) of those 1200 in
    shuffled order, so by default train / val / test = 1100 / 100 / 423 characters — the same cut MAML's
    code makes (``data_generator.py``: ``num_val = 100``, ``num_train = 1200 - num_val``). Use
    ``num_val=0`` for the full 1200. Each character is augmented with its 90°/180°/270° rotations as new
    classes, so 1200 / 423 characters give 4800 / 1692 classes.
``"lake"`` — Lake et al. [1]: the 30 background alphabets (964 characters) for meta-training, the
    20 evaluation alphabets (659 characters) for meta-testing. Validation: the last ``num_val`` of the
    background characters shuffled with ``seed``. No rotations by default (pass ``rotations``).

A split is data: :meth:`OmniglotSplit.save` / :meth:`OmniglotSplit.load` write and read it as JSON
(the character keys of each part), so a run can store the exact split it used.

Example::

    import numpy as np
    from rl_alphamaml.supervised.omniglot import OmniglotTaskSampler, load_omniglot, make_split

    data = load_omniglot("/path/to/omniglot")          # or RL_ALPHAMAML_OMNIGLOT; cached after 1st run
    split = make_split(data, "vinyals", seed=0)        # 1100 / 100 / 423 characters, 4 rotations each
    split.save(run_dir / "omniglot_split.json")
    train = OmniglotTaskSampler(data, split, "train", n_way=5, k_shot=1, q_query=15)
    rng = np.random.default_rng(0)
    batch = train.sample_batch(32, rng)                # batch.support_x: (32, 5, 1, 28, 28)
    task = train.sample(rng)                           # task.query_x: (75, 1, 28, 28)

References:
    [1] Lake, Salakhutdinov & Tenenbaum, "Human-level concept learning through probabilistic program
        induction", Science 2015. https://doi.org/10.1126/science.aab3050
    [2] Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, "Matching Networks for One Shot Learning",
        NeurIPS 2016. https://arxiv.org/abs/1606.04080
    [3] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from rl_alphamaml.atomic import write_text_atomic
from rl_alphamaml.supervised.omniglot_data import (
    ENV_CACHE,
    ENV_ROOT,
    EXPECTED_LAYOUT,
    FULL_COUNTS,
    NUM_DRAWERS,
    SETS,
    CharacterId,
    OmniglotDataError,
    OmniglotDataset,
    default_cache_dir,
    load_omniglot,
    resolve_root,
)

__all__ = [
    "ENV_CACHE",
    "ENV_ROOT",
    "EXPECTED_LAYOUT",
    "FULL_COUNTS",
    "NUM_DRAWERS",
    "PARTS",
    "SETS",
    "CharacterId",
    "FewShotTask",
    "OmniglotDataError",
    "OmniglotDataset",
    "OmniglotSplit",
    "OmniglotTaskSampler",
    "Part",
    "Protocol",
    "default_cache_dir",
    "load_omniglot",
    "make_split",
    "resolve_root",
]

Protocol = Literal["vinyals", "lake"]
Part = Literal["train", "val", "test"]
PARTS: tuple[Part, ...] = get_args(Part)
_SPLIT_FORMAT = "rl_alphamaml.omniglot_split"
_SPLIT_VERSION = 1
_ALL_ROTATIONS = (0, 90, 180, 270)
_NUMPY_FLOAT: dict[torch.dtype, type[np.floating[Any]]] = {
    torch.float16: np.float16,
    torch.float32: np.float32,
    torch.float64: np.float64,
}


# -------------------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class OmniglotSplit:
    """Which characters are used for meta-training, validation and meta-testing.

    Attributes:
        protocol: ``"vinyals"`` (Vinyals et al. [2] / MAML [3]) or ``"lake"`` (Lake et al. [1]); a label.
        seed: the seed the split was drawn with (``None`` if made by hand).
        rotations: rotations in degrees (counter-clockwise) that each character contributes as classes.
        train, val, test: character keys (``'<set>/<Alphabet>/<character>'``) of each part.
    """

    protocol: str
    seed: int | None
    rotations: tuple[int, ...]
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def __post_init__(self) -> None:
        rot = tuple(int(r) for r in self.rotations)
        if not rot or len(set(rot)) != len(rot) or any(r not in _ALL_ROTATIONS for r in rot):
            raise ValueError(f"rotations must be distinct values from {_ALL_ROTATIONS}, got {self.rotations}")
        object.__setattr__(self, "rotations", rot)
        seen: dict[str, str] = {}
        for name in PARTS:
            keys = tuple(str(k) for k in getattr(self, name))
            object.__setattr__(self, name, keys)
            for k in keys:
                CharacterId.from_key(k)  # validates the form
                if k in seen:
                    raise ValueError(f"character {k} is in both {seen[k]!r} and {name!r}")
                seen[k] = name

    def part(self, name: Part) -> tuple[str, ...]:
        """Character keys of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in PARTS:
            raise ValueError(f"unknown split part {name!r}; expected one of {PARTS}")
        keys: tuple[str, ...] = getattr(self, name)
        return keys

    def num_classes(self, name: Part) -> int:
        """Classes of a part: characters × rotations."""
        return len(self.part(name)) * len(self.rotations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _SPLIT_FORMAT,
            "version": _SPLIT_VERSION,
            "protocol": self.protocol,
            "seed": self.seed,
            "rotations": list(self.rotations),
            "train": list(self.train),
            "val": list(self.val),
            "test": list(self.test),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OmniglotSplit:
        if not isinstance(d, dict) or d.get("format") != _SPLIT_FORMAT:
            raise ValueError(f"not an Omniglot split (expected 'format': {_SPLIT_FORMAT!r})")
        if d.get("version") != _SPLIT_VERSION:
            raise ValueError(f"unsupported Omniglot split version {d.get('version')!r}")
        try:
            return cls(
                protocol=str(d["protocol"]),
                seed=None if d["seed"] is None else int(d["seed"]),
                rotations=tuple(d["rotations"]),
                train=tuple(d["train"]),
                val=tuple(d["val"]),
                test=tuple(d["test"]),
            )
        except KeyError as exc:
            raise ValueError(f"Omniglot split is missing the key {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> OmniglotSplit:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the split as JSON (atomically) and return the path."""
        return write_text_atomic(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OmniglotSplit:
        """Read a split written by :meth:`save`; a bad file raises ``ValueError`` naming it."""
        p = Path(path)
        try:
            return cls.from_json(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the Omniglot split file {p}: {exc}") from exc

    def check(self, dataset: OmniglotDataset) -> None:
        """Raise :class:`OmniglotDataError` if the split names characters that ``dataset`` lacks."""
        missing = [k for name in PARTS for k in self.part(name) if k not in dataset]
        if missing:
            raise OmniglotDataError(
                f"the Omniglot split names {len(missing)} character(s) not in the data at {dataset.root}, "
                f"e.g. {missing[:3]}; was it made from another copy or a subset of Omniglot?"
            )


def make_split(
    dataset: OmniglotDataset | Sequence[str | CharacterId],
    protocol: Protocol = "vinyals",
    *,
    seed: int = 0,
    num_train: int | None = None,
    num_val: int = 100,
    rotations: Sequence[int] | None = None,
) -> OmniglotSplit:
    """Draw a seeded character split (see the module docstring for the two protocols).

    Args:
        dataset: the data set, or its character ids / keys. Their order does not matter: characters
            are sorted before shuffling, so the split depends only on the seed and the character set.
        protocol: ``"vinyals"`` (Vinyals et al. [2], MAML [3]) or ``"lake"`` (Lake et al. [1]).
        seed: seed of the shuffle (``numpy.random.default_rng``).
        num_train: Vinyals only: characters for meta-training including validation (default 1200);
            the rest are test characters.
        num_val: validation characters, carved from the end of the shuffled meta-training characters.
        rotations: rotations (degrees) used as extra classes; default ``(0, 90, 180, 270)`` for Vinyals,
            ``(0,)`` for Lake.
    """
    items = dataset.characters if isinstance(dataset, OmniglotDataset) else dataset
    chars = sorted(c if isinstance(c, CharacterId) else CharacterId.from_key(c) for c in items)
    rng = np.random.default_rng(seed)
    if num_val < 0:
        raise ValueError(f"num_val must be >= 0, got {num_val}")
    if protocol == "vinyals":
        n_tr = 1200 if num_train is None else num_train
        if not 0 < n_tr < len(chars):
            raise ValueError(f"num_train={n_tr} must be between 1 and {len(chars) - 1} (there are "
                             f"{len(chars)} characters)")
        if num_val >= n_tr:
            raise ValueError(f"num_val={num_val} must be smaller than num_train={n_tr}")
        order = [chars[i] for i in rng.permutation(len(chars))]
        pool, test = order[:n_tr], order[n_tr:]
        train, val = pool[: n_tr - num_val], pool[n_tr - num_val:]
        rot = tuple(_ALL_ROTATIONS if rotations is None else rotations)
    elif protocol == "lake":
        if num_train is not None:
            raise ValueError("num_train applies to the 'vinyals' protocol only; 'lake' trains on all "
                             "background characters")
        background = [c for c in chars if c.set_name == "background"]
        test = [c for c in chars if c.set_name == "evaluation"]
        if num_val >= len(background):
            raise ValueError(f"num_val={num_val} must be smaller than the {len(background)} background characters")
        order = [background[i] for i in rng.permutation(len(background))]
        train, val = order[: len(order) - num_val], order[len(order) - num_val:]
        rot = tuple((0,) if rotations is None else rotations)
    else:
        raise ValueError(f"unknown Omniglot split protocol {protocol!r}; expected 'vinyals' or 'lake'")
    return OmniglotSplit(
        protocol=protocol,
        seed=seed,
        rotations=rot,
        train=tuple(c.key for c in train),
        val=tuple(c.key for c in val),
        test=tuple(c.key for c in test),
    )


# ---------------------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class FewShotTask:
    """One N-way K-shot task, or a meta-batch of them stacked along a leading task dimension T.

    Shapes (single / batched):
        support_x: ``(N*K, 1, S, S)`` / ``(T, N*K, 1, S, S)``, float, ink = 1.0 on background 0.0
        support_y: ``(N*K,)`` / ``(T, N*K)``, int64 labels 0..N-1, class-major (``[0]*K + [1]*K + ...``)
        query_x: ``(N*Q, 1, S, S)`` / ``(T, N*Q, 1, S, S)``
        query_y: ``(N*Q,)`` / ``(T, N*Q)``, class-major like ``support_y``
        classes: ``(N,)`` / ``(T, N)`` numpy: the sampler's class index behind label ``j``
        drawers: ``(N, K+Q)`` / ``(T, N, K+Q)`` numpy: drawer (0..19) of each example; the first K are
            the support examples of that label, the last Q its query examples.

    Label ``j`` is given to a uniformly random class each task, so the label-to-class assignment is
    shuffled per task; the order of examples inside a set is class-major (batch norm and the losses
    do not depend on it).
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    classes: np.ndarray
    drawers: np.ndarray

    @property
    def batched(self) -> bool:
        return self.support_x.dim() == 5

    def __len__(self) -> int:
        """Number of tasks in a batch."""
        if not self.batched:
            raise TypeError("a single FewShotTask has no length; use sample_batch for a meta-batch")
        return int(self.support_x.shape[0])

    def task(self, i: int) -> FewShotTask:
        """Task ``i`` of a meta-batch."""
        if not self.batched:
            raise TypeError("task(i) needs a meta-batch from sample_batch")
        return FewShotTask(self.support_x[i], self.support_y[i], self.query_x[i], self.query_y[i],
                           self.classes[i], self.drawers[i])

    def to(self, device: torch.device | str) -> FewShotTask:
        return FewShotTask(self.support_x.to(device), self.support_y.to(device), self.query_x.to(device),
                           self.query_y.to(device), self.classes, self.drawers)


class OmniglotTaskSampler:
    """N-way K-shot Omniglot tasks with Q query examples per class [2, 3].

    A task draws ``n_way`` distinct classes of one split part (a class is a character at one rotation),
    then ``k_shot + q_query`` distinct drawers of each class: the first ``k_shot`` form the support set,
    the other ``q_query`` the query set, so support and query never share an image. Labels 0..N-1 are
    assigned to the drawn classes in random order.

    All images of the part, rotations included, live in one contiguous ``uint8`` array
    (``classes × 20 × S × S``: 69 MB for the 4400 Vinyals training classes), and a meta-batch is one
    fancy-indexing gather plus one conversion to float; nothing loops over images.

    Randomness comes only from the ``numpy.random.Generator`` given to each call, so the same seed gives
    the same tasks; ``sample(rng)`` equals ``sample_batch(1, rng).task(0)``.

    Args:
        dataset: images from :func:`load_omniglot`.
        split: character split from :func:`make_split` or :meth:`OmniglotSplit.load`.
        part: ``"train"``, ``"val"`` or ``"test"``.
        n_way, k_shot, q_query: classes per task, support and query examples per class
            (``k_shot + q_query <= 20``).
        device, dtype: where and as what the image tensors are returned (default CPU float32).

    Example::

        sampler = OmniglotTaskSampler(data, split, "train", n_way=5, k_shot=1, q_query=15)
        batch = sampler.sample_batch(32, np.random.default_rng(0))
        batch.support_x.shape, batch.query_y.shape     # (32, 5, 1, 28, 28), (32, 75)
    """

    def __init__(
        self,
        dataset: OmniglotDataset,
        split: OmniglotSplit,
        part: Part,
        *,
        n_way: int,
        k_shot: int,
        q_query: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        keys = split.part(part)
        if not keys:
            raise ValueError(f"the Omniglot split has no {part!r} characters")
        split.check(dataset)
        for name, v in (("n_way", n_way), ("k_shot", k_shot), ("q_query", q_query)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if k_shot + q_query > dataset.num_drawers:
            raise ValueError(f"k_shot + q_query = {k_shot + q_query} exceeds the {dataset.num_drawers} "
                             "drawings per Omniglot character")
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating point type, got {dtype}")
        self.dataset = dataset
        self.split = split
        self.part: Part = part
        self.n_way, self.k_shot, self.q_query = int(n_way), int(k_shot), int(q_query)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype

        rows = dataset.indices(keys)
        rot = split.rotations
        base = dataset.images[rows]  # (P, 20, S, S)
        # class c = character i at rotation j, with c = i * len(rot) + j (np.rot90: counter-clockwise)
        stacked = np.stack([np.rot90(base, r // 90, axes=(-2, -1)) for r in rot], axis=1)
        self.images: np.ndarray = np.ascontiguousarray(stacked.reshape(-1, *base.shape[1:]))
        self.images.setflags(write=False)
        self.class_rows: np.ndarray = np.repeat(rows, len(rot))
        """Dataset row (character) of each class."""
        self.class_rotations: np.ndarray = np.tile(np.asarray(rot, dtype=np.int64), len(rows))
        """Rotation in degrees (counter-clockwise) of each class."""
        self.num_classes = int(self.images.shape[0])
        if self.n_way > self.num_classes:
            raise ValueError(f"n_way={n_way} exceeds the {self.num_classes} classes of the {part!r} part")

    def __repr__(self) -> str:
        return (f"OmniglotTaskSampler(part={self.part!r}, {self.split.protocol}, classes={self.num_classes}, "
                f"{self.n_way}-way {self.k_shot}-shot, {self.q_query} queries)")

    def _to_float(self, images: np.ndarray) -> torch.Tensor:
        # numpy does the uint8 -> float conversion: torch's multi-threaded elementwise kernels are
        # slower than this on a small, busy CPU, and the result is the same (value / 255)
        np_dtype = _NUMPY_FLOAT.get(self.dtype, np.float32)
        x = torch.from_numpy(np.divide(images, np_dtype(255.0), dtype=np_dtype))
        return x.to(device=self.device, dtype=self.dtype)

    def class_character(self, c: int) -> CharacterId:
        """The character behind class ``c``."""
        return self.dataset.characters[int(self.class_rows[c])]

    def sample(self, rng: np.random.Generator | int) -> FewShotTask:
        """One task; ``rng`` is a ``numpy.random.Generator`` (or a seed for a fresh one)."""
        return self.sample_batch(1, rng).task(0)

    def sample_batch(self, meta_batch: int, rng: np.random.Generator | int) -> FewShotTask:
        """``meta_batch`` independent tasks stacked along a leading dimension T."""
        if meta_batch < 1:
            raise ValueError(f"meta_batch must be positive, got {meta_batch}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        T, N, K, Q = int(meta_batch), self.n_way, self.k_shot, self.q_query
        S = self.images.shape[-1]
        classes = np.stack([gen.choice(self.num_classes, size=N, replace=False) for _ in range(T)])
        drawers = np.argsort(gen.random((T, N, self.images.shape[1])), axis=-1)[..., : K + Q]
        # one gather per set, already in (T, N, K|Q, S, S) order, so the reshapes below are free
        support = self.images[classes[..., None], drawers[..., :K]].reshape(T, N * K, 1, S, S)
        query = self.images[classes[..., None], drawers[..., K:]].reshape(T, N * Q, 1, S, S)
        support_x, query_x = self._to_float(support), self._to_float(query)
        labels = np.arange(N, dtype=np.int64)
        support_y = torch.from_numpy(np.tile(np.repeat(labels, K), (T, 1))).to(self.device)
        query_y = torch.from_numpy(np.tile(np.repeat(labels, Q), (T, 1))).to(self.device)
        return FewShotTask(support_x, support_y, query_x, query_y, classes, drawers)
