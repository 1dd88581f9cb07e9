"""`xdomain convert`: published official checkpoints -> an xdomain run directory.

The result is an ordinary checkpoint (`OUT/checkpoints/step-0000000`, `OUT/config.yaml`) that
`xdomain translate`, `xdomain.load` and `xdomain train --resume`-free fine-tuning read like any
other. The converter that `--from` names (`xdomain.convert.registry`) reads each file into our
networks, naming each by the official code's own file naming (`*G_A*` -> G_ab ...: see its
repository module), and builds the method's Config from their shapes; this module does the
rest the same way for every converter: one file per network, finite weights, the method built
and loaded strictly, the run written.

Networks no file provides keep their seeded initialisation; the checkpoint lists them under
`untrained` and says so at conversion time.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

from torch import Tensor

from xdomain import checkpoint as ckpt
from xdomain import rundir
from xdomain.config import RunConfig, build_method, to_dict, to_yaml
from xdomain.convert import bicyclegan, discogan, junyanz, registry, stargan, ugatit
from xdomain.errors import CheckpointError, XDomainError
from xdomain.io import atomic_write_text, sha256_file
from xdomain.methods import METHODS
from xdomain.outputs import check_run_out
from xdomain.sections import DataConfig
from xdomain.version import __version__

# what each `--from` name does, from the repository modules (the names: `registry.CONVERTERS`)
READERS: dict[str, registry.Reader] = {
    **junyanz.READERS,
    **discogan.READERS,
    **ugatit.READERS,
    **stargan.READERS,
    **bicyclegan.READERS,
}


def convert(
    family: str,
    files: list[str | Path],
    out: str | Path,
    *,
    overwrite: bool = False,
    attrs: list[str] | None = None,
) -> dict[str, Any]:
    """Write `out` as an xdomain run holding the official networks that `--from family` reads;
    -> a summary. `attrs` (--attrs): the labels of a model whose files do not tell them, for
    the converters that read labels; the others ignore it."""
    converter = registry.get(family)
    reader = READERS[converter.name]
    out = check_run_out(out)
    read: dict[str, tuple[Path, dict[str, Tensor], dict[str, Any]]] = {}
    for f in map(Path, files):
        if not f.is_file():
            raise XDomainError(f"'{f}' is not a file; give the official checkpoint file(s)")
        for role, state, kwargs in reader.read(f):
            if role in read:
                raise XDomainError(
                    f"'{f}' and '{read[role][0]}' both convert to {role}; give one file per network"
                )
            ckpt.check_finite_weights(state, f"'{f}' ({role})")
            read[role] = (f, state, kwargs)
    if not any(role.startswith("G") for role in read):
        raise XDomainError("no generator among the files; xdomain convert needs at least one")
    method_name = converter.method
    shapes = registry.Shapes({role: kw for role, (_, _, kw) in read.items()}, attrs or ())
    model, spec = reader.model_config(METHODS[method_name].Config, shapes)
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
