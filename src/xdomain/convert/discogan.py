"""DiscoGAN checkpoints (SKTBrain/DiscoGAN `discogan/model.py`) -> xdomain networks.

Key converters for `Generator(extra_layers=False)` (`main.{i}.*`, one nn.Sequential) and
`Discriminator` (`conv1..conv5`, `bn2..bn4`) onto `xdomain.nn.encdec`, with `infer_*` reading
the constructor arguments (image size from the number of stride-2 convs, base width, channels)
off the keys and shapes.

The official training script saved WHOLE pickled modules (`torch.save(generator_A, path)`, 2017
PyTorch, the pre-1.6 "legacy" file format), so unpickling one needs a module `model` with
classes `Generator` / `Discriminator`. `read_official` reads them without a plain unpickle:

- zip files (PyTorch >= 1.6) go through `torch.load(weights_only=True)` with stand-in classes
  for `model.Generator` / `model.Discriminator` and the layer classes such a file holds added
  to torch's allow-list;
- legacy files cannot: torch's weights-only unpickler refuses the `('module', class, source)`
  records that the old format writes for every module class. They go through torch's own
  legacy loader with a restricted pickle module that follows the weights-only rules: globals
  resolve only to exactly what such a file needs (the layer classes, tensor rebuild functions,
  OrderedDict, the stand-ins), only those can be called or instantiated, and object state is
  set only on tensors, OrderedDicts and modules; anything else is refused before it runs.

Either way the result is the module tree's tensors, collected from its `_parameters` and
`_buffers` without calling any method of the unpickled objects. Plain state_dict files (a dict
of tensors, `.pth` or `.safetensors`) are accepted too.
"""

from __future__ import annotations

import functools
import io
import pickle
import re
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn.backends import thnn

from xdomain.convert.common import (
    DEFAULT_SOURCE,
    as_state_dict,
    conv_weight,
    corrupt,
    load_weights_only,
    refused,
    remap,
    strip_data_parallel,
)
from xdomain.convert.registry import Network, Reader, Shapes
from xdomain.data.types import DataSpec
from xdomain.errors import CheckpointError, short
from xdomain.nn.encdec import DiscoDiscriminator, DiscoGenerator

_G_WHAT = "an official DiscoGAN Generator"
_G_HINT = "main.{i}.weight and BatchNorm main.{i}.bias/running_mean/running_var keys"
_D_WHAT = "an official DiscoGAN Discriminator"
_D_HINT = "conv{k}.weight and bn{k}.weight/bias/running_mean/running_var keys"
_FILE_WHAT = "an official DiscoGAN checkpoint"

# ----------------------------------------------------------------------------- Generator


def _generator_prefixes(n_down: int) -> dict[str, str]:
    """Official `main.{i}` -> ours. The Sequential is conv, lrelu | (conv, bn, lrelu) x n-1 |
    (convT, bn, relu) x n-1 | convT, sigmoid."""
    table = {"main.0": "down.0.conv"}
    for k in range(1, n_down):
        i = 2 + 3 * (k - 1)
        table[f"main.{i}"] = f"down.{k}.conv"
        table[f"main.{i + 1}"] = f"down.{k}.norm"
    first_up = 3 * n_down - 1
    for k in range(n_down - 1):
        i = first_up + 3 * k
        table[f"main.{i}"] = f"up.{k}.conv"
        table[f"main.{i + 1}"] = f"up.{k}.norm"
    table[f"main.{first_up + 3 * (n_down - 1)}"] = "head.conv"
    return table


def infer_generator(state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    """`DiscoGenerator` keyword arguments (in_channels, out_channels, image_size, base, final)
    read off an official Generator state_dict: n stride-2 convs and n transposed convs make an
    encoder-decoder for 2**(n + 2) pixel images."""
    s = strip_data_parallel(state)
    first = conv_weight(s, "main.0.weight", source, _G_WHAT, "the first conv")
    convs = sorted(
        int(m[1])
        for k, v in s.items()
        if (m := re.fullmatch(r"main\.(\d+)\.weight", k)) and isinstance(v, Tensor) and v.dim() == 4
    )
    n_down = len(convs) // 2
    layout = sorted(
        int(p.split(".")[1]) for p, ours in _generator_prefixes(n_down).items() if "conv" in ours
    )
    if n_down < 1 or convs != layout:
        raise CheckpointError(
            f"{source}: conv layers at main.{convs} do not follow the layout of {_G_WHAT}"
            f" (main.{layout}); only Generator(extra_layers=False) is supported"
        )
    head = s[f"main.{layout[-1]}.weight"]  # ConvTranspose2d weight: (in, out, kH, kW)
    return {
        "in_channels": int(first.shape[1]),
        "out_channels": int(head.shape[1]),
        "image_size": 2 ** (n_down + 2),
        "base": int(first.shape[0]),
        "final": "sigmoid",
    }


def generator(state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE) -> dict[str, Tensor]:
    """An official DiscoGAN Generator state_dict -> ours (load with `strict=True`)."""
    kw = infer_generator(state, source=source)
    with torch.device("meta"):  # shapes only
        net = DiscoGenerator(**kw)
    table = _generator_prefixes(kw["image_size"].bit_length() - 3)
    return remap(strip_data_parallel(state), table, net, _G_WHAT, _G_HINT, source)


# ------------------------------------------------------------------------- Discriminator


def _discriminator_prefixes(n_down: int) -> dict[str, str]:
    """Official `conv{k}` / `bn{k}` -> ours: conv1 .. conv{n} are the stride-2 stages (bn from
    the second on), conv{n+1} the 4x4 output conv."""
    table = {}
    for k in range(n_down):
        table[f"conv{k + 1}"] = f"down.{k}.conv"
        if k:
            table[f"bn{k + 1}"] = f"down.{k}.norm"
    table[f"conv{n_down + 1}"] = "head.conv"
    return table


def infer_discriminator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Any]:
    """`DiscoDiscriminator` keyword arguments (in_channels, image_size, base) read off an
    official Discriminator state_dict."""
    s = strip_data_parallel(state)
    first = conv_weight(s, "conv1.weight", source, _D_WHAT, "the first conv")
    numbers = sorted(int(m[1]) for k in s if (m := re.fullmatch(r"conv(\d+)\.weight", k)))
    if len(numbers) < 2 or numbers != list(range(1, len(numbers) + 1)):
        raise CheckpointError(
            f"{source}: convs numbered {numbers}, but {_D_WHAT} has conv1, conv2, ... with the"
            " last one the output conv; the file holds another network"
        )
    return {
        "in_channels": int(first.shape[1]),
        "image_size": 2 ** (len(numbers) + 1),  # len - 1 stride-2 convs down to 4x4
        "base": int(first.shape[0]),
    }


def discriminator(
    state: Mapping[str, Tensor], *, source: str = DEFAULT_SOURCE
) -> dict[str, Tensor]:
    """An official DiscoGAN Discriminator state_dict -> ours (load with `strict=True`)."""
    kw = infer_discriminator(state, source=source)
    with torch.device("meta"):
        net = DiscoDiscriminator(**kw)
    table = _discriminator_prefixes(kw["image_size"].bit_length() - 3)
    return remap(strip_data_parallel(state), table, net, _D_WHAT, _D_HINT, source)


# ------------------------------------------------------------------------------ reading


class _StandInGenerator(nn.Module):
    """Takes the place of SKTBrain's `model.Generator` while unpickling: the file's state fills
    its `__dict__` (its `main` Sequential); it is never called."""


class _StandInDiscriminator(nn.Module):
    """Takes the place of SKTBrain's `model.Discriminator` while unpickling (conv1 .. conv5,
    bn2 .. bn4, relu1 .. relu4); it is never called."""


# the layer classes of both official networks (Tanh: the extra_layers variant's sibling repos)
_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Sequential,
    nn.Conv2d,
    nn.ConvTranspose2d,
    nn.BatchNorm2d,
    nn.LeakyReLU,
    nn.ReLU,
    nn.Sigmoid,
    nn.Tanh,
)
_STAND_INS = {"model.Generator": _StandInGenerator, "model.Discriminator": _StandInDiscriminator}


def _legacy_tensor(dtype: torch.dtype) -> Any:
    """An empty CPU tensor factory for the legacy `torch[.cuda].FloatTensor`-style records of the
    oldest files (rebuilt by `__setstate__` -> set_(storage, offset, size, stride)); CUDA names
    map to CPU too, as map_location="cpu" does for storages."""
    return functools.partial(torch.empty, 0, dtype=dtype)


@functools.cache
def _allowed_globals() -> dict[str, Any]:
    """Every global a legacy DiscoGAN file may name, pickled name -> object. Storage classes are
    not listed: torch's legacy loader resolves any `...Storage` name to an inert dtype tag."""
    allowed: dict[str, Any] = {f"{c.__module__}.{c.__qualname__}": c for c in _LAYERS}
    allowed.update(_STAND_INS)
    allowed["collections.OrderedDict"] = OrderedDict
    allowed["torch.nn.parameter.Parameter"] = nn.Parameter  # 2017: Parameter(data) + setstate
    for f in (
        torch._utils._rebuild_tensor,
        torch._utils._rebuild_tensor_v2,
        torch._utils._rebuild_parameter,
        torch._utils._rebuild_parameter_with_state,
    ):
        allowed[f"torch._utils.{f.__name__}"] = f
    # a 2017 module's `_backend` attribute pickles as a call of this no-op
    allowed["torch.nn.backends.thnn._get_thnn_function_backend"] = thnn._get_thnn_function_backend
    # Module._non_persistent_buffers_set; protocol 2 spells builtins the Python 2 way
    allowed["builtins.set"] = allowed["__builtin__.set"] = set
    for name, dtype in {
        "Float": torch.float32,
        "Double": torch.float64,
        "Half": torch.float16,
        "Long": torch.int64,
        "Int": torch.int32,
        "Byte": torch.uint8,
    }.items():
        for prefix in ("torch", "torch.cuda"):
            allowed[f"{prefix}.{name}Tensor"] = _legacy_tensor(dtype)
    return allowed


class _Refused(pickle.UnpicklingError):
    """Raised by the restricted unpickler for anything outside its allow-list; `request` says
    what the file asked for."""

    def __init__(self, request: str) -> None:
        super().__init__(f"{request} is not allowed")
        self.request = request


def _is_allowed(obj: object) -> bool:
    return any(obj is allowed for allowed in _allowed_globals().values())


# objects whose state a pickle may set (BUILD): tensors, OrderedDict and the module classes; not
# functions or classes, which BUILD could otherwise rewrite (`__defaults__`, ...) process-wide
_BUILDABLE: tuple[type, ...] = (torch.Tensor, nn.Parameter, OrderedDict, *_LAYERS)


class _RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with the rules of torch's weights-only unpickler, for the
    file format that one cannot read: globals only from `_allowed_globals()`; calls (REDUCE)
    and object creation (NEWOBJ) only of those objects; state (BUILD) set only on tensors,
    OrderedDicts and the allowed modules; the other instantiation opcodes (INST, OBJ,
    NEWOBJ_EX), which torch.save never writes, refused."""

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        found = _allowed_globals().get(f"{module}.{name}")
        if found is None:
            raise _Refused(f"the Python global {short(f'{module}.{name}')}")
        return found

    def _reduce(self) -> None:
        if not _is_allowed(self.stack[-2]):
            raise _Refused(f"to call a {type(self.stack[-2]).__name__} object")
        pickle._Unpickler.load_reduce(self)

    def _newobj(self) -> None:
        cls = self.stack[-2]
        if not (isinstance(cls, type) and _is_allowed(cls)):
            raise _Refused(f"to create an object from a {type(cls).__name__}")
        pickle._Unpickler.load_newobj(self)

    def _build(self) -> None:
        inst = self.stack[-2]
        if type(inst) not in (*_BUILDABLE, *_STAND_INS.values()):
            raise _Refused(f"to set the state of a {type(inst).__name__} object")
        pickle._Unpickler.load_build(self)

    def _instantiate_opcode(self) -> None:
        raise _Refused("an INST/OBJ/NEWOBJ_EX instantiation (torch.save never writes one)")

    dispatch[pickle.REDUCE[0]] = _reduce
    dispatch[pickle.NEWOBJ[0]] = _newobj
    dispatch[pickle.BUILD[0]] = _build
    for _op in (pickle.INST, pickle.OBJ, pickle.NEWOBJ_EX):
        dispatch[_op[0]] = _instantiate_opcode
    del _op


def _restricted_pickle_module() -> types.ModuleType:
    """The `pickle_module` handed to torch.load: its legacy loader subclasses `Unpickler` (adding
    storage handling) and reads the header records with `load`."""
    module = types.ModuleType("xdomain_restricted_pickle")
    module.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
    module.load = lambda file, **kw: _RestrictedUnpickler(file, **kw).load()  # type: ignore[attr-defined]
    return module


def _load_legacy(data: bytes, path: Path) -> object:
    """A pre-1.6 (non-zip) torch.save file through torch's legacy loader and the restricted
    unpickler. `data` is the whole file, so the bytes checked are the bytes loaded."""
    try:
        with warnings.catch_warnings():
            # the saved class sources differ from the stand-ins by design
            warnings.simplefilter("ignore", torch.serialization.SourceChangeWarning)
            warnings.filterwarnings("ignore", message="Couldn't retrieve source code")
            return torch.load(
                io.BytesIO(data),
                map_location="cpu",
                weights_only=False,  # not a plain unpickle: pickle_module is the restricted one
                pickle_module=_restricted_pickle_module(),
            )
    except _Refused as e:
        raise refused(path, e.request, _FILE_WHAT) from None
    except Exception as e:  # EOF, struct, magic-number and storage errors of a damaged file
        raise corrupt(path, e, _FILE_WHAT) from None


def _entries(attrs: dict[str, Any], group: str, prefix: str, path: Path) -> Mapping[str, Any]:
    """`attrs[group]` (a module's `_parameters`, `_buffers` or `_modules`), checked to be a
    mapping of names."""
    entries = attrs.get(group)
    if entries is None:
        return {}
    if not isinstance(entries, Mapping) or not all(isinstance(k, str) for k in entries):
        raise CheckpointError(
            f"{path}: {prefix}{group} of the pickled module is a {type(entries).__name__}, not a"
            " mapping of names; the file is damaged or not an official DiscoGAN checkpoint"
        )
    return entries


def _module_tensors(root: nn.Module, path: Path) -> dict[str, Tensor]:
    """The state_dict of an unpickled module tree, read straight from each module's
    `_parameters` / `_buffers` / `_modules` (no method of the unpickled objects runs)."""
    state: dict[str, Tensor] = {}

    def visit(module: object, prefix: str, depth: int) -> None:
        if not isinstance(module, nn.Module) or depth > 64:
            raise CheckpointError(
                f"{path}: the pickled module tree is malformed at {prefix or 'the top'!r};"
                " the file is damaged or not an official DiscoGAN checkpoint"
            )
        attrs = vars(module)
        skip = attrs.get("_non_persistent_buffers_set")
        skip = skip if isinstance(skip, (set, frozenset)) else set()
        for group in ("_parameters", "_buffers"):
            for name, value in _entries(attrs, group, prefix, path).items():
                if value is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(value, Tensor):
                    raise CheckpointError(
                        f"{path}: {prefix}{name} holds a {type(value).__name__}, not a tensor;"
                        " the file is damaged or not an official DiscoGAN checkpoint"
                    )
                state[f"{prefix}{name}"] = value.detach()
        for name, child in _entries(attrs, "_modules", prefix, path).items():
            if child is not None:
                visit(child, f"{prefix}{name}.", depth + 1)

    visit(root, "", 0)
    return state


def read_official(path: str | Path) -> dict[str, Tensor]:
    """An official DiscoGAN file as the official state_dict (`main.*` or `conv1.*`, ...).

    Whole pickled `model.Generator` / `model.Discriminator` modules (the official format) and
    plain state_dicts (`.pth` or `.safetensors`) are read without a plain unpickle; a file that
    names any other Python global is refused. Old BatchNorm states come back without
    `num_batches_tracked`; the converters add it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; check the path")
    if path.suffix == ".safetensors":
        return as_state_dict(load_weights_only(path, what=_FILE_WHAT), path, _FILE_WHAT)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(
            f"{path}: cannot be read ({e.strerror}); check its permissions"
        ) from None
    if data[:4] == b"PK\x03\x04":  # the zip format of PyTorch >= 1.6 (torch checks the same)
        allowed = [*_LAYERS, thnn._get_thnn_function_backend]
        allowed += [(cls, name) for name, cls in _STAND_INS.items()]
        obj = load_weights_only(path, what=_FILE_WHAT, allowed=allowed)
    else:
        obj = _load_legacy(data, path)
    if isinstance(obj, (_StandInGenerator, _StandInDiscriminator)):
        return _module_tensors(obj, path)
    if isinstance(obj, nn.Module):
        raise CheckpointError(
            f"{path}: holds a pickled {type(obj).__name__}, not a whole DiscoGAN Generator or"
            " Discriminator; save the network itself or its state_dict()"
        )
    return as_state_dict(obj, path, _FILE_WHAT)


# ------------------------------------------------------------------------ --from discogan
#
# Roles follow the official file names: `model_gen_B*` -> G_ab (its generator_B maps A to B),
# `model_gen_A*` -> G_ba, `model_dis_A*` -> D_a, `model_dis_B*` -> D_b; a lone generator
# fills G_ab.


def _discogan_role(name: str, is_g: bool) -> str:
    if is_g:
        return "G_ba" if re.search(r"gen_?A", name) else "G_ab"
    return "D_b" if re.search(r"dis_?B", name) else "D_a"


def _read_discogan(path: Path) -> list[Network]:
    official = read_official(path)
    src = str(path)
    is_g = any(k.startswith(("main.", "module.main.")) for k in official)
    role = _discogan_role(path.name, is_g)
    if is_g:
        return [(role, generator(official, source=src), infer_generator(official, source=src))]
    d = discriminator(official, source=src)
    return [(role, d, infer_discriminator(official, source=src))]


def _discogan_config(cls: Callable[..., Any], shapes: Shapes) -> tuple[Any, DataSpec]:
    g = shapes.g
    model = cls(net="conv", base=g.get("base", 64), weight_decay=1e-5)
    channels, size = int(g.get("in_channels", 3)), int(g.get("image_size", 64))
    return model, DataSpec(kind="image", channels=channels, image_size=size)


READERS = {"discogan": Reader(_read_discogan, _discogan_config)}
