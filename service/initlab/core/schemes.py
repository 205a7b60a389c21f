"""The catalogue of initialization schemes: names, options, formulas and sources.

A scheme is chosen by name with options (:class:`initlab.core.types.
SchemeChoice`); :func:`resolve_scheme` checks it against the catalogue and fills
in every default, so that a resolved choice can be posted again and gives the
same result. How each scheme turns into numbers for a tensor lives in
``initlab.core.recommend``; the formulas themselves in
``initlab.core.initializers``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from initlab.core.activations import ACTIVATION_NAMES
from initlab.core.errors import FieldProblem, InvalidInput, Path, closest, json_value
from initlab.core.types import SchemeChoice

OptionType = Literal["number", "integer", "string"]

#: The names ``torch.nn.init.calculate_gain`` knows that are not activations of
#: the spec: they all mean "no nonlinearity" (gain 1).
PYTORCH_LINEAR_NAMES: tuple[str, ...] = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)

#: kaiming's ``nonlinearity``: "layer" means the activation that follows each layer.
KAIMING_NONLINEARITIES: tuple[str, ...] = (
    "layer",
    *PYTORCH_LINEAR_NAMES,
    *ACTIVATION_NAMES,
)

#: Schemes that give a value to any tensor, 1-D included.
VALUE_SCHEMES = frozenset({"constant", "normal", "uniform", "trunc_normal"})

#: The largest magnitude a number option takes unless it says otherwise: far
#: beyond any std, bound, gain or variance a network starts with, and far
#: from where float64 arithmetic on them (b − a, gain², (a − mean)/std)
#: overflows into a number JSON cannot carry.
OPTION_MAGNITUDE = 1e6


@dataclass(frozen=True)
class SchemeOption:
    """One option of a scheme: its type, default and the values it accepts.

    ``choices`` lists the accepted strings of a string option. A number option
    accepts finite numbers from ``minimum`` (excluded when
    ``exclusive_minimum``) to ``maximum``, which default to
    ∓:data:`OPTION_MAGNITUDE`; ``nullable`` options also accept null.
    """

    name: str
    type: OptionType
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    exclusive_minimum: bool = False
    nullable: bool = False
    maximum: float | None = None

    @property
    def lowest(self) -> float:
        """The smallest number accepted (excluded when ``exclusive_minimum``)."""
        return -OPTION_MAGNITUDE if self.minimum is None else self.minimum

    @property
    def highest(self) -> float:
        """The largest number accepted."""
        return OPTION_MAGNITUDE if self.maximum is None else self.maximum

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is a number this option takes (null aside).

        The bounds are compared before anything converts ``value`` to a float,
        so an integer with 400 digits is refused rather than overflowing.
        """
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        above = value > self.lowest if self.exclusive_minimum else value >= self.lowest
        if not (above and value <= self.highest) or not math.isfinite(value):
            return False

        return self.type != "integer" or float(value).is_integer()

    @property
    def allowed(self) -> list[str] | str:
        """The accepted values, as the catalogue shows them."""
        if self.type == "string":
            return list(self.choices)

        kind = "an integer" if self.type == "integer" else "a number"
        left = "(" if self.exclusive_minimum else "["
        kind = f"{kind} in {left}{_bound(self.lowest)}, {_bound(self.highest)}]"
        if self.nullable:
            kind = f"null or {kind}"

        return kind

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "allowed": self.allowed,
            "description": self.description,
        }


def _bound(number: float) -> str:
    """A bound as a message writes it: 0, 0.5, 1000, 1e6, 2147483647."""
    if float(number).is_integer() and abs(number) < 1e5:
        return str(int(number))
    if abs(number) >= 1e5 and math.log10(abs(number)).is_integer():
        return f"{'-' if number < 0 else ''}1e{round(math.log10(abs(number)))}"

    return repr(number)


@dataclass(frozen=True)
class Scheme:
    """A scheme as the catalogue (``GET /v1/schemes``) describes it.

    ``formula`` is LaTeX. ``convention`` says whose fans and numbers the scheme
    follows. ``needs_matrix`` is true for schemes that, like ``torch.nn.init``,
    need a tensor with at least 2 dimensions; ``bias_rule`` is true where the
    scheme has its own rule for biases (``torch_default``, ``mean_field``).
    """

    name: str
    description: str
    applies_to: str
    options: tuple[SchemeOption, ...]
    formula: str
    source: str
    convention: str
    needs_matrix: bool = True
    bias_rule: bool = False

    def option(self, name: str) -> SchemeOption:
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "applies_to": self.applies_to,
            "options": [option.as_dict() for option in self.options],
            "formula": self.formula,
            "source": self.source,
            "convention": self.convention,
        }


_WEIGHTS = (
    "weights of linear, conv, transposed conv and embedding layers; biases 0; "
    "norm layers weight 1, bias 0"
)
_GAIN = SchemeOption(
    "gain",
    "number",
    1.0,
    "multiplies the std (torch.nn.init's gain)",
    minimum=0.0,
    exclusive_minimum=True,
)
_TORCH_MODE = SchemeOption(
    "mode",
    "string",
    "fan_in",
    "fan_in keeps the forward pass's scale, fan_out the backward pass's",
    choices=("fan_in", "fan_out"),
)
_NONLINEARITY = SchemeOption(
    "nonlinearity",
    "string",
    "layer",
    "the nonlinearity whose gain to use; 'layer' takes the activation that follows "
    "each layer; names PyTorch has no gain for get the second-moment gain "
    "1/sqrt(E[phi(z)^2])",
    choices=KAIMING_NONLINEARITIES,
)
_NEGATIVE_SLOPE = SchemeOption(
    "negative_slope",
    "number",
    None,
    "leaky_relu's slope (torch's a); null takes the layer's own slope, or 0 "
    "(PyTorch's default a=0) when the nonlinearity is given by name",
    minimum=0.0,
    nullable=True,
    maximum=1e3,
)
_LECUN_CONVENTION = SchemeOption(
    "convention",
    "string",
    "pytorch",
    "pytorch: untruncated, kaiming_*_(nonlinearity='linear'); keras and jax: "
    "VarianceScaling(1, 'fan_in', 'truncated_normal' or 'uniform') with their fans",
    choices=("pytorch", "keras", "jax"),
)
_N_LAYERS = SchemeOption(
    "n_layers",
    "number",
    None,
    "number of transformer blocks; null takes residual_branch_count/2 (an "
    "attention and an MLP branch per block)",
    minimum=0.0,
    exclusive_minimum=True,
    nullable=True,
)


def _catalogue() -> tuple[Scheme, ...]:
    return (
        Scheme(
            "auto",
            "A principled choice per layer: the exact gain of the nonlinearity "
            "applied to the layer's input over the signal fan_in (He for the ReLU "
            "family, LeCun for identity and SELU, 1/sqrt(E[phi(z)^2]) for smooth "
            "activations), residual branch outputs scaled by 1/sqrt(branch count) "
            "in pre-norm and norm-free networks, embeddings N(0, 1) (tied: "
            "N(0, 1/d)).",
            _WEIGHTS,
            (),
            r"\sigma = \frac{g_\phi}{\sqrt{n_\mathrm{in}}},\quad "
            r"g_\phi = \frac{1}{\sqrt{\mathbb{E}_{z\sim\mathcal{N}(0,1)}[\phi(z)^2]}}"
            r",\quad \sigma_\mathrm{branch\,out} = \frac{\sigma}{\sqrt{B}}",
            "He et al. 2015 §2.2; LeCun et al. 1998 §4.6; Poole et al. 2016 §2; "
            "Radford et al. 2019 §2.3",
            "signal",
        ),
        Scheme(
            "xavier_uniform",
            "Glorot/Xavier uniform: U(-a, a) keeping the average of forward and "
            "backward variance.",
            _WEIGHTS,
            (_GAIN,),
            r"a = g\sqrt{\frac{6}{n_\mathrm{in} + n_\mathrm{out}}}",
            "Glorot & Bengio 2010 §4.2; PyTorch 2.13 torch.nn.init.xavier_uniform_",
            "pytorch",
        ),
        Scheme(
            "xavier_normal",
            "Glorot/Xavier normal (untruncated, as PyTorch).",
            _WEIGHTS,
            (_GAIN,),
            r"\sigma = g\sqrt{\frac{2}{n_\mathrm{in} + n_\mathrm{out}}}",
            "Glorot & Bengio 2010 §4.2; PyTorch 2.13 torch.nn.init.xavier_normal_",
            "pytorch",
        ),
        Scheme(
            "kaiming_uniform",
            "He/Kaiming uniform with the gain of a nonlinearity.",
            _WEIGHTS,
            (_TORCH_MODE, _NONLINEARITY, _NEGATIVE_SLOPE),
            r"a = \sqrt{3}\,\frac{g}{\sqrt{n_\mathrm{mode}}}",
            "He et al. 2015 §2.2; PyTorch 2.13 torch.nn.init.kaiming_uniform_",
            "pytorch",
        ),
        Scheme(
            "kaiming_normal",
            "He/Kaiming normal (untruncated) with the gain of a nonlinearity.",
            _WEIGHTS,
            (_TORCH_MODE, _NONLINEARITY, _NEGATIVE_SLOPE),
            r"\sigma = \frac{g}{\sqrt{n_\mathrm{mode}}}",
            "He et al. 2015 §2.2; PyTorch 2.13 torch.nn.init.kaiming_normal_",
            "pytorch",
        ),
        Scheme(
            "lecun_uniform",
            "LeCun uniform: variance 1/fan_in.",
            _WEIGHTS,
            (_LECUN_CONVENTION,),
            r"a = \sqrt{\frac{3}{n_\mathrm{in}}}",
            "LeCun et al. 1998 §4.6; Keras 3 LecunUniform; JAX lecun_uniform",
            "pytorch",
        ),
        Scheme(
            "lecun_normal",
            "LeCun normal: variance 1/fan_in (truncated in Keras and JAX).",
            _WEIGHTS,
            (_LECUN_CONVENTION,),
            r"\sigma = \frac{1}{\sqrt{n_\mathrm{in}}}",
            "LeCun et al. 1998 §4.6; Klambauer et al. 2017 (SELU); Keras 3 "
            "LecunNormal; JAX lecun_normal",
            "pytorch",
        ),
        Scheme(
            "variance_scaling",
            "Keras/JAX VarianceScaling: variance scale/n; the truncated normal's "
            "sampler std is enlarged by 1/0.8796 so the drawn values keep it.",
            _WEIGHTS,
            (
                SchemeOption(
                    "scale",
                    "number",
                    1.0,
                    "the variance multiplier (2.0 for He, 1.0 for LeCun and Glorot)",
                    minimum=0.0,
                    exclusive_minimum=True,
                ),
                SchemeOption(
                    "mode",
                    "string",
                    "fan_in",
                    "the n divided by: fan_in, fan_out, their mean, or (JAX only) "
                    "their geometric mean",
                    choices=("fan_in", "fan_out", "fan_avg", "fan_geo_avg"),
                ),
                SchemeOption(
                    "distribution",
                    "string",
                    "truncated_normal",
                    "'normal' means truncated_normal in Keras and untruncated in "
                    "JAX; untruncated_normal is Keras only",
                    choices=(
                        "truncated_normal",
                        "untruncated_normal",
                        "uniform",
                        "normal",
                    ),
                ),
                SchemeOption(
                    "convention",
                    "string",
                    "keras",
                    "whose fans and rules: keras (clamps n >= 1) or jax",
                    choices=("keras", "jax"),
                ),
            ),
            r"v = \frac{s}{n},\ n \in \{n_\mathrm{in}, n_\mathrm{out}, "
            r"\tfrac{n_\mathrm{in}+n_\mathrm{out}}{2}, "
            r"\sqrt{n_\mathrm{in} n_\mathrm{out}}\}"
            r";\ \mathcal{U}(\pm\sqrt{3v}),\ \mathcal{N}(0, v),\ "
            r"\mathcal{TN}(0, (\sqrt{v}/0.8796)^2, \pm 2\sigma)",
            "Keras 3 keras.initializers.VarianceScaling; JAX 0.10 "
            "jax.nn.initializers.variance_scaling",
            "keras",
        ),
        Scheme(
            "orthogonal",
            "A (semi-)orthogonal matrix times gain; the tensor is flattened to "
            "(shape[0], numel/shape[0]).",
            _WEIGHTS,
            (_GAIN,),
            r"W W^\top = g^2 I\ (\text{rows} \le \text{cols}),\quad "
            r"\mathrm{RMS}(W) = \frac{g}{\sqrt{\max(\text{rows}, \text{cols})}}",
            "Saxe et al. 2014 §3; PyTorch 2.13 torch.nn.init.orthogonal_",
            "pytorch",
        ),
        Scheme(
            "trunc_normal",
            "N(mean, std^2) cut at the absolute bounds a and b, without variance "
            "correction (the drawn std is smaller than std).",
            "any tensor an override names; as a top-level scheme, weights only",
            (
                SchemeOption("mean", "number", 0.0, "mean of the untruncated normal"),
                SchemeOption(
                    "std",
                    "number",
                    1.0,
                    "std of the untruncated normal",
                    minimum=0.0,
                    exclusive_minimum=True,
                ),
                SchemeOption("a", "number", -2.0, "lower bound (absolute value)"),
                SchemeOption("b", "number", 2.0, "upper bound (absolute value)"),
            ),
            r"\mathcal{N}(\mu, \sigma^2)\ \text{cut to}\ [a, b],\quad "
            r"\sigma_\mathrm{drawn} = \sigma\sqrt{1 + \frac{\alpha\varphi(\alpha) - "
            r"\beta\varphi(\beta)}{Z} - \left(\frac{\varphi(\alpha) - "
            r"\varphi(\beta)}{Z}\right)^2}",
            "PyTorch 2.13 torch.nn.init.trunc_normal_; Johnson, Kotz & "
            "Balakrishnan 1994 §13.10.1",
            "pytorch",
            needs_matrix=False,
        ),
        Scheme(
            "normal",
            "N(mean, std^2).",
            "any tensor an override names; as a top-level scheme, weights only",
            (
                SchemeOption("mean", "number", 0.0, "mean"),
                SchemeOption("std", "number", 1.0, "standard deviation", minimum=0.0),
            ),
            r"\mathcal{N}(\mu, \sigma^2)",
            "PyTorch 2.13 torch.nn.init.normal_",
            "pytorch",
            needs_matrix=False,
        ),
        Scheme(
            "uniform",
            "U(a, b).",
            "any tensor an override names; as a top-level scheme, weights only",
            (
                SchemeOption("a", "number", 0.0, "lower bound"),
                SchemeOption("b", "number", 1.0, "upper bound"),
            ),
            r"\mathcal{U}(a, b),\quad \sigma = \frac{b - a}{\sqrt{12}}",
            "PyTorch 2.13 torch.nn.init.uniform_",
            "pytorch",
            needs_matrix=False,
        ),
        Scheme(
            "constant",
            "Every entry set to value (zeros_, ones_, constant_).",
            "any tensor an override names; as a top-level scheme, weights only",
            (SchemeOption("value", "number", 0.0, "the value"),),
            r"W_{ij} = c",
            "PyTorch 2.13 torch.nn.init.constant_",
            "pytorch",
            needs_matrix=False,
        ),
        Scheme(
            "mean_field",
            "The mean-field parametrisation W ~ N(0, sigma_w2/fan_in), "
            "b ~ N(0, sigma_b2), with fan_in counted on the signal.",
            "weights and biases; norm layers weight 1, bias 0",
            (
                SchemeOption(
                    "sigma_w2",
                    "number",
                    1.0,
                    "weight variance times fan_in",
                    minimum=0.0,
                    exclusive_minimum=True,
                ),
                SchemeOption("sigma_b2", "number", 0.0, "bias variance", minimum=0.0),
            ),
            r"W_{ij} \sim \mathcal{N}\!\left(0, \frac{\sigma_w^2}{n_\mathrm{in}}\right)"
            r",\quad b_i \sim \mathcal{N}(0, \sigma_b^2)",
            "Poole et al. 2016 §2; Schoenholz et al. 2017 §2",
            "signal",
            bias_rule=True,
        ),
        Scheme(
            "torch_default",
            "What PyTorch modules do on construction: nn.Linear/ConvNd "
            "kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)) for weight and bias, "
            "nn.Embedding N(0, 1), norms 1/0, nn.MultiheadAttention xavier_uniform_ "
            "over the packed in_proj and zero biases.",
            "every tensor, with each module's own rule",
            (
                SchemeOption(
                    "attention",
                    "string",
                    "multihead_attention",
                    "which module an attention layer stands for: "
                    "nn.MultiheadAttention (where its shapes allow) or plain "
                    "nn.Linear projections",
                    choices=("multihead_attention", "linear"),
                ),
            ),
            r"W, b \sim \mathcal{U}\!\left(\pm\frac{1}{\sqrt{n_\mathrm{in}}}\right)",
            "PyTorch 2.13 nn.Linear.reset_parameters, nn.Embedding, "
            "nn.MultiheadAttention._reset_parameters",
            "pytorch",
            bias_rule=True,
        ),
        Scheme(
            "gpt2",
            "GPT-2: every weight N(0, std^2); residual output projections "
            "std/sqrt(2 n_layer) (2 n_layer = residual branch count).",
            _WEIGHTS,
            (
                SchemeOption(
                    "std",
                    "number",
                    0.02,
                    "base std",
                    minimum=0.0,
                    exclusive_minimum=True,
                ),
            ),
            r"\sigma = 0.02,\quad \sigma_\mathrm{branch\,out} = \frac{0.02}{\sqrt{2L}}",
            "Radford et al. 2019 §2.3; nanoGPT and Hugging Face GPT2Model",
            "gpt2",
        ),
        Scheme(
            "megatron",
            "Megatron-LM: N(0, sigma^2), attention and MLP output layers "
            "sigma/sqrt(2 num_layers).",
            _WEIGHTS,
            (
                SchemeOption(
                    "std",
                    "number",
                    0.02,
                    "init_method_std",
                    minimum=0.0,
                    exclusive_minimum=True,
                ),
            ),
            r"\sigma,\quad \sigma_\mathrm{out} = \frac{\sigma}{\sqrt{2L}}",
            "Shoeybi et al. 2019 §3; Megatron-LM scaled_init_method_normal",
            "megatron",
        ),
        Scheme(
            "small_init",
            "small_init N(0, 2/(5d)) everywhere, with wang_init 2/(L sqrt(d)) on "
            "residual output projections, as GPT-NeoX.",
            _WEIGHTS,
            (
                _N_LAYERS,
                SchemeOption(
                    "d_model",
                    "integer",
                    None,
                    "model width d; null takes the residual stream's width (the "
                    "layer's input width outside residual branches)",
                    minimum=1,
                    nullable=True,
                    maximum=2**31 - 1,
                ),
            ),
            r"\sigma = \sqrt{\frac{2}{5d}},\quad \sigma_\mathrm{out} = "
            r"\frac{2}{L\sqrt{d}}",
            "Nguyen & Salazar 2019 §2.2; GPT-NeoX small_init_init_method and "
            "wang_init_method",
            "gpt-neox",
        ),
        Scheme(
            "fixup",
            "Fixup: readout and each residual branch's last layer zero, other "
            "branch layers He-initialised and scaled by L^(-1/(2m-2)).",
            _WEIGHTS,
            (_TORCH_MODE,),
            r"W_\mathrm{last} = 0,\quad \sigma = \frac{g}{\sqrt{n_\mathrm{mode}}}"
            r"\,L^{-\frac{1}{2m-2}}",
            "Zhang, Dauphin & Ma 2019 §3",
            "pytorch",
        ),
        Scheme(
            "deepnorm",
            "DeepNorm (post-LN x <- LN(alpha x + G(x))): xavier_normal with gain "
            "beta = (8N)^(-1/4) on ffn, value and output projections, gain 1 on "
            "query and key; alpha = (2N)^(1/4) is reported.",
            _WEIGHTS,
            (_N_LAYERS,),
            r"\beta = (8N)^{-1/4},\quad \alpha = (2N)^{1/4}",
            "Wang et al. 2022, DeepNet §3, Table 1",
            "pytorch",
        ),
    )


SCHEMES: dict[str, Scheme] = {scheme.name: scheme for scheme in _catalogue()}
SCHEME_NAMES: tuple[str, ...] = tuple(SCHEMES)


def scheme_catalogue() -> tuple[Scheme, ...]:
    """Every scheme, in catalogue order (``auto`` first)."""
    return tuple(SCHEMES.values())


def resolve_scheme(
    choice: SchemeChoice, path: Path, name_path: Path | None = None
) -> SchemeChoice:
    """Check ``choice`` against the catalogue and fill in every default.

    ``path`` is where the scheme sits in the request (``("scheme",)`` or
    ``("overrides", pattern)``); problems with an option are reported at
    ``path + (option,)``, an unknown name at ``name_path`` (default
    ``path + ("name",)``; pass ``path`` when the scheme was given as a bare
    string). Every problem is reported at once. Numbers come back as floats.
    """
    name_path = tuple(name_path) if name_path is not None else (*path, "name")
    scheme = SCHEMES.get(choice.name) if isinstance(choice.name, str) else None
    if scheme is None:
        raise InvalidInput.at(
            name_path,
            _unknown_scheme_message(choice.name),
            value=choice.name,
            allowed=", ".join(SCHEME_NAMES),
        )

    given = choice.options
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise InvalidInput.at(
            path,
            f"the options of {scheme.name} must be an object, got {json_value(given)}",
            value=given,
            allowed="an object of option: value",
        )

    problems: list[FieldProblem] = []
    resolved: dict[str, Any] = {}
    known = {option.name for option in scheme.options}
    for key in given:
        if key not in known:
            own = ", ".join(sorted(known)) if known else "no options"
            problems.append(
                FieldProblem(
                    (*path, key),
                    f"{scheme.name} takes {own}, not {json_value(key)}; remove"
                    f" {json_value(key)}",
                    value=given[key],
                    allowed=own,
                )
            )
    for option in scheme.options:
        value = given.get(option.name, option.default)
        problem = _option_problem(scheme, option, value, (*path, option.name))
        if problem is not None:
            problems.append(problem)
        else:
            resolved[option.name] = _normalised(option, value)

    if not problems:
        problems.extend(_combination_problems(scheme.name, resolved, path))
    if problems:
        raise InvalidInput(problems)

    return SchemeChoice(scheme.name, resolved)


def _option_problem(
    scheme: Scheme, option: SchemeOption, value: Any, path: Path
) -> FieldProblem | None:
    if value is None and option.nullable:
        return None

    fix = f"omit it for the default {json_value(option.default)}"
    if option.type == "string":
        if isinstance(value, str) and value in option.choices:
            return None
        close = closest(value, option.choices)
        hint = f"; did you mean {json_value(close)}?" if close else ""
        return FieldProblem(
            path,
            f"{scheme.name} {option.name} must be one of {', '.join(option.choices)}"
            f", got {json_value(value)}{hint}",
            value=value,
            allowed=", ".join(option.choices),
        )

    if option.accepts(value):
        return None

    return FieldProblem(
        path,
        f"{scheme.name} {option.name} must be {option.allowed}, got"
        f" {json_value(value)}; {fix}",
        value=value,
        allowed=option.allowed,
    )


def _normalised(option: SchemeOption, value: Any) -> Any:
    if value is None or option.type == "string":
        return value
    if option.type == "integer":
        return int(value)

    return float(value)


def _combination_problems(
    name: str, options: dict[str, Any], path: Path
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if name == "variance_scaling":
        convention = options["convention"]
        if options["mode"] == "fan_geo_avg" and convention != "jax":
            problems.append(
                FieldProblem(
                    (*path, "mode"),
                    'mode "fan_geo_avg" exists only in JAX; set convention to '
                    '"jax" or use fan_in, fan_out or fan_avg',
                    value="fan_geo_avg",
                    allowed="fan_in, fan_out, fan_avg",
                )
            )
        if options["distribution"] == "untruncated_normal" and convention == "jax":
            problems.append(
                FieldProblem(
                    (*path, "distribution"),
                    'JAX has no "untruncated_normal"; its "normal" is untruncated',
                    value="untruncated_normal",
                    allowed="truncated_normal, normal, uniform",
                )
            )
    if name == "trunc_normal" and not options["a"] < options["b"]:
        problems.append(
            FieldProblem(
                (*path, "b"),
                f"trunc_normal needs a < b, got a = {json_value(options['a'])}, b ="
                f" {json_value(options['b'])}",
                value=options["b"],
                allowed=f"a number > {json_value(options['a'])}",
            )
        )
    if name == "uniform" and not options["a"] <= options["b"]:
        problems.append(
            FieldProblem(
                (*path, "b"),
                f"uniform needs a <= b, got a = {json_value(options['a'])}, b ="
                f" {json_value(options['b'])}",
                value=options["b"],
                allowed=f"a number >= {json_value(options['a'])}",
            )
        )

    return problems


def _unknown_scheme_message(name: object) -> str:
    message = f"unknown scheme {json_value(name)}; allowed: {', '.join(SCHEME_NAMES)}"
    if isinstance(name, str):
        aliases = {
            "glorot_uniform": "xavier_uniform",
            "glorot_normal": "xavier_normal",
            "he_uniform": "kaiming_uniform",
            "he_normal": "kaiming_normal",
            "zeros": {"name": "constant", "value": 0.0},
            "ones": {"name": "constant", "value": 1.0},
            "default": "torch_default",
        }
        suggestion = aliases.get(name.lower(), closest(name.lower(), SCHEME_NAMES))
        if suggestion:
            return f"{message}; did you mean {json_value(suggestion)}?"

    return message
