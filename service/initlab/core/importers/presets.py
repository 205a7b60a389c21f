"""Common architectures built from a few parameters: an MLP, a ResNet, a transformer.

:func:`expand_preset` turns a preset name and its parameters into a spec;
:data:`PRESETS` describes every preset and parameter (type, default, allowed
values), so a client can list them and a request can be checked against them.

The specs name their sizes with the importers' canonical dims (``d_model``,
``d_ff``, ``n_layer``, ``n_heads``, ... for the transformer; ``d_model`` and
``n_layer`` for the MLP's hidden width and depth; ``width`` for the ResNet),
so a µP target built on a preset varies the same names as one built on an
imported model.

- ``mlp``: an input layer, hidden layers (optionally pre-norm residual
  blocks, with a linear projection shortcut where the width changes) and an
  output layer.
- ``resnet``: torchvision's ResNet (see :mod:`.torchvision`), with any depth,
  blocks per stage, base width and grouping.
- ``transformer``: a decoder-only language model named as GPT-2's
  (``wte``, ``wpe``, ``h.<i>.ln_1``, ``h.<i>.attn``, ``h.<i>.ln_2``,
  ``h.<i>.mlp``, ``ln_f``, ``lm_head``), pre- or post-norm, with grouped-query
  attention and gated MLPs as Llama writes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

from initlab.core.activations import ACTIVATION_NAMES, activation_from_json
from initlab.core.errors import (
    FieldProblem,
    InvalidInput,
    Path,
    closest,
    json_value,
)
from initlab.core.importers import ImportedSpec
from initlab.core.importers.torchvision import (
    MAX_BLOCKS_PER_STAGE,
    TORCHVISION_ARCHS,
    ResNetShape,
    build_resnet_spec,
    resnet_notes,
    resnet_shape_problems,
    resnet_width_dims,
)

ParameterType = Literal["integer", "boolean", "string", "integer_list", "activation"]

#: The largest size a parameter may give: the spec's default ``max_dim_size``.
MAX_SIZE = 2**31 - 1
#: The largest layer count: the spec's default ``max_repeat_count``.
MAX_DEPTH = 10_000
#: The most hidden widths an MLP's ``widths`` may list (each is its own layer).
MAX_WIDTHS = 1_000
#: The multiple a gated MLP's default d_ff is rounded up to.
GATED_D_FF_MULTIPLE = 64


@dataclass(frozen=True)
class PresetParameter:
    """One parameter of a preset: its type, default and the values it accepts.

    ``default`` ``None`` means the value is derived from the others (the
    description says how) or the feature is off; ``null`` may then be given
    for it. ``minimum``/``maximum`` bound an integer (or each entry of an
    integer list, whose length lies in ``items``); ``choices`` lists the only
    values a string or integer may take.
    """

    name: str
    type: ParameterType
    default: Any
    description: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[Any, ...] = ()
    items: tuple[int, int] | None = None

    @property
    def allowed(self) -> str:
        """The accepted values, in words, for the catalogue and for messages."""
        if self.type == "boolean":
            return "true or false"
        if self.type == "activation":
            return (
                f"an activation name ({', '.join(self.choices)}) or an object"
                ' {"name": ..., <parameter>: ...}'
            )
        if self.choices:
            return "one of " + ", ".join(json_value(c) for c in self.choices)
        numbers = f"integers from {self.minimum} to {self.maximum}"
        if self.type == "integer":
            return f"an integer from {self.minimum} to {self.maximum}"
        low, high = self.items or (1, 1)
        if low == high:
            return f"a list of {low} {numbers}"
        return f"a list of {low} to {high} {numbers}"

    def as_dict(self) -> dict[str, Any]:
        """The catalogue entry (``GET /v1/presets``): JSON data."""
        entry = {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "allowed": self.allowed,
            "description": self.description,
        }
        if self.minimum is not None:
            entry |= {"minimum": self.minimum, "maximum": self.maximum}
        if self.choices:
            entry["choices"] = list(self.choices)
        if self.items is not None:
            entry |= {"min_items": self.items[0], "max_items": self.items[1]}

        return entry


@dataclass(frozen=True)
class Preset:
    """A preset: what it builds and the parameters it takes, in order."""

    description: str
    parameters: tuple[PresetParameter, ...]

    def parameter(self, name: str) -> PresetParameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        """The catalogue entry (``GET /v1/presets``), without the preset's name."""
        return {
            "description": self.description,
            "parameters": [parameter.as_dict() for parameter in self.parameters],
        }


def _size(
    name: str, default: int | None, description: str, minimum: int = 1
) -> PresetParameter:
    return PresetParameter(
        name, "integer", default, description, minimum=minimum, maximum=MAX_SIZE
    )


def _flag(name: str, default: bool, description: str) -> PresetParameter:
    return PresetParameter(name, "boolean", default, description)


def _activation(default: str | None, description: str) -> PresetParameter:
    return PresetParameter(
        "activation", "activation", default, description, choices=ACTIVATION_NAMES
    )


#: The resnet preset's depths and the torchvision archs that fix their blocks.
RESNET_DEPTHS: dict[int, str] = {
    18: "resnet18",
    34: "resnet34",
    50: "resnet50",
    101: "resnet101",
    152: "resnet152",
}

PRESETS: dict[str, Preset] = {
    "mlp": Preset(
        "A multilayer perceptron: input layer, hidden layers (optionally pre-norm"
        " residual blocks), output layer. The defaults give the 784-256-256-10"
        " ReLU MLP.",
        (
            _size("d_in", 784, "input features"),
            _size(
                "width",
                256,
                "width of every hidden layer (dim d_model); give widths instead"
                " for layers of different widths",
            ),
            PresetParameter(
                "widths",
                "integer_list",
                None,
                "the width of each hidden layer, in order (dims width_1 ...);"
                " replaces width and sets depth",
                minimum=1,
                maximum=MAX_SIZE,
                items=(1, MAX_WIDTHS),
            ),
            PresetParameter(
                "depth",
                "integer",
                2,
                "hidden layers: the input layer's output and depth - 1 layers"
                " after it (their count is dim n_layer)",
                minimum=1,
                maximum=MAX_DEPTH,
            ),
            _size("d_out", 10, "outputs of the last layer"),
            _activation("relu", "the activation after the input and hidden layers"),
            _flag("bias", True, "biases in the linear layers and layer norms"),
            PresetParameter(
                "norm",
                "string",
                "none",
                "a norm before each hidden layer and before the output layer",
                choices=("none", "layer_norm", "rms_norm"),
            ),
            _flag(
                "residual",
                False,
                "hidden layers after the input layer as residual blocks x + f(norm(x))",
            ),
        ),
    ),
    "resnet": Preset(
        "torchvision's ResNet (He et al. 2016; torchvision.models.resnet), with"
        " torchvision's parameter names. The defaults give ResNet-50.",
        (
            PresetParameter(
                "depth",
                "integer",
                50,
                "a torchvision depth, setting the blocks per stage (and, unless"
                " given, the block kind); give blocks instead for other depths",
                choices=tuple(RESNET_DEPTHS),
            ),
            PresetParameter(
                "blocks",
                "integer_list",
                None,
                "residual blocks in each of the four stages; replaces depth",
                minimum=1,
                maximum=MAX_BLOCKS_PER_STAGE,
                items=(4, 4),
            ),
            PresetParameter(
                "bottleneck",
                "boolean",
                None,
                "Bottleneck blocks (1×1, 3×3, 1×1, expansion 4) rather than"
                " BasicBlocks (two 3×3); default true for depth 50 and deeper and"
                " with blocks, false for depths 18 and 34",
            ),
            _size(
                "width",
                64,
                "the stem's channels (torchvision: 64); stage i has planes"
                " width·2^(i-1)",
            ),
            _size(
                "width_per_group",
                64,
                "bottleneck 3×3 width per group at planes 64 (wide ResNets: 128)",
            ),
            _size("groups", 1, "groups of each bottleneck's 3×3 conv (ResNeXt: 32)"),
            _size("num_classes", 1000, "outputs of fc"),
        ),
    ),
    "transformer": Preset(
        "A decoder-only transformer language model with GPT-2's names:"
        " embeddings, n_layer blocks of attention and MLP, final norm, LM head."
        " The defaults give GPT-2 small's shapes (124,439,808 parameters).",
        (
            _size("vocab", 50257, "vocabulary size"),
            _size(
                "n_positions",
                1024,
                "learned position embeddings (wpe); 0 for none (rotary or no"
                " positions)",
                minimum=0,
            ),
            _size("d_model", 768, "the residual stream's width"),
            PresetParameter(
                "n_layer",
                "integer",
                12,
                "transformer blocks",
                minimum=1,
                maximum=MAX_DEPTH,
            ),
            _size("n_heads", 12, "attention heads; must divide d_model"),
            _size(
                "n_kv_heads",
                None,
                "key/value heads (grouped-query attention); must divide n_heads;"
                " default n_heads",
            ),
            _size(
                "d_ff",
                None,
                "the MLP's hidden width; default 4·d_model, or 8/3·d_model"
                f" rounded up to a multiple of {GATED_D_FF_MULTIPLE} when gated",
            ),
            _flag("gated", False, "a gated MLP down(act(gate(x))·up(x)) as Llama's"),
            _activation(None, "the MLP's activation; default gelu, silu when gated"),
            PresetParameter(
                "norm",
                "string",
                "layer_norm",
                "the norm kind",
                choices=("layer_norm", "rms_norm"),
            ),
            PresetParameter(
                "norm_position",
                "string",
                "pre",
                "pre: norm on each branch's input and a final norm (GPT-2);"
                " post: norm after each residual addition, no final norm (BERT)",
                choices=("pre", "post"),
            ),
            _flag("tied", True, "lm_head shares wte's weight"),
            _flag("bias", True, "biases in the projections and layer norms"),
            _flag("fused_qkv", False, "one qkv projection instead of q, k and v"),
        ),
    ),
}


def expand_preset(name: str, params: Mapping[str, Any]) -> ImportedSpec:
    """The spec of preset ``name`` with ``params`` (missing ones take defaults).

    Raises :class:`InvalidInput` with paths ``("name",)`` for an unknown preset
    and ``("params", <parameter>)`` for every parameter that is unknown, of
    the wrong type, out of range or inconsistent with another.
    """
    if not isinstance(name, str) or name not in PRESETS:
        message = f"unknown preset {json_value(name)}; available: {', '.join(PRESETS)}"
        suggestion = closest(name.lower(), PRESETS) if isinstance(name, str) else None
        if suggestion:
            message += f"; did you mean {json_value(suggestion)}?"
        raise InvalidInput.at(("name",), message, name, ", ".join(PRESETS))
    if not isinstance(params, Mapping):
        raise InvalidInput.at(
            ("params",),
            f"params must be an object of {name} parameters; got"
            f" {json_value(params)}; write e.g. {{}} for the defaults",
            params,
            "an object",
        )

    preset = PRESETS[name]
    values = _checked_values(name, preset, params)
    builders = {"mlp": _mlp, "resnet": _resnet, "transformer": _transformer}
    return builders[name](values, set(params))


def gated_d_ff(d_model: int) -> int:
    """A gated MLP's default hidden width: 8/3·d_model, rounded up to a multiple of 64.

    Three matrices of d_model × 8/3·d_model hold as many weights as the two of
    d_model × 4·d_model (Shazeer 2020, "GLU Variants Improve Transformer",
    §2); Llama rounds the same way (``multiple_of`` in Meta's llama
    ``model.py``), to 256 rather than 64.
    """
    multiple = 3 * GATED_D_FF_MULTIPLE
    return -(-8 * d_model // multiple) * GATED_D_FF_MULTIPLE


# --- Checking the parameters ------------------------------------------------------


def _checked_values(
    preset_name: str, preset: Preset, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Every parameter's value (given or default), after checking each given one."""
    problems: list[FieldProblem] = []
    names = [p.name for p in preset.parameters]
    for key, value in params.items():
        parameter = preset.parameter(key) if isinstance(key, str) else None
        if parameter is None:
            message = (
                f"unknown parameter {json_value(key)} for preset"
                f" {json_value(preset_name)}; allowed: {', '.join(names)}"
            )
            suggestion = closest(key, names)
            message += (
                f"; did you mean {json_value(suggestion)}?"
                if suggestion
                else f"; remove {json_value(key)}"
            )
            problems.append(
                FieldProblem(("params", str(key)), message, key, ", ".join(names))
            )
            continue
        problems += _value_problems(parameter, value)
    if problems:
        raise InvalidInput(problems)

    return {
        p.name: params[p.name] if params.get(p.name) is not None else p.default
        for p in preset.parameters
    }


def _value_problems(parameter: PresetParameter, value: Any) -> list[FieldProblem]:
    path: Path = ("params", parameter.name)
    if value is None and parameter.default is None:
        return []
    if parameter.type == "activation":
        try:
            activation_from_json(value)
        except InvalidInput as error:
            return [p.prefixed(*path) for p in error.problems]
        return []

    if _fits(parameter, value):
        return []
    message = (
        f"{parameter.name} must be {parameter.allowed}; got {json_value(value)}"
        f" ({parameter.name}: {parameter.description})"
    )
    if parameter.type == "string" and isinstance(value, str):
        suggestion = closest(value.lower(), parameter.choices)
        if suggestion:
            message += f"; did you mean {json_value(suggestion)}?"
    return [FieldProblem(path, message, value, parameter.allowed)]


def _fits(parameter: PresetParameter, value: Any) -> bool:
    """Whether ``value`` has ``parameter``'s type and lies in its allowed values."""
    if parameter.type == "boolean":
        return isinstance(value, bool)
    if parameter.type == "string":
        return isinstance(value, str) and value in parameter.choices
    if parameter.type == "integer":
        return _fits_integer(parameter, value)

    low, high = parameter.items or (1, 1)
    return (
        isinstance(value, list | tuple)
        and low <= len(value) <= high
        and all(_fits_integer(parameter, entry) for entry in value)
    )


def _fits_integer(parameter: PresetParameter, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    if parameter.choices:
        return value in parameter.choices

    return parameter.minimum <= value <= parameter.maximum


def _problem(name: str, message: str, value: Any, allowed: str) -> InvalidInput:
    return InvalidInput.at(("params", name), message, value, allowed)


# --- mlp -------------------------------------------------------------------------


def _mlp(values: dict[str, Any], given: set[str]) -> ImportedSpec:
    """An MLP: ``input``, ``hidden.<i>`` (``norm``, ``fc``), ``norm``, ``output``.

    Hidden layer i ≥ 2 maps the width before it to its own; as a residual block
    it is x + act(fc(norm(x))) (the pre-norm form of Xiong et al. 2020), with a
    bias-free linear ``shortcut`` where the width changes (He et al. 2016,
    projection shortcut).
    """
    widths = values["widths"]
    if widths is not None:
        if "width" in given:
            raise _problem(
                "widths",
                "give width or widths, not both: widths lists every hidden"
                f" layer's width; got width {json_value(values['width'])} and"
                f" widths {json_value(widths)}",
                widths,
                "widths alone, or width with depth",
            )
        if "depth" in given and values["depth"] != len(widths):
            raise _problem(
                "depth",
                f"depth = {values['depth']} but widths lists {len(widths)} hidden"
                f" layers; remove depth (widths sets it) or make them agree",
                values["depth"],
                str(len(widths)),
            )

    norm, bias = values["norm"], values["bias"]
    activation = values["activation"]
    dims: dict[str, int] = {"d_in": values["d_in"]}
    if widths is None:
        dims["d_model"] = values["width"]
        if values["depth"] > 1:
            dims["n_layer"] = values["depth"] - 1
        widths_dims = ["d_model"]
    else:
        widths_dims = [f"width_{i + 1}" for i in range(len(widths))]
        dims |= dict(zip(widths_dims, widths, strict=True))
    dims["d_out"] = values["d_out"]

    style = _HiddenStyle(norm, bias, activation, values["residual"])
    layers: list[dict[str, Any]] = [
        _linear("input", "d_in", widths_dims[0], bias, activation)
    ]
    if widths is None and values["depth"] > 1:
        body = style.layer(None, "d_model", "d_model", shortcut=False)
        layers.append(
            {"kind": "repeat", "name": "hidden", "count": "n_layer", "layers": body}
        )
    elif widths is not None and len(widths) > 1:
        # A shortcut where the sizes differ, not the dims: a lab that changes
        # one width in a µP target is told the branch no longer adds up.
        hidden = [
            style.layer(str(i), before, after, widths[i] != widths[i + 1])[0]
            for i, (before, after) in enumerate(pairwise(widths_dims))
        ]
        layers.append({"kind": "sequential", "name": "hidden", "layers": hidden})
    if norm != "none":
        layers.append(_norm(norm, "norm", widths_dims[-1], bias))
    layers.append(_linear("output", widths_dims[-1], "d_out", bias, None))

    notes = [
        "Names: input, hidden.<i>.fc (with hidden.<i>.norm before it when norm is"
        " set), norm, output; hidden.<i> is the (i+2)-th hidden layer, the first"
        " being input's output."
    ]
    if widths is None and values["depth"] > 1:
        notes.append(
            f"n_layer = depth - 1 = {values['depth'] - 1} counts the d_model → d_model"
            " layers after the input layer: a µP target changes it to change depth."
        )
    if values["residual"]:
        notes.append(
            "Residual hidden layers compute x + act(fc(norm(x))); a layer that"
            " changes the width has a bias-free linear shortcut."
        )
    scale_dims = {"n_layer": values["depth"] - 1} if "n_layer" in dims else {}
    if widths is None:
        scale_dims = {"d_model": values["width"], **scale_dims}

    return ImportedSpec(
        spec={"dims": dims, "layers": layers},
        source="preset:mlp",
        scale_dims=scale_dims,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class _HiddenStyle:
    """How every hidden layer of an MLP is written."""

    norm: str
    bias: bool
    activation: Any
    residual: bool

    def layer(
        self, name: str | None, in_dim: str, out_dim: str, shortcut: bool
    ) -> list[dict[str, Any]]:
        """A hidden layer: a residual group, a named sequential, or its bare layers.

        ``name`` None gives the layers of a repeat's copy (named by the repeat);
        ``shortcut`` adds a residual group's projection shortcut.
        """
        fc = _linear("fc", in_dim, out_dim, self.bias, self.activation)
        if self.residual:
            group: dict[str, Any] = {"kind": "residual"}
            if name is not None:
                group["name"] = name
            group["norm"] = "none" if self.norm == "none" else "pre"
            if self.norm != "none":
                group["norm_layer"] = _norm_layer(self.norm, "norm", self.bias)
            group["layers"] = [fc]
            if shortcut:
                group["shortcut"] = [_linear("shortcut", in_dim, out_dim, False, None)]
            return [group]

        layers = [fc]
        if self.norm != "none":
            layers.insert(0, _norm(self.norm, "norm", in_dim, self.bias))
        if name is None:
            return layers
        return [{"kind": "sequential", "name": name, "layers": layers}]


# --- resnet ----------------------------------------------------------------------


def _resnet(values: dict[str, Any], given: set[str]) -> ImportedSpec:
    """torchvision's ResNet through :func:`.torchvision.build_resnet_spec`."""
    if "blocks" in given and "depth" in given and values["blocks"] is not None:
        raise _problem(
            "blocks",
            "give depth or blocks, not both: depth names torchvision's blocks per"
            f" stage; got depth {json_value(values['depth'])} and blocks"
            f" {json_value(values['blocks'])}",
            values["blocks"],
            "blocks alone, or depth alone",
        )

    arch = TORCHVISION_ARCHS[RESNET_DEPTHS[values["depth"]]]
    layers = arch.layers if values["blocks"] is None else tuple(values["blocks"])
    bottleneck = values["bottleneck"]
    if bottleneck is None:
        bottleneck = values["blocks"] is not None or arch.block == "bottleneck"
    shape = ResNetShape(
        "bottleneck" if bottleneck else "basic",
        layers,
        width=values["width"],
        groups=values["groups"],
        width_per_group=values["width_per_group"],
        num_classes=values["num_classes"],
    )
    paths = {name: ("params", name) for name in ("groups", "width_per_group")}
    problems = resnet_shape_problems(shape, paths)
    if problems:
        raise InvalidInput(problems)

    kind = "Bottleneck" if bottleneck else "BasicBlock"
    notes = [
        f"ResNet({kind}, {list(layers)}, groups={shape.groups},"
        f" width_per_group={shape.width_per_group},"
        f" num_classes={shape.num_classes}) of torchvision.models.resnet, with"
        f" a stem width of {shape.width}; names are torchvision's.",
        *resnet_notes(shape),
    ]
    return ImportedSpec(
        spec=build_resnet_spec(shape),
        source="preset:resnet",
        scale_dims=resnet_width_dims(shape),
        notes=tuple(notes),
    )


# --- transformer -----------------------------------------------------------------


def _transformer(values: dict[str, Any], given: set[str]) -> ImportedSpec:
    """A GPT-2-shaped decoder (transformers' modeling_gpt2.GPT2LMHeadModel).

    Each block is two residual groups, attention then MLP; pre-norm puts
    ``ln_1``/``ln_2`` on the branch inputs and adds ``ln_f`` (GPT-2), post-norm
    puts them after the additions (Vaswani et al. 2017; BERT) and has no final
    norm. A gated MLP is Llama's (transformers' modeling_llama.LlamaMLP).
    """
    d_model, n_heads = values["d_model"], values["n_heads"]
    n_kv_heads = values["n_kv_heads"] or n_heads
    if d_model % n_heads:
        raise _problem(
            "n_heads",
            f"n_heads = {n_heads} does not divide d_model = {d_model}: each head"
            f" takes d_model / n_heads features; choose a divisor of {d_model}"
            f" (the nearest: {_nearest_divisors(d_model, n_heads)})",
            n_heads,
            f"a divisor of d_model ({d_model})",
        )
    if n_heads % n_kv_heads:
        raise _problem(
            "n_kv_heads",
            f"n_kv_heads = {n_kv_heads} does not divide n_heads = {n_heads}: each"
            " key/value head serves n_heads / n_kv_heads query heads; choose a"
            f" divisor of {n_heads} (the nearest:"
            f" {_nearest_divisors(n_heads, n_kv_heads)})",
            n_kv_heads,
            f"a divisor of n_heads ({n_heads})",
        )

    gated, bias, norm = values["gated"], values["bias"], values["norm"]
    d_ff = values["d_ff"] or (gated_d_ff(d_model) if gated else 4 * d_model)
    activation = values["activation"] or ("silu" if gated else "gelu")
    pre = values["norm_position"] == "pre"

    dims = {"vocab": values["vocab"]}
    if values["n_positions"] > 0:
        dims["n_positions"] = values["n_positions"]
    dims |= {"d_model": d_model, "d_ff": d_ff, "n_layer": values["n_layer"]}
    dims["n_heads"] = n_heads
    attention: dict[str, Any] = {
        "kind": "attention",
        "name": "attn",
        "d_model": "d_model",
        "n_heads": "n_heads",
    }
    if n_kv_heads != n_heads:
        dims["n_kv_heads"] = n_kv_heads
        attention["n_kv_heads"] = "n_kv_heads"
    attention |= {"fused_qkv": values["fused_qkv"], "bias": bias}

    if gated:
        mlp = {
            "kind": "gated_mlp",
            "name": "mlp",
            "d_model": "d_model",
            "d_ff": "d_ff",
            "activation": activation,
            "bias": bias,
        }
    else:
        mlp = {
            "kind": "sequential",
            "name": "mlp",
            "layers": [
                _linear("c_fc", "d_model", "d_ff", bias, activation),
                _linear("c_proj", "d_ff", "d_model", bias, None),
            ],
        }
    placement = "pre" if pre else "post"
    block = [
        {
            "kind": "residual",
            "norm": placement,
            "norm_layer": _norm_layer(norm, "ln_1", bias),
            "layers": [attention],
        },
        {
            "kind": "residual",
            "norm": placement,
            "norm_layer": _norm_layer(norm, "ln_2", bias),
            "layers": [mlp],
        },
    ]

    layers: list[dict[str, Any]] = [
        {"kind": "embedding", "name": "wte", "in": "vocab", "out": "d_model"}
    ]
    if values["n_positions"] > 0:
        layers.append(
            {"kind": "embedding", "name": "wpe", "in": "n_positions", "out": "d_model"}
        )
    layers.append({"kind": "repeat", "name": "h", "count": "n_layer", "layers": block})
    if pre:
        layers.append(_norm(norm, "ln_f", "d_model", bias))
    head = _linear("lm_head", "d_model", "vocab", False, None)
    if values["tied"]:
        head["tied_to"] = "wte"
    layers.append(head)

    return ImportedSpec(
        spec={"dims": dims, "layers": layers},
        source="preset:transformer",
        scale_dims={
            "d_model": d_model,
            "d_ff": d_ff,
            "n_heads": n_heads,
            "d_head": d_model // n_heads,
            "n_layer": values["n_layer"],
        },
        derived_dims=("d_head",),
        notes=tuple(_transformer_notes(values, given, d_ff, activation)),
    )


def _nearest_divisors(number: int, near: int) -> str:
    """The divisors of ``number`` just below and just above ``near``, as text."""
    divisors: set[int] = set()
    for low in range(1, math.isqrt(number) + 1):
        if number % low == 0:
            divisors |= {low, number // low}
    below = max(d for d in divisors if d < near)
    above = [d for d in divisors if d > near]

    return f"{below} or {min(above)}" if above else str(below)


def _transformer_notes(
    values: dict[str, Any], given: set[str], d_ff: int, activation: Any
) -> list[str]:
    mlp = "mlp.gate, mlp.up, mlp.down" if values["gated"] else "mlp.c_fc, mlp.c_proj"
    qkv = (
        "attn.qkv, attn.o" if values["fused_qkv"] else "attn.q, attn.k, attn.v, attn.o"
    )
    notes = [
        f"Names follow GPT-2's: wte, wpe, h.<i>.ln_1, {qkv}, h.<i>.ln_2, {mlp},"
        " ln_f, lm_head; the attention projections and gated MLPs are named as"
        " the spec language names them. Weights are stored (out, in) as"
        " nn.Linear does."
    ]
    if "d_ff" not in given or values["d_ff"] is None:
        rule = (
            f"8/3·d_model rounded up to a multiple of {GATED_D_FF_MULTIPLE}"
            if values["gated"]
            else "4·d_model"
        )
        notes.append(f"d_ff = {rule} = {d_ff}.")
    if values["activation"] is None:
        notes.append(
            f"activation: {activation} (the default when gated is"
            f" {json_value(values['gated'])})."
        )
    if values["tied"]:
        notes.append("lm_head shares wte's weight: counted once; lm_head has no bias.")
    else:
        notes.append("lm_head has its own weight and no bias.")
    if values["n_positions"] == 0:
        notes.append("No learned position embedding (n_positions 0).")
    if values["norm_position"] == "post":
        notes.append(
            "Post-norm: ln_1 and ln_2 follow the residual additions and there is"
            " no final norm."
        )

    return notes


# --- Layers ----------------------------------------------------------------------


def _linear(
    name: str, in_dim: str, out_dim: str, bias: bool, activation: Any
) -> dict[str, Any]:
    layer = {"kind": "linear", "name": name, "in": in_dim, "out": out_dim}
    layer["bias"] = bias
    if activation is not None:
        layer["activation"] = activation

    return layer


def _norm(kind: str, name: str, dim: str, bias: bool) -> dict[str, Any]:
    """A norm layer; a layer norm's bias follows ``bias`` (nanoGPT's convention)."""
    return {"kind": kind, "name": name, "in": dim} | _norm_bias(kind, bias)


def _norm_layer(kind: str, name: str, bias: bool) -> dict[str, Any]:
    return {"kind": kind, "name": name} | _norm_bias(kind, bias)


def _norm_bias(kind: str, bias: bool) -> dict[str, bool]:
    # An RMS norm has no bias to switch.
    return {"bias": bias} if kind == "layer_norm" else {}
