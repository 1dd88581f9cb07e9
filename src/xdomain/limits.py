"""Bounds on the work a user's counts can ask for, each with the reason it gives.

- `MAX_TILES`: outputs per input on the command line (`--samples`, `--interpolate`, `--morph`):
  each input's outputs form one strip image, 256 tiles wide at most (a 256 px model: 65536 px).
- `MAX_OUTPUT_BYTES`: one `translate` call returns its outputs as one tensor; it may hold at
  most 1 GiB (float32), whatever the count of inputs times outputs per input. Larger work is
  several calls (the CLI splits it by itself).
- `FORWARD_ROWS`: how many images a method sends through its generator at once when one call
  asks for many outputs per input, so memory stays flat beyond the result itself.
"""

from __future__ import annotations

from xdomain.errors import XDomainError

MAX_TILES = 256
MAX_OUTPUT_BYTES = 1 << 30
FORWARD_ROWS = 64
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer


def check_outputs(n_inputs: int, per_input: int, item_shape: tuple[int, ...], what: str) -> None:
    """Refuse a translate call whose result (n_inputs x per_input images of `item_shape`,
    float32) would exceed `MAX_OUTPUT_BYTES`, naming the count that asked for it (`what`)."""
    item = 4
    for d in item_shape:
        item *= int(d)
    need = n_inputs * per_input * item
    if need > MAX_OUTPUT_BYTES:
        fit = max(1, MAX_OUTPUT_BYTES // max(1, n_inputs * item))
        raise XDomainError(
            f"{what} asks for {n_inputs} x {per_input} outputs of {'x'.join(map(str, item_shape))}"
            f" ({need / 2**30:.1f} GiB as float32); one translate call returns at most 1 GiB:"
            f" at most {fit} per input for {n_inputs} input(s), or call translate in chunks"
        )
