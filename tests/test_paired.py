"""pix2pix, BicycleGAN and the shared layers they grew: paired data (one index and one crop for
both sides), the built-in paired sets, several backward passes into one step, K samples per
input, the latent-code options of translate (Python API and CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import TWO_STEPS, cli, paper_cli
from PIL import Image

from xdomain.config import load_config
from xdomain.data.paired import load_paired, sobel_edges
from xdomain.datamodule import PairedData, build_data
from xdomain.errors import ConfigError, DataError, XDomainError
from xdomain.methods.base import DataSpec
from xdomain.methods.bicyclegan import BicycleGAN
from xdomain.methods.pix2pix import Pix2Pix
from xdomain.sections import DataConfig

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    # the session's shared cache (as tests/test_resume.py): the glyph pairs and the judges are
    # rendered and trained once for every test here, and the CLI's processes inherit it
    monkeypatch.setenv("XDOMAIN_CACHE", str(tmp_path.parent / "xdomain-cache-shared"))


KW = {"image_size": 32, "channels": 3, "seed": 0, "on_bad_file": "error"}
KW |= {"max_pixels": 10**7, "augment": False}


# ----------------------------------------------------------------------------- data


def test_glyphs2digits_pairs_mask_and_colouring_of_one_shape():
    p = load_paired("glyphs2digits", "test", n=6, **KW)
    assert len(p) == 6
    a, ya, b, yb = p[2]
    assert a.shape == b.shape == (3, 32, 32) and ya == yb and 0 <= ya < 10
    assert torch.equal(a[0], a[1]) and torch.equal(a[1], a[2])  # the mask is grey
    # where the mask is mostly ink, b is near the ink colour; where empty, the plate: two colours
    ink, empty = a[0] > 0.3, a[0] < -0.9
    assert ink.any() and empty.any()
    assert not torch.allclose(b[:, ink].mean(1), b[:, empty].mean(1), atol=0.05)
    again = load_paired("glyphs2digits", "test", n=6, **KW)  # from the cache: the same pixels
    assert torch.equal(again[2][2], b)


def test_sobel_edges_are_black_lines_on_white():
    img = np.zeros((1, 16, 16), np.uint8)
    img[0, 4:12, 4:12] = 255  # a white square on black
    e = sobel_edges(img)[0]
    assert set(np.unique(e)) == {0, 255}
    assert e[0, 0] == 255 and e[8, 8] == 255  # flat regions: white
    assert e[8, 4] == 0 and e[4, 8] == 0  # the square's border: an edge


def _aligned(root, n=3, size=(40, 20)):
    """train/ and val/ of AB images: B = 255 - A, pixel for pixel."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 256, (size[1], size[0] // 2, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, 255 - a], 1)).save(root / split / f"{i}.png")


def test_aligned_folder_splits_halves_and_augments_both_sides_alike(tmp_path):
    _aligned(tmp_path / "ab")
    p = load_paired(str(tmp_path / "ab"), "train", n=None, **(KW | {"augment": True}))
    assert len(p) == 3 and p.augment
    for key in [(0, 11), (1, 12345), (2, 7)]:
        a, _, b, _ = p[key]
        torch.testing.assert_close(b, -a)  # one crop and one flip for both halves
    crops = {tuple(p[(0, s)][0].flatten()[:8].tolist()) for s in range(8)}
    assert len(crops) > 1  # the seed does move the crop
    test = load_paired(str(tmp_path / "ab"), "test", n=None, **KW)  # val/ stands in for test/
    assert len(test) == 3
    swapped = load_paired(str(tmp_path / "ab"), "train", direction="BtoA", n=None, **KW)
    torch.testing.assert_close(swapped[0][0], p[0][2])


def test_paired_folders_match_by_name_and_refuse_a_lonely_file(tmp_path):
    root = tmp_path / "pf"
    for sub in ("trainA", "trainB", "testA", "testB"):
        (root / sub).mkdir(parents=True)
    for i, name in enumerate(["x", "y"]):
        px = np.full((16, 16, 3), 40 * i, np.uint8)
        for sub in ("trainA", "testA"):
            Image.fromarray(px).save(root / sub / f"{name}.png")
        for sub in ("trainB", "testB"):
            Image.fromarray(255 - px).save(root / sub / f"{name}.jpg", quality=100)
    p = load_paired(str(root), "train", n=None, **KW)
    assert len(p) == 2 and [f.stem for f in p.a.files] == [f.stem for f in p.b.files]
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "trainA" / "z.png")
    with pytest.raises(DataError, match=r"z\.\*' has no partner in .*trainB"):
        load_paired(str(root), "train", n=None, **KW)


def test_bad_paired_specs_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="neither a built-in paired set"):
        load_paired(str(tmp_path / "missing"), "train", n=None, **KW)
    (tmp_path / "sq" / "train").mkdir(parents=True)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "sq" / "train" / "0.png")
    with pytest.raises(DataError, match="not an aligned AB pair"):
        load_paired(str(tmp_path / "sq"), "train", n=None, **KW)
    with pytest.raises(DataError, match="holds no paired layout"):
        load_paired(str(tmp_path), "train", n=None, **KW)
    with pytest.raises(DataError, match="AtoB or BtoA"):
        load_paired("glyphs2digits", "train", direction="up", n=4, **KW)


def test_paired_stream_is_step_indexed_and_keeps_pairs_together(tmp_path):
    cfg = DataConfig(paired="glyphs2digits", batch_size=4, n_a=12)
    data = build_data(cfg)
    assert isinstance(data, PairedData) and data.spec.name_b == "glyphs2digits:digits"
    s = data.stream()
    batches = [next(s) for _ in range(4)]
    resumed = next(data.stream(start_step=3))
    assert all(torch.equal(resumed[k], batches[3][k]) for k in resumed)
    assert torch.equal(batches[1]["a_label"], batches[1]["b_label"])  # the same items


def test_methods_refuse_the_wrong_kind_of_data():
    from xdomain.datamodule import check_layout

    with pytest.raises(ConfigError, match=r"aligned pairs: set data\.paired"):
        check_layout("pix2pix", "paired", DataConfig())
    with pytest.raises(ConfigError, match=r"two unpaired domains .*; remove data.paired"):
        check_layout("cyclegan", "unpaired", DataConfig(paired="glyphs2digits"))


# ----------------------------------------------------------------------------- methods

SPEC = DataSpec(kind="image", channels=3, image_size=32)
TINY = {"ngf": 4, "ndf": 4, "num_downs": 5}
TINY_BG = TINY | {"nef": 4, "e_blocks": 2, "n_layers_d": 2}


def _batch(n: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    return {"a": a, "b": -a, "a_label": torch.zeros(n), "b_label": torch.zeros(n)}


def test_unet_size_errors_say_what_to_set():
    with pytest.raises(ConfigError, match=r"set model\.num_downs=5"):
        Pix2Pix(Pix2Pix.Config(num_downs=8), SPEC)
    with pytest.raises(ConfigError, match=r"model\.e_blocks to log2"):
        BicycleGAN(BicycleGAN.Config(**TINY_BG | {"e_blocks": 3}), SPEC)


def test_pix2pix_step_updates_g_and_d():
    torch.manual_seed(0)
    m = Pix2Pix(Pix2Pix.Config(**TINY), SPEC)
    g0 = [p.clone() for p in m.G.parameters()]
    logs = m.train_step(_batch(), 0)
    assert set(logs) == {"loss_d", "loss_gan", "loss_l1"}
    assert all(not torch.equal(p, q) for p, q in zip(m.G.parameters(), g0, strict=True))
    y = m.translate(_batch()["a"])
    assert y.shape == (4, 3, 32, 32)
    with pytest.raises(XDomainError, match="does not take 'z'"):
        m.translate(_batch()["a"], z=3)


def _e_changes(variant: str, **kw) -> bool:
    torch.manual_seed(0)
    m = BicycleGAN(BicycleGAN.Config(**TINY_BG | {"variant": variant, **kw}), SPEC)
    e0 = [p.clone() for p in m.E.parameters()]
    m.train_step(_batch(), 0)
    return any(not torch.equal(p, q) for p, q in zip(m.E.parameters(), e0, strict=True))


def test_latent_regression_reaches_g_only_in_bicyclegan_and_e_too_in_clr_gan():
    # with every E+G term of the cVAE half at weight 0, E could learn only from |z - E(G(A, z))|
    zero = {"lambda_l1": 0.0, "lambda_kl": 0.0, "lambda_gan": 0.0}
    assert not _e_changes("bicyclegan", **zero)
    assert _e_changes("bicyclegan")
    assert _e_changes("clr-gan")  # alone, the cLR-GAN's encoder is trained by that loss
    assert not _e_changes("pix2pix+noise")  # never uses E


def test_bicyclegan_step_logs_and_odd_batches():
    torch.manual_seed(0)
    m = BicycleGAN(BicycleGAN.Config(**TINY_BG), SPEC)
    logs = m.train_step(_batch(), 0)
    want = {"loss_gan", "loss_l1", "loss_kl", "loss_gan2", "loss_latent", "loss_d"}
    want.add("loss_d2")
    assert set(logs) == want
    with pytest.raises(ConfigError, match="make it even"):
        m.train_step(_batch(3), 1)


def test_bicyclegan_codes_samples_sync_style_and_interpolation():
    torch.manual_seed(0)
    m = BicycleGAN(BicycleGAN.Config(**TINY_BG), SPEC)
    m.train_step(_batch(), 0)
    x = _batch()["a"][:3]
    assert m.translate(x).shape == (3, 3, 32, 32)  # one random code each
    assert m.translate(x, z=5).shape == (3, 5, 3, 32, 32)
    z = torch.randn(4, 8)
    y = m.translate(x, z=z)  # the same 4 codes for every input
    assert y.shape == (3, 4, 3, 32, 32)
    torch.testing.assert_close(y[1, 2], m.translate(x[1], z=z[2]))
    style = m.encode_style(_batch()["b"][:1])  # (1, nz): E's mu, no sampling
    torch.testing.assert_close(style, m.encode_style(_batch()["b"][:1]))
    assert m.translate(x, z=style[0]).shape == (3, 3, 32, 32)
    line = BicycleGAN.interpolate_z(z[0], z[1], 5)
    torch.testing.assert_close(line[0], z[0])
    torch.testing.assert_close(line[-1], z[1])
    pil = m.translate(Image.new("RGB", (32, 32)), z=3)
    assert pil.size == (96, 32)  # three samples side by side
    with pytest.raises(XDomainError, match="8-d"):
        m.translate(x, z=torch.zeros(4, 3))


def test_a_five_dimensional_row_is_k_rows_of_the_grid():
    from xdomain.grid import grid_image

    img = grid_image([torch.zeros(2, 3, 8, 8), torch.zeros(2, 4, 3, 8, 8)], pad=2)
    assert img.shape == (5 * 10 + 2, 2 * 10 + 2, 3)


# ----------------------------------------------------------------------------- CLI


def test_cli_trains_bicyclegan_and_translates_samples_sync_style(tmp_path):
    run = tmp_path / "run"
    r = cli(
        "train",
        "bicyclegan-glyphs",
        "--out",
        str(run),
        "model.ngf=4",
        "model.ndf=4",
        "model.nef=4",
        "data.n_a=16",
        "data.batch_size=4",
        "train.decay_start=null",
        "eval.n_test=8",
        *TWO_STEPS,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    final = json.loads((run / "final_metrics.json").read_text())
    for key in ("diversity", "diversity_l1", "diversity_real", "kid_judge", "acc", "l1"):
        assert key in final, key
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    px = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for name in ("p", "q"):  # the same image twice
        Image.fromarray(px).save(inputs / f"{name}.png")

    def run_translate(*opts: str) -> tuple[np.ndarray, np.ndarray]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        r = cli("translate", str(run), str(inputs), "--out", str(out), *opts)
        assert r.returncode == 0, r.stderr[-2000:]
        return tuple(np.asarray(Image.open(out / f"{n}.png")) for n in ("p", "q"))

    p, q = run_translate("--samples", "3")
    assert p.shape == (32, 96, 3) and not np.array_equal(p, q)  # per-input codes
    assert np.array_equal(run_translate("--samples", "3")[0], p)  # seeded: a rerun is equal
    p, q = run_translate("--samples", "3", "--sync")
    assert np.array_equal(p, q)  # the same codes for every input
    p, q = run_translate("--style", str(inputs / "p.png"))
    assert p.shape == (32, 32, 3) and np.array_equal(p, q)
    p, _ = run_translate("--interpolate", "4")
    assert p.shape == (32, 128, 3)
    r = cli("translate", str(run), str(inputs), "--out", str(tmp_path / "x"), "--sync")
    assert r.returncode != 0 and "add --samples" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["bicyclegan-edges2shoes", "pix2pix-edges2shoes"])
def test_paper_recipe_two_steps_on_an_aligned_folder(recipe, tmp_path):
    cfg = load_config(recipe)
    assert cfg.data.image_size == 256 and cfg.model.ngf == 64  # the paper's scale
    data = tmp_path / "edges2shoes"
    _aligned(data, n=4, size=(512, 256))
    run = tmp_path / "run"
    r = paper_cli(
        "train",
        recipe,
        "--out",
        str(run),
        f"data.paired={data}",
        "data.num_workers=0",
        "train.decay_start=1",
        "eval.n_test=2",
        *TWO_STEPS,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    final = json.loads((run / "final_metrics.json").read_text())
    assert {"diversity", "kid_judge", "l1"} <= set(final)
    photo = tmp_path / "edges.png"
    Image.fromarray(np.zeros((300, 200, 3), dtype=np.uint8)).save(photo)
    r = cli("translate", str(run), str(photo), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr[-2000:]


def test_cli_data_shows_a_paired_set_and_refuses_a_bad_folder(tmp_path):
    r = cli("data", "glyphs2digits", "--split", "test", "--grid", str(tmp_path / "g.png"))
    assert r.returncode == 0, r.stderr
    assert "1000 pairs (glyphs2digits:masks -> glyphs2digits:digits)" in r.stdout
    with Image.open(tmp_path / "g.png") as im:  # 4 row pairs of 10, 32 px + 2 px padding, x2
        assert im.size == (2 * (10 * 34 + 2), 2 * (8 * 34 + 2))
    r = cli("data", str(tmp_path), "--paired")
    assert r.returncode != 0 and "holds no paired layout" in r.stderr
    assert "Traceback" not in r.stderr


def test_two_places_for_the_data_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"data\.paired and data\.root both say"):
        load_config("pix2pix-glyphs", ["data.root=/tmp"])
    with pytest.raises(ConfigError, match=r"data\.sources and data\.paired both say"):
        load_config("stargan-digits", ["data.paired=glyphs2digits"])
