"""Paper-scale recipes run unchanged on a user's `trainA/ trainB/ testA/ testB/` folder: two steps
of each, at the recipe's own resolution and networks, on a tiny generated folder (real PNG files,
a real process), then a translation of a non-square photo."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import TWO_STEPS, cli, paper_cli
from PIL import Image

from xdomain.config import load_config

pytestmark = pytest.mark.slow

PAPER = ["cyclegan-horse2zebra", "discogan-edges2shoes"]


def _folder(root, size: int, n: int = 4) -> None:
    rng = np.random.default_rng(0)
    for sub, tint in (("trainA", 0), ("trainB", 1), ("testA", 0), ("testB", 1)):
        (root / sub).mkdir(parents=True)
        for i in range(n):
            px = rng.integers(0, 128, (size, size, 3), dtype=np.uint8)
            px[..., tint] += 100  # a reddish and a greenish domain
            Image.fromarray(px).save(root / sub / f"{i}.png")


@pytest.mark.parametrize("recipe", PAPER)
def test_paper_recipe_two_steps_on_a_folder(recipe, tmp_path):
    cfg = load_config(recipe)
    assert cfg.data.root and cfg.data.image_size >= 64  # the recipe is the paper's scale
    data = tmp_path / "data"
    _folder(data, cfg.data.image_size + 8)
    run = tmp_path / "run"
    decay = ["train.decay_start=1"] if cfg.train.decay_start else []  # the schedule's shape
    r = paper_cli(
        "train",
        recipe,
        "--out",
        str(run),
        f"data.root={data}",
        "data.num_workers=0",
        f"data.batch_size={min(cfg.data.batch_size, 2)}",  # horse2zebra's own batch is 1
        "eval.n_test=4",
        *TWO_STEPS,
        *decay,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    final = json.loads((run / "final_metrics.json").read_text())
    # unlabelled folders are scored by a real-a-vs-real-b judge, both ways, plus the cycle error
    for key in ("domain_acc", "kid_judge", "ba_domain_acc", "ba_kid_judge", "cycle_a"):
        assert key in final, key
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((50, 75, 3), dtype=np.uint8)).save(photo)
    r = cli("translate", str(run), str(photo), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "out" / "photo.png") as im:
        # CycleGAN keeps the photo's size; DiscoGAN's networks are fixed at 64 px
        assert im.size == ((75, 50) if recipe.startswith("cyclegan") else (64, 64))


def _celeba_folder(root, n_train: int = 4, n_test: int = 3) -> None:
    """A CelebA layout: list_attr_celeba.txt of 1999 + n_train lines (the official split puts
    the first 1999 shuffled lines in test), images for the train lines and `n_test` test lines
    only (the others are missing: data.on_bad_file=skip drops them, labels with them)."""
    from xdomain.data.celeba import split_lines

    names = [
        "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips",
        "Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin",
        "Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open",
        "Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline",
        "Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat",
        "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young",
    ]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1999 + n_train):
        values = rng.choice([-1, 1], 40)
        hair = [8, 9, 11, 17]  # black, blond, brown, gray: at most one
        values[hair] = -1
        values[hair[i % 4]] = 1
        rows.append(f"{i:06d}.jpg " + " ".join(str(v) for v in values))
    (root / "images").mkdir(parents=True)
    (root / "list_attr_celeba.txt").write_text(
        f"{len(rows)}\n{' '.join(names)}\n" + "\n".join(rows) + "\n"
    )
    train, test = split_lines(rows)
    for line in train + test[:n_test]:
        px = rng.integers(0, 255, (218, 178, 3), dtype=np.uint8)  # the aligned faces' size
        Image.fromarray(px).save(root / "images" / line.split()[0])


def _rafd_folder(root) -> None:
    from xdomain.labels import RAFD_EXPRESSIONS

    rng = np.random.default_rng(1)
    for split, n in (("train", 2), ("test", 1)):
        for e in RAFD_EXPRESSIONS:
            (root / split / e).mkdir(parents=True)
            for i in range(n):
                px = rng.integers(0, 255, (300, 260, 3), dtype=np.uint8)
                Image.fromarray(px).save(root / split / e / f"{i}.png")


@pytest.mark.parametrize("recipe", ["stargan-celeba", "stargan-celeba-rafd"])
def test_stargan_paper_recipe_two_steps_on_celeba_and_rafd_layouts(recipe, tmp_path):
    cfg = load_config(recipe)
    assert cfg.data.image_size == 128 and cfg.model.d_repeat_num == 6  # the paper's scale
    _celeba_folder(tmp_path / "celeba")
    sources = [f"celeba:{tmp_path / 'celeba'}"]
    if recipe.endswith("rafd"):
        _rafd_folder(tmp_path / "RaFD")
        sources.append(f"folders:{tmp_path / 'RaFD'}")
    run = tmp_path / "run"
    r = paper_cli(
        "train",
        recipe,
        "--out",
        str(run),
        f"data.sources=[{', '.join(sources)}]",
        "data.on_bad_file=skip",
        "data.num_workers=0",
        "data.batch_size=2",
        "train.steps=2",
        "train.decay_start=1",
        "train.ckpt_every=2",
        "train.sample_every=2",
        "eval.every=2",
        "eval.n_test=3",
        "train.progress=false",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    final = json.loads((run / "final_metrics.json").read_text())
    # a handful of images trains no attribute judge: the reconstruction error alone, warned
    assert "rec_l1" in final and "target_acc" not in final
    assert "fewer than the 100 its attribute judges need" in r.stderr
    if recipe.endswith("rafd"):
        assert "rafd:rec_l1" in final
    photo = tmp_path / "face.png"
    Image.fromarray(np.zeros((218, 178, 3), dtype=np.uint8)).save(photo)
    target = "expression=happy" if recipe.endswith("rafd") else "hair=blond,young=0"
    r = cli("translate", str(run), str(photo), "--out", str(tmp_path / "out"), "--target", target)
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "out" / "face.png") as im:
        assert im.size == (128, 128)
