"""Label schemas: what the label vector of a labelled dataset means (StarGAN's domain labels).

A dataset's labels are named attributes, laid out one after another in one float vector:

- `binary`       one column, 0 or 1 (CelebA `male`, a digit's `bold`); BCE-with-logits
- `categorical`  one column per value, one-hot: exactly one value holds (RaFD's expression, the
                 background colour of a printed digit, a digit's class); cross-entropy
- `group`        one column per value, each a binary attribute of its own in the data, but
                 exclusive when a target is set (CelebA's black/blond/brown hair, which the
                 official code flips together); BCE per column, as the official

Several datasets with different schemas train one model through StarGAN's mask vector
(`LabelSpace`): the condition is `[c_1, ..., c_n, m]` with c_k the labels of dataset k (zeros
for the others) and m the one-hot dataset mask; D's classifier covers every c_k and only the
known dataset's part is trained on a batch.

Targets are written `name=value,...` (`hair=blond,male=0`); an unknown attribute or value is a
one-line error listing what exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from xdomain.errors import LISTING_LIMIT, XDomainError, listing, short

Kind = Literal["binary", "categorical", "group"]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def unspellable(text: str) -> str | None:
    """Why `text`, an attribute name or value, cannot be written in a target `name=value,...`
    (`parse_pairs` splits at ',' and the first '=' and strips spaces), or None when it can.
    Data readers refuse such names when they read a data set, so every label can be targeted."""
    if not text.strip():
        return "it is empty or blank"
    if text != text.strip():
        return "it starts or ends with a space"
    for ch in ",=":
        if ch in text:
            return f"it contains '{ch}', which a target name=value,... uses"
    if not text.isprintable():
        return "it contains a control or invisible character"
    return None


def case_clash(values: Sequence[str]) -> tuple[str, str] | None:
    """Two of `values` that a target cannot tell apart (values match case-insensitively), or
    None."""
    seen: dict[str, str] = {}
    for v in values:
        key = v.strip().lower()
        if key in seen:
            return seen[key], v
        seen[key] = v
    return None


def parse_pairs(text: str, example: str) -> list[tuple[str, str]]:
    """`name=value,...` -> [(name, value)], stripped, each name once; a malformed item or an
    attribute named twice (`bg=red,bg=blue`: which one?) is a one-line error."""
    pairs: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in str(text).split(","))):
        name, eq, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name or not value:
            raise XDomainError(f"target: {short(item)} is not name=value (e.g. {example})")
        if name in seen:
            raise XDomainError(
                f"target: attribute {short(name)} is set twice ({short(seen[name], 40)} and"
                f" {short(item, 40)}); set each attribute once"
            )
        seen[name] = item
        pairs.append((name, value))
    if not pairs:
        raise XDomainError(f"target: empty; give name=value pairs, e.g. {example}")
    return pairs


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: Kind
    values: tuple[str, ...] = ()  # categorical / group: value names, one column each

    @property
    def width(self) -> int:
        return 1 if self.kind == "binary" else len(self.values)

    def spellings(self) -> frozenset[str]:
        """The values a target may give it, in lower case (values match ignoring case)."""
        return frozenset(
            _TRUE | _FALSE if self.kind == "binary" else (v.lower() for v in self.values)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "values": list(self.values)}


@dataclass(frozen=True)
class LabelSchema:
    """The attributes of one dataset, in label-vector order."""

    dataset: str
    attributes: tuple[Attribute, ...]

    def __post_init__(self) -> None:
        names = [a.name for a in self.attributes]
        if not names:
            raise XDomainError(f"labels of {self.dataset}: a schema needs >= 1 attribute")
        if len(set(names)) != len(names):
            raise XDomainError(f"labels of {self.dataset}: attribute names {names} must be unique")
        for a in self.attributes:
            if a.kind != "binary" and len(a.values) < 2:
                raise XDomainError(
                    f"labels of {self.dataset}: {a.kind} attribute '{a.name}' needs >= 2 values"
                )

    @property
    def width(self) -> int:
        return sum(a.width for a in self.attributes)

    def slices(self) -> list[tuple[Attribute, slice]]:
        out, start = [], 0
        for a in self.attributes:
            out.append((a, slice(start, start + a.width)))
            start += a.width
        return out

    def attribute(self, name: str) -> Attribute:
        for a in self.attributes:
            if a.name == name:
                return a
        raise KeyError(name)

    def describe(self) -> str:
        """`hair (black|blond|brown), male (0|1), ...`: what a target may name."""
        parts = []
        for a in self.attributes:
            values = "0|1" if a.kind == "binary" else listing(a.values, "|", LISTING_LIMIT // 2)
            parts.append(f"{a.name} ({values})")
        return listing(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "attributes": [a.to_dict() for a in self.attributes]}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> LabelSchema:
        attrs = tuple(
            Attribute(a["name"], a["kind"], tuple(a.get("values", ()))) for a in d["attributes"]
        )
        return LabelSchema(d["dataset"], attrs)

    # ------------------------------------------------------------------ losses and targets
    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """L_cls of (B, width) logits against (B, width) labels: BCE summed over binary and
        group columns and cross-entropy per categorical attribute, each averaged over the batch
        (the official `classification_loss`: BCE `sum / B` for CelebA, CE mean for RaFD)."""
        logits, labels = logits.float(), labels.float()
        total = logits.new_zeros(())
        for a, sl in self.slices():
            lg, lb = logits[:, sl], labels[:, sl]
            if a.kind == "categorical":
                total = total + F.cross_entropy(lg, lb.argmax(1))
            else:
                bce = F.binary_cross_entropy_with_logits(lg, lb, reduction="sum")
                total = total + bce / max(lg.shape[0], 1)
        return total

    def predict(self, logits: Tensor) -> Tensor:
        """(B, width) D_cls logits -> the labels they say: thresholded binaries, argmax one-hot."""
        out = torch.zeros_like(logits, dtype=torch.float32)
        for a, sl in self.slices():
            lg = logits[:, sl].float()
            if a.kind == "categorical":
                out[:, sl] = F.one_hot(lg.argmax(1), a.width).float()
            else:
                out[:, sl] = (lg > 0).float()
        return out

    def set_value(self, labels: Tensor, name: str, value: str) -> Tensor:
        """A copy of (B, width) `labels` with `name` set to `value` (string as a user types it);
        unknown names or values raise a one-line error listing what exists."""
        try:
            a = self.attribute(name)
        except KeyError:
            raise XDomainError(
                f"target: unknown attribute {short(name)} for {self.dataset}; valid:"
                f" {self.describe()}"
            ) from None
        sl = dict((x.name, s) for x, s in self.slices())[name]
        out = labels.clone()
        v = value.strip()
        if a.kind == "binary":
            if v.lower() not in _TRUE | _FALSE:
                raise XDomainError(
                    f"target: {name}={short(value)} is not a binary value; use {name}=1 or {name}=0"
                )
            out[:, sl] = 1.0 if v.lower() in _TRUE else 0.0
            return out
        # the exact spelling first, else the one value equal ignoring case
        hits = [i for i, x in enumerate(a.values) if x == v]
        if not hits:
            hits = [i for i, x in enumerate(a.values) if x.lower() == v.lower()]
        if len(hits) > 1:
            raise XDomainError(
                f"target: {name}={short(value)} matches the values"
                f" {' and '.join(a.values[i] for i in hits[:2])} of {name} alike; type one"
                " exactly as listed"
            )
        if not hits:
            raise XDomainError(
                f"target: {name}={short(value)} is not a value of {name}; valid:"
                f" {listing(a.values)}"
            )
        out[:, sl] = F.one_hot(torch.tensor(hits[0]), a.width).float()
        return out

    def targets(self, labels: Tensor) -> list[tuple[str, Tensor]]:
        """The official test grid: for each binary attribute its flip, for each value of a group
        or categorical attribute that value set (the others cleared). -> [(caption, labels)]."""
        out = []
        for a, sl in self.slices():
            if a.kind == "binary":
                flipped = labels.clone()
                flipped[:, sl] = 1.0 - labels[:, sl]
                out.append((f"{a.name} flipped", flipped))
            else:
                for i, v in enumerate(a.values):
                    t = labels.clone()
                    t[:, sl] = F.one_hot(torch.tensor(i), a.width).float()
                    out.append((f"{a.name}={v}", t))
        return out


@dataclass(frozen=True)
class LabelSpace:
    """The condition space of one model: one dataset's schema, or several with the mask vector."""

    schemas: tuple[LabelSchema, ...]

    @property
    def masked(self) -> bool:
        return len(self.schemas) > 1

    @property
    def cls_dim(self) -> int:
        """D_cls outputs: every dataset's labels."""
        return sum(s.width for s in self.schemas)

    @property
    def c_dim(self) -> int:
        """G's condition: every dataset's labels plus the mask (n > 1 datasets)."""
        return self.cls_dim + (len(self.schemas) if self.masked else 0)

    def part(self, k: int) -> slice:
        start = sum(s.width for s in self.schemas[:k])
        return slice(start, start + self.schemas[k].width)

    def condition(self, k: int, labels: Tensor) -> Tensor:
        """(B, width_k) labels of dataset k -> G's (B, c_dim) condition: the others' labels zero,
        then the one-hot mask of k (no mask for one dataset)."""
        c = labels.new_zeros(labels.shape[0], self.c_dim)
        c[:, self.part(k)] = labels
        if self.masked:
            c[:, self.cls_dim + k] = 1.0
        return c

    def cls_loss(self, logits: Tensor, k: int, labels: Tensor) -> Tensor:
        """L_cls on the known part only: dataset k's columns of (B, cls_dim) logits."""
        return self.schemas[k].loss(logits[:, self.part(k)], labels)

    def find(self, name: str) -> int:
        """The dataset whose schema has attribute `name` (first match)."""
        for k, s in enumerate(self.schemas):
            if any(a.name == name for a in s.attributes):
                return k
        raise XDomainError(
            f"target: unknown attribute {short(name)}; valid: "
            + listing([f"{s.dataset}: {s.describe()}" for s in self.schemas], "; ", 200)
        )

    def owner(self, pairs: Sequence[tuple[str, str]], text: str = "") -> int:
        """The one dataset that a target's (name, value) pairs address: the one having every
        named attribute; when several have them all (two folder sets' `class`), the one that
        has the values. A mixed or ambiguous target is a one-line error."""
        names = [n for n, _ in pairs]
        having = [
            k
            for k, s in enumerate(self.schemas)
            if all(any(a.name == n for a in s.attributes) for n in names)
        ]
        if not having:
            owners = sorted({self.find(n) for n in names})  # an unknown name raises here
            raise XDomainError(
                f"target {short(text or ','.join(names))} mixes attributes of datasets "
                + " and ".join(self.schemas[k].dataset for k in owners[:2])
                + "; the mask vector names one dataset per target: translate once per dataset"
            )
        if len(having) == 1:
            return having[0]
        fits = []
        for k in having:
            probe = torch.zeros(1, self.schemas[k].width)
            try:
                for n, v in pairs:
                    self.schemas[k].set_value(probe, n, v)
            except XDomainError:
                continue
            fits.append(k)
        if len(fits) > 1:
            raise XDomainError(
                f"target {short(text or ','.join(names))} fits datasets "
                + " and ".join(self.schemas[k].dataset for k in fits[:2])
                + " alike (the same attribute and value); the mask vector needs one: give a"
                " (B, c_dim) condition tensor instead"
            )
        return fits[0] if fits else having[0]  # none fits: the first one's error, below

    def parse(self, text: str, base: Sequence[Tensor]) -> Tensor:
        """`name=value,...` -> (B, c_dim) conditions. `base[k]` (B, width_k) are the input's
        labels in dataset k's terms (what D_cls sees in it); attributes the target does not name
        keep them. Every named attribute must belong to one dataset (the mask is one-hot), and
        each is named once."""
        pairs = parse_pairs(text, self.example())
        k = self.owner(pairs, str(text))
        labels = base[k]
        for name, value in pairs:
            labels = self.schemas[k].set_value(labels, name, value)
        return self.condition(k, labels)

    def all_targets(self, base: Sequence[Tensor]) -> list[tuple[str, Tensor]]:
        """Every dataset's test grid (`LabelSchema.targets`), as (caption, (B, c_dim))."""
        out = []
        for k, s in enumerate(self.schemas):
            for caption, labels in s.targets(base[k]):
                out.append((caption, self.condition(k, labels)))
        return out

    def example(self) -> str:
        a = self.schemas[0].attributes[0]
        return f"{a.name}={'1' if a.kind == 'binary' else a.values[-1]}"

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.schemas]

    @staticmethod
    def from_list(items: list[dict[str, Any]]) -> LabelSpace:
        return LabelSpace(tuple(LabelSchema.from_dict(d) for d in items))


# ------------------------------------------------------------------------- known schemas

CELEBA_PAPER_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
CELEBA_HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")  # the official's group
# the official RaFD model's 8 expressions, in ImageFolder's (sorted) order
RAFD_EXPRESSIONS = (
    "angry",
    "contemptuous",
    "disgusted",
    "fearful",
    "happy",
    "neutral",
    "sad",
    "surprised",
)


def celeba_schema(selected: Sequence[str]) -> tuple[LabelSchema, list[str]]:
    """CelebA's selected attributes (file names, e.g. `Black_Hair`) -> the schema and the file
    columns in label-vector order. The hair colours among them form the exclusive group `hair`
    (placed where the first one is, as the official flips them together); the rest are binary,
    named in lower case (`Male` -> `male`)."""
    attrs: list[Attribute] = []
    columns: list[str] = []
    hair = [a for a in selected if a in CELEBA_HAIR]
    for name in selected:
        if name in CELEBA_HAIR:
            if name == hair[0]:
                values = tuple(h.split("_")[0].lower() for h in hair)
                attrs.append(
                    Attribute("hair", "group", values)
                    if len(hair) > 1
                    else Attribute(name.lower(), "binary")
                )
                columns.extend(hair)
            continue
        attrs.append(Attribute(name.lower(), "binary"))
        columns.append(name)
    return LabelSchema("celeba", tuple(attrs)), columns


def categorical_schema(dataset: str, name: str, values: Sequence[str]) -> LabelSchema:
    """One categorical attribute (RaFD's expression, a digit's class, one folder per domain)."""
    return LabelSchema(dataset, (Attribute(name, "categorical", tuple(values)),))
