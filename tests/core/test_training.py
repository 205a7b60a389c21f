"""initlab.core.training: the numpy engine that trains a spec.

Gradients are checked against central finite differences in float64; each
optimizer's update against the update written out by hand from torch.optim's
definitions (SGD, Adam with L2 decay, AdamW with decoupled decay); losses
against their formulas; draws against the distributions they promise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from initlab.core.activations import ACTIVATION_NAMES, make_activation
from initlab.core.errors import InvalidInput
from initlab.core.initializers import truncated_normal_std
from initlab.core.spec import (
    AttentionSpec,
    ConvSpec,
    EmbeddingSpec,
    GatedMlpSpec,
    LinearSpec,
    NormLayerSpec,
    NormSpec,
    RepeatGroup,
    ResidualGroup,
    SequentialGroup,
    Spec,
    expand,
)
from initlab.core.training import (
    Network,
    Parametrization,
    TensorSetup,
    cross_entropy,
    draw_tensor,
    mean_squared_error,
    network_sizes,
)

RELATIVE_TOLERANCE = 1e-4
STEP = 1e-6


def setups(expanded, *, lr=0.1, weight_decay=0.0, multipliers=None, std=0.5, mean=0.0):
    """A normal TensorSetup for every tensor; ``multipliers`` by tensor name."""
    multipliers = multipliers or {}
    return {
        tensor.name: TensorSetup(
            init_mean=mean,
            init_std=std,
            distribution="normal",
            lr=lr,
            weight_decay=weight_decay,
            forward_multiplier=multipliers.get(tensor.name, 1.0),
        )
        for tensor in expanded.parameters
    }


def numeric_gradients(network, x, y, loss):
    """Central differences of the loss in every entry of every stored tensor."""
    found = {}
    for name, param in network.params.items():
        values = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            kept = param[index]
            param[index] = kept + STEP
            above = network.loss_and_gradients(x, y, loss).loss
            param[index] = kept - STEP
            below = network.loss_and_gradients(x, y, loss).loss
            param[index] = kept
            values[index] = (above - below) / (2 * STEP)
        found[name] = values
    return found


def assert_gradients_match(network, x, y, loss):
    analytic = network.loss_and_gradients(x, y, loss).gradients
    numeric = numeric_gradients(network, x, y, loss)
    assert analytic.keys() == numeric.keys() == network.params.keys()
    for name, expected in numeric.items():
        error = np.linalg.norm(analytic[name] - expected)
        assert error <= RELATIVE_TOLERANCE * np.linalg.norm(expected), name


def inputs(rng, batch, width):
    return rng.standard_normal((batch, width))


def labels(rng, batch, classes):
    return rng.integers(0, classes, batch)


# --- gradients ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_linear_gradients_match_finite_differences_for_every_activation(name):
    params = {"negative_slope": 0.2} if name == "leaky_relu" else {}
    activation = make_activation(name, params)
    spec = Spec(
        dims={},
        layers=(
            LinearSpec(name="fc", in_features=3, out_features=4, activation=activation),
            LinearSpec(name="out", in_features=4, out_features=3),
        ),
    )
    expanded = expand(spec)
    network = Network(expanded, Parametrization(setups(expanded)), 1, np.float64)
    rng = np.random.default_rng(2)
    x = inputs(rng, 5, 3)
    # Differentiable at the sampled points: no pre-activation within reach of
    # a kink (ReLU family, ELU, SELU and softsign bend at 0).
    pre_activation = x @ network.params["fc.weight"].T + network.params["fc.bias"]
    assert np.min(np.abs(pre_activation)) > 100 * STEP

    assert_gradients_match(network, x, labels(rng, 5, 3), "cross_entropy")


def test_gradients_with_forward_multipliers_biases_and_mse():
    spec = Spec(
        dims={"w": 4},
        layers=(
            LinearSpec(name="inp", in_features=3, out_features="w"),
            LinearSpec(name="hidden", in_features="w", out_features="w", bias=False),
            LinearSpec(name="readout", in_features="w", out_features=2),
        ),
    )
    expanded = expand(spec)
    multipliers = {"inp.weight": 1.7, "inp.bias": 0.6, "readout.weight": 0.25}
    parametrization = Parametrization(setups(expanded, multipliers=multipliers))
    network = Network(expanded, parametrization, 3, np.float64)
    rng = np.random.default_rng(4)

    assert_gradients_match(
        network, inputs(rng, 6, 3), rng.standard_normal((6, 2)), "mse"
    )


@pytest.mark.parametrize("placement", ["pre", "post", "none"])
@pytest.mark.parametrize("norm_kind", ["layer_norm", "rms_norm"])
def test_residual_gradients_with_norms_and_residual_multiplier(placement, norm_kind):
    silu = make_activation("silu")
    spec = Spec(
        dims={"d": 5},
        layers=(
            LinearSpec(name="inp", in_features=3, out_features="d"),
            RepeatGroup(
                name="h",
                count=2,
                layers=(
                    ResidualGroup(
                        norm=placement,
                        norm_layer=(
                            None
                            if placement == "none"
                            else NormLayerSpec(kind=norm_kind)
                        ),
                        layers=(
                            LinearSpec(
                                name="fc",
                                in_features="d",
                                out_features=6,
                                activation=silu,
                            ),
                            LinearSpec(name="proj", in_features=6, out_features="d"),
                        ),
                    ),
                ),
            ),
            NormSpec(kind=norm_kind, in_features="d", name="ln_f"),
            LinearSpec(name="out", in_features="d", out_features=3),
        ),
    )
    expanded = expand(spec)
    # Norm gains away from 1 and biases away from 0, so their gradients matter.
    tensors = setups(expanded, std=0.6, mean=0.3, multipliers={"ln_f.weight": 1.3})
    parametrization = Parametrization(tensors, residual_multiplier=0.7)
    network = Network(expanded, parametrization, 5, np.float64)
    rng = np.random.default_rng(6)

    assert_gradients_match(
        network, inputs(rng, 4, 3), labels(rng, 4, 3), "cross_entropy"
    )


def test_norm_layers_with_an_activation_and_a_sequential_group():
    spec = Spec(
        dims={},
        layers=(
            SequentialGroup(
                name="block",
                layers=(
                    LinearSpec(name="fc", in_features=2, out_features=4),
                    NormSpec(
                        kind="layer_norm",
                        in_features=4,
                        name="ln",
                        activation=make_activation("tanh"),
                    ),
                ),
            ),
            LinearSpec(name="out", in_features=4, out_features=2),
        ),
    )
    expanded = expand(spec)
    network = Network(
        expanded, Parametrization(setups(expanded, mean=0.2)), 7, np.float64
    )
    rng = np.random.default_rng(8)

    assert_gradients_match(
        network, inputs(rng, 3, 2), rng.standard_normal((3, 2)), "mse"
    )


# --- forward --------------------------------------------------------------------------


def test_forward_applies_multipliers_and_records_pre_activation_means():
    relu = make_activation("relu")
    spec = Spec(
        dims={},
        layers=(
            LinearSpec(name="fc", in_features=2, out_features=3, activation=relu),
            ResidualGroup(
                name="block",
                norm="none",
                layers=(LinearSpec(name="proj", in_features=3, out_features=3),),
            ),
            LinearSpec(name="out", in_features=3, out_features=2, bias=False),
        ),
    )
    expanded = expand(spec)
    tensors = setups(
        expanded, multipliers={"fc.weight": 2.0, "fc.bias": 3.0, "out.weight": 0.5}
    )
    network = Network(expanded, Parametrization(tensors, residual_multiplier=0.25), 0)
    p = {name: value.astype(np.float64) for name, value in network.params.items()}
    x = np.array([[1.0, -2.0], [0.5, 0.25]])

    output, records = network.forward(x, record=True)

    h = 2.0 * x @ p["fc.weight"].T + 3.0 * p["fc.bias"]
    a = np.maximum(h, 0.0)
    branch = a @ p["block.proj.weight"].T + p["block.proj.bias"]
    total = a + 0.25 * branch
    expected = 0.5 * total @ p["out.weight"].T
    assert output.dtype == np.float32
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)
    assert list(records) == ["fc", "block.proj", "block", "out"]
    assert records["fc"] == pytest.approx(np.mean(np.abs(h)), rel=1e-6)
    assert records["block"] == pytest.approx(np.mean(np.abs(total)), rel=1e-6)
    assert records["out"] == pytest.approx(np.mean(np.abs(expected)), rel=1e-6)
    assert network.forward(x)[1] == {}


def test_same_seed_same_parameters_and_outputs():
    expanded = expand(
        Spec(
            dims={},
            layers=(
                LinearSpec(name="a", in_features=4, out_features=8),
                LinearSpec(name="b", in_features=8, out_features=3),
            ),
        )
    )
    parametrization = Parametrization(setups(expanded))
    first, second = (Network(expanded, parametrization, 11) for _ in range(2))
    other = Network(expanded, parametrization, 12)
    x = np.random.default_rng(0).standard_normal((5, 4))

    for name in first.params:
        np.testing.assert_array_equal(first.params[name], second.params[name])
    np.testing.assert_array_equal(first.forward(x)[0], second.forward(x)[0])
    assert not np.array_equal(first.params["a.weight"], other.params["a.weight"])
    # Drawn from default_rng(seed) in forward order.
    rng = np.random.default_rng(11)
    np.testing.assert_array_equal(
        first.params["a.weight"], 0.5 * rng.standard_normal((8, 4), dtype=np.float32)
    )


# --- losses ---------------------------------------------------------------------------


def test_cross_entropy_and_mse_against_their_formulas():
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]])
    classes = np.array([0, 1])
    value, gradient = cross_entropy(logits, classes)
    first = -2.0 + math.log(math.exp(2.0) + math.exp(-1.0) + math.exp(0.5))
    second = math.log(2.0 + math.exp(3.0))
    assert value == pytest.approx((first + second) / 2, rel=1e-14)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    softmax[[0, 1], classes] -= 1.0
    np.testing.assert_allclose(gradient, softmax / 2, rtol=1e-13)

    targets = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    value, gradient = mean_squared_error(logits, targets)
    assert value == pytest.approx(0.5 * ((1 + 1 + 0.25) + (0 + 4 + 9)) / 2, rel=1e-14)
    np.testing.assert_allclose(gradient, (logits - targets) / 2, rtol=1e-14)


def test_large_logits_keep_a_finite_cross_entropy():
    value, gradient = cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))
    assert value == pytest.approx(1000.0, rel=1e-12)
    np.testing.assert_allclose(gradient, [[1.0, -1.0]], atol=1e-12)


# --- optimizers -----------------------------------------------------------------------


def two_tensor_network(optimizer, eps=1e-8, betas=(0.9, 0.999)):
    """One linear layer whose weight and bias have different lr and decay."""
    expanded = expand(
        Spec(dims={}, layers=(LinearSpec(name="fc", in_features=2, out_features=2),))
    )
    tensors = {
        "fc.weight": TensorSetup(0.0, 1.0, "normal", lr=0.1, weight_decay=0.5),
        "fc.bias": TensorSetup(0.3, 0.0, "constant", lr=0.02, weight_decay=0.0),
    }
    network = Network(
        expanded,
        Parametrization(tensors, optimizer=optimizer, eps=eps, betas=betas),
        0,
        np.float64,
    )
    return network, {name: value.copy() for name, value in network.params.items()}


GRADIENTS = (
    {
        "fc.weight": np.array([[0.5, -1.0], [2.0, 0.25]]),
        "fc.bias": np.array([1.0, -3.0]),
    },
    {"fc.weight": np.array([[-0.5, 1.5], [0.0, 1.0]]), "fc.bias": np.array([0.5, 2.0])},
)
SETTINGS = {"fc.weight": (0.1, 0.5), "fc.bias": (0.02, 0.0)}


def test_sgd_two_steps_by_hand():
    network, start = two_tensor_network("sgd")
    for gradients in GRADIENTS:
        network.step(gradients)

    for name, (lr, decay) in SETTINGS.items():
        p = start[name]
        for gradients in GRADIENTS:
            p = p - lr * (gradients[name] + decay * p)
        np.testing.assert_allclose(network.params[name], p, rtol=1e-15)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_and_adamw_two_steps_by_hand(decoupled):
    beta1, beta2, eps = 0.8, 0.95, 1e-3
    network, start = two_tensor_network(
        "adamw" if decoupled else "adam", eps=eps, betas=(beta1, beta2)
    )
    for gradients in GRADIENTS:
        network.step(gradients)

    for name, (lr, decay) in SETTINGS.items():
        p = start[name]
        m = np.zeros_like(p)
        v = np.zeros_like(p)
        for t, gradients in enumerate(GRADIENTS, start=1):
            g = gradients[name]
            if decoupled:
                p = p * (1 - lr * decay)
            else:
                g = g + decay * p
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            m_hat = m / (1 - beta1**t)
            v_hat = v / (1 - beta2**t)
            p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(network.params[name], p, rtol=1e-14)


def test_first_adam_step_moves_each_entry_by_about_lr():
    """Bias-corrected, Adam's first step is lr·g/(|g| + ε): ±lr per entry."""
    network, start = two_tensor_network("adam")
    gradients = {
        "fc.weight": np.array([[1e-3, -4.0], [7.0, 2e-2]]),
        "fc.bias": np.zeros(2),
    }
    network.step(gradients)
    moved = start["fc.weight"] - network.params["fc.weight"]
    decayed = gradients["fc.weight"] + 0.5 * start["fc.weight"]
    np.testing.assert_allclose(moved, 0.1 * np.sign(decayed), rtol=1e-4)


def test_training_lowers_the_loss_in_float32():
    expanded = expand(
        Spec(
            dims={},
            layers=(
                LinearSpec(
                    name="fc",
                    in_features=4,
                    out_features=16,
                    activation=make_activation("relu"),
                ),
                LinearSpec(name="out", in_features=16, out_features=3),
            ),
        )
    )
    tensors = setups(expanded, lr=1e-2, std=0.3)
    network = Network(expanded, Parametrization(tensors, optimizer="adam"), 0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = np.argmax(x[:, :3], axis=1)
    first = network.loss_and_gradients(x, y, "cross_entropy").loss
    for _ in range(50):
        network.step(network.loss_and_gradients(x, y, "cross_entropy").gradients)
    last = network.loss_and_gradients(x, y, "cross_entropy").loss

    assert network.params["fc.weight"].dtype == np.float32
    assert last < 0.5 * first


# --- draws ----------------------------------------------------------------------------


def test_draws_have_the_promised_distributions():
    rng = np.random.default_rng(0)
    shape = (400, 500)

    normal = draw_tensor(TensorSetup(0.5, 0.2, "normal", 0.1), shape, rng)
    assert normal.dtype == np.float32
    assert normal.mean() == pytest.approx(0.5, abs=2e-3)
    assert normal.std() == pytest.approx(0.2, rel=1e-2)

    uniform = draw_tensor(TensorSetup(0.0, 0.2, "uniform", 0.1), shape, rng)
    assert np.abs(uniform).max() <= math.sqrt(3) * 0.2
    assert np.abs(uniform).max() == pytest.approx(math.sqrt(3) * 0.2, rel=1e-3)
    assert uniform.std() == pytest.approx(0.2, rel=1e-2)

    cut = draw_tensor(TensorSetup(0.0, 0.2, "truncated_normal", 0.1), shape, rng)
    sampler = 0.2 / truncated_normal_std(0.0, 1.0, -2.0, 2.0)
    assert cut.std() == pytest.approx(0.2, rel=1e-2)
    assert np.abs(cut).max() <= 2 * sampler * (1 + 1e-6)
    assert np.abs(cut).max() == pytest.approx(2 * sampler, rel=1e-3)
    ks = stats.kstest(cut.ravel()[:20000] / sampler, stats.truncnorm(-2.0, 2.0).cdf)
    assert ks.pvalue > 1e-3

    lopsided = TensorSetup(0.1, 0.05, "truncated_normal", 0.1, truncation=(-1.0, 3.0))
    values = draw_tensor(lopsided, shape, rng)
    assert values.mean() == pytest.approx(0.1, abs=5e-4)
    assert values.std() == pytest.approx(0.05, rel=1e-2)

    orthogonal = draw_tensor(TensorSetup(0.0, 0.1, "orthogonal", 0.1), (30, 50), rng)
    gain = 0.1 * math.sqrt(50)
    np.testing.assert_allclose(
        orthogonal @ orthogonal.T, gain**2 * np.eye(30), atol=1e-5
    )
    assert math.sqrt(np.mean(orthogonal.astype(np.float64) ** 2)) == pytest.approx(
        math.sqrt(30 / 50) * gain / math.sqrt(30), rel=1e-5
    )

    constant = draw_tensor(TensorSetup(1.0, 0.0, "constant", 0.1), (3,), rng)
    np.testing.assert_array_equal(constant, np.ones(3, dtype=np.float32))


# --- refusals -------------------------------------------------------------------------


def test_unsupported_layers_are_refused_by_name_and_kind():
    spec = Spec(
        dims={"d": 8},
        layers=(
            EmbeddingSpec(name="wte", in_features=100, out_features="d"),
            ResidualGroup(
                name="attn_block",
                norm="pre",
                layers=(AttentionSpec(name="attn", d_model="d", n_heads=2),),
            ),
            ResidualGroup(
                name="mlp_block",
                norm="pre",
                norm_layer=NormLayerSpec(kind="batch_norm", name="bn"),
                layers=(GatedMlpSpec(name="mlp", d_model="d", d_ff=16),),
            ),
            ResidualGroup(
                name="down",
                norm="none",
                layers=(LinearSpec(name="fc", in_features="d", out_features=4),),
                shortcut=(LinearSpec(name="proj", in_features="d", out_features=4),),
            ),
            ConvSpec(
                kind="conv1d", name="conv", in_features=4, out_features=4, kernel_size=3
            ),
            LinearSpec(name="out", in_features=4, out_features=2),
        ),
    )
    expanded = expand(spec)
    tensors = setups(expanded)

    with pytest.raises(InvalidInput) as caught:
        Network(expanded, Parametrization(tensors), 0)

    [problem] = caught.value.problems
    assert problem.path == ("spec", "layers")
    for listed in (
        "wte (embedding)",
        "attn_block.attn (attention)",
        "mlp_block.bn (batch_norm)",
        "mlp_block.mlp (gated_mlp)",
        "down (projection shortcut)",
        "conv (conv1d)",
    ):
        assert listed in problem.message
    assert "trains linear layers" in problem.message
    assert "out (linear)" not in problem.message


def test_tied_weights_are_refused():
    spec = Spec(
        dims={},
        layers=(
            LinearSpec(name="a", in_features=4, out_features=4),
            LinearSpec(name="b", in_features=4, out_features=4, tied_to="a"),
        ),
    )
    expanded = expand(spec)
    with pytest.raises(InvalidInput, match=r"b \(linear tied to a.weight\)"):
        network_sizes(expanded)


def test_a_parametrization_that_does_not_fit_is_refused():
    expanded = expand(
        Spec(dims={}, layers=(LinearSpec(name="fc", in_features=2, out_features=2),))
    )
    tensors = {
        "fc.weight": TensorSetup(0.0, 1.0, "lognormal", lr=-1.0),  # type: ignore[arg-type]
        "fc.other": TensorSetup(0.0, 1.0, "normal", lr=0.1),
    }
    with pytest.raises(InvalidInput) as caught:
        Network(expanded, Parametrization(tensors, optimizer="lion"), 0)  # type: ignore[arg-type]

    messages = " | ".join(problem.message for problem in caught.value.problems)
    assert "no setup for fc.bias" in messages
    assert "fc.other is not a parameter tensor" in messages
    assert "distribution must be one of normal, uniform, truncated_normal" in messages
    assert "fc.weight: lr must be a finite number ≥ 0; got -1.0" in messages
    assert 'optimizer must be one of sgd, adam, adamw; got "lion"' in messages


def test_bad_batches_are_refused():
    expanded = expand(
        Spec(dims={}, layers=(LinearSpec(name="fc", in_features=2, out_features=3),))
    )
    network = Network(expanded, Parametrization(setups(expanded)), 0)
    with pytest.raises(InvalidInput, match=r"shape \(B, 2\); got shape \[4, 3\]"):
        network.forward(np.zeros((4, 3)))
    with pytest.raises(InvalidInput, match=r"class labels must lie in \[0, 2\]"):
        network.loss_and_gradients(np.zeros((2, 2)), np.array([0, 3]), "cross_entropy")
    with pytest.raises(InvalidInput, match="mse takes targets"):
        network.loss_and_gradients(np.zeros((2, 2)), np.zeros((2, 2)), "mse")
    with pytest.raises(InvalidInput, match="loss must be one of"):
        network.loss_and_gradients(np.zeros((2, 2)), np.zeros(2), "hinge")  # type: ignore[arg-type]
