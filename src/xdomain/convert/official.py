"""`xdomain convert`: published official checkpoints -> an xdomain run directory.

The result is an ordinary checkpoint (`OUT/checkpoints/step-0000000`, `OUT/config.yaml`) that
`xdomain translate`, `xdomain.load` and `xdomain train --resume`-free fine-tuning read like any
other. Which of our networks a file fills is read from its keys (generator or discriminator) and
its name, following each code base's own file naming:

- CycleGAN (junyanz): `*G_A*` -> G_ab (A -> B), `*G_B*` -> G_ba, `*D_A*` -> D_b (the reference's
  D_A judges G_A's output, domain B), `*D_B*` -> D_a. A published model such as
  `horse2zebra.pth` is one generator: it fills G_ab.
- DiscoGAN (SKTBrain): `model_gen_B*` -> G_ab (its generator_B maps A to B), `model_gen_A*` ->
  G_ba, `model_dis_A*` -> D_a, `model_dis_B*` -> D_b; a lone generator fills G_ab.
- U-GAT-IT (znxlwm/UGATIT-pytorch): one file holds all six networks: genA2B -> G_ab, genB2A ->
  G_ba, disGA / disLA -> D_a / D_a_local (they judge domain A), disGB / disLB -> D_b /
  D_b_local. The file holds no optimizer state, so nothing is dropped.
- Morph-UGATIT (shoutOutYangJie/Morph-UGATIT): one file of {G, D_A, D_B}: G -> G (the one
  generator), D_A -> D_b (the reference's D_A judges the A -> B output, domain B), D_B -> D_a;
  a file with G alone leaves both Ds untrained. Nothing else is in the file.
- StarGAN (yunjey/stargan): `<iter>-G.ckpt` -> G, `<iter>-D.ckpt` -> D, told apart by their keys;
  the labels a model was trained with follow from its c_dim (`xdomain.convert.stargan`).
- pix2pix (junyanz): `latest_net_G.pth` -> G (a U-Net), `latest_net_D.pth` -> D (the
  conditional PatchGAN), told apart by their keys (`xdomain.convert.bicyclegan`).
- BicycleGAN (junyanz/BicycleGAN): `*_net_G.pth` -> G, `*_net_E.pth` -> E, `*_net_D.pth` -> D
  (the cVAE-GAN's), `*_net_D2.pth` -> D2 (the cLR-GAN's): the kind from the keys, D2 from the
  name. A published model is G and E: both Ds stay untrained.

Networks no file provides keep their seeded initialisation; the checkpoint lists them under
`untrained` and says so at conversion time.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor

from xdomain.checkpoint import check_finite_weights
from xdomain.errors import CheckpointError, XDomainError
from xdomain.io import sha256_file
from xdomain.version import __version__

FAMILIES = ("cyclegan", "discogan", "ugatit", "morph-ugatit", "stargan", "pix2pix", "bicyclegan")
# our network names for the six entries of an official U-GAT-IT checkpoint
UGATIT_ROLES = {
    "genA2B": "G_ab",
    "genB2A": "G_ba",
    "disGA": "D_a",
    "disGB": "D_b",
    "disLA": "D_a_local",
    "disLB": "D_b_local",
}
# and of an official Morph-UGATIT checkpoint
MORPH_ROLES = {"G": "G", "D_A": "D_b", "D_B": "D_a"}


def _cyclegan_role(name: str, is_g: bool) -> str:
    if is_g:
        return "G_ba" if re.search(r"G_?B", name) else "G_ab"
    return "D_a" if re.search(r"D_?B", name) else "D_b"


def _discogan_role(name: str, is_g: bool) -> str:
    if is_g:
        return "G_ba" if re.search(r"gen_?A", name) else "G_ab"
    return "D_b" if re.search(r"dis_?B", name) else "D_a"


def _read(family: str, path: Path) -> list[tuple[str, dict[str, Tensor], dict[str, Any]]]:
    """-> [(role, our state_dict, constructor kwargs)] of the networks in one official file."""
    if family == "morph-ugatit":
        from xdomain.convert import ugatit

        bundle = ugatit.read_morph_official(path)
        src = str(path)
        out = []
        for key, st in bundle.items():
            if key == "G":
                net = (
                    ugatit.morph_generator(st, source=src),
                    ugatit.infer_morph_generator(st, source=src),
                )
            else:
                net = (
                    ugatit.morph_discriminator(st, source=src),
                    ugatit.infer_morph_discriminator(st, source=src),
                )
            out.append((MORPH_ROLES[key], *net))
        return out
    if family == "ugatit":
        from xdomain.convert import ugatit

        bundle = ugatit.read_official(path)
        src = str(path)
        out = []
        for key, role in UGATIT_ROLES.items():
            st = bundle[key]
            if role.startswith("G"):
                out.append(
                    (role, ugatit.generator(st, source=src), ugatit.infer_generator(st, source=src))
                )
            else:
                out.append(
                    (
                        role,
                        ugatit.discriminator(st, source=src),
                        ugatit.infer_discriminator(st, source=src),
                    )
                )
        return out
    if family == "stargan":
        from xdomain.convert import stargan

        st = stargan.read_official(path)
        src = str(path)
        if stargan.is_generator(st):
            return [("G", st, stargan.infer_generator(st, source=src))]
        return [("D", st, stargan.infer_discriminator(st, source=src))]
    if family in ("pix2pix", "bicyclegan"):
        from xdomain.convert import bicyclegan

        st = bicyclegan.read_official(path)
        kind, kw, ours = bicyclegan.convert(st, source=str(path), family=family)
        role = bicyclegan.role(st, source=str(path))
        if role == "D" and re.search(r"D2", path.name):
            role = "D2"
        return [(role, ours, {**kw, "kind": kind})]
    return [_read_one(family, path)]


def _read_one(family: str, path: Path) -> tuple[str, dict[str, Tensor], dict[str, Any]]:
    """-> (role, our state_dict, constructor kwargs) of a one-network official file."""
    if family == "cyclegan":
        from xdomain.convert import junyanz as mod

        official = mod.read_official(path)
        src = str(path)
        is_g = any(".conv_block." in k for k in official) or _looks_like_resnet(official)
        role = _cyclegan_role(path.name, is_g)
        if is_g:
            g = mod.resnet_generator(official, source=src)
            return role, g, mod.infer_resnet_generator(official, source=src)
        d = mod.patch_discriminator(official, source=src)
        return role, d, mod.infer_patch_discriminator(official, source=src)
    from xdomain.convert import discogan as mod

    official = mod.read_official(path)
    src = str(path)
    is_g = any(k.startswith(("main.", "module.main.")) for k in official)
    role = _discogan_role(path.name, is_g)
    if is_g:
        return role, mod.generator(official, source=src), mod.infer_generator(official, source=src)
    d = mod.discriminator(official, source=src)
    return role, d, mod.infer_discriminator(official, source=src)


def _looks_like_resnet(state: dict[str, Tensor]) -> bool:
    w = state.get("model.1.weight", state.get("module.model.1.weight"))
    return w is not None and w.dim() == 4 and w.shape[-1] == 7  # the 7x7 stem


def convert(
    family: str,
    files: list[str | Path],
    out: str | Path,
    *,
    overwrite: bool = False,
    attrs: list[str] | None = None,
) -> dict[str, Any]:
    """Write `out` as an xdomain run holding the official networks; -> a summary. `attrs`:
    StarGAN only, the CelebA attributes of a model whose c_dim is not an official one."""
    from xdomain import checkpoint as ckpt
    from xdomain import rundir
    from xdomain.config import RunConfig, build_method, to_dict, to_yaml
    from xdomain.io import atomic_write_text
    from xdomain.outputs import check_run_out

    if family not in FAMILIES:
        raise XDomainError(f"--from {family!r} is unknown; valid: {', '.join(FAMILIES)}")
    out = check_run_out(out)
    read: dict[str, tuple[Path, dict[str, Tensor], dict[str, Any]]] = {}
    for f in map(Path, files):
        if not f.is_file():
            raise XDomainError(f"'{f}' is not a file; give the official checkpoint file(s)")
        for role, state, kwargs in _read(family, f):
            if role in read:
                raise XDomainError(
                    f"'{f}' and '{read[role][0]}' both convert to {role}; give one file per network"
                )
            check_finite_weights(state, f"'{f}' ({role})")
            read[role] = (f, state, kwargs)
    gens = [v for k, v in read.items() if k.startswith("G")]
    method_name = family.replace("-", "_")  # `--from morph-ugatit` -> method morph_ugatit
    if not gens:
        raise XDomainError("no generator among the files; xdomain convert needs at least one")
    g_kw = gens[0][2]
    d_kw = {k: v[2] for k, v in read.items() if k.startswith("D")}
    model, spec = _model_config(
        family, g_kw, d_kw, attrs or [], e_kw=read.get("E", ("", {}, {}))[2]
    )
    from xdomain.sections import DataConfig

    cfg = RunConfig(
        method=method_name,
        model=model,
        description=f"converted from official {family} weights: "
        + ", ".join(p.name for p, _, _ in read.values()),
        data=DataConfig(
            a="converted:no-data",
            b="converted:no-data",
            image_size=spec.image_size,
            channels=spec.channels,
        ),
    )
    method = build_method(cfg, spec)  # seeded: the untrained networks are reproducible
    for role, (path, state, _) in read.items():
        try:
            getattr(method, role).load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            raise CheckpointError(
                f"'{path}': its {role} does not fit the networks of the other files"
                f" ({first[1].strip() if len(first) > 1 else first[0]}); convert it alone"
            ) from None

    out.mkdir(parents=True, exist_ok=True)
    for f in map(Path, files):  # --overwrite removes the artefacts: never an input among them
        for name in rundir.ARTEFACTS:
            inside = os.path.realpath(out / name).rstrip(os.sep) + os.sep
            if os.path.realpath(f) == inside[:-1] or os.path.realpath(f).startswith(inside):
                raise XDomainError(
                    f"'{f}' lies in '{out / name}', which converting into --out '{out}' replaces;"
                    " move the official file out of it first"
                )
    rundir.check_fresh(out, overwrite=overwrite, resumable=False)
    nets = {n for n, _ in method.named_children() if re.match(r"([GDE]\d?)(_|$)", n)}
    untrained = sorted(nets - set(read))
    tensors, rng = ckpt.rng_state()
    state: dict[str, Any] = {
        "method": method_name,
        "config": to_dict(cfg),
        "spec": spec.to_dict(),
        "optimizers": {},
        "schedulers": {},
        "rng": rng,
        "best": {},
        "run_id": uuid.uuid4().hex,
        "data": {"id": "converted", "sources": {}},
        "converted_from": {
            role: {"file": str(p.resolve()), "sha256": sha256_file(p)}
            for role, (p, _, _) in read.items()
        },
        "untrained": untrained,
        "xdomain_version": __version__,
    }
    atomic_write_text(out / "config.yaml", to_yaml(cfg))
    path = ckpt.save_checkpoint(
        out / "checkpoints", 0, method.state_dict(), tensors, state, keep_last=1
    )
    roles = {r: str(v[0]) for r, v in read.items()}
    return {"checkpoint": path, "roles": roles, "untrained": untrained}


def _model_config(
    family: str,
    g_kw: dict[str, Any],
    d_kws: dict[str, dict[str, Any]],
    attrs: list[str],
    e_kw: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """The method Config and DataSpec that fit the official networks' shapes (`d_kws`: the
    discriminators read, by role; `e_kw`: BicycleGAN's encoder, when given)."""
    from xdomain.methods import METHODS
    from xdomain.methods.base import DataSpec

    cls: Callable[..., Any] = METHODS[family.replace("-", "_")].Config
    channels = int(g_kw.get("in_channels", 3))
    d_kw = next(iter(d_kws.values()), {})
    if family == "stargan":
        from xdomain.convert.stargan import label_space

        space = label_space(g_kw["c_dim"], attrs)
        if d_kw and d_kw["c_dim"] != space.cls_dim:
            raise XDomainError(
                f"the D file classifies {d_kw['c_dim']} labels, the G file's model"
                f" {space.cls_dim}: give the G and D of one run"
            )
        model = cls(
            g_conv_dim=g_kw["conv_dim"],
            g_repeat_num=g_kw["repeat_num"],
            d_conv_dim=d_kw.get("conv_dim", 64),
            d_repeat_num=d_kw.get("repeat_num", 6),
        )
        size = int(d_kw.get("image_size", 128))  # the official models are 128 px
        spec = DataSpec(kind="image", channels=3, image_size=size, labels=space.to_list())
        return model, spec
    if family in ("pix2pix", "bicyclegan"):
        return _paired_config(family, cls, g_kw, d_kws, e_kw or {})
    if family == "morph-ugatit":
        model = cls(
            ngf=g_kw["ngf"],
            n_blocks=g_kw["n_blocks"],
            z_dim=g_kw["z_dim"],
            ndf=d_kw.get("ndf", 64),
            n_blocks_d=d_kw.get("n_blocks", 6),
        )
        # the reference trains on 256 px (load_size); the generator itself takes any multiple
        # of 4, the converted run translates at 256 like the reference's test script
        return model, DataSpec(kind="image", channels=channels, image_size=256)
    if family == "ugatit":
        light = bool(g_kw.get("light", False))
        size = int(g_kw.get("img_size", 256))  # a light generator does not record its size
        model = cls(
            ngf=g_kw["ngf"],
            n_blocks=g_kw["n_blocks"],
            light=light,
            ndf=d_kw.get("ndf", 64),
            n_layers_global=d_kws.get("D_a", {}).get("n_layers", 7),
            n_layers_local=d_kws.get("D_a_local", {}).get("n_layers", 5),
        )
        return model, DataSpec(kind="image", channels=channels, image_size=size)
    if family == "cyclegan":
        model = cls(
            ngf=g_kw["ngf"],
            n_blocks=g_kw["n_blocks"],
            norm=g_kw.get("norm", "instance"),
            dropout=bool(g_kw.get("dropout", False)),
            ndf=d_kw.get("ndf", 64),
            n_layers_d=d_kw.get("n_layers", 3),
        )
        # fully convolutional: 256 is the training crop of the published models, not a limit
        return model, DataSpec(kind="image", channels=channels, image_size=256)
    model = cls(net="conv", base=g_kw.get("base", 64), weight_decay=1e-5)
    size = int(g_kw.get("image_size", 64))
    return model, DataSpec(kind="image", channels=channels, image_size=size)


def _paired_config(
    family: str,
    cls: Callable[..., Any],
    g_kw: dict[str, Any],
    d_kws: dict[str, dict[str, Any]],
    e_kw: dict[str, Any],
) -> tuple[Any, Any]:
    """pix2pix / BicycleGAN: the Config and DataSpec of the official networks' shapes; a layout
    our method does not build (a ResNet generator, an N-layer encoder, a conditional BicycleGAN
    D) is a one-line error that says so."""
    from xdomain.methods.base import DataSpec

    want_g = "UnetGenerator" if family == "pix2pix" else "UnetZGenerator"
    if g_kw["kind"] != want_g:
        other = "--from cyclegan (a ResnetGenerator)" if g_kw["kind"] == "ResnetGenerator" else ""
        raise XDomainError(
            f"the G file holds a {g_kw['kind']}; xdomain's {family} uses a {want_g}"
            + (f"; convert it with {other}" if other else "")
        )
    c = int(g_kw["in_channels"])
    if int(g_kw["out_channels"]) != c:
        raise XDomainError(
            f"the G file maps {c} to {g_kw['out_channels']} channels; xdomain's {family} keeps"
            " one channel count for input and output (data.channels)"
        )
    size = 2 ** int(g_kw["num_downs"])
    d_kw = next(iter(d_kws.values()), {})
    d_in = 2 * c if family == "pix2pix" else c  # pix2pix's D is conditional, BicycleGAN's not
    if d_kw and int(d_kw["in_channels"]) != d_in:
        raise XDomainError(
            f"the D file takes {d_kw['in_channels']} channels, xdomain's {family} D {d_in}"
            + (" (input and output stacked)" if family == "pix2pix" else " (--conditional_D")
            + ("" if family == "pix2pix" else " models are not supported)")
        )
    common = {"ngf": g_kw["ngf"], "num_downs": g_kw["num_downs"], "norm": g_kw["norm"]}
    common |= {"ndf": d_kw.get("ndf", 64), "n_layers_d": d_kw.get("n_layers", 3)}
    if family == "pix2pix":
        return cls(**common), DataSpec(kind="image", channels=c, image_size=size)
    if e_kw and e_kw.get("kind") != "ResnetEncoder":
        raise XDomainError(
            f"the E file holds a {e_kw.get('kind')}; xdomain's bicyclegan uses the ResNet encoder"
            " (--netE resnet_128 / resnet_256)"
        )
    blocks = int(e_kw.get("n_blocks", max(1, int(g_kw["num_downs"]) - 3)))
    model = cls(
        **common,
        nz=g_kw["nz"],
        nef=e_kw.get("ndf", 64),
        e_blocks=blocks,
        where_add=g_kw["where_add"],
        nl=g_kw.get("nl", "relu"),
        upsample=g_kw.get("upsample", "basic"),
        num_d=d_kw.get("num_d", 2),
    )
    return model, DataSpec(kind="image", channels=c, image_size=size)
