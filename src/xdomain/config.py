"""Typed run configuration: nested dataclasses, strict YAML recipes and `a.b=value` overrides.

A run config has four fixed sections (`data`, `train`, `eval` and the top-level scalars) plus
`model`, whose dataclass is the chosen method's `Config` (its defaults are the paper's).
Unknown keys and wrong types are errors that name the key and list the valid ones: a typo must
never silently disable a loss term.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from xdomain.errors import ConfigError

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass
class DataConfig:
    """Where the two domains come from and how batches are made."""

    a: str = "digits-printed"  # an embedded source name or a folder of images (domain a)
    b: str = "digits-handwritten"  # the same for domain b
    root: str = ""  # an unpaired `trainA/ trainB/ testA/ testB/` folder; overrides a and b
    image_size: int = 32
    channels: int = 3
    batch_size: int = 64
    num_workers: int = (
        0  # DataLoader worker processes (folders benefit; embedded data is in memory)
    )
    augment: bool = False  # random flip + crop for folder sources (reproducible per step)
    on_bad_file: Literal["error", "skip"] = "error"
    max_pixels: int = 50_000_000  # larger images are refused before decoding (decompression bombs)
    seed: int = 0  # the data seed: rendering and splits, fixed across runs
    n_a: int | None = None  # cap the training set sizes (None: the source's default)
    n_b: int | None = None


@dataclass
class TrainConfig:
    """The loop: length, precision, schedule and how often to log, sample, evaluate and save."""

    steps: int = 10_000
    decay_start: int | None = (
        None  # lr constant until this step, then linear to 0 (papers' schedule)
    )
    precision: Precision = "fp32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0  # torch intra-op threads on CPU (0: torch's default)
    log_every: int = 20
    sample_every: int = 500
    ckpt_every: int = 500
    keep_last: int = 3  # checkpoints kept besides `best`
    progress: bool = True


@dataclass
class EvalConfig:
    """Periodic evaluation on held-out data; `select` picks the `best` checkpoint."""

    every: int = 500
    n_test: int = 2000  # held-out items translated per evaluation (the whole test split if smaller)
    select: str = ""  # metric that picks the `best` checkpoint (e.g. `val_acc`); empty: none
    select_mode: Literal["max", "min"] = "max"
    n_val: int = 1000  # items of a validation split, for `val_*` metrics used in selection


@dataclass
class RunConfig:
    method: str
    model: Any  # the method's own Config dataclass
    description: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# --------------------------------------------------------------------------- recipes


def recipe_names() -> list[str]:
    files = resources.files("xdomain").joinpath("recipes")
    return sorted(p.name[: -len(".yaml")] for p in files.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(path_or_name: str) -> tuple[dict[str, Any], str]:
    """A recipe name or a YAML path -> (mapping, where it came from)."""
    path = Path(path_or_name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist")
        text, where = path.read_text(), str(path)
    else:
        res = resources.files("xdomain").joinpath("recipes", f"{path_or_name}.yaml")
        if not res.is_file():
            raise ConfigError(
                f"unknown recipe '{path_or_name}'; built-in recipes: {', '.join(recipe_names())}"
                " (or give a path to a .yaml file)"
            )
        text, where = res.read_text(), f"recipe {path_or_name}"
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: invalid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a config must be a mapping of keys to values")
    return data, where


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_recipe(path_or_name: str) -> tuple[dict[str, Any], str]:
    """Read a recipe, following `base: other-recipe` (the ablations extend the main recipe)."""
    data, where = _read_yaml(path_or_name)
    seen = {path_or_name}
    while "base" in data:
        parent = data.pop("base")
        if parent in seen:
            raise ConfigError(f"{where}: `base` chain loops through '{parent}'")
        seen.add(parent)
        parent_data, _ = _read_yaml(parent)
        data = _merge(parent_data, data)
    return data, where


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`train.steps=100 model.lambda_const=0` -> nested updates; values parse as YAML scalars."""
    data = _merge({}, data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"override '{item}' is not of the form key=value (e.g. train.steps=100)"
            )
        value = yaml.safe_load(raw) if raw.strip() else ""
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}': '{p}' is a value, not a section")
        node[parts[-1]] = value
    return data


# --------------------------------------------------------------------------- strict conversion


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: '{key}' cannot be None")
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(str(a) for a in get_args(tp))
            raise ConfigError(f"{where}: '{key}' is {value!r}; valid values: {choices}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: '{key}' must be a list, got {value!r}")
        (inner, *_) = get_args(tp) or (Any,)
        items = [_coerce(v, inner, f"{key}[{i}]", where) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' is a section; give keys under it, not {value!r}")
        return from_dict(tp, value, where, prefix=f"{key}.")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: '{key}' must be {_type_name(tp)}, got {value!r}")


def from_dict(cls: type, data: dict[str, Any], where: str, prefix: str = "") -> Any:
    """Build dataclass `cls` from `data`, refusing unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in data if k not in names]
    if unknown:
        valid = ", ".join(names)
        section = f"under '{prefix[:-1]}'" if prefix else "at the top level"
        raise ConfigError(
            f"{where}: unknown key '{prefix}{unknown[0]}'; valid keys {section}: {valid}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k, where) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def build_config(data: dict[str, Any], where: str = "config") -> RunConfig:
    """A plain mapping (recipe + overrides) -> a validated RunConfig."""
    from xdomain.methods import METHODS  # late: methods import config

    data = dict(data)
    method = data.get("method")
    if method not in METHODS:
        raise ConfigError(
            f"{where}: 'method' is {method!r}; valid methods: {', '.join(sorted(METHODS))}"
        )
    model_cls = METHODS[method].Config
    model = from_dict(model_cls, data.pop("model", None) or {}, where, prefix="model.")
    cfg = from_dict(RunConfig, {**data, "model": {}}, where)
    cfg.model = model
    validate(cfg, where)
    return cfg


def validate(cfg: RunConfig, where: str) -> None:
    """Cross-field checks that a type alone cannot express."""
    checks = [
        (cfg.train.steps > 0, "train.steps must be > 0"),
        (cfg.data.batch_size > 0, "data.batch_size must be > 0"),
        (cfg.data.channels in (1, 3), "data.channels must be 1 or 3"),
        (cfg.data.image_size >= 8, "data.image_size must be >= 8"),
        (cfg.train.keep_last >= 1, "train.keep_last must be >= 1"),
        (
            cfg.train.decay_start is None or 0 <= cfg.train.decay_start < cfg.train.steps,
            "train.decay_start must be in [0, train.steps)",
        ),
        (
            min(cfg.train.log_every, cfg.train.sample_every, cfg.train.ckpt_every) > 0,
            "train.log_every, sample_every and ckpt_every must be > 0",
        ),
        (cfg.eval.every > 0, "eval.every must be > 0"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(f"{where}: {msg}")


def load_config(recipe: str, overrides: list[str] | None = None) -> RunConfig:
    data, where = read_recipe(recipe)
    return build_config(apply_overrides(data, overrides or []), where)


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
