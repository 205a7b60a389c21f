"""Build a spec in Python: one function per layer or group kind.

Each function returns the plain JSON object of its layer, leaving out what is
not given so that the service fills in its documented defaults; sizes are a
positive integer or the name of one of the spec's dims. ::

    from initlab_client import Spec, layers

    mlp = Spec.build(
        dims={"d_in": 784, "d_hidden": 256},
        layers=[
            layers.linear("d_in", "d_hidden", name="fc1", activation="relu"),
            layers.linear("d_hidden", 10, name="fc2"),
        ],
    )

The service checks the rest (a dim that does not exist, a size of zero) and
answers a 422 naming the field; these functions catch what is wrong before a
request is made: a size that is neither an integer nor a name, a kind or
placement that does not exist, layers that are not a list.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Union

# A size: a positive integer, or the name of a dim of the spec. Union, not |:
# these aliases are evaluated at import, and the client runs on Python 3.9.
Size = Union[int, str]  # noqa: UP007
Layer = dict[str, Any]
Activation = Union[str, Mapping[str, Any]]  # noqa: UP007

CONV_KINDS = ("conv1d", "conv2d", "conv3d")
NORM_KINDS = ("layer_norm", "rms_norm", "batch_norm")
NORM_PLACEMENTS = ("pre", "post", "none")
LAYOUTS = ("out_in", "in_out")


def linear(
    in_features: Size,
    out_features: Size,
    *,
    name: str | None = None,
    activation: Activation | None = None,
    bias: bool | None = None,
    layout: Literal["out_in", "in_out"] | None = None,
    tied_to: str | None = None,
) -> Layer:
    """A fully connected layer ``in_features -> out_features``.

    ``activation`` is the nonlinearity that follows it (a name from
    ``GET /v1/activations``, or ``{"name": "leaky_relu", "negative_slope":
    0.1}``); ``layout="in_out"`` for a weight stored transposed (GPT-2's
    Conv1D, Keras); ``tied_to`` names the embedding whose weight it shares.
    """
    return _layer(
        "linear",
        name=name,
        sizes={"in": in_features, "out": out_features},
        activation=activation,
        bias=bias,
        layout=_one_of(layout, LAYOUTS, "layout"),
        tied_to=tied_to,
    )


def conv(
    in_channels: Size,
    out_channels: Size,
    kernel_size: Size | Sequence[Size],
    *,
    dimensions: Literal[1, 2, 3] = 2,
    name: str | None = None,
    groups: Size | None = None,
    activation: Activation | None = None,
    bias: bool | None = None,
) -> Layer:
    """A ``conv1d``, ``conv2d`` (the default) or ``conv3d`` layer.

    ``kernel_size`` is one size for every spatial dim or one per dim.
    Stride and padding change no initialization, so they are not asked for.
    """
    kind = _one_of(f"conv{dimensions}d", CONV_KINDS, "dimensions (1, 2 or 3)")
    kernel = (
        _size(kernel_size, "kernel_size")
        if isinstance(kernel_size, (str, numbers.Integral))
        else [
            _size(size, f"kernel_size[{index}]")
            for index, size in enumerate(_sequence(kernel_size, "kernel_size"))
        ]
    )
    layer = _layer(
        kind,
        name=name,
        sizes={"in": in_channels, "out": out_channels},
        activation=activation,
        bias=bias,
        kernel_size=kernel,
    )
    if groups is not None:
        layer["groups"] = _size(groups, "groups")

    return layer


def embedding(
    num_embeddings: Size, embedding_dim: Size, *, name: str | None = None
) -> Layer:
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``."""
    return _layer(
        "embedding", name=name, sizes={"in": num_embeddings, "out": embedding_dim}
    )


def norm(
    size: Size,
    kind: Literal["layer_norm", "rms_norm", "batch_norm"] = "layer_norm",
    *,
    name: str | None = None,
    bias: bool | None = None,
) -> Layer:
    """A normalization layer over ``size`` features (its gain, and a bias)."""
    return _layer(
        _one_of(kind, NORM_KINDS, "norm kind"),
        name=name,
        sizes={"in": size},
        bias=bias,
    )


def attention(
    d_model: Size,
    n_heads: Size,
    *,
    name: str | None = None,
    n_kv_heads: Size | None = None,
    d_head: Size | None = None,
    fused_qkv: bool | None = None,
    bias: bool | None = None,
    layout: Literal["out_in", "in_out"] | None = None,
) -> Layer:
    """Multi-head self-attention: q, k, v (or one fused qkv) and the output o.

    ``n_kv_heads`` below ``n_heads`` is grouped-query attention; ``d_head``
    defaults to ``d_model / n_heads``.
    """
    layer: Layer = {"kind": "attention"}
    _put(layer, "name", name)
    layer["d_model"] = _size(d_model, "d_model")
    layer["n_heads"] = _size(n_heads, "n_heads")
    if n_kv_heads is not None:
        layer["n_kv_heads"] = _size(n_kv_heads, "n_kv_heads")
    if d_head is not None:
        layer["d_head"] = _size(d_head, "d_head")
    _put(layer, "fused_qkv", _flag(fused_qkv, "fused_qkv"))
    _put(layer, "bias", _flag(bias, "bias"))
    _put(layer, "layout", _one_of(layout, LAYOUTS, "layout"))

    return layer


def gated_mlp(
    d_model: Size,
    d_ff: Size,
    *,
    name: str | None = None,
    activation: Activation | None = None,
    bias: bool | None = None,
    layout: Literal["out_in", "in_out"] | None = None,
) -> Layer:
    """A gated MLP (SwiGLU, GeGLU): gate and up ``d_model -> d_ff``, down back."""
    layer: Layer = {"kind": "gated_mlp"}
    _put(layer, "name", name)
    layer["d_model"] = _size(d_model, "d_model")
    layer["d_ff"] = _size(d_ff, "d_ff")
    _put(layer, "activation", activation)
    _put(layer, "bias", _flag(bias, "bias"))
    _put(layer, "layout", _one_of(layout, LAYOUTS, "layout"))

    return layer


def residual(
    branch: Iterable[Layer],
    *,
    norm: Literal["pre", "post", "none"] = "pre",
    norm_kind: Literal["layer_norm", "rms_norm", "batch_norm"] | None = None,
    norm_name: str | None = None,
    shortcut: Iterable[Layer] | None = None,
    name: str | None = None,
) -> Layer:
    """``x + branch(x)``, with the branch's norm before it, after the sum or none.

    ``norm_kind`` and ``norm_name`` describe that norm (by default a
    ``layer_norm`` called ``norm``); ``shortcut`` lists the layers of a
    projection shortcut (a ResNet downsample) in place of the identity.
    """
    group: Layer = {"kind": "residual"}
    _put(group, "name", name)
    group["norm"] = _one_of(norm, NORM_PLACEMENTS, "norm placement")
    norm_layer: Layer = {}
    _put(norm_layer, "kind", _one_of(norm_kind, NORM_KINDS, "norm_kind"))
    _put(norm_layer, "name", norm_name)
    if norm_layer:
        group["norm_layer"] = norm_layer
    group["layers"] = _layers(branch, "branch")
    if shortcut is not None:
        group["shortcut"] = _layers(shortcut, "shortcut")

    return group


def repeat(count: Size, layers: Iterable[Layer], *, name: str | None = None) -> Layer:
    """``count`` copies of ``layers`` in a row, named ``<name>.0``, ``<name>.1``..."""
    group: Layer = {"kind": "repeat"}
    _put(group, "name", name)
    group["count"] = _size(count, "count")
    group["layers"] = _layers(layers, "layers")

    return group


def sequential(layers: Iterable[Layer], *, name: str | None = None) -> Layer:
    """``layers`` in a row under one name (a path segment of their tensors)."""
    group: Layer = {"kind": "sequential"}
    _put(group, "name", name)
    group["layers"] = _layers(layers, "layers")

    return group


def spec(layers: Iterable[Layer], dims: Mapping[str, int] | None = None) -> Layer:
    """The spec object ``{"dims": ..., "layers": [...]}`` of these layers."""
    sizes = {}
    for dim, size in (dims or {}).items():
        if not isinstance(dim, str):
            raise TypeError(f"dims keys must be names (str); got {dim!r}")
        value = _size(size, f"dims[{dim!r}]")
        if isinstance(value, str):
            raise TypeError(
                f"dims[{dim!r}] must be an integer size, such as 768; got {size!r}"
            )
        sizes[dim] = value

    return {"dims": sizes, "layers": _layers(layers, "layers")}


def _layer(
    kind: str,
    *,
    name: str | None,
    sizes: Mapping[str, Size],
    activation: Activation | None = None,
    bias: bool | None = None,
    layout: str | None = None,
    tied_to: str | None = None,
    kernel_size: Any = None,
) -> Layer:
    layer: Layer = {"kind": kind}
    _put(layer, "name", name)
    for key, size in sizes.items():
        layer[key] = _size(size, key)
    _put(layer, "kernel_size", kernel_size)
    _put(layer, "activation", activation)
    _put(layer, "bias", _flag(bias, "bias"))
    _put(layer, "layout", layout)
    _put(layer, "tied_to", tied_to)

    return layer


def _put(layer: Layer, key: str, value: Any) -> None:
    if value is not None:
        layer[key] = value


def _size(value: Any, what: str) -> Size:
    """A size as JSON: an integer (numpy's included) or a dim name, as it is."""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(
                f"{what} must be a positive integer or the name of a dim; got"
                f" {value!r} (sizes start at 1)"
            )
        return operator.index(value)

    raise TypeError(
        f"{what} must be a positive integer or the name of a dim, such as 768 or"
        f" 'd_model'; got {value!r} ({type(value).__name__})"
    )


def _flag(value: Any, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value

    raise TypeError(f"{what} must be True or False; got {value!r}")


def _one_of(value: Any, allowed: Sequence[str], what: str) -> Any:
    if value is None or value in allowed:
        return value

    raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")


def _sequence(value: Any, what: str) -> Sequence[Any]:
    if isinstance(value, (str, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"{what} must be a list; got {type(value).__name__}")

    return list(value)


def _layers(layers: Any, what: str) -> list[Layer]:
    items = _sequence(layers, what)
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or "kind" not in item:
            raise TypeError(
                f"{what}[{index}] must be a layer such as linear(...) or"
                f" residual([...]); got {item!r}"
            )

    return [dict(item) for item in items]
