"""Official checkpoints -> xdomain weights.

One module per family of official code (`junyanz` for CycleGAN/pix2pix/BicycleGAN, `ugatit` for
U-GAT-IT and Morph-UGATIT, `stargan`, `discogan`). Each holds, for every network of that code,
a key converter `official state_dict -> our state_dict` (the parity tests in `tests/` load the
fixtures of `../shared/reference` through these same functions), and a reader for the official
file format that never unpickles arbitrary objects.
"""
