"""Official checkpoints -> xdomain weights.

One module per official code base (`junyanz` for CycleGAN, `bicyclegan` for the pix2pix and
BicycleGAN U-Nets, `ugatit` for U-GAT-IT and Morph-UGATIT, `stargan`, `discogan`). Each holds,
for every network of that code, a key converter `official state_dict -> our state_dict` (the
parity tests in `tests/` load the fixtures of `../shared/reference` through these same
functions), a reader for the official file format that never unpickles arbitrary objects, and
the `READERS` behind its `--from` names: which of our networks a file fills and the method
Config its shapes make. `registry` lists the `--from` names (light: the CLI's help reads it
without torch); `official` turns files into a run the same way for all of them.
"""
