"""Write the reference fixtures in tests/fixtures/reference from the libraries.

Every expected number in those files is produced by PyTorch, Keras or JAX
itself, never by initlab's formulas: fans come from the libraries' own fan
helpers on tensors of real modules' shapes, gains from
``torch.nn.init.calculate_gain``, and the scalars an initializer hands to its
random sampler are captured by wrapping the sampler while the library's own
initializer runs. Activation moments are Gaussian integrals computed with
``scipy.integrate.quad`` over PyTorch's own activation functions in float64.

The script needs the optional reference libraries pinned in
``tools/requirements-reference.txt``; ``make fixtures`` installs them into
``tools/.venv-reference`` and runs it. The service and its tests never import
any of these libraries: the tests only read the JSON files written here.

Usage: ``KERAS_BACKEND=jax python tools/make_reference_fixtures.py [--out DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import inspect
import json
import math
import os
import platform
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Keras reads its backend once, at import time.
if os.environ.setdefault("KERAS_BACKEND", "jax") != "jax":
    sys.exit("KERAS_BACKEND must be 'jax' (or unset) to make the reference fixtures")

import jax  # noqa: E402
import jax._src.nn.initializers as jax_initializers  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.integrate  # noqa: E402
import scipy.stats  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from keras.src.backend.jax import random as keras_backend_random  # noqa: E402
from torch import nn  # noqa: E402

jax.config.update("jax_enable_x64", True)

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests/fixtures/reference"
TRUNCATED_SAMPLE_SIZE = 2_000_000
SEED = 0

# How close the large-sample std of trunc_normal_ must come to scipy's value
# (about 10 standard errors of a std estimate from 2e6 draws).
EMPIRICAL_STD_TOLERANCE = 5e-3
ORTHOGONALITY_TOLERANCE = 1e-12

# Quadrature settings for the activation moments (see activation_moments()).
# quad refuses epsrel below 50 machine epsilons (1.11e-14) when epsabs is 0.
QUAD_OPTIONS = {"epsabs": 0.0, "epsrel": 1.2e-14, "limit": 200}
QUAD_BREAKPOINTS = (-40.0, -8.0, -2.0, 0.0, 2.0, 8.0, 40.0)
QUAD_ACCEPTED_ERROR = 1e-13


# --------------------------------------------------------------------------
# Capturing what an initializer hands to its sampler
# --------------------------------------------------------------------------


@contextlib.contextmanager
def patched(owner: Any, name: str, replacement: Callable) -> Iterator[Callable]:
    """Replace ``owner.name`` for the duration of the block; yield the original."""
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield original
    finally:
        setattr(owner, name, original)


class TorchCalls:
    """Records calls of in-place tensor methods while PyTorch code runs.

    Each record is ``(method, tensor, args)`` with the arguments as Python
    floats. The tensor is kept so that a record can be matched to a parameter
    by identity (``is``) or storage (``data_ptr``).
    """

    METHODS = ("uniform_", "normal_", "fill_", "zero_", "mul_", "div_", "sub_")

    def __init__(self) -> None:
        self.records: list[tuple[str, torch.Tensor, tuple[float, ...]]] = []

    @contextlib.contextmanager
    def recording(self) -> Iterator[TorchCalls]:
        with contextlib.ExitStack() as stack:
            for method in self.METHODS:
                original = getattr(torch.Tensor, method)
                stack.enter_context(
                    patched(torch.Tensor, method, self._wrap(method, original))
                )
            yield self

    def _wrap(self, method: str, original: Callable) -> Callable:
        def wrapper(tensor, *args, **kwargs):
            scalars = tuple(_as_float(a) for a in args if not torch.is_tensor(a))
            if method == "uniform_":
                scalars = _with_defaults(scalars, kwargs, ("from", "to"), (0.0, 1.0))
            elif method == "normal_":
                scalars = _with_defaults(scalars, kwargs, ("mean", "std"), (0.0, 1.0))
            self.records.append((method, tensor, scalars))
            return original(tensor, *args, **kwargs)

        return wrapper

    def on(self, tensor: torch.Tensor) -> list[tuple[str, tuple[float, ...]]]:
        """The calls made on ``tensor`` (same storage), in order."""
        pointer = tensor.data_ptr()
        return [
            (method, args)
            for method, recorded, args in self.records
            if recorded.data_ptr() == pointer and recorded.numel() == tensor.numel()
        ]


def _as_float(value: Any) -> float:
    return float(value)


def _with_defaults(
    scalars: tuple[float, ...],
    kwargs: dict,
    names: tuple[str, str],
    defaults: tuple[float, float],
) -> tuple[float, float]:
    values = list(scalars) + [None] * (2 - len(scalars))
    for index, name in enumerate(names):
        if values[index] is None:
            values[index] = float(kwargs.get(name, defaults[index]))
    return (values[0], values[1])


@contextlib.contextmanager
def recording_calculate_gain() -> Iterator[list[float]]:
    """Record every value ``torch.nn.init.calculate_gain`` returns."""
    gains: list[float] = []
    original = torch.nn.init.calculate_gain

    def wrapper(*args, **kwargs):
        gain = original(*args, **kwargs)
        gains.append(float(gain))
        return gain

    with patched(torch.nn.init, "calculate_gain", wrapper):
        yield gains


# --------------------------------------------------------------------------
# Library-neutral descriptions: the spec layer and the initlab scheme
# --------------------------------------------------------------------------

LAYER_NAME = "layer"


def linear_layer(in_features: int, out_features: int, **fields: Any) -> dict:
    return {
        "kind": "linear",
        "name": LAYER_NAME,
        "in": in_features,
        "out": out_features,
        **fields,
    }


def conv_layer(
    kind: str, in_channels: int, out_channels: int, kernel_size: Any, **fields: Any
) -> dict:
    return {
        "kind": kind,
        "name": LAYER_NAME,
        "in": in_channels,
        "out": out_channels,
        "kernel_size": kernel_size,
        **fields,
    }


TORCH_CONV_CLASSES: dict[str, type[nn.Module]] = {
    "conv1d": nn.Conv1d,
    "conv2d": nn.Conv2d,
    "conv3d": nn.Conv3d,
    "conv_transpose1d": nn.ConvTranspose1d,
    "conv_transpose2d": nn.ConvTranspose2d,
    "conv_transpose3d": nn.ConvTranspose3d,
}


def torch_module_for(layer: dict, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Build the PyTorch module that a spec layer describes."""
    kind = layer["kind"]
    bias = layer.get("bias", True)
    if kind == "linear":
        return nn.Linear(layer["in"], layer["out"], bias=bias, dtype=dtype)
    if kind.startswith("conv"):
        module_class = TORCH_CONV_CLASSES[kind]
        kernel_size = layer["kernel_size"]
        if isinstance(kernel_size, list):
            kernel_size = tuple(kernel_size)
        return module_class(
            layer["in"],
            layer["out"],
            kernel_size,
            groups=layer.get("groups", 1),
            bias=bias,
            dtype=dtype,
        )
    if kind == "embedding":
        return nn.Embedding(layer["in"], layer["out"], dtype=dtype)
    if kind == "layer_norm":
        return nn.LayerNorm(layer["in"], bias=bias, dtype=dtype)
    if kind == "rms_norm":
        return nn.RMSNorm(layer["in"], dtype=dtype)
    if kind == "batch_norm":
        return nn.BatchNorm2d(layer["in"], dtype=dtype)
    if kind == "attention":
        return nn.MultiheadAttention(
            layer["d_model"], layer["n_heads"], bias=bias, dtype=dtype
        )
    raise ValueError(f"no PyTorch module for layer kind {kind!r}")


def module_repr(layer: dict) -> str:
    """The PyTorch constructor call, as a user would write it."""
    kind = layer["kind"]
    bias = "" if layer.get("bias", True) else ", bias=False"
    if kind == "linear":
        return f"nn.Linear({layer['in']}, {layer['out']}{bias})"
    if kind.startswith("conv"):
        name = TORCH_CONV_CLASSES[kind].__name__
        groups = layer.get("groups", 1)
        group_text = f", groups={groups}" if groups != 1 else ""
        kernel = layer["kernel_size"]
        kernel_text = repr(tuple(kernel)) if isinstance(kernel, list) else str(kernel)
        return (
            f"nn.{name}({layer['in']}, {layer['out']}, {kernel_text}{group_text}{bias})"
        )
    if kind == "embedding":
        return f"nn.Embedding({layer['in']}, {layer['out']})"
    if kind == "layer_norm":
        return f"nn.LayerNorm({layer['in']}{bias})"
    if kind == "rms_norm":
        return f"nn.RMSNorm({layer['in']})"
    if kind == "batch_norm":
        return f"nn.BatchNorm2d({layer['in']})"
    if kind == "attention":
        return f"nn.MultiheadAttention({layer['d_model']}, {layer['n_heads']}{bias})"
    raise ValueError(f"no PyTorch module for layer kind {kind!r}")


def weight_of(layer: dict, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The layer's weight as PyTorch would hold it, in the layer's layout.

    A 2-D weight with layout ``in_out`` is GPT-2's ``Conv1D``: an
    ``(in, out)`` tensor handed as such to ``torch.nn.init``.
    """
    if layer.get("layout") == "in_out":
        return torch.empty(layer["in"], layer["out"], dtype=dtype)
    with torch.no_grad():
        return torch_module_for(layer, dtype).weight.detach().clone()


def torch_fans(tensor: torch.Tensor) -> tuple[int, int]:
    return torch.nn.init._calculate_fan_in_and_fan_out(tensor)


# --------------------------------------------------------------------------
# Distributions and their effective standard deviations
# --------------------------------------------------------------------------


def truncated_normal_std(mean: float, std: float, lower: float, upper: float) -> float:
    """Std of N(mean, std²) cut to [lower, upper] (absolute bounds), by scipy."""
    alpha = (lower - mean) / std
    beta = (upper - mean) / std
    return float(scipy.stats.truncnorm.std(alpha, beta, loc=mean, scale=std))


def uniform_row(low: float, high: float) -> dict:
    half_width = (high - low) / 2
    return {
        "distribution": "uniform",
        "mean": (low + high) / 2,
        "std": half_width / math.sqrt(3.0),
        "bound": half_width if low == -high else None,
        "low": low,
        "high": high,
        "truncation": None,
    }


def normal_row(mean: float, std: float) -> dict:
    return {
        "distribution": "normal",
        "mean": mean,
        "std": std,
        "bound": None,
        "truncation": None,
    }


def constant_row(value: float) -> dict:
    return {
        "distribution": "constant",
        "mean": value,
        "std": 0.0,
        "bound": None,
        "value": value,
        "truncation": None,
    }


def truncated_row(mean: float, sampler_std: float, lower: float, upper: float) -> dict:
    return {
        "distribution": "truncated_normal",
        "mean": mean,
        "std": truncated_normal_std(mean, sampler_std, lower, upper),
        "bound": None,
        "truncation": {"lower": lower, "upper": upper, "sampler_std": sampler_std},
    }


FILLING_METHODS = ("uniform_", "normal_", "fill_", "zero_")


def row_from_torch_calls(calls: list[tuple[str, tuple[float, ...]]]) -> dict:
    """The distribution a parameter ends up with: the last call that set it."""
    sampler = [{"method": f"Tensor.{m}", "args": list(a)} for m, a in calls]
    filling = [call for call in calls if call[0] in FILLING_METHODS]
    if not filling:
        # orthogonal_ copies a QR factor in and scales it: its caller says more.
        return {"sampler": sampler}
    method, args = filling[-1]
    if method == "uniform_":
        row = uniform_row(*args)
    elif method == "normal_":
        row = normal_row(*args)
    elif method == "fill_":
        row = constant_row(args[0])
    else:
        row = constant_row(0.0)
    row["sampler"] = sampler
    return row


# --------------------------------------------------------------------------
# PyTorch: torch.nn.init functions on the weights of real modules
# --------------------------------------------------------------------------

# initlab activation name for each nonlinearity name PyTorch accepts.
INITLAB_ACTIVATION = {
    "linear": "identity",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "selu": "selu",
}

WEIGHT_SHAPES = {
    "linear_784_256": linear_layer(784, 256, bias=False),
    "linear_100_300": linear_layer(100, 300, bias=False),
    "linear_512_512": linear_layer(512, 512, bias=False),
    "linear_256_256": linear_layer(256, 256, bias=False),
    "conv1d_16_32_k5": conv_layer("conv1d", 16, 32, 5, bias=False),
    "conv2d_64_128_k3": conv_layer("conv2d", 64, 128, 3, bias=False),
    "conv2d_64_128_k3x5_g4": conv_layer(
        "conv2d", 64, 128, [3, 5], groups=4, bias=False
    ),
    "conv2d_depthwise_32_k3": conv_layer("conv2d", 32, 32, 3, groups=32, bias=False),
    "conv3d_8_16_k3": conv_layer("conv3d", 8, 16, 3, bias=False),
    "conv_transpose1d_16_8_k4": conv_layer("conv_transpose1d", 16, 8, 4, bias=False),
    "conv_transpose2d_64_128_k3": conv_layer(
        "conv_transpose2d", 64, 128, 3, bias=False
    ),
    "conv_transpose2d_64_128_k3_g4": conv_layer(
        "conv_transpose2d", 64, 128, 3, groups=4, bias=False
    ),
    "conv_transpose3d_8_4_k2": conv_layer("conv_transpose3d", 8, 4, 2, bias=False),
    "embedding_1000_64": {
        "kind": "embedding",
        "name": LAYER_NAME,
        "in": 1000,
        "out": 64,
    },
    "gpt2_conv1d_in_out_768_2304": linear_layer(768, 2304, layout="in_out", bias=False),
}


def weight_case(
    case_id: str,
    call: str,
    layer: dict,
    scheme: dict,
    run: Callable[[torch.Tensor], Any],
    gain_from: str | None = "calculate_gain",
) -> dict:
    """Run one torch.nn.init call on the layer's weight and record what it did."""
    weight = weight_of(layer)
    fan_in, fan_out = torch_fans(weight)
    calls = TorchCalls()
    with recording_calculate_gain() as gains, calls.recording():
        run(weight)
    row = row_from_torch_calls(calls.on(weight))
    gain = None
    if gain_from == "calculate_gain":
        gain = gains[-1]
    elif gain_from == "mul_":
        (gain,) = [args[0] for method, args in calls.on(weight) if method == "mul_"]
    elif gain_from is not None:
        gain = float(scheme[gain_from])
    parameter = {
        "name": f"{layer['name']}.weight",
        "library_name": "weight",
        "tensor": "weight",
        "library_shape": list(weight.shape),
        "fan_in": fan_in,
        "fan_out": fan_out,
        "gain": gain,
        **row,
    }
    return {
        "id": case_id,
        "library": "pytorch",
        "call": call,
        "layer": layer,
        "scheme": scheme,
        "parameters": [parameter],
    }


def layer_with_activation(layer: dict, activation: Any) -> dict:
    return {**layer, "activation": activation}


def kaiming_cases() -> list[dict]:
    """kaiming_uniform_/kaiming_normal_ over modes, nonlinearities and a."""
    nonlinearities = [
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", math.sqrt(5)),
        ("tanh", None),
        ("linear", None),
        ("sigmoid", None),
        ("selu", None),
    ]
    combinations = []
    for mode in ("fan_in", "fan_out"):
        for nonlinearity, a in nonlinearities:
            combinations.append(("linear_784_256", mode, nonlinearity, a))
    for shape_name in WEIGHT_SHAPES:
        if shape_name in ("linear_784_256", "linear_512_512", "linear_256_256"):
            continue
        for mode in ("fan_in", "fan_out"):
            combinations.append((shape_name, mode, "relu", None))
        combinations.append((shape_name, "fan_in", "leaky_relu", 0.2))
    combinations.append(("linear_512_512", "fan_in", "leaky_relu", 0.2))
    combinations.append(("linear_256_256", "fan_in", "tanh", None))

    cases = []
    for shape_name, mode, nonlinearity, a in combinations:
        for distribution in ("uniform", "normal"):
            function = getattr(torch.nn.init, f"kaiming_{distribution}_")
            slope = 0.0 if a is None else a
            # The scheme names the nonlinearity as the call does; the layer's
            # activation says the same where initlab has it (a leaky_relu
            # slope above 1, as nn.Linear's a=sqrt(5), is no activation).
            scheme = {
                "name": f"kaiming_{distribution}",
                "mode": mode,
                "nonlinearity": nonlinearity,
            }
            activation: Any = INITLAB_ACTIVATION[nonlinearity]
            if nonlinearity == "leaky_relu":
                scheme["negative_slope"] = slope
                activation = {"name": "leaky_relu", "negative_slope": slope}
            layer = WEIGHT_SHAPES[shape_name]
            if nonlinearity != "leaky_relu" or slope <= 1.0:
                layer = layer_with_activation(layer, activation)
            a_text = "0" if a is None else ("math.sqrt(5)" if a == math.sqrt(5) else a)
            call = (
                f"torch.nn.init.kaiming_{distribution}_(w, a={a_text}, "
                f"mode={mode!r}, nonlinearity={nonlinearity!r}) "
                f"with w = {weight_text(layer)}"
            )
            case_id = f"kaiming_{distribution}_/{shape_name}/{mode}/{nonlinearity}"
            if a is not None:
                case_id += f"/a={a!r}"
            cases.append(
                weight_case(
                    case_id,
                    call,
                    layer,
                    scheme,
                    lambda w, f=function, s=slope, m=mode, n=nonlinearity: f(
                        w, a=s, mode=m, nonlinearity=n
                    ),
                )
            )
    return cases


def weight_text(layer: dict) -> str:
    if layer.get("layout") == "in_out":
        return (
            f"torch.empty({layer['in']}, {layer['out']})  "
            "# GPT-2 Conv1D stores its weight (in, out)"
        )
    return f"{module_repr(layer)}.weight"


def xavier_cases() -> list[dict]:
    """xavier_uniform_/xavier_normal_ with several gains on every shape."""
    combinations = [
        ("linear_100_300", gain) for gain in (1.0, 5.0 / 3, math.sqrt(2.0), 0.5)
    ]
    combinations += [(name, 1.0) for name in WEIGHT_SHAPES if name != "linear_100_300"]
    cases = []
    for shape_name, gain in combinations:
        layer = WEIGHT_SHAPES[shape_name]
        for distribution in ("uniform", "normal"):
            function = getattr(torch.nn.init, f"xavier_{distribution}_")
            call = (
                f"torch.nn.init.xavier_{distribution}_(w, gain={gain!r}) "
                f"with w = {weight_text(layer)}"
            )
            cases.append(
                weight_case(
                    f"xavier_{distribution}_/{shape_name}/gain={gain!r}",
                    call,
                    layer,
                    {"name": f"xavier_{distribution}", "gain": gain},
                    lambda w, f=function, g=gain: f(w, gain=g),
                    gain_from="gain",
                )
            )
    # The reference numbers quoted in initializers.md: leaky_relu 0.2 and tanh.
    for shape_name, nonlinearity, param in (
        ("square_512", "leaky_relu", 0.2),
        ("square_256", "tanh", None),
    ):
        size = int(shape_name.split("_")[1])
        gain = torch.nn.init.calculate_gain(nonlinearity, param)
        layer = linear_layer(size, size, bias=False)
        call = (
            f"torch.nn.init.xavier_uniform_(w, gain=torch.nn.init.calculate_gain("
            f"{nonlinearity!r}, {param!r})) with w = {weight_text(layer)}"
        )
        cases.append(
            weight_case(
                f"xavier_uniform_/{shape_name}/gain=calculate_gain({nonlinearity})",
                call,
                layer,
                {"name": "xavier_uniform", "gain": gain},
                lambda w, g=gain: torch.nn.init.xavier_uniform_(w, gain=g),
                gain_from="gain",
            )
        )
    return cases


def trunc_normal_cases() -> list[dict]:
    """trunc_normal_(mean, std, a, b): absolute bounds, no variance correction.

    The recorded ``std`` is the std of the values drawn (scipy's truncnorm
    with the same absolute bounds); ``sampler_std`` is the std PyTorch's
    sampler is given. A large float64 sample checks scipy's value.
    """
    settings = [
        (0.0, 1.0, -2.0, 2.0),
        (0.0, 0.02, -2.0, 2.0),
        (0.0, 0.02, -0.04, 0.04),
        (0.0, 0.02, -0.06, 0.06),
        (0.1, 0.5, -1.0, 1.5),
        (0.0, 1.0, -0.2, 0.2),
    ]
    cases = []
    layer = linear_layer(768, 768, bias=False)
    generator = torch.Generator().manual_seed(SEED)
    for mean, std, lower, upper in settings:
        call = (
            f"torch.nn.init.trunc_normal_(w, mean={mean!r}, std={std!r}, "
            f"a={lower!r}, b={upper!r}) with w = {weight_text(layer)}"
        )
        case = weight_case(
            f"trunc_normal_/linear_768_768/mean={mean!r}/std={std!r}/"
            f"a={lower!r}/b={upper!r}",
            call,
            layer,
            {
                "name": "trunc_normal",
                "mean": mean,
                "std": std,
                "a": lower,
                "b": upper,
            },
            lambda w, m=mean, s=std, a=lower, b=upper: torch.nn.init.trunc_normal_(
                w, mean=m, std=s, a=a, b=b
            ),
            gain_from=None,
        )
        parameter = case["parameters"][0]
        parameter.update(truncated_row(mean, std, lower, upper))
        parameter["sampler_path"] = trunc_normal_sampler_path(parameter["sampler"])

        sample = torch.empty(TRUNCATED_SAMPLE_SIZE, dtype=torch.float64)
        torch.nn.init.trunc_normal_(
            sample, mean=mean, std=std, a=lower, b=upper, generator=generator
        )
        empirical = float(sample.std())
        relative = abs(empirical - parameter["std"]) / parameter["std"]
        if relative > EMPIRICAL_STD_TOLERANCE:
            raise RuntimeError(f"{case['id']}: sample std {empirical} is off scipy's")
        parameter["checks"] = {
            "empirical_std": empirical,
            "empirical_sample_size": TRUNCATED_SAMPLE_SIZE,
            "empirical_relative_difference": relative,
            "sample_min": float(sample.min()),
            "sample_max": float(sample.max()),
        }
        cases.append(case)
    return cases


def trunc_normal_sampler_path(sampler: list[dict]) -> str:
    """Which of PyTorch 2.13's two trunc_normal_ samplers ran.

    When more than 30% of N(mean, std²) lies inside [a, b] it draws normals
    and redraws those outside; otherwise it proposes uniforms on [a, b] and
    accepts them with the normal density.
    """
    first = sampler[0]["method"]
    if first == "Tensor.normal_":
        return "normal with redraw outside [a, b]"
    return "uniform proposal on [a, b], accepted with the normal density"


def orthogonal_cases() -> list[dict]:
    """orthogonal_(gain): check W·Wᵀ = g²·I and record the element RMS."""
    shapes = {
        "linear_784_256": WEIGHT_SHAPES["linear_784_256"],
        "linear_256_784": linear_layer(256, 784, bias=False),
        "linear_512_512": linear_layer(512, 512, bias=False),
        "conv2d_32_64_k3": conv_layer("conv2d", 32, 64, 3, bias=False),
    }
    cases = []
    torch.manual_seed(SEED)
    for shape_name, layer in shapes.items():
        for gain in (1.0, math.sqrt(2.0)):
            call = (
                f"torch.nn.init.orthogonal_(w, gain={gain!r}) "
                f"with w = {weight_text(layer)}"
            )
            case = weight_case(
                f"orthogonal_/{shape_name}/gain={gain!r}",
                call,
                layer,
                {"name": "orthogonal", "gain": gain},
                lambda w, g=gain: torch.nn.init.orthogonal_(w, gain=g),
                gain_from="mul_",
            )
            parameter = case["parameters"][0]
            matrix = weight_of(layer, torch.float64)
            torch.nn.init.orthogonal_(matrix, gain=gain)
            rows = matrix.shape[0]
            flat = matrix.reshape(rows, -1)
            gram = flat @ flat.T if rows <= flat.shape[1] else flat.T @ flat
            identity = torch.eye(gram.shape[0], dtype=torch.float64)
            error = float((gram - gain**2 * identity).abs().max())
            if error > ORTHOGONALITY_TOLERANCE:
                raise RuntimeError(f"{case['id']}: W·Wᵀ is off g²·I by {error}")
            parameter.update(
                {
                    "distribution": "orthogonal",
                    "mean": 0.0,
                    "std": float(flat.pow(2).mean().sqrt()),
                    "bound": None,
                    "truncation": None,
                    "rows": rows,
                    "cols": flat.shape[1],
                    "checks": {"max_abs_gram_error": error, "dtype": "float64"},
                }
            )
            cases.append(case)
    return cases


def plain_distribution_cases() -> list[dict]:
    """normal_(mean, std) and uniform_(a, b): the scalars pass straight through."""
    layer = linear_layer(256, 128, bias=False)
    cases = [
        weight_case(
            "normal_/linear_256_128/mean=0.0/std=0.02",
            "torch.nn.init.normal_(w, mean=0.0, std=0.02) "
            f"with w = {weight_text(layer)}",
            layer,
            {"name": "normal", "mean": 0.0, "std": 0.02},
            lambda w: torch.nn.init.normal_(w, mean=0.0, std=0.02),
            gain_from=None,
        ),
        weight_case(
            "uniform_/linear_256_128/a=-0.05/b=0.05",
            f"torch.nn.init.uniform_(w, a=-0.05, b=0.05) with w = {weight_text(layer)}",
            layer,
            {"name": "uniform", "a": -0.05, "b": 0.05},
            lambda w: torch.nn.init.uniform_(w, a=-0.05, b=0.05),
            gain_from=None,
        ),
    ]
    return cases


# --------------------------------------------------------------------------
# PyTorch: the modules' own reset_parameters()
# --------------------------------------------------------------------------

MODULE_DEFAULT_LAYERS = [
    linear_layer(784, 256),
    linear_layer(100, 300),
    linear_layer(3, 5),
    linear_layer(512, 10, bias=False),
    conv_layer("conv1d", 16, 32, 5),
    conv_layer("conv2d", 64, 128, 3),
    conv_layer("conv2d", 32, 32, 3, groups=32),
    conv_layer("conv2d", 64, 128, [3, 5], groups=4),
    conv_layer("conv3d", 8, 16, 3),
    conv_layer("conv_transpose1d", 16, 8, 4),
    conv_layer("conv_transpose2d", 64, 128, 3),
    conv_layer("conv_transpose2d", 64, 128, 3, groups=4),
    conv_layer("conv_transpose3d", 8, 4, 2),
    {"kind": "embedding", "name": LAYER_NAME, "in": 1000, "out": 64},
    {"kind": "layer_norm", "name": LAYER_NAME, "in": 768},
    {"kind": "layer_norm", "name": LAYER_NAME, "in": 768, "bias": False},
    {"kind": "rms_norm", "name": LAYER_NAME, "in": 768},
    {"kind": "batch_norm", "name": LAYER_NAME, "in": 64},
    {
        "kind": "attention",
        "name": "attn",
        "d_model": 512,
        "n_heads": 8,
        "fused_qkv": True,
    },
    {
        "kind": "attention",
        "name": "attn",
        "d_model": 64,
        "n_heads": 4,
        "fused_qkv": True,
        "bias": False,
    },
]

# nn.MultiheadAttention's in_proj_weight gets xavier_uniform_ with its default gain.
XAVIER_DEFAULT_GAIN = float(
    inspect.signature(torch.nn.init.xavier_uniform_).parameters["gain"].default
)

# nn.MultiheadAttention's parameter names and initlab's for a fused attention.
ATTENTION_NAMES = {
    "in_proj_weight": "qkv.weight",
    "in_proj_bias": "qkv.bias",
    "out_proj.weight": "o.weight",
    "out_proj.bias": "o.bias",
}


def module_default_case(layer: dict) -> dict:
    """Construct the module under capture and record each parameter's init.

    Construction runs ``reset_parameters()`` (for nn.MultiheadAttention, the
    out_proj Linear's own reset and then ``_reset_parameters()``); the last
    call that fills a parameter is what it ends up with.
    """
    calls = TorchCalls()
    with recording_calculate_gain() as gains, calls.recording():
        module = torch_module_for(layer)
    weight_fans = None
    if layer["kind"] not in ("layer_norm", "rms_norm", "batch_norm", "attention"):
        weight_fans = torch_fans(module.weight)

    parameters = []
    for library_name, parameter in module.named_parameters():
        if layer["kind"] == "attention":
            initlab_name = f"{layer['name']}.{ATTENTION_NAMES[library_name]}"
        else:
            initlab_name = f"{layer['name']}.{library_name}"
        tensor_role = "bias" if library_name.endswith("bias") else "weight"
        row = row_from_torch_calls(calls.on(parameter))
        fans: tuple[int, int] | None = None
        gain = None
        if layer["kind"] == "attention":
            # Every attention tensor's init reads the fans of its weight.
            weight_name = library_name.replace("bias", "weight")
            fans = torch_fans(dict(module.named_parameters())[weight_name])
            if library_name == "out_proj.weight":
                (gain,) = gains  # the out_proj Linear's kaiming_uniform_
            elif library_name == "in_proj_weight":
                gain = XAVIER_DEFAULT_GAIN
        elif weight_fans is not None:
            fans = weight_fans
            if tensor_role == "weight" and layer["kind"] != "embedding":
                gain = gains[0]
        parameters.append(
            {
                "name": initlab_name,
                "library_name": library_name,
                "tensor": tensor_role,
                "library_shape": list(parameter.shape),
                "fan_in": None if fans is None else fans[0],
                "fan_out": None if fans is None else fans[1],
                "gain": gain,
                **row,
            }
        )
    module_text = module_repr(layer)
    return {
        "id": f"default/{module_text}",
        "library": "pytorch",
        "call": f"{module_text} (its reset_parameters())",
        "layer": layer,
        "scheme": {"name": "torch_default"},
        "parameters": parameters,
    }


# --------------------------------------------------------------------------
# PyTorch: calculate_gain and the activations' Gaussian moments
# --------------------------------------------------------------------------

CALCULATE_GAIN_CALLS: list[tuple[str, Any]] = [
    ("linear", None),
    ("conv1d", None),
    ("conv2d", None),
    ("conv3d", None),
    ("conv_transpose1d", None),
    ("conv_transpose2d", None),
    ("conv_transpose3d", None),
    ("sigmoid", None),
    ("tanh", None),
    ("relu", None),
    ("leaky_relu", None),
    ("leaky_relu", 0.2),
    ("leaky_relu", 0.0),
    ("leaky_relu", 1.0),
    ("leaky_relu", 3),
    ("leaky_relu", math.sqrt(5)),
    ("selu", None),
    ("identity", None),
    ("gelu", None),
    ("silu", None),
    ("mish", None),
    ("elu", None),
    ("softplus", None),
    ("softsign", None),
    ("hardtanh", None),
    ("leaky_relu", True),
]


def calculate_gain_table() -> list[dict]:
    """Every calculate_gain call above, with its value or the error it raises."""
    table = []
    for nonlinearity, param in CALCULATE_GAIN_CALLS:
        entry: dict[str, Any] = {
            "call": f"torch.nn.init.calculate_gain({nonlinearity!r}, {param!r})",
            "nonlinearity": nonlinearity,
            "param": param,
        }
        try:
            gain = torch.nn.init.calculate_gain(nonlinearity, param)
        except ValueError as error:
            entry.update({"gain": None, "raises": f"ValueError: {error}"})
        else:
            entry.update({"gain": float(gain), "raises": None})
        table.append(entry)
    return table


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


# initlab activation → (PyTorch function in float64, calculate_gain name).
# gelu_tanh has no calculate_gain name of its own; PyTorch raises for gelu too.
ACTIVATIONS: dict[str, tuple[Callable[..., torch.Tensor], str, str]] = {
    "identity": (_identity, "linear", "x (nn.Identity)"),
    "relu": (F.relu, "relu", "torch.nn.functional.relu"),
    "leaky_relu": (F.leaky_relu, "leaky_relu", "torch.nn.functional.leaky_relu"),
    "elu": (F.elu, "elu", "torch.nn.functional.elu"),
    "selu": (F.selu, "selu", "torch.nn.functional.selu"),
    "gelu": (F.gelu, "gelu", "torch.nn.functional.gelu"),
    "gelu_tanh": (
        lambda x: F.gelu(x, approximate="tanh"),
        "gelu",
        "torch.nn.functional.gelu(approximate='tanh')",
    ),
    "silu": (F.silu, "silu", "torch.nn.functional.silu"),
    "mish": (F.mish, "mish", "torch.nn.functional.mish"),
    "tanh": (torch.tanh, "tanh", "torch.tanh"),
    "sigmoid": (torch.sigmoid, "sigmoid", "torch.sigmoid"),
    "softplus": (F.softplus, "softplus", "torch.nn.functional.softplus"),
    "softsign": (F.softsign, "softsign", "torch.nn.functional.softsign"),
}

ACTIVATION_SETTINGS: list[tuple[str, dict[str, float]]] = [
    ("identity", {}),
    ("relu", {}),
    ("leaky_relu", {"negative_slope": 0.01}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("elu", {"alpha": 1.0}),
    ("elu", {"alpha": 0.5}),
    ("selu", {}),
    ("gelu", {}),
    ("gelu_tanh", {}),
    ("silu", {}),
    ("mish", {}),
    ("tanh", {}),
    ("sigmoid", {}),
    ("softplus", {"beta": 1.0}),
    ("softplus", {"beta": 2.0}),
    ("softsign", {}),
]


def gaussian_expectation(integrand: Callable[[float], float]) -> tuple[float, float]:
    """E f(z), z ~ N(0, 1), by scipy.integrate.quad; returns (value, error bound).

    The integral runs over [-40, 40] (the density beyond is below 1e-347, so
    nothing is lost) in pieces split at 0 (where relu and leaky_relu have
    their kink) and at ±2, ±8. quad warns about round-off on the far tails,
    whose pieces are below 1e-14 of the total; what counts is the error bound
    of the sum, which must stay below QUAD_ACCEPTED_ERROR of the scale.
    """
    normalizer = 1.0 / math.sqrt(2.0 * math.pi)

    def weighted(x: float) -> float:
        return integrand(x) * math.exp(-0.5 * x * x) * normalizer

    total = 0.0
    error = 0.0
    for lower, upper in zip(QUAD_BREAKPOINTS, QUAD_BREAKPOINTS[1:], strict=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.integrate.IntegrationWarning)
            value, piece_error = scipy.integrate.quad(
                weighted, lower, upper, **QUAD_OPTIONS
            )
        total += value
        error += piece_error
    return total, error


def activation_moments(name: str, params: dict[str, float]) -> dict:
    """Moments of φ(z) and φ'(z), z ~ N(0, 1), with PyTorch's φ in float64.

    φ' comes from autograd on the same function. The variance is integrated
    as E[(φ − E φ)²] rather than by subtracting.
    """
    function, _, _ = ACTIVATIONS[name]

    def phi(x: float) -> float:
        return float(function(torch.tensor(x, dtype=torch.float64), **params))

    def phi_prime(x: float) -> float:
        point = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        (gradient,) = torch.autograd.grad(function(point, **params), point)
        return float(gradient)

    mean, mean_error = gaussian_expectation(phi)
    second_moment, second_error = gaussian_expectation(lambda x: phi(x) ** 2)
    variance, variance_error = gaussian_expectation(lambda x: (phi(x) - mean) ** 2)
    derivative_second_moment, derivative_error = gaussian_expectation(
        lambda x: phi_prime(x) ** 2
    )
    errors = {
        "mean": mean_error,
        "second_moment": second_error,
        "variance": variance_error,
        "derivative_second_moment": derivative_error,
    }
    scale = {
        "mean": math.sqrt(second_moment),
        "second_moment": second_moment,
        "variance": variance,
        "derivative_second_moment": derivative_second_moment,
    }
    for moment, error in errors.items():
        if error > QUAD_ACCEPTED_ERROR * scale[moment]:
            raise RuntimeError(f"{name} {params}: quad error {error} on {moment}")
    return {
        "mean": mean,
        "second_moment": second_moment,
        "variance": variance,
        "derivative_second_moment": derivative_second_moment,
        "second_moment_gain": 1.0 / math.sqrt(second_moment),
        "variance_gain": 1.0 / math.sqrt(variance),
        "gradient_gain": 1.0 / math.sqrt(derivative_second_moment),
        "quadrature_error_bounds": errors,
    }


def activation_cases() -> list[dict]:
    cases = []
    for name, params in ACTIVATION_SETTINGS:
        function, gain_name, torch_text = ACTIVATIONS[name]
        gain_param = next(iter(params.values()), None)
        try:
            pytorch_gain: float | None = float(
                torch.nn.init.calculate_gain(gain_name, gain_param)
            )
            raises = None
        except ValueError as error:
            pytorch_gain = None
            raises = f"ValueError: {error}"
        cases.append(
            {
                "id": f"{name}/{params}" if params else name,
                "name": name,
                "parameters": params,
                "phi": torch_text + (f" with {params}" if params else ""),
                "pytorch_gain_call": (
                    f"torch.nn.init.calculate_gain({gain_name!r}, {gain_param!r})"
                ),
                "pytorch_gain": pytorch_gain,
                "pytorch_gain_raises": raises,
                **activation_moments(name, params),
            }
        )
    return cases


# --------------------------------------------------------------------------
# Keras 3 (JAX backend)
# --------------------------------------------------------------------------


@contextlib.contextmanager
def keras_sampler_calls() -> Iterator[list[dict]]:
    """Record what Keras initializers hand to the backend's random functions.

    Keras initializers call ``keras.src.backend.random`` (the functions behind
    ``keras.random``); its truncated_normal in turn asks JAX for a standard
    normal cut at fixed bounds, which is recorded too.
    """
    calls: list[dict] = []
    module = keras_backend_random

    def recorder(function_name: str, original: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            record = {"function": f"keras.random.{function_name}"}
            record.update(
                {k: float(v) for k, v in kwargs.items() if k in KERAS_SCALARS}
            )
            calls.append(record)
            return original(*args, **kwargs)

        return wrapper

    def jax_truncated(original: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            calls.append(
                {
                    "function": "jax.random.truncated_normal",
                    "lower": float(kwargs["lower"]),
                    "upper": float(kwargs["upper"]),
                }
            )
            return original(*args, **kwargs)

        return wrapper

    with contextlib.ExitStack() as stack:
        for function_name in ("normal", "uniform", "truncated_normal"):
            original = getattr(module, function_name)
            stack.enter_context(
                patched(module, function_name, recorder(function_name, original))
            )
        stack.enter_context(
            patched(
                module.jax.random,
                "truncated_normal",
                jax_truncated(module.jax.random.truncated_normal),
            )
        )
        yield calls


KERAS_SCALARS = ("mean", "stddev", "minval", "maxval")


def row_from_keras_calls(calls: list[dict]) -> dict:
    """Turn the recorded sampler calls of one initializer into a row."""
    first = calls[0]
    if first["function"] == "keras.random.uniform":
        row = uniform_row(first["minval"], first["maxval"])
    elif first["function"] == "keras.random.normal":
        row = normal_row(first["mean"], first["stddev"])
    else:
        cut = calls[1]
        stddev = first["stddev"]
        mean = first["mean"]
        row = truncated_row(
            mean, stddev, mean + cut["lower"] * stddev, mean + cut["upper"] * stddev
        )
        row["truncation_in_sampler_stds"] = [cut["lower"], cut["upper"]]
    row["sampler"] = calls
    return row


KERAS_SHAPES = {
    "dense_784_256": ((784, 256), linear_layer(784, 256, layout="in_out", bias=False)),
    "dense_100_300": ((100, 300), linear_layer(100, 300, layout="in_out", bias=False)),
    "conv2d_64_128_k3": ((3, 3, 64, 128), conv_layer("conv2d", 64, 128, 3, bias=False)),
    "conv1d_16_32_k5": ((5, 16, 32), conv_layer("conv1d", 16, 32, 5, bias=False)),
    "embedding_1000_64": (
        (1000, 64),
        {"kind": "embedding", "name": LAYER_NAME, "in": 1000, "out": 64},
    ),
}

KERAS_NAMED = {
    "GlorotUniform": (1.0, "fan_avg", "uniform"),
    "GlorotNormal": (1.0, "fan_avg", "truncated_normal"),
    "HeUniform": (2.0, "fan_in", "uniform"),
    "HeNormal": (2.0, "fan_in", "truncated_normal"),
    "LecunUniform": (1.0, "fan_in", "uniform"),
    "LecunNormal": (1.0, "fan_in", "truncated_normal"),
}


def keras_initializer_case(
    case_id: str, call: str, initializer: Any, shape: tuple, layer: dict, scheme: dict
) -> dict:
    from keras.src.initializers.random_initializers import compute_fans

    with keras_sampler_calls() as calls:
        initializer(shape, dtype="float64")
    fan_in, fan_out = compute_fans(shape)
    return {
        "id": case_id,
        "library": "keras",
        "call": call,
        "layer": layer,
        "scheme": scheme,
        "parameters": [
            {
                "name": f"{layer['name']}.weight",
                "library_name": "kernel"
                if layer["kind"] != "embedding"
                else "embeddings",
                "tensor": "weight",
                "library_shape": list(shape),
                "fan_in": fan_in,
                "fan_out": fan_out,
                "gain": None,
                **row_from_keras_calls(calls),
            }
        ],
    }


def keras_cases() -> list[dict]:
    """VarianceScaling over scale × mode × distribution, the named initializers."""
    cases = []
    for shape_name, (shape, layer) in KERAS_SHAPES.items():
        for scale in (0.5, 1.0, 2.0):
            for mode in ("fan_in", "fan_out", "fan_avg"):
                for distribution in (
                    "truncated_normal",
                    "untruncated_normal",
                    "uniform",
                    "normal",
                ):
                    initializer = keras.initializers.VarianceScaling(
                        scale=scale, mode=mode, distribution=distribution, seed=SEED
                    )
                    call = (
                        f"keras.initializers.VarianceScaling(scale={scale!r}, "
                        f"mode={mode!r}, distribution={distribution!r})"
                        f"(shape={shape})"
                    )
                    cases.append(
                        keras_initializer_case(
                            f"keras.VarianceScaling/{shape_name}/{scale!r}/{mode}/"
                            f"{distribution}",
                            call,
                            initializer,
                            shape,
                            layer,
                            {
                                "name": "variance_scaling",
                                "scale": scale,
                                "mode": mode,
                                "distribution": distribution,
                                "convention": "keras",
                            },
                        )
                    )
        for class_name, (scale, mode, distribution) in KERAS_NAMED.items():
            initializer = getattr(keras.initializers, class_name)(seed=SEED)
            cases.append(
                keras_initializer_case(
                    f"keras.{class_name}/{shape_name}",
                    f"keras.initializers.{class_name}()(shape={shape})",
                    initializer,
                    shape,
                    layer,
                    {
                        "name": "variance_scaling",
                        "scale": scale,
                        "mode": mode,
                        "distribution": distribution,
                        "convention": "keras",
                    },
                )
            )
    return cases


KERAS_LAYERS = [
    (
        "keras.layers.Dense(256)",
        lambda: keras.layers.Dense(256),
        (None, 784),
        linear_layer(784, 256, layout="in_out"),
    ),
    (
        "keras.layers.Conv2D(128, 3)",
        lambda: keras.layers.Conv2D(128, 3),
        (None, 32, 32, 64),
        conv_layer("conv2d", 64, 128, 3),
    ),
    (
        "keras.layers.Conv2D(128, 3, groups=4)",
        lambda: keras.layers.Conv2D(128, 3, groups=4),
        (None, 32, 32, 64),
        conv_layer("conv2d", 64, 128, 3, groups=4),
    ),
    (
        "keras.layers.Conv2DTranspose(128, 3)",
        lambda: keras.layers.Conv2DTranspose(128, 3),
        (None, 32, 32, 64),
        conv_layer("conv_transpose2d", 64, 128, 3),
    ),
    (
        "keras.layers.Embedding(1000, 64)",
        lambda: keras.layers.Embedding(1000, 64),
        (None,),
        {"kind": "embedding", "name": LAYER_NAME, "in": 1000, "out": 64},
    ),
]


def keras_layer_default_cases() -> list[dict]:
    """Build Keras layers and record their default kernel and bias initializers."""
    from keras.src.initializers.random_initializers import compute_fans

    cases = []
    for text, make, input_shape, layer in KERAS_LAYERS:
        keras_layer = make()
        with keras_sampler_calls() as calls:
            keras_layer.build(input_shape)
        kernel = keras_layer.weights[0]
        kernel_shape = tuple(kernel.shape)
        fan_in, fan_out = compute_fans(kernel_shape)
        row = row_from_keras_calls(calls)
        if layer["kind"] == "embedding":
            scheme = {"name": "uniform", "a": row["low"], "b": row["high"]}
            fans: dict[str, Any] = {"fan_in": None, "fan_out": None}
        else:
            initializer = keras_layer.kernel_initializer
            scheme = {
                "name": "variance_scaling",
                "scale": initializer.scale,
                "mode": initializer.mode,
                "distribution": initializer.distribution,
                "convention": "keras",
            }
            fans = {"fan_in": fan_in, "fan_out": fan_out}
        parameters = [
            {
                "name": f"{layer['name']}.weight",
                "library_name": kernel.path,
                "tensor": "weight",
                "library_shape": list(kernel_shape),
                **fans,
                "gain": None,
                **row,
            }
        ]
        if len(keras_layer.weights) > 1:
            bias = keras_layer.weights[1]
            values = np.asarray(bias.value)
            if np.any(values != 0):
                raise RuntimeError(f"{text}: the bias is not all zeros")
            parameters.append(
                {
                    "name": f"{layer['name']}.bias",
                    "library_name": bias.path,
                    "tensor": "bias",
                    "library_shape": list(bias.shape),
                    "fan_in": None,
                    "fan_out": None,
                    "gain": None,
                    **constant_row(0.0),
                    "sampler": [
                        {"initializer": type(keras_layer.bias_initializer).__name__}
                    ],
                }
            )
        cases.append(
            {
                "id": f"keras.default/{text}",
                "library": "keras",
                "call": f"{text}.build({input_shape})",
                "layer": layer,
                "scheme": scheme,
                "parameters": parameters,
            }
        )
    return cases


# --------------------------------------------------------------------------
# JAX
# --------------------------------------------------------------------------


@contextlib.contextmanager
def jax_unit_samplers() -> Iterator[list[dict]]:
    """Replace jax.random's samplers by functions returning float64 ones.

    ``jax.nn.initializers`` multiplies the sampler's output by its scale, so
    with ones in place of random numbers the initializer returns the scale
    itself, exactly. The bounds the sampler is asked for are recorded.
    """
    calls: list[dict] = []
    module = jax_initializers.random

    def truncated_normal(key, lower, upper, shape=(), dtype=None, **kwargs):
        calls.append(
            {
                "function": "jax.random.truncated_normal",
                "lower": float(lower),
                "upper": float(upper),
            }
        )
        return jnp.ones(shape, dtype=jnp.float64)

    def normal(key, shape=(), dtype=None, **kwargs):
        calls.append({"function": "jax.random.normal"})
        return jnp.ones(shape, dtype=jnp.float64)

    def uniform(key, shape=(), dtype=None, minval=0.0, maxval=1.0, **kwargs):
        calls.append(
            {
                "function": "jax.random.uniform",
                "minval": float(minval),
                "maxval": float(maxval),
            }
        )
        return jnp.ones(shape, dtype=jnp.float64)

    with (
        patched(module, "truncated_normal", truncated_normal),
        patched(module, "normal", normal),
        patched(module, "uniform", uniform),
    ):
        yield calls


JAX_SHAPES = {
    "dense_784_256": ((784, 256), linear_layer(784, 256, layout="in_out", bias=False)),
    "dense_100_300": ((100, 300), linear_layer(100, 300, layout="in_out", bias=False)),
    "conv2d_64_128_k3": ((3, 3, 64, 128), conv_layer("conv2d", 64, 128, 3, bias=False)),
    "conv1d_16_32_k5": ((5, 16, 32), conv_layer("conv1d", 16, 32, 5, bias=False)),
}

JAX_NAMED = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}


def jax_initializer_case(
    case_id: str, call: str, initializer: Any, shape: tuple, layer: dict, scheme: dict
) -> dict:
    in_axis, out_axis, batch_axis = -2, -1, ()
    with jax_unit_samplers() as calls:
        multipliers = np.asarray(
            initializer(jax.random.key(SEED), shape, jnp.float64), dtype=np.float64
        )
    multiplier = float(multipliers.flat[0])
    if not np.all(multipliers == multiplier):
        raise RuntimeError(f"{case_id}: the initializer's scale is not uniform")
    fan_in, fan_out = jax_initializers._compute_fans(
        shape, in_axis, out_axis, batch_axis
    )
    (sampler,) = calls
    if sampler["function"] == "jax.random.uniform":
        row = uniform_row(
            sampler["minval"] * multiplier, sampler["maxval"] * multiplier
        )
    elif sampler["function"] == "jax.random.normal":
        row = normal_row(0.0, multiplier)
    else:
        row = truncated_row(
            0.0,
            multiplier,
            sampler["lower"] * multiplier,
            sampler["upper"] * multiplier,
        )
        row["truncation_in_sampler_stds"] = [sampler["lower"], sampler["upper"]]
    row["sampler"] = [{**sampler, "multiplier": multiplier}]
    return {
        "id": case_id,
        "library": "jax",
        "call": call,
        "layer": layer,
        "scheme": scheme,
        "parameters": [
            {
                "name": f"{layer['name']}.weight",
                "library_name": "kernel",
                "tensor": "weight",
                "library_shape": list(shape),
                "in_axis": in_axis,
                "out_axis": out_axis,
                "batch_axis": list(batch_axis),
                "fan_in": _integral(fan_in),
                "fan_out": _integral(fan_out),
                "gain": None,
                **row,
            }
        ],
    }


def _integral(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def jax_cases() -> list[dict]:
    """variance_scaling over scale × mode × distribution, the named ones."""
    cases = []
    for shape_name, (shape, layer) in JAX_SHAPES.items():
        for scale in (0.5, 1.0, 2.0):
            for mode in ("fan_in", "fan_out", "fan_avg", "fan_geo_avg"):
                for distribution in ("truncated_normal", "normal", "uniform"):
                    initializer = jax.nn.initializers.variance_scaling(
                        scale, mode, distribution
                    )
                    call = (
                        f"jax.nn.initializers.variance_scaling({scale!r}, {mode!r}, "
                        f"{distribution!r}, in_axis=-2, out_axis=-1)"
                        f"(key, {shape}, jnp.float64)"
                    )
                    cases.append(
                        jax_initializer_case(
                            f"jax.variance_scaling/{shape_name}/{scale!r}/{mode}/"
                            f"{distribution}",
                            call,
                            initializer,
                            shape,
                            layer,
                            {
                                "name": "variance_scaling",
                                "scale": scale,
                                "mode": mode,
                                "distribution": distribution,
                                "convention": "jax",
                            },
                        )
                    )
        for function_name, (scale, mode, distribution) in JAX_NAMED.items():
            initializer = getattr(jax.nn.initializers, function_name)()
            cases.append(
                jax_initializer_case(
                    f"jax.{function_name}/{shape_name}",
                    f"jax.nn.initializers.{function_name}()(key, {shape}, jnp.float64)",
                    initializer,
                    shape,
                    layer,
                    {
                        "name": "variance_scaling",
                        "scale": scale,
                        "mode": mode,
                        "distribution": distribution,
                        "convention": "jax",
                    },
                )
            )
    return cases


# --------------------------------------------------------------------------
# Writing the files
# --------------------------------------------------------------------------


def header(description: str, libraries: list[str], notes: list[str]) -> dict:
    versions = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "keras": keras.__version__,
        "jax": jax.__version__,
        "jaxlib": jax.lib.__version__,
    }
    command = " ".join(["python", *sys.argv])
    if os.environ.get("INITLAB_FIXTURES_COMMAND"):
        command = os.environ["INITLAB_FIXTURES_COMMAND"]
    return {
        "description": description,
        "generated_by": {
            "command": command,
            "script": "tools/make_reference_fixtures.py",
            "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "libraries": {name: versions[name] for name in libraries},
            "keras_backend": os.environ["KERAS_BACKEND"]
            if "keras" in libraries
            else None,
        },
        "notes": notes,
    }


FIELD_NOTES = [
    "Each case: layer is an initlab spec layer describing the library's layer; "
    "scheme is the initlab scheme that corresponds to the library call; call is "
    "the library call that produced the numbers.",
    "Per parameter: fan_in/fan_out are the library's own fans (null where the "
    "library computes none), gain is what the library used (null where it has no "
    "gain), std is the std of the values drawn (uniform: bound/sqrt(3); truncated: "
    "scipy.stats.truncnorm.std with the same absolute bounds; orthogonal: the "
    "element RMS of a float64 sample), bound is the half-width of a symmetric "
    "uniform, truncation holds the absolute bounds and the std given to the "
    "sampler, sampler lists the raw scalars the library handed to its sampler.",
]


def write(path: Path, document: dict) -> None:
    path.write_text(
        json.dumps(document, indent=1, allow_nan=False, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)

    write(
        arguments.out / "pytorch_init.json",
        {
            **header(
                "torch.nn.init functions applied to the weights of real modules",
                ["torch", "numpy", "scipy"],
                FIELD_NOTES
                + [
                    "Sampler scalars were captured by wrapping torch.Tensor.uniform_, "
                    "normal_, fill_, zero_, mul_, div_ and sub_ while the init ran; "
                    "gains by wrapping torch.nn.init.calculate_gain.",
                    "trunc_normal_ bounds a and b are absolute values; PyTorch "
                    "applies no variance correction. checks.empirical_std is the std "
                    f"of {TRUNCATED_SAMPLE_SIZE} float64 draws.",
                    "PyTorch 2.13's trunc_normal_ draws N(mean, std) and redraws "
                    "values outside [a, b] when more than 30% of the mass lies "
                    "inside (sampler_path), else accepts uniform proposals on "
                    "[a, b]; it casts a and b to the tensor's dtype for the "
                    "rejection test, so a float32 tensor is cut at float32(a).",
                    "A layer with layout in_out is GPT-2's Conv1D: PyTorch's fan "
                    "helper sees an (in, out) tensor and swaps the fans.",
                ],
            ),
            "cases": kaiming_cases()
            + xavier_cases()
            + trunc_normal_cases()
            + orthogonal_cases()
            + plain_distribution_cases(),
        },
    )
    write(
        arguments.out / "pytorch_module_defaults.json",
        {
            **header(
                "What PyTorch modules' reset_parameters() does to each parameter",
                ["torch"],
                FIELD_NOTES
                + [
                    "fan_in/fan_out of a bias are those of its layer's weight: it "
                    "is what the module's own code reads to size the bias bound.",
                    "nn.MultiheadAttention: in_proj_weight/in_proj_bias are initlab's "
                    "fused attention <name>.qkv, out_proj is <name>.o; its out_proj "
                    "bias is first drawn by Linear's reset and then set to 0.",
                ],
            ),
            "cases": [module_default_case(layer) for layer in MODULE_DEFAULT_LAYERS],
        },
    )
    write(
        arguments.out / "keras_init.json",
        {
            **header(
                "Keras 3 initializers on Keras-layout shapes (JAX backend)",
                ["keras", "jax", "jaxlib", "numpy", "scipy"],
                FIELD_NOTES
                + [
                    "Sampler scalars were captured by wrapping the backend's "
                    "random.normal/uniform/truncated_normal (what keras.random "
                    "calls) and jax.random.truncated_normal beneath it.",
                    "Keras turns distribution='normal' into 'truncated_normal'.",
                    "Kernels are (in, out) for Dense and (*kernel, in/groups, out) "
                    "for Conv; Conv*Transpose stores (*kernel, out, in); "
                    "DepthwiseConv2D (a different layout) is not covered.",
                ],
            ),
            "cases": keras_cases() + keras_layer_default_cases(),
        },
    )
    write(
        arguments.out / "jax_init.json",
        {
            **header(
                "jax.nn.initializers with jax_enable_x64",
                ["jax", "jaxlib", "numpy", "scipy"],
                FIELD_NOTES
                + [
                    "The scale was read by replacing jax.random.truncated_normal, "
                    "normal and uniform with functions returning float64 ones: the "
                    "initializer's output is then its multiplier, exactly.",
                    "Default axes in_axis=-2, out_axis=-1, batch_axis=() on "
                    "(in, out) and (*kernel, in, out) shapes.",
                    "JAX's distribution='normal' is untruncated.",
                    "Flax is not installed: flax.linen.Dense and Embed defaults "
                    "(lecun_normal, N(0, 1/features)) are not covered here.",
                ],
            ),
            "cases": jax_cases(),
        },
    )
    write(
        arguments.out / "activations.json",
        {
            **header(
                "Gaussian moments of activations and torch.nn.init.calculate_gain",
                ["torch", "numpy", "scipy"],
                [
                    "Moments of phi(z) and phi'(z) for z ~ N(0, 1), by "
                    "scipy.integrate.quad (epsabs=0, epsrel=1.2e-14, the least "
                    "quad accepts, limit=200) over [-40, 40] split at 0, ±2, ±8, "
                    "with phi being PyTorch's own function in float64 and phi' its "
                    "autograd derivative.",
                    "second_moment_gain = 1/sqrt(E[phi^2]), variance_gain = "
                    "1/sqrt(Var[phi]), gradient_gain = 1/sqrt(E[phi'^2]).",
                    "pytorch_gain is calculate_gain for the activation (identity as "
                    "'linear', gelu_tanh as 'gelu'); null where it raises.",
                ],
            ),
            "calculate_gain": calculate_gain_table(),
            "cases": activation_cases(),
        },
    )


if __name__ == "__main__":
    main()
