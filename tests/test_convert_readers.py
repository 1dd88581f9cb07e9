"""Reading official files without a plain unpickle.

SKTBrain/DiscoGAN saved whole modules (`torch.save(generator_A, path)`) from a process where
`model.Generator` / `model.Discriminator` were importable. We rebuild such files the same way:
a temporary module `model` with classes of the official shape, the fixture's official state
loaded into them, `torch.save` of the whole module, the module removed again. The reader must
then recover the weights (our network reproduces the fixture's outputs), and refuse any file
that names a Python global outside its allow-list without running it.
"""

from __future__ import annotations

import os
import pickle
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from parity import check_parity, load_fixture, official_state
from torch import nn

from xdomain.convert import discogan, junyanz
from xdomain.errors import CheckpointError
from xdomain.nn import DiscoDiscriminator, DiscoGenerator


def _official_classes() -> tuple[type[nn.Module], type[nn.Module]]:
    """Generator(extra_layers=False) and Discriminator with the official attribute names and
    layer order (manifest key patterns: `main.{i}`; conv1..conv5, bn2..bn4)."""

    class Generator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = [
                nn.Conv2d(3, 64, 4, 2, 1, bias=False),
                nn.LeakyReLU(0.2, True),
            ]
            for a, b in [(64, 128), (128, 256), (256, 512)]:
                layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b)]
                layers += [nn.LeakyReLU(0.2, True)]
            for a, b in [(512, 256), (256, 128), (128, 64)]:
                layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b)]
                layers += [nn.ReLU(True)]
            layers += [nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), nn.Sigmoid()]
            self.main = nn.Sequential(*layers)

        def forward(self, x):
            return self.main(x)

    class Discriminator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 4, 2, 1, bias=False)
            self.relu1 = nn.LeakyReLU(0.2, True)
            for k, (a, b) in enumerate([(64, 128), (128, 256), (256, 512)], start=2):
                setattr(self, f"conv{k}", nn.Conv2d(a, b, 4, 2, 1, bias=False))
                setattr(self, f"bn{k}", nn.BatchNorm2d(b))
                setattr(self, f"relu{k}", nn.LeakyReLU(0.2, True))
            self.conv5 = nn.Conv2d(512, 1, 4, 1, 0, bias=False)

    for cls in (Generator, Discriminator):
        cls.__module__, cls.__qualname__ = "model", cls.__name__
    return Generator, Discriminator


@contextmanager
def official_model_module() -> Iterator[types.ModuleType]:
    """`import model` works inside, as in the official training process; restored after."""
    mod = types.ModuleType("model")
    mod.Generator, mod.Discriminator = _official_classes()
    before = sys.modules.get("model")
    sys.modules["model"] = mod
    try:
        yield mod
    finally:
        if before is None:
            del sys.modules["model"]
        else:
            sys.modules["model"] = before


@contextmanager
def _quiet() -> Iterator[None]:
    """torch.save warns when it cannot read a class's source for the legacy format."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class _ThnnBackend:
    """What a 2017 module's `_backend` attribute pickled as: a call of a torch no-op."""

    def __reduce__(self):
        return (torch.nn.backends.thnn._get_thnn_function_backend, ())


def _d_forward(net, fx):
    """Our D in the official output form: (sigmoid(logit) as (B, 1, 1, 1), [features])."""
    logits, feats = net(fx["input"].clone())
    return torch.sigmoid(logits).view(-1, 1, 1, 1), feats


NETS = {
    "G": ("discogan_G", "Generator", DiscoGenerator, discogan.generator, None),
    "D": ("discogan_D", "Discriminator", DiscoDiscriminator, discogan.discriminator, _d_forward),
}


@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("era", ["zip", "legacy", "legacy-2017"])
def test_whole_module_file_reproduces_the_official_outputs(tmp_path, net, era):
    name, cls_name, ours, convert, forward = NETS[net]
    state = official_state(load_fixture(name))
    path = tmp_path / f"model_gen_A-{net}"
    with official_model_module() as mod:
        official = getattr(mod, cls_name)()
        official.load_state_dict(state)
        if era == "legacy-2017":  # PyTorch 0.x: no num_batches_tracked, a `_backend` attribute
            for m in official.modules():
                if isinstance(m, nn.BatchNorm2d):
                    del m._buffers["num_batches_tracked"]
                m._backend = _ThnnBackend()
        with _quiet():
            torch.save(official, path, _use_new_zipfile_serialization=era == "zip")
    assert "model" not in sys.modules or sys.modules["model"] is not mod
    before = set(torch.serialization.get_safe_globals())

    got = discogan.read_official(path)

    assert set(torch.serialization.get_safe_globals()) == before  # allow-list was per call
    keep = {k for k in state if era != "legacy-2017" or not k.endswith("num_batches_tracked")}
    assert got.keys() == keep
    check_parity(name, ours, lambda _fixture_state: convert(got, source=str(path)), forward)


def test_plain_state_dict_files_are_accepted(tmp_path):
    state = official_state(load_fixture("discogan_D"))
    path = tmp_path / "discogan_D.pth"
    torch.save(state, path)
    got = discogan.read_official(path)
    DiscoDiscriminator().load_state_dict(discogan.discriminator(got), strict=True)


class _Payload:
    """Unpickling this runs `touch <marker>`."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["torch-zip", "torch-legacy", "raw-pickle"])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, how):
    marker = tmp_path / "pwned"
    obj = {"x": _Payload(str(marker)), "main.0.weight": torch.zeros(1)}  # payload first
    path = tmp_path / "model_gen_A.pth"
    if how == "raw-pickle":
        path.write_bytes(pickle.dumps(obj))
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=how == "torch-zip")
    for reader in (discogan.read_official, junyanz.read_official):
        with pytest.raises(CheckpointError, match="refused") as e:
            reader(path)
        msg = str(e.value)
        assert str(path) in msg and "\n" not in msg
        # torch's weights-only unpickler stops a raw (protocol 5) pickle at its first FRAME
        # opcode, before the global; ours names it
        if reader is discogan.read_official or how != "raw-pickle":
            assert "'posix.system'" in msg or "'nt.system'" in msg
    assert not marker.exists()


@pytest.mark.parametrize("zip_format", [True, False])
def test_whole_module_with_a_foreign_layer_is_refused(tmp_path, zip_format):
    path = tmp_path / "model_dis_A.pth"
    with official_model_module() as mod:
        official = mod.Discriminator()
        official.extra = nn.Linear(2, 2)  # a class the official networks never contain
        with _quiet():
            torch.save(official, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(CheckpointError, match=r"torch\.nn\.modules\.linear\.Linear.*refused"):
        discogan.read_official(path)


def test_truncated_whole_module_file(tmp_path):
    path = tmp_path / "model_dis_A.pth"
    with official_model_module() as mod, _quiet():
        torch.save(mod.Discriminator(), path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match="truncated") as e:
        discogan.read_official(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_pickle_that_rewrites_an_allowed_function_is_refused(tmp_path):
    """Only allowed globals, but BUILD on a function would set `__defaults__` of a torch function
    for the whole process; torch's weights-only unpickler and ours both refuse it."""
    import pickletools

    target = torch._utils._rebuild_tensor_v2
    before = target.__defaults__
    data = (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n"  # PROTO 2, GLOBAL
        b"N}X\x0c\x00\x00\x00__defaults__K\x01\x85s\x86b."  # (None, {...: (1,)}) BUILD STOP
    )
    assert [op.name for op, _, _ in pickletools.genops(data)][-2:] == ["BUILD", "STOP"]
    path = tmp_path / "model_gen_A.pth"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=r"set the state of a function.*refused"):
        discogan.read_official(path)
    with pytest.raises(CheckpointError, match="refused"):
        junyanz.read_official(path)
    assert target.__defaults__ == before
