"""Typed experiment configs loaded from YAML.

A config file is a YAML mapping whose ``kind:`` key selects the experiment type (``sinusoid``,
``omniglot``, ``rl``); the rest is validated against that kind's dataclass. Unknown keys, wrong types
and out-of-range values raise :class:`~rl_alphamaml.errors.ConfigError` with one message that names the
key and the file. Dotted overrides (``--set inner.lr=0.1``) are applied to the raw mapping before
validation, so they are checked exactly like the file.

Fields declare ranges with :func:`ranged`; dataclasses may add cross-field checks in a ``validate()``
method that raises ``ValueError("key: message")``.

Example::

    cfg = load_config("configs/sinusoid.yaml", KINDS, overrides=["inner.lr=0.1"])
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from rl_alphamaml.atomic import write_text_atomic
from rl_alphamaml.errors import ConfigError
from rl_alphamaml.fields import MAX_SEED, ranged

T = TypeVar("T")


@dataclasses.dataclass
class ExperimentConfig:
    """The fields every kind's config starts with; a kind's config derives from it and narrows ``kind`` to its
    own name (a ``Literal``), inheriting the rest and their meaning."""

    kind: str = ranged("", doc="the experiment kind")
    experiment: str = ranged("", doc="name and run-folder prefix (default: the config file's name, else the kind)")
    seed: int = ranged(0, min=0, max=MAX_SEED, doc="seed of every random stream of the run")

    def __post_init__(self) -> None:
        if not self.experiment:
            self.experiment = self.kind


@dataclasses.dataclass
class TrainConfig:
    """The meta-training loop settings every config kind shares."""

    iterations: int = ranged(1000, min=1, doc="meta-iterations to run")
    checkpoint_every: int = ranged(100, min=1, doc="save a checkpoint every N iterations (and at the end)")
    meta_batch: int = ranged(25, min=1, doc="tasks per meta-iteration")
    keep_checkpoints: int = ranged(0, min=0, doc="keep only the newest N checkpoints; 0 keeps all")
    threads: int = ranged(
        0, min=0, doc="torch intra-op threads; 0 keeps torch's default. Small models run fastest on 1"
    )
    max_nonfinite_steps: int = ranged(
        10, min=1, doc="end the run after this many consecutive non-finite meta-steps"
    )
    device: Literal["auto", "cpu", "cuda"] = ranged(
        "auto", doc="where the learner computes: auto = cuda when torch sees a GPU (RL sampling stays on the CPU)"
    )


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple, Sequence):
        return f"list of {_type_name(get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it converted (ints to floats, lists to tuples)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: must be one of {_type_name(tp)}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: must be {_type_name(tp)}, got null")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: must be {_type_name(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: must be a mapping of {tp.__name__} settings, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: must be a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin in (list, Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: must be a list, got {value!r}")
        (arg,) = get_args(tp)
        return [_convert(v, arg, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads ``1e-3`` (no dot) as a string; accept any float literal.
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key}: must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        return value
    raise TypeError(f"config field {key} has an unsupported type {tp!r}")  # a bug in a config class


def _check_range(value: Any, meta: Mapping[str, Any], key: str) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    lo, hi = meta.get("min"), meta.get("max")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if lo is not None and (v < lo or (meta.get("min_exclusive") and v == lo)):
            bound = f"> {lo}" if meta.get("min_exclusive") else f">= {lo}"
            raise ConfigError(f"{key}: must be {bound}, got {v!r}")
        if hi is not None and v > hi:
            raise ConfigError(f"{key}: must be <= {hi}, got {v!r}")


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build the dataclass ``cls`` from a mapping, checking keys, types, ranges and ``validate()``."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known keys here: {known})")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        converted = _convert(value, hints[name], key)
        _check_range(converted, fields[name].metadata, key)
        kwargs[name] = converted
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ConfigError:
            raise
        except ValueError as err:
            raise ConfigError(f"{prefix}{err}") from None
    return obj


def to_dict(obj: Any) -> Any:
    """A config dataclass as plain YAML-friendly Python data (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"inner.lr=0.1"`` into ``(["inner", "lr"], 0.1)``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, for example inner.lr=0.1")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {text!r}: malformed key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted ``KEY=VALUE`` overrides set (missing sections are created)."""
    out = copy.deepcopy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(parts[: i + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing file or malformed YAML."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file (a config is YAML text)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping, got {type(data).__name__}")
    return data


def build_config(
    data: Mapping[str, Any], kinds: Mapping[str, type], source: str, overrides: Sequence[str] = ()
) -> Any:
    """Validate raw config ``data`` (from ``source``, for messages) against the class its ``kind`` selects."""
    try:
        data = apply_overrides(dict(data), overrides)
        kind = str(data.get("kind"))
        if kind not in kinds:
            raise ConfigError(f"kind: must be one of {', '.join(sorted(kinds))}, got {data.get('kind')!r}")
        return from_dict(kinds[kind], data)
    except ConfigError as err:
        where = f"{source} (with --set {' '.join(overrides)})" if overrides else source
        raise ConfigError(f"{where}: {err}") from None


def load_config(path: str | Path, kinds: Mapping[str, type], overrides: Sequence[str] = ()) -> Any:
    """Load and validate a YAML config file; ``kinds`` maps each ``kind:`` value to its dataclass."""
    data = read_yaml(path)
    data.setdefault("experiment", Path(path).stem)
    return build_config(data, kinds, str(path), overrides)


def config_yaml(config: Any) -> str:
    """The resolved config (every default filled in) as the YAML text :func:`save_config` writes."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def save_config(config: Any, path: str | Path) -> None:
    """Write the resolved config (every default filled in) as YAML."""
    write_text_atomic(path, config_yaml(config))


def flat_config(config: Any) -> dict[str, Any]:
    """The config as ``{dotted.key: value}`` (leaves only, in declaration order)."""
    rows: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            rows[prefix[:-1]] = node

    walk(to_dict(config), "")
    return rows


def hparam_table(config: Any) -> str:
    """The config as a Markdown table of dotted keys and values (for TensorBoard's text tab)."""
    lines = ["| key | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in flat_config(config).items()]
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One config key as ``rl-alphamaml config KIND`` shows it."""

    key: str
    type: str
    default: Any
    range: str
    doc: str


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e12 else f"{x:g}"


def _range_text(meta: Mapping[str, Any]) -> str:
    lo: float | None = meta.get("min")
    hi: float | None = meta.get("max")
    if hi is not None and lo is None:
        return f"<= {_number(hi)}"
    if lo is None:
        return ""
    if hi is None:
        return f"> {_number(lo)}" if meta.get("min_exclusive") else f">= {_number(lo)}"
    return ("(" if meta.get("min_exclusive") else "[") + f"{_number(lo)}, {_number(hi)}]"


def describe(cls: type) -> list[FieldInfo]:
    """Every key of the config dataclass ``cls`` (dotted, leaves only, in declaration order) with its type,
    default, range and the ``doc`` text of :func:`ranged`."""
    rows: list[FieldInfo] = []

    def inherited(klass: type, name: str) -> Mapping[str, Any]:
        """The metadata of field ``name`` where a base class declared it with a doc (a narrowed override keeps
        the base's range and meaning)."""
        for base in klass.__mro__:
            if dataclasses.is_dataclass(base):
                for f in dataclasses.fields(base):
                    if f.name == name and f.metadata.get("doc"):
                        return f.metadata
        return {}

    def walk(klass: type, instance: Any, prefix: str) -> None:
        hints = typing.get_type_hints(klass)
        for f in dataclasses.fields(klass):
            value = getattr(instance, f.name)
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], value, f"{prefix}{f.name}.")
                continue
            meta = f.metadata if f.metadata.get("doc") else inherited(klass, f.name)
            rows.append(FieldInfo(f"{prefix}{f.name}", _type_name(hints[f.name]), value,
                                  _range_text(meta), str(meta.get("doc", ""))))

    walk(cls, cls(), "")
    return rows
