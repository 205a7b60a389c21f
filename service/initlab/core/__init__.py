"""The mathematics of initlab: pure Python and numpy, never imports Flask.

Modules:
- ``types``: the data model shared by every module (expanded parameters,
  activations, recommendations).
- ``activations``: activation functions, Gaussian moments and gains.
- ``fans``: library and signal fans of a parameter tensor.
- ``initializers``: one function per initializer formula, each citing its source.
- ``spec``: the architecture spec and its expansion into parameter tensors.
- ``recommend``: applying an init scheme to every parameter of a spec.
- ``schemes``: the catalogue of schemes with their options, formulas and sources.
"""
