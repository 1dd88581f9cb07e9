"""Label schemas (xdomain.labels): layout, the mask-vector condition, target parsing with
one-line errors, the official test grid and the classification loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xdomain.errors import XDomainError
from xdomain.labels import LabelSpace, categorical_schema, celeba_schema


def _celeba():
    schema, columns = celeba_schema(["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"])
    return schema, columns


def test_celeba_schema_groups_hair_and_keeps_file_columns() -> None:
    schema, columns = _celeba()
    assert [a.name for a in schema.attributes] == ["hair", "male", "young"]
    assert schema.width == 5 and columns == [
        "Black_Hair",
        "Blond_Hair",
        "Brown_Hair",
        "Male",
        "Young",
    ]


def test_parse_sets_named_attributes_and_keeps_the_rest() -> None:
    schema, _ = _celeba()
    space = LabelSpace((schema,))
    base = torch.tensor([[1.0, 0, 0, 1, 1]])
    c = space.parse("hair=blond,male=0", [base])
    assert c.tolist() == [[0.0, 1, 0, 0, 1]]


def test_unknown_attribute_and_value_are_one_line_errors_listing_what_exists() -> None:
    schema, _ = _celeba()
    space = LabelSpace((schema,))
    base = torch.zeros(1, 5)
    with pytest.raises(
        XDomainError, match=r"unknown attribute 'beard'.*hair \(black\|blond\|brown\)"
    ):
        space.parse("beard=1", [base])
    with pytest.raises(XDomainError, match=r"hair='red' is not a value of hair; valid: black"):
        space.parse("hair=red", [base])
    with pytest.raises(XDomainError, match="use male=1 or male=0"):
        space.parse("male=maybe", [base])


def test_mask_vector_condition_and_one_dataset_per_target() -> None:
    celeba, _ = _celeba()
    rafd = categorical_schema("rafd", "expression", ["angry", "happy"])
    space = LabelSpace((celeba, rafd))
    assert (space.cls_dim, space.c_dim) == (7, 9)
    base = [torch.tensor([[1.0, 0, 0, 1, 1]]), torch.zeros(1, 2)]
    c = space.parse("expression=happy", base)
    assert c.tolist() == [[0.0, 0, 0, 0, 0, 0, 1, 0, 1]]
    with pytest.raises(XDomainError, match="mixes attributes of datasets celeba and rafd"):
        space.parse("male=1,expression=happy", base)


def test_all_targets_is_the_official_grid() -> None:
    schema, _ = _celeba()
    base = torch.tensor([[1.0, 0, 0, 1, 0]])
    grid = LabelSpace((schema,)).all_targets([base])
    assert [cap for cap, _ in grid] == [
        "hair=black",
        "hair=blond",
        "hair=brown",
        "male flipped",
        "young flipped",
    ]
    assert grid[3][1].tolist() == [[1.0, 0, 0, 0, 0]]


def test_loss_is_bce_sum_over_batch_plus_cross_entropy() -> None:
    celeba, _ = _celeba()
    rafd = categorical_schema("rafd", "expression", ["a", "b", "c"])
    logits = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    labels = (torch.rand(4, 5, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    want = F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / 4
    torch.testing.assert_close(celeba.loss(logits, labels), want)
    lg3 = logits[:, :3]
    y = torch.tensor([0, 2, 1, 0])
    torch.testing.assert_close(rafd.loss(lg3, F.one_hot(y, 3).float()), F.cross_entropy(lg3, y))
