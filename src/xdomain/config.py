"""Run configs: recipes, overrides and the resolved `RunConfig` of a method.

A run config has four fixed sections (`data`, `train`, `eval` and the top-level scalars:
`xdomain.sections`) plus `model`, whose dataclass is the chosen method's `Config` (its defaults
are the paper's). The conversion is `xdomain.schema`'s: every mistake is a one-line
`ConfigError` that names the source, the key and the fix.

- a recipe argument with a `.yaml`/`.yml` suffix or a `/` is a path, anything else a built-in
  recipe name (a local file never shadows one); `base:` paths resolve relative to the file that
  names them;
- overrides are `a.b=value`, values read as YAML 1.2 scalars;
- `eval.select` must be a metric that the method's evaluation produces for the data
  (`Method.metrics`).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml

from xdomain.errors import ConfigError, clip, short
from xdomain.methods import METHODS
from xdomain.schema import (
    SeedRange,
    from_dict,
    listing_message,
    load_yaml,
    section_message,
)
from xdomain.sections import DataConfig, EvalConfig, TrainConfig, data_kind

if TYPE_CHECKING:
    from importlib.abc import Traversable


@dataclass
class RunConfig:
    method: str
    model: Any  # the method's own Config dataclass
    description: str = ""
    seed: Annotated[int, SeedRange] = 0
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


_SECTIONS: dict[str, type] = {"data": DataConfig, "train": TrainConfig, "eval": EvalConfig}

# --------------------------------------------------------------------------- recipes


def _recipes_dir() -> Traversable:
    return resources.files("xdomain").joinpath("recipes")


def recipe_names() -> list[str]:
    files = _recipes_dir()
    return sorted(p.name[: -len(".yaml")] for p in files.iterdir() if p.name.endswith(".yaml"))


def is_recipe_path(ref: str) -> bool:
    """A `.yaml`/`.yml` suffix or a path separator makes `ref` a file path, else a recipe name."""
    seps = [s for s in ("/", os.sep, os.altsep) if s]
    return ref.lower().endswith((".yaml", ".yml")) or any(s in ref for s in seps)


@dataclass(frozen=True)
class _Source:
    text: str
    where: str  # for messages: the path or `recipe NAME`
    ident: str  # for `base` loops
    folder: Traversable  # where the `base` paths it names resolve


def _locate(ref: str, folder: Traversable | None, prefix: str = "") -> _Source:
    """A recipe name or a path (relative to `folder`, default: the working directory)."""
    if is_recipe_path(ref):
        path: Traversable = Path(ref)
        if folder is not None and not Path(ref).is_absolute():
            path = folder.joinpath(ref)
        shown = clip(str(path), 120)
        try:
            if not path.is_file():
                what = "is not a file" if path.is_dir() else "does not exist"
                raise ConfigError(f"{prefix}config file '{shown}' {what}")
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{prefix}config file '{shown}' is not UTF-8 text") from None
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"{prefix}cannot read config file '{shown}': {clip(str(e))}"
            ) from None
        real = path.resolve() if isinstance(path, Path) else path
        parent = real.parent if isinstance(real, Path) else (folder or Path.cwd())
        return _Source(text, shown, f"file:{real}", parent)
    res = _recipes_dir().joinpath(f"{ref}.yaml")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", ref) or not res.is_file():
        names = recipe_names()
        # the closest names first: with a dozen recipes, a typo's fix must not be cut off
        close = difflib.get_close_matches(ref, names, n=3, cutoff=0.5)
        head = f"{prefix}unknown recipe '{clip(ref, 40)}'; built-in recipes: "
        tail = "; for a file give a path ending in .yaml"
        raise ConfigError(
            listing_message([*close, *(n for n in names if n not in close)], head, tail)
        )
    return _Source(
        res.read_text(encoding="utf-8"), f"recipe {ref}", f"recipe:{ref}", _recipes_dir()
    )


def _parse(src: _Source) -> dict[str, Any]:
    data = load_yaml(src.text, src.where)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{src.where}: a config must be a mapping of keys to values")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_recipe(path_or_name: str) -> tuple[dict[str, Any], str]:
    """Read a recipe, following `base: other` (the ablations extend the main recipe).

    `base` is a built-in recipe name or a path relative to the file that names it.
    """
    src = _locate(path_or_name, None)
    chain = [_parse(src)]
    seen = {src.ident}
    cur = src
    while "base" in chain[-1]:
        parent = chain[-1].pop("base")
        if not isinstance(parent, str) or not parent:
            raise ConfigError(
                f"{cur.where}: 'base' must name a recipe or a .yaml path, got {short(parent)}"
            )
        cur = _locate(parent, cur.folder, prefix=f"{cur.where}: base: ")
        if cur.ident in seen:
            raise ConfigError(f"{src.where}: `base` chain loops through '{clip(parent)}'")
        seen.add(cur.ident)
        chain.append(_parse(cur))
    data: dict[str, Any] = {}
    for layer in reversed(chain):
        data = _merge(data, layer)
    return data, src.where


def _model_cls(method: Any) -> type | None:
    return METHODS[method].Config if isinstance(method, str) and method in METHODS else None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`train.steps=100 model.lambda_const=0` -> nested updates; values parse as YAML scalars.

    A mapping value (`data={batch_size: 8}`) merges into the section; a scalar for a section
    (`model=`, `data=5`) is an error.
    """
    data = _merge({}, data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        where = f"override '{clip(item)}'"
        if not sep or not key:
            raise ConfigError(f"{where} is not of the form key=value (e.g. train.steps=100)")
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"{where}: '{clip(key)}' has an empty part (e.g. train.steps=100)")
        value = load_yaml(raw, where) if raw.strip() else ""
        if len(parts) == 1 and not isinstance(value, dict):
            if key in _SECTIONS:
                raise ConfigError(f"{where}: {section_message(key, _SECTIONS[key])}")
            if key == "model":
                raise ConfigError(
                    f"{where}: {section_message(key, _model_cls(data.get('method')))}"
                )
        node = data
        for i, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                path = clip(".".join(parts[: i + 1]))
                raise ConfigError(f"{where}: '{path}' is a value ({short(node)}), not a section")
        last = parts[-1]
        old = node.get(last)
        node[last] = (
            _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return data


def build_config(data: dict[str, Any], where: str = "config") -> RunConfig:
    """A plain mapping (recipe + overrides) -> a validated RunConfig."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a config must be a mapping of keys to values")
    data = dict(data)
    method = data.get("method")
    valid = ", ".join(sorted(METHODS))
    if "method" not in data:
        raise ConfigError(f"{where}: no 'method' key; valid methods: {valid}")
    if not isinstance(method, str) or method not in METHODS:
        raise ConfigError(f"{where}: 'method' is {short(method)}; valid methods: {valid}")
    model_cls = METHODS[method].Config
    model_data = data.pop("model", {})
    if not isinstance(model_data, dict):
        raise ConfigError(
            f"{where}: {section_message('model', model_cls)} (got {short(model_data)})"
        )
    model_data = dict(model_data)
    for old, (new, convert) in METHODS[method].renamed_keys.items():
        if old in model_data:  # e.g. a checkpoint from before the rename
            value = model_data.pop(old)
            model_data.setdefault(new, convert(value))
    model = from_dict(model_cls, model_data, where, prefix="model.")
    cfg = from_dict(RunConfig, {**data, "model": {}}, where)
    cfg.model = model
    if cfg.data.root:
        # the unpaired root replaces a and b: say so in the resolved config (`--dry-run`, the
        # run's config.yaml) instead of showing the recipe's embedded sources
        root = cfg.data.root.rstrip("/")
        cfg.data.a, cfg.data.b = f"{root}/trainA", f"{root}/trainB"
    validate(cfg, where)
    return cfg


def validate(cfg: RunConfig, where: str) -> None:
    """Cross-field checks that a type and a range alone cannot express."""
    d, t, e = cfg.data, cfg.train, cfg.eval
    given = [k for k, v in (("sources", d.sources), ("paired", d.paired), ("root", d.root)) if v]
    if len(given) > 1:
        raise ConfigError(
            f"{where}: data.{given[0]} and data.{given[1]} both say where the data are; keep one"
            " (sources: labelled data sets, paired: aligned pairs, root: two unpaired folders)"
        )
    if d.channels not in (1, 3):
        raise ConfigError(f"{where}: data.channels must be 1 or 3, got {short(d.channels)}")
    if t.decay_start is not None and t.decay_start >= t.steps:
        raise ConfigError(
            f"{where}: train.decay_start={t.decay_start} must be < train.steps={t.steps}"
            " (or null: no decay)"
        )
    if e.select:
        kind = data_kind(d)
        modes = METHODS[cfg.method].metrics(kind)  # the method says what it reports
        valid = list(modes)
        if e.select not in valid:
            close = difflib.get_close_matches(str(e.select), valid, n=3, cutoff=0.4)
            raise ConfigError(
                listing_message(
                    [*close, *(v for v in valid if v not in close)],
                    f"{where}: eval.select={short(e.select, 40)} is not a metric of"
                    f" {cfg.method} on {kind} data;"
                    " valid: ",
                    " (or empty: no `best` checkpoint)",
                )
            )
        mode = modes[e.select]
        if mode and e.select_mode != mode:
            raise ConfigError(
                f"{where}: eval.select={e.select} is better when"
                f" {'higher' if mode == 'max' else 'lower'}; set eval.select_mode={mode}"
            )


def load_config(recipe: str, overrides: list[str] | None = None) -> RunConfig:
    data, where = read_recipe(recipe)
    return build_config(apply_overrides(data, overrides or []), where)


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def build_method(cfg: RunConfig, spec: Any) -> Any:
    """The method a config names, built for data described by `spec` (a `DataSpec`), its
    initial weights seeded by `cfg.seed` (identical in every process): the one constructor of
    training, `xdomain.load` and `xdomain convert`."""
    import torch

    torch.manual_seed(cfg.seed)
    return METHODS[cfg.method](cfg.model, spec)
