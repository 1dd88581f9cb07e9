"""Typed run configuration: nested dataclasses, strict YAML recipes and `a.b=value` overrides.

A run config has four fixed sections (`data`, `train`, `eval` and the top-level scalars) plus
`model`, whose dataclass is the chosen method's `Config` (its defaults are the paper's).
Every mistake is a one-line `ConfigError` that names the source, the key and the fix; echoed
values are shortened (`_short`) so a message stays one short line:

- unknown keys list the valid ones (a typo must never silently disable a loss term); wrong types
  name the expected type; a scalar given for a section (`model=`, `data=5`) is refused;
- YAML is read by `StrictLoader`: duplicate keys are errors (not last-one-wins) and floats follow
  YAML 1.2 (`2e-4` is a float, not a string), in recipe files and override values alike;
- a recipe argument with a `.yaml`/`.yml` suffix or a `/` is a path, anything else a built-in
  recipe name (a local file never shadows one); `base:` paths resolve relative to the file that
  names them;
- value ranges: `typing.Annotated[int, Positive]`-style `Range` markers on fields, checked by
  `_coerce`. Fields without a marker (the methods' configs) get name-based rules
  (`_implied_range`): an int named like a size or count (a `_`-separated word in `_SIZE_WORDS`,
  or an `n_`/`num_` prefix) must be > 0 unless it is Optional or defaults to 0; `seed`/`*_seed`
  in [0, 2**32); `lr`/`lr_*`/`*_lr` > 0; `beta1`/`beta2`/`betas` in [0, 1); `lambda*` >= 0.
  Every float must be finite;
- `eval.select` must be a metric that evaluation produces for the data (`EVAL_METRICS`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import reprlib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from yaml.constructor import ConstructorError

from xdomain.errors import ConfigError

if TYPE_CHECKING:
    from importlib.abc import Traversable

Precision = Literal["fp32", "bf16", "fp16"]


# --------------------------------------------------------------------------- value ranges


@dataclass(frozen=True)
class Range:
    """A `typing.Annotated` marker: the value (each item of a list) lies in this interval."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = True

    def holds(self, value: Any) -> bool:
        if isinstance(value, (list, tuple)):
            return all(self.holds(v) for v in value)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return True  # not a number: the type check reports it
        lo_ok = self.lo is None or (value > self.lo if self.lo_open else value >= self.lo)
        hi_ok = self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)
        return lo_ok and hi_ok

    def __str__(self) -> str:
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {self.lo}"
        if self.lo is None:
            return f"{'<' if self.hi_open else '<='} {self.hi}"
        left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
        return f"in {left}{self.lo}, {self.hi}{right}"


Positive = Range(0, lo_open=True)
NonNegative = Range(0)
UnitInterval = Range(0, 1)  # [0, 1): Adam's betas
SeedRange = Range(0, 2**32)  # what every RNG we seed accepts

# int fields with one of these `_`-separated words (or an `n_`/`num_` prefix) are sizes or counts
_SIZE_WORDS = frozenset(
    {"ch", "channels", "width", "size", "steps", "blocks", "layers", "dim", "hidden", "batch"}
)


# --------------------------------------------------------------------------- sections


@dataclass
class DataConfig:
    """Where the two domains come from and how batches are made."""

    a: str = "digits-printed"  # an embedded source name or a folder of images (domain a)
    b: str = "digits-handwritten"  # the same for domain b
    root: str = ""  # an unpaired `trainA/ trainB/ testA/ testB/` folder; overrides a and b
    image_size: Annotated[int, Range(8)] = 32
    channels: int = 3  # 1 or 3 (checked in `validate`)
    batch_size: Annotated[int, Positive] = 64
    # DataLoader worker processes (folders benefit; embedded data is in memory)
    num_workers: Annotated[int, NonNegative] = 0
    augment: bool = False  # random flip + crop for folder sources (reproducible per step)
    on_bad_file: Literal["error", "skip"] = "error"
    # larger images are refused before decoding (decompression bombs)
    max_pixels: Annotated[int, Positive] = 50_000_000
    seed: Annotated[int, SeedRange] = 0  # the data seed: rendering and splits, fixed across runs
    # cap the training set sizes (None: the source's default)
    n_a: Annotated[int, Positive] | None = None
    n_b: Annotated[int, Positive] | None = None
    # font families (comma list, as in data/fonts-manifest.json) kept out of domain a's training
    # and validation items; evaluation then also scores the test digits in those fonts apart
    # (`acc_heldout_fonts`): how a model does on fonts it never saw. digits-printed only.
    holdout_fonts: str = ""
    # labelled data sets (StarGAN; replaces a and b): each a built-in name (digits-styled,
    # digits-handwritten), celeba:<root> or folders:<root>; two or more train with the mask
    # vector, one batch of each per step (`xdomain.data.labelled`)
    sources: list[str] = field(default_factory=list)
    # per source of data.sources: crop the central N x N pixels of a folder's images before
    # the fit to image_size (the official StarGAN crops CelebA to 178, RaFD to 256); 0 or a
    # missing entry: no crop
    center_crop: list[int] = field(default_factory=list)
    # the CelebA attributes to train on (file column names), for a celeba:<root> source
    celeba_attrs: list[str] = field(
        default_factory=lambda: ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    )
    # aligned pairs (pix2pix, BicycleGAN; replaces a and b): glyphs2digits,
    # edges2fashion[:<classes>], a folder of aligned AB images (train/, test/ or val/) or of
    # trainA/ trainB/ testA/ testB/ files paired by name (`xdomain.data.paired`)
    paired: str = ""
    direction: Literal["AtoB", "BtoA"] = "AtoB"  # BtoA: translate the right half to the left


@dataclass
class TrainConfig:
    """The loop: length, precision, schedule and how often to log, sample, evaluate and save."""

    steps: Annotated[int, Positive] = 10_000
    # lr constant until this step, then linear to 0 (papers' schedule); < steps
    decay_start: Annotated[int, NonNegative] | None = None
    precision: Precision = "fp32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Annotated[int, NonNegative] = 0  # torch intra-op threads on CPU (0: torch's default)
    log_every: Annotated[int, Positive] = 20
    sample_every: Annotated[int, Positive] = 500
    ckpt_every: Annotated[int, Positive] = 500
    keep_last: Annotated[int, Range(1)] = 3  # checkpoints kept besides `best`
    progress: bool = True


@dataclass
class EvalConfig:
    """Periodic evaluation on held-out data; `select` picks the `best` checkpoint."""

    every: Annotated[int, Positive] = 500
    # held-out items translated per evaluation (the whole test split if smaller)
    n_test: Annotated[int, Positive] = 2000
    select: str = ""  # metric that picks the `best` checkpoint (e.g. `val_acc`); empty: none
    select_mode: Literal["max", "min"] = "max"
    # items of a validation split, for `val_*` metrics used in selection (0: none)
    n_val: Annotated[int, NonNegative] = 1000


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

# The metrics `xdomain.evaluate.evaluate` returns that may select a checkpoint (`eval.select`), per
# kind of data (`data_kind`): images (`evaluate`; its `kid_judge_std` is a spread, not a quality)
# and the 2-D toy's points (`xdomain.metrics.toy.evaluate_toy`).
EVAL_METRICS: dict[str, tuple[str, ...]] = {
    "image": (
        "acc",
        "val_acc",
        "fid_judge",
        "kid_judge",
        "style_bold",
        "style_italic",
        "diversity",
        "acc_seen_fonts",  # with data.holdout_fonts only
        "acc_heldout_fonts",
        "target_acc",  # target = a class subset of a labelled set (fashion:bag); StarGAN targets
        "kept_acc",  # labelled data (StarGAN): attributes a target does not name are kept
        "identity_acc",  # labelled data with identity labels: the digit class is kept
        "rec_l1",  # labelled data: |x - G(G(x, c), c')| on held-out images
        "domain_acc",  # unlabelled folders: real a vs real b judge
        "diversity_l1",  # paired data (pix2pix, BicycleGAN): outputs of one input differ
        "l1",  # paired data: |b - G(a, E(b))| on held-out pairs
        # b -> a, for methods that learn both directions (CycleGAN, DiscoGAN)
        "ba_acc",
        "ba_target_acc",
        "ba_domain_acc",
        "ba_kid_judge",
        "cycle_a",
        "cycle_b",
    ),
    "points": (
        "modes_covered",
        "modes_distinct",
        "modes_a_on",
        "on_mode_frac",
        "mode_purity",
        "d_b_fake",
    ),
}
# the `eval.select_mode` a metric needs (those not listed may be selected either way)
METRIC_MODES: dict[str, str] = {
    "acc": "max",
    "val_acc": "max",
    "acc_seen_fonts": "max",
    "acc_heldout_fonts": "max",
    "target_acc": "max",
    "kept_acc": "max",
    "identity_acc": "max",
    "rec_l1": "min",
    "l1": "min",
    "diversity_l1": "max",
    "domain_acc": "max",
    "ba_acc": "max",
    "ba_target_acc": "max",
    "ba_domain_acc": "max",
    "ba_kid_judge": "min",
    "cycle_a": "min",
    "cycle_b": "min",
    "fid_judge": "min",
    "kid_judge": "min",
    "style_bold": "max",
    "style_italic": "max",
    "diversity": "max",
    "modes_covered": "max",
    "modes_distinct": "max",
    "modes_a_on": "max",
    "on_mode_frac": "max",
    "mode_purity": "max",
}


def data_kind(cfg: DataConfig) -> Literal["image", "points"]:
    """`points` for the 2-D toy mixtures, `image` for everything else."""
    return "points" if cfg.a.startswith("toy-gmm") else "image"


# --------------------------------------------------------------------------- messages

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


def _clip(text: str, limit: int = 60) -> str:
    """`text` on one line, at most `limit` characters (the middle elided)."""
    if not text.isprintable():
        text = repr(text)[1:-1]
    if len(text) <= limit:
        return text
    head = (limit - 3) // 2
    return f"{text[:head]}...{text[len(text) - (limit - 3 - head) :]}"


def _short(value: Any, limit: int = 60) -> str:
    """The repr of a user's value for a message: one line, at most `limit` characters."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # e.g. an int too long to print
        text = f"<{type(value).__name__}>"
    return _clip(text, limit)


def _name(key: Any) -> str:
    """A key as typed (escaped and shortened), or the short repr of a key that is no string."""
    return _clip(key, 40) if isinstance(key, str) else _short(key, 40)


_MAX_MESSAGE = 280  # the listings below are cut to keep a message about this short


def _listing(names: list[str], head: str, tail: str = "") -> str:
    """`head + "a, b, c" + tail`, the list cut (with a count of the rest) to fit `_MAX_MESSAGE`."""
    limit = max(60, _MAX_MESSAGE - len(head) - len(tail) - len(" (and 99 more)"))
    out: list[str] = []
    for i, n in enumerate(names):
        if out and len(", ".join([*out, n])) > limit:
            return f"{head}{', '.join(out)} (and {len(names) - i} more){tail}"
        out.append(n)
    return f"{head}{', '.join(out)}{tail}"


def _suggest(key: Any, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1) if isinstance(key, str) else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def _example(name: str, cls: type | None) -> str:
    """`model.lr_g=0.0003`: an example key of section `cls` with its default."""
    if cls is None:
        return f"{name}.KEY=VALUE"
    fields = [f for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING]
    pick = next((f for f in fields if f.name in ("batch_size", "steps", "every")), None)
    pick = pick or next((f for f in fields if _is_lr(f.name)), None) or (fields or [None])[0]
    if pick is None:
        return f"{name}.KEY=VALUE"
    return f"{name}.{pick.name}={_short(pick.default, 30)}"


def _section_msg(name: str, cls: type | None) -> str:
    return f"'{name}' is a section; set keys under it, e.g. {_example(name, cls)}"


# --------------------------------------------------------------------------- YAML


class DuplicateKeyError(ConstructorError):
    """A YAML mapping sets one key twice (plain PyYAML keeps the last one silently)."""


class StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses duplicate keys and reads YAML 1.2 floats (`2e-4`)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue  # `<<` merge keys may be overridden; non-scalar keys fail below
            key, line = self.construct_object(key_node), key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(
                    None,
                    None,
                    f"duplicate key {_short(key, 40)} (first set on line {seen[key]});"
                    " keep one of them",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 floats: `1e-4`, `2E+3`, `.5`, `-1.5e3`, `.inf`, `.nan` (YAML 1.1 needs a dot and a
# signed exponent, so PyYAML reads `2e-4` as a string)
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _checked(construct: Any) -> Any:
    """A scalar constructor whose ValueError (`0b_`, `2001-13-45`, 5000 digits) is a YAML error."""

    def wrapped(loader: StrictLoader, node: yaml.ScalarNode) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, OverflowError):
            kind = node.tag.rsplit(":", 1)[-1]
            raise ConstructorError(
                None, None, f"cannot read {_short(node.value, 40)} as {kind}", node.start_mark
            ) from None

    return wrapped


for _tag in ("int", "float", "timestamp"):
    _full = f"tag:yaml.org,2002:{_tag}"
    StrictLoader.add_constructor(_full, _checked(yaml.SafeLoader.yaml_constructors[_full]))


def _load_yaml(text: str, where: str) -> Any:
    """Parse `text` with `StrictLoader`; any failure is a one-line ConfigError naming `where`."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: safe
    except RecursionError:
        raise ConfigError(f"{where}: invalid YAML: nested too deeply") from None
    except DuplicateKeyError as e:  # its mark is always set
        raise ConfigError(f"{where}: line {e.problem_mark.line + 1}: {e.problem}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or (str(e).splitlines() or ["unreadable"])[0]
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = _clip(" ".join(str(problem).split()), 110)
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}") from None


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
        shown = _clip(str(path), 120)
        try:
            if not path.is_file():
                what = "is not a file" if path.is_dir() else "does not exist"
                raise ConfigError(f"{prefix}config file '{shown}' {what}")
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{prefix}config file '{shown}' is not UTF-8 text") from None
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"{prefix}cannot read config file '{shown}': {_clip(str(e))}"
            ) from None
        real = path.resolve() if isinstance(path, Path) else path
        parent = real.parent if isinstance(real, Path) else (folder or Path.cwd())
        return _Source(text, shown, f"file:{real}", parent)
    res = _recipes_dir().joinpath(f"{ref}.yaml")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", ref) or not res.is_file():
        names = recipe_names()
        # the closest names first: with a dozen recipes, a typo's fix must not be cut off
        close = difflib.get_close_matches(ref, names, n=3, cutoff=0.5)
        head = f"{prefix}unknown recipe '{_clip(ref, 40)}'; built-in recipes: "
        tail = "; for a file give a path ending in .yaml"
        raise ConfigError(_listing([*close, *(n for n in names if n not in close)], head, tail))
    return _Source(
        res.read_text(encoding="utf-8"), f"recipe {ref}", f"recipe:{ref}", _recipes_dir()
    )


def _parse(src: _Source) -> dict[str, Any]:
    data = _load_yaml(src.text, src.where)
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
                f"{cur.where}: 'base' must name a recipe or a .yaml path, got {_short(parent)}"
            )
        cur = _locate(parent, cur.folder, prefix=f"{cur.where}: base: ")
        if cur.ident in seen:
            raise ConfigError(f"{src.where}: `base` chain loops through '{_clip(parent)}'")
        seen.add(cur.ident)
        chain.append(_parse(cur))
    data: dict[str, Any] = {}
    for layer in reversed(chain):
        data = _merge(data, layer)
    return data, src.where


def _model_cls(method: Any) -> type | None:
    from xdomain.methods import METHODS  # late: methods import config

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
        where = f"override '{_clip(item)}'"
        if not sep or not key:
            raise ConfigError(f"{where} is not of the form key=value (e.g. train.steps=100)")
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"{where}: '{_clip(key)}' has an empty part (e.g. train.steps=100)")
        value = _load_yaml(raw, where) if raw.strip() else ""
        if len(parts) == 1 and not isinstance(value, dict):
            if key in _SECTIONS:
                raise ConfigError(f"{where}: {_section_msg(key, _SECTIONS[key])}")
            if key == "model":
                raise ConfigError(f"{where}: {_section_msg(key, _model_cls(data.get('method')))}")
        node = data
        for i, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                path = _clip(".".join(parts[: i + 1]))
                raise ConfigError(f"{where}: '{path}' is a value ({_short(node)}), not a section")
        last = parts[-1]
        old = node.get(last)
        node[last] = (
            _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return data


# --------------------------------------------------------------------------- strict conversion


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _is_lr(name: str) -> bool:
    return name == "lr" or name.startswith("lr_") or name.endswith("_lr")


def _has_range(tp: Any) -> bool:
    if get_origin(tp) is Annotated:
        return any(isinstance(m, Range) for m in tp.__metadata__) or _has_range(get_args(tp)[0])
    return any(_has_range(a) for a in get_args(tp))


def _implied_range(name: str, tp: Any, default: Any) -> Range | None:
    """The name-based range of a field without a `Range` marker (see the module docstring)."""
    if _is_lr(name):
        return Positive
    if name.startswith("lambda"):
        return NonNegative
    if name in ("beta1", "beta2", "betas"):
        return UnitInterval
    if tp is not int:  # Optional ints and other types: no implied range
        return None
    if name == "seed" or name.endswith("_seed"):
        return SeedRange
    sized = bool(_SIZE_WORDS.intersection(name.lower().split("_")))
    if (sized or name.startswith(("n_", "num_"))) and default != 0:
        return Positive
    return None


def _field_type(f: dataclasses.Field[Any], tp: Any) -> Any:
    """`tp`, with the implied range of field `f` attached when it declares none."""
    if _has_range(tp):
        return tp
    rng = _implied_range(f.name, tp, f.default)
    return tp if rng is None else Annotated[tp, rng]


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *meta = get_args(tp)
        value = _coerce(value, inner, key, where)
        for rng in meta:
            if isinstance(rng, Range) and not rng.holds(value):
                raise ConfigError(f"{where}: '{key}' must be {rng}, got {_short(value)}")
        return value
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
            raise ConfigError(f"{where}: '{key}' is {_short(value)}; valid values: {choices}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: '{key}' must be a list, got {_short(value)}")
        (inner, *_) = get_args(tp) or (Any,)
        items = [_coerce(v, inner, f"{key}[{i}]", where) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' must be a mapping, got {_short(value)}")
        k_tp, v_tp = get_args(tp) or (Any, Any)
        return {
            _coerce(k, k_tp, f"{key} key", where): _coerce(v, v_tp, f"{key}.{k}", where)
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {_section_msg(key, tp)} (got {_short(value)})")
        return from_dict(tp, value, where, prefix=f"{key}.")
    if tp is Any:
        return value
    hint = ""
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            hint = f" (write {int(value)})"
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an int beyond float's range
                number = math.inf
            if not math.isfinite(number):
                raise ConfigError(f"{where}: '{key}' must be a finite number, got {_short(value)}")
            return number
    elif tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: '{key}' must be {_type_name(tp)}, got {_short(value)}{hint}")


def from_dict(cls: type, data: dict[str, Any], where: str, prefix: str = "") -> Any:
    """Build dataclass `cls` from `data`, refusing unknown keys, wrong types and bad ranges."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    names = list(fields)
    unknown = [k for k in data if k not in fields]
    if unknown:
        section = f"under '{prefix[:-1]}'" if prefix else "at the top level"
        head = (
            f"{where}: unknown key '{prefix}{_name(unknown[0])}'{_suggest(unknown[0], names)};"
            f" valid keys {section}: "
        )
        raise ConfigError(_listing(names, head))
    kwargs = {
        k: _coerce(v, _field_type(fields[k], hints[k]), prefix + k, where) for k, v in data.items()
    }
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {_clip(str(e), 120)}") from None


def build_config(data: dict[str, Any], where: str = "config") -> RunConfig:
    """A plain mapping (recipe + overrides) -> a validated RunConfig."""
    from xdomain.methods import METHODS  # late: methods import config

    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a config must be a mapping of keys to values")
    data = dict(data)
    method = data.get("method")
    valid = ", ".join(sorted(METHODS))
    if "method" not in data:
        raise ConfigError(f"{where}: no 'method' key; valid methods: {valid}")
    if not isinstance(method, str) or method not in METHODS:
        raise ConfigError(f"{where}: 'method' is {_short(method)}; valid methods: {valid}")
    model_cls = METHODS[method].Config
    model_data = data.pop("model", {})
    if not isinstance(model_data, dict):
        raise ConfigError(f"{where}: {_section_msg('model', model_cls)} (got {_short(model_data)})")
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
        raise ConfigError(f"{where}: data.channels must be 1 or 3, got {_short(d.channels)}")
    if t.decay_start is not None and t.decay_start >= t.steps:
        raise ConfigError(
            f"{where}: train.decay_start={t.decay_start} must be < train.steps={t.steps}"
            " (or null: no decay)"
        )
    if e.select:
        kind = data_kind(d)
        valid = EVAL_METRICS[kind]
        if e.select not in valid:
            close = difflib.get_close_matches(str(e.select), valid, n=3, cutoff=0.4)
            raise ConfigError(
                _listing(
                    [*close, *(v for v in valid if v not in close)],
                    f"{where}: eval.select={_short(e.select, 40)} is not a metric of {kind} data;"
                    " valid: ",
                    " (or empty: no `best` checkpoint)",
                )
            )
        mode = METRIC_MODES.get(e.select)
        if mode is not None and e.select_mode != mode:
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
