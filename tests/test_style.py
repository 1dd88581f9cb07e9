"""The style-carried metric: pairs differ in one style only, the measures see that style, and a
translator that ignores the input's style scores 0.5."""

from __future__ import annotations

import pytest
import torch

from xdomain.metrics.style import STYLES, carried, ink_amount, slant, style_pairs, style_scores


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDOMAIN_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("style", STYLES)
def test_pairs_differ_in_their_style_only(style):
    plain, styled = style_pairs(style, 40)
    assert plain.shape == styled.shape == (40, 3, 32, 32)
    changed = (plain - styled).abs().amax(1) > 0.02  # (40, 32, 32) pixels that differ
    # the background, colours and the far corners are the same; only ink near the digit moves
    assert float(changed.float().mean()) < 0.5
    assert torch.equal(plain[:, :, 0, 0], styled[:, :, 0, 0])


def test_the_inputs_themselves_carry_their_style():
    bold = carried("bold", *style_pairs("bold", 100))
    italic = carried("italic", *style_pairs("italic", 100))
    assert bold >= 0.95 and italic >= 0.85, (bold, italic)


def test_a_translator_that_ignores_style_scores_one_half():
    fixed = torch.zeros(1, 3, 32, 32)
    fixed[:, :, 8:24, 14:18] = 1.0  # one upright bar, whatever the input
    scores = style_scores(lambda x: fixed.expand(len(x), -1, -1, -1), n=20)
    assert scores == {"style_bold": 0.5, "style_italic": 0.5}


def test_measures_on_synthetic_strokes():
    img = -torch.ones(2, 1, 32, 32)
    img[0, :, 6:26, 15:17] = 1.0  # thin upright bar
    img[1, :, 6:26, 14:18] = 1.0  # bold upright bar
    assert ink_amount(img)[1] > ink_amount(img)[0]
    lean = -torch.ones(1, 1, 32, 32)
    for row in range(6, 26):  # top of the bar to the right
        col = 16 + (16 - row) // 3
        lean[0, 0, row, col : col + 2] = 1.0
    assert float(slant(lean)[0]) > 0.2 and abs(float(slant(img)[0])) < 1e-4
