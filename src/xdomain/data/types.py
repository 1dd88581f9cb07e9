"""What flows from the data layer to a method: a `Batch` of tensors and the `DataSpec` a method
builds its networks from (saved with every checkpoint)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from torch import Tensor

# unpaired and paired: a, b (+ a_label, b_label; paired: item i of a belongs with item i of b);
# labelled (data.sources): x0, label0, x1, label1, ...
Batch = dict[str, Tensor]


@dataclass
class DataSpec:
    """What a method needs to know about its data to build its networks (saved with checkpoints)."""

    kind: Literal["image", "points"] = "image"
    channels: int = 3
    image_size: int = 32
    dims: int = 2  # points only
    num_classes_a: int = 0  # 0: the domain has no labels
    num_classes_b: int = 0
    name_a: str = "a"
    name_b: str = "b"
    # labelled data (StarGAN): the label schema of each dataset (`xdomain.labels.LabelSpace`
    # as a list of dicts); empty for unpaired data
    labels: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
