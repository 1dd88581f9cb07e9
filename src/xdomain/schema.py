"""The strict conversion under every config: dataclasses from plain mappings, YAML read safely,
one-line messages.

- `from_dict(cls, data, where)` builds a dataclass from a mapping: unknown keys are errors that
  list the valid ones (a typo must never silently disable a loss term), wrong types name the
  expected type, and a scalar given for a section (`model=`, `data=5`) is refused.
- Value ranges are `typing.Annotated[int, Positive]`-style `Range` markers on fields, checked
  by `_coerce`. Fields without a marker (the methods' configs) get name-based rules
  (`_implied_range`): an int named like a size or count (a `_`-separated word in `_SIZE_WORDS`,
  or an `n_`/`num_` prefix) must be > 0 unless it is Optional or defaults to 0; `seed`/`*_seed`
  in [0, 2**32); `lr`/`lr_*`/`*_lr` > 0; `beta1`/`beta2`/`betas` in [0, 1); `lambda*` >= 0.
  Every float must be finite.
- YAML is read by `StrictLoader`: duplicate keys are errors (not last-one-wins) and floats
  follow YAML 1.2 (`2e-4` is a float, not a string).

Nothing here knows a method, a data source or a recipe: it is a foundation (`xdomain.config`
and the methods' `Config` classes build on it).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from yaml.constructor import ConstructorError

from xdomain.errors import ConfigError, clip, listing, short

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


# --------------------------------------------------------------------------- messages


def _name(key: Any) -> str:
    """A key as typed (escaped and shortened), or the short repr of a key that is no string."""
    return clip(key, 40) if isinstance(key, str) else short(key, 40)


_MAX_MESSAGE = 280  # the listings below are cut to keep a message about this short


def listing_message(names: list[str], head: str, tail: str = "") -> str:
    """`head + "a, b, c" + tail`, the list cut (with a count of the rest) to fit `_MAX_MESSAGE`."""
    limit = max(60, _MAX_MESSAGE - len(head) - len(tail) - len(", ... (99 more)"))
    return f"{head}{listing(names, limit=limit)}{tail}"


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
    return f"{name}.{pick.name}={short(pick.default, 30)}"


def section_message(name: str, cls: type | None) -> str:
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
                    f"duplicate key {short(key, 40)} (first set on line {seen[key]});"
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
                None, None, f"cannot read {short(node.value, 40)} as {kind}", node.start_mark
            ) from None

    return wrapped


for _tag in ("int", "float", "timestamp"):
    _full = f"tag:yaml.org,2002:{_tag}"
    StrictLoader.add_constructor(_full, _checked(yaml.SafeLoader.yaml_constructors[_full]))


def load_yaml(text: str, where: str) -> Any:
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
        problem = clip(" ".join(str(problem).split()), 110)
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}") from None


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
                raise ConfigError(f"{where}: '{key}' must be {rng}, got {short(value)}")
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
            raise ConfigError(f"{where}: '{key}' is {short(value)}; valid values: {choices}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: '{key}' must be a list, got {short(value)}")
        (inner, *_) = get_args(tp) or (Any,)
        items = [_coerce(v, inner, f"{key}[{i}]", where) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' must be a mapping, got {short(value)}")
        k_tp, v_tp = get_args(tp) or (Any, Any)
        return {
            _coerce(k, k_tp, f"{key} key", where): _coerce(v, v_tp, f"{key}.{k}", where)
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {section_message(key, tp)} (got {short(value)})")
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
                raise ConfigError(f"{where}: '{key}' must be a finite number, got {short(value)}")
            return number
    elif tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: '{key}' must be {_type_name(tp)}, got {short(value)}{hint}")


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
        raise ConfigError(listing_message(names, head))
    kwargs = {
        k: _coerce(v, _field_type(fields[k], hints[k]), prefix + k, where) for k, v in data.items()
    }
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {clip(str(e), 120)}") from None
