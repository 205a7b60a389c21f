"""Write tests/fixtures/reference/mup_<family>.json from the microsoft mup package.

Every expected number in those files is what mup 1.0.0 itself gives, run with
PyTorch, never what initlab computes. For each case (a model family, an
optimizer, the readout's output multiplier α) and each target width, the
script does what a mup user does:

1. builds the base (proxy) model and the target model as torch modules whose
   parameter names are exactly those of initlab's expansion of the spec
   (``nn.Linear`` for weights stored (out, in), a GPT-2 style ``Conv1D`` for
   weights stored (in, out), ``nn.Embedding``, ``nn.LayerNorm``, and the
   readout as ``mup.MuReadout(readout_zero_init=True, output_mult=α)``);
2. calls ``mup.set_base_shapes(target, base)`` (no delta model);
3. initializes every parameter: ``mup.init.normal_(p, std=0.02)`` for every
   weight of two or more dimensions except the readout (which
   ``readout_zero_init`` zeroes), biases 0, LayerNorm weights 1;
4. builds ``mup.optim.MuAdam``, ``MuAdamW`` or ``MuSGD`` over
   ``model.parameters()`` with the base ``lr`` and ``weight_decay``.

What is recorded per parameter:

- ``init_std``: the std that ``mup.init.normal_`` hands to its sampler,
  captured by wrapping ``mup.init._no_grad_normal_`` while it runs (the exact
  scalar, not an estimate from the sample); 0 for a tensor the init left
  constant (zeros, or the ones of a LayerNorm weight), which is checked.
- ``lr`` and ``weight_decay``: those of the optimizer param group that holds
  the parameter after the mup optimizer split the groups.

and per target ``output_multiplier``: ``readout.output_mult /
readout.width_mult()``, the factor MuReadout applies to its input.

Each case's ``request`` is a body for ``POST /v1/mup/table`` that asks the
service the same question (form and weight-decay convention ``mup_package``).
The gpt-conv1d family stores the attention and MLP weights (in, out) like
GPT-2's Conv1D; mup takes the last width-like dimension as fan_in, so for those
weights its file holds the package's numbers, which use the fan_out multiplier
whenever the two multipliers differ.

Needs torch 2.13.0 (CPU), mup 1.0.0 installed with ``--no-deps`` (its own
requirements pull torchvision and a CUDA torch) and PyYAML, which mup imports;
``make fixtures`` installs them into ``tools/.venv-reference``. The service and
its tests never import these libraries.

Usage, from tools/: ``python make_mup_fixtures.py --out ../tests/fixtures/reference``
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import json
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mup
import torch
from torch import nn

# ``mup/__init__.py`` star-imports its submodules; take the init module itself,
# whose globals hold the sampler that ``mup.init.normal_`` calls.
mup_init = importlib.import_module("mup.init")

REPO_ROOT = Path(__file__).resolve().parent.parent
SPECS = REPO_ROOT / "tests" / "fixtures" / "mup"
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "reference"
GENERATOR = "tools/make_mup_fixtures.py"
COMMAND = "make fixtures"

INIT_STD = 0.02
WEIGHT_DECAY = 0.1
LEARNING_RATES = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.1}
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": mup.optim.MuAdam,
    "adamw": mup.optim.MuAdamW,
    "sgd": mup.optim.MuSGD,
}


@dataclass(frozen=True)
class Family:
    """One spec, its base and targets, and the cases asked of it."""

    name: str
    spec_file: str
    readout: str
    base_dims: dict[str, int]
    targets: tuple[dict[str, int], ...]
    optimizers: tuple[str, ...]
    output_multipliers: tuple[float, ...]
    learning_rates: dict[str, float]


GPT_TARGETS = (
    {"d_model": 256, "d_ff": 1024},
    {"d_model": 1024, "d_ff": 4096},
    # d_ff grows twice as fast as d_model here, so the two multipliers of an
    # MLP weight differ and a weight stored (in, out) gets the wrong one from
    # the package: the only target where gpt-conv1d departs from gpt.
    {"d_model": 128, "d_ff": 1024},
)

FAMILIES = (
    Family(
        name="mlp",
        spec_file="mlp.spec.json",
        readout="readout",
        base_dims={"w": 64},
        targets=({"w": 128}, {"w": 256}, {"w": 1024}, {"w": 4096}),
        optimizers=("adam", "adamw", "sgd"),
        output_multipliers=(1.0, 2.5),
        learning_rates=LEARNING_RATES,
    ),
    Family(
        name="gpt",
        spec_file="gpt.spec.json",
        readout="lm_head",
        base_dims={"d_model": 64, "d_ff": 256},
        targets=GPT_TARGETS,
        optimizers=("adam", "adamw", "sgd"),
        output_multipliers=(1.0, 2.5),
        learning_rates=LEARNING_RATES,
    ),
    Family(
        name="gpt-conv1d",
        spec_file="gpt-conv1d.spec.json",
        readout="lm_head",
        base_dims={"d_model": 64, "d_ff": 256},
        targets=GPT_TARGETS,
        optimizers=("adam", "adamw", "sgd"),
        output_multipliers=(2.5,),
        learning_rates=LEARNING_RATES,
    ),
    Family(
        name="mlp-3072",
        spec_file="mlp-3072.spec.json",
        readout="readout",
        base_dims={"w": 256},
        targets=({"w": 1024},),
        optimizers=("adamw",),
        output_multipliers=(1.0,),
        learning_rates={"adamw": 1e-3},
    ),
)


# --------------------------------------------------------------------------
# Torch models from the subset of the spec language the fixtures use
# --------------------------------------------------------------------------


class Conv1D(nn.Module):
    """GPT-2's Conv1D: the weight stored (in, out), y = x @ weight + bias."""

    def __init__(self, in_features: int, out_features: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features))
        else:
            self.register_parameter("bias", None)


@dataclass(frozen=True)
class Build:
    """What a model build needs besides the layers: sizes and the readout."""

    dims: dict[str, int]
    readout: str
    output_multiplier: float

    def size(self, value: int | str) -> int:
        return self.dims[value] if isinstance(value, str) else value


def build_model(spec: dict, build: Build) -> nn.Module:
    """A torch module whose named_parameters() are the spec's parameter names."""
    model = nn.Module()
    add_layers(model, spec["layers"], build, prefix="")
    return model


def add_layers(
    parent: nn.Module, layers: list[dict], build: Build, prefix: str
) -> None:
    for layer in layers:
        kind = layer["kind"]
        name = layer.get("name")

        if kind == "residual":
            if layer["norm"] != "pre" or name is not None or "shortcut" in layer:
                raise NotImplementedError(f"residual group {layer!r}")
            norm = {"kind": "layer_norm", "name": "norm"}
            norm = {**norm, **layer.get("norm_layer", {})}
            norm.setdefault("in", input_width(layer["layers"][0], build))
            add_layers(parent, [norm, *layer["layers"]], build, prefix)
        elif kind == "sequential":
            child = nn.Module()
            parent.add_module(name, child)
            add_layers(child, layer["layers"], build, f"{prefix}{name}.")
        elif kind == "repeat":
            blocks = nn.ModuleList()
            parent.add_module(name, blocks)
            for copy_index in range(build.size(layer["count"])):
                block = nn.Module()
                blocks.append(block)
                path = f"{prefix}{name}.{copy_index}."
                add_layers(block, layer["layers"], build, path)
        elif name is None:
            # The fixture specs name every layer; an index name is not mapped.
            raise NotImplementedError(f"unnamed layer {layer!r}")
        else:
            parent.add_module(name, leaf_module(layer, build, f"{prefix}{name}"))


def leaf_module(layer: dict, build: Build, path: str) -> nn.Module:
    kind = layer["kind"]
    if kind == "linear":
        return linear_module(
            build.size(layer["in"]),
            build.size(layer["out"]),
            bias=layer.get("bias", True),
            layout=layer.get("layout", "out_in"),
            readout=path == build.readout,
            build=build,
        )
    if kind == "embedding":
        return nn.Embedding(build.size(layer["in"]), build.size(layer["out"]))
    if kind == "layer_norm":
        return nn.LayerNorm(build.size(layer["in"]), bias=layer.get("bias", True))
    if kind == "attention":
        unsupported = {"n_kv_heads", "d_head", "fused_qkv"} & layer.keys()
        if unsupported:
            raise NotImplementedError(f"attention options {sorted(unsupported)}")
        width = build.size(layer["d_model"])
        attention = nn.Module()
        for projection in ("q", "k", "v", "o"):
            module = linear_module(
                width,
                width,
                bias=layer.get("bias", True),
                layout=layer.get("layout", "out_in"),
                readout=False,
                build=build,
            )
            attention.add_module(projection, module)
        return attention
    raise NotImplementedError(f"layer kind {kind!r}")


def linear_module(
    in_features: int,
    out_features: int,
    *,
    bias: bool,
    layout: str,
    readout: bool,
    build: Build,
) -> nn.Module:
    if readout:
        if layout != "out_in":
            raise NotImplementedError("a readout stored (in, out)")
        return mup.MuReadout(
            in_features,
            out_features,
            bias=bias,
            readout_zero_init=True,
            output_mult=build.output_multiplier,
        )
    if layout == "in_out":
        return Conv1D(in_features, out_features, bias)
    return nn.Linear(in_features, out_features, bias=bias)


def input_width(layer: dict, build: Build) -> int:
    """The width a layer (or the first layer of a group) reads."""
    if layer["kind"] == "attention":
        return build.size(layer["d_model"])
    if layer["kind"] in ("sequential", "residual"):
        return input_width(layer["layers"][0], build)
    return build.size(layer["in"])


# --------------------------------------------------------------------------
# What mup does to a target model
# --------------------------------------------------------------------------


@contextlib.contextmanager
def recorded_normal_stds() -> Iterator[dict[int, tuple[torch.Tensor, float]]]:
    """Record the std ``mup.init.normal_`` hands to its sampler, per tensor.

    The records map ``id(tensor)`` to the tensor (kept so the id stays its
    own) and the std; a nonzero mean is refused, as no fixture asks for one.
    """
    records: dict[int, tuple[torch.Tensor, float]] = {}
    original = mup_init._no_grad_normal_

    def recording(tensor, mean, std, generator=None):
        if float(mean) != 0.0:
            raise RuntimeError(f"mup asked for mean {mean!r}; expected 0")
        records[id(tensor)] = (tensor, float(std))
        return original(tensor, mean, std, generator)

    mup_init._no_grad_normal_ = recording
    try:
        yield records
    finally:
        mup_init._no_grad_normal_ = original


def initialize(model: nn.Module, readout: str) -> dict[str, float]:
    """Initialize as a mup user does; the std each parameter was drawn with."""
    layer_norm_weights = {
        id(module.weight)
        for module in model.modules()
        if isinstance(module, nn.LayerNorm)
    }
    readout_weight = f"{readout}.weight"

    with recorded_normal_stds() as records, torch.no_grad():
        for name, parameter in model.named_parameters():
            if name == readout_weight:
                continue
            if parameter.dim() >= 2:
                mup.init.normal_(parameter, std=INIT_STD)
            elif id(parameter) in layer_norm_weights:
                nn.init.ones_(parameter)
            else:
                nn.init.zeros_(parameter)

    stds = {}
    for name, parameter in model.named_parameters():
        if id(parameter) in records:
            stds[name] = records[id(parameter)][1]
            continue
        fill = 1.0 if id(parameter) in layer_norm_weights else 0.0
        if not bool(torch.all(parameter == fill)):
            raise RuntimeError(f"{name} is not constant {fill} after the init")
        stds[name] = 0.0
    return stds


def optimizer_settings(
    model: nn.Module, optimizer: str, lr: float
) -> dict[str, tuple[float, float]]:
    """(lr, weight_decay) of the mup param group holding each parameter."""
    built = OPTIMIZERS[optimizer](model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    by_id = {
        id(parameter): (float(group["lr"]), float(group["weight_decay"]))
        for group in built.param_groups
        for parameter in group["params"]
    }
    return {name: by_id[id(parameter)] for name, parameter in model.named_parameters()}


def target_expectation(
    family: Family,
    spec: dict,
    target: dict[str, int],
    optimizer: str,
    output_multiplier: float,
) -> dict[str, Any]:
    """What mup gives for one target of one case."""
    base_build = Build(
        {**spec["dims"], **family.base_dims}, family.readout, output_multiplier
    )
    target_build = Build({**spec["dims"], **target}, family.readout, output_multiplier)
    base = build_model(spec, base_build)
    model = build_model(spec, target_build)
    mup.set_base_shapes(model, base)

    stds = initialize(model, family.readout)
    settings = optimizer_settings(model, optimizer, family.learning_rates[optimizer])
    readout = model.get_submodule(family.readout)

    parameters = {
        name: {
            "lr": settings[name][0],
            "weight_decay": settings[name][1],
            "init_std": stds[name],
        }
        for name, _ in model.named_parameters()
    }
    return {
        "dims": target_build.dims,
        "output_multiplier": float(readout.output_mult / readout.width_mult()),
        "parameters": parameters,
    }


# --------------------------------------------------------------------------
# Cases and files
# --------------------------------------------------------------------------


def family_cases(family: Family) -> list[dict[str, Any]]:
    spec = json.loads((SPECS / family.spec_file).read_text(encoding="utf-8"))
    cases = []
    for optimizer in family.optimizers:
        for output_multiplier in family.output_multipliers:
            request = {
                "spec": spec,
                "base_dims": family.base_dims,
                "targets": list(family.targets),
                "optimizer": optimizer,
                "lr": family.learning_rates[optimizer],
                "weight_decay": WEIGHT_DECAY,
                "init_std": INIT_STD,
                "readout_zero_init": True,
                "output_multiplier": output_multiplier,
                "form": "mup_package",
                "weight_decay_convention": "mup_package",
            }
            targets = [
                target_expectation(family, spec, target, optimizer, output_multiplier)
                for target in family.targets
            ]
            cases.append(
                {
                    "id": f"{family.name}-{optimizer}-out{output_multiplier!r}",
                    "request": request,
                    "expected": {"targets": targets},
                }
            )
    return cases


def family_notes(family: Family) -> list[str]:
    notes = [
        f"Each target: mup.set_base_shapes(target, base) with base dims "
        f"{family.base_dims}; mup.init.normal_(p, std={INIT_STD}) on every "
        "weight of two or more dimensions except the readout, which "
        "MuReadout(readout_zero_init=True) zeroes; biases 0, LayerNorm weights 1.",
        "init_std is the std mup.init.normal_ handed to its sampler (0 for a "
        "constant tensor); lr and weight_decay are those of the param group of "
        "MuAdam, MuAdamW or MuSGD holding the parameter; output_multiplier is "
        "readout.output_mult / readout.width_mult().",
    ]
    if family.name == "gpt-conv1d":
        notes.append(
            "Attention and MLP weights are stored (in, out) like GPT-2's Conv1D: "
            "these are the package's numbers, which take the last width-like "
            "dimension (the output) as fan_in; the true fan_in answer for them is "
            "that of the gpt family."
        )
    return notes


def write(path: Path, document: dict) -> None:
    path.write_text(
        json.dumps(document, indent=1, sort_keys=True, allow_nan=False) + "\n",
        encoding="utf-8",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)

    versions = {
        "torch": torch.__version__,
        "mup": importlib.metadata.version("mup"),
        "python": platform.python_version(),
    }
    for family in FAMILIES:
        document = {
            "generator": GENERATOR,
            "command": COMMAND,
            "versions": versions,
            "notes": family_notes(family),
            "cases": family_cases(family),
        }
        path = arguments.out / f"mup_{family.name}.json"
        write(path, document)
        print(f"wrote {path} ({len(document['cases'])} cases)")


if __name__ == "__main__":
    main()
