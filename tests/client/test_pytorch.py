"""The PyTorch helpers against the real service (gunicorn on 127.0.0.1).

Two GPT-2-like models in plain PyTorch (token and position embeddings, pre-norm
blocks of attention and MLP, a final norm, an LM head tied to the token
embedding): one with nn.MultiheadAttention and nn.Linear, one with a class
built like Hugging Face's GPT-2 Conv1D (weight stored (in, out), forward
x @ W + b). Their specs are posted and the answers drawn back into them;
the values drawn are tested against the service's own numbers with
Kolmogorov–Smirnov tests (scipy) and sampling-error bounds, and against
closed forms (He et al. 2015; Saxe et al. 2014; Tensor Programs V).
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator

import pytest
import torch
from scipy import stats
from torch import nn

from initlab_client import Client
from initlab_client.pytorch import (
    ModuleSpec,
    MupMultipliers,
    apply_mup_init,
    apply_recommendation,
    mup_multipliers,
    mup_param_groups,
    spec_from_module,
)

pytestmark = pytest.mark.server

VOCAB, POSITIONS, D_MODEL, D_FF, HEADS, LAYERS = 100, 16, 32, 128, 4, 2
# A KS p-value this small has odds of 1 in a million under the right
# distribution; the draws are seeded, so a pass is also reproducible.
KS_FLOOR = 1e-6


class Conv1D(nn.Module):
    """Built like transformers' GPT-2 Conv1D: y = x @ W + b, W stored (in, out)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias


class Conv1DAttention(nn.Module):
    """GPT-2's attention projections: c_attn (d → 3d) and c_proj (d → d)."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.num_heads = heads
        self.c_attn = Conv1D(3 * d_model, d_model)
        self.c_proj = Conv1D(d_model, d_model)
        self.resid_dropout = nn.Dropout(0.1)


class Conv1DMLP(nn.Module):
    """GPT-2's MLP, which registers its activation after c_proj."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.c_fc = Conv1D(d_ff, d_model)
        self.c_proj = Conv1D(d_model, d_ff)
        self.act = nn.GELU(approximate="tanh")
        self.dropout = nn.Dropout(0.1)


class Block(nn.Module):
    def __init__(self, d_model: int, d_ff: int, heads: int, conv1d: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        if conv1d:
            self.attn = Conv1DAttention(d_model, heads)
        else:
            self.attn = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(d_model)
        if conv1d:
            self.mlp = Conv1DMLP(d_model, d_ff)
        else:
            self.mlp = nn.Sequential()
            self.mlp.add_module("c_fc", nn.Linear(d_model, d_ff))
            self.mlp.add_module("act", nn.GELU())
            self.mlp.add_module("c_proj", nn.Linear(d_ff, d_model))


class GPT(nn.Module):
    def __init__(
        self,
        d_model: int = D_MODEL,
        d_ff: int = D_FF,
        conv1d: bool = False,
        layers: int = LAYERS,
    ) -> None:
        super().__init__()
        self.wte = nn.Embedding(VOCAB, d_model)
        self.wpe = nn.Embedding(POSITIONS, d_model)
        self.h = nn.ModuleList(
            Block(d_model, d_ff, HEADS, conv1d) for _ in range(layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, VOCAB, bias=False)
        self.lm_head.weight = self.wte.weight


VARIANTS = {"linear": False, "conv1d": True}


@pytest.fixture(scope="module")
def client(live_server_url: str) -> Iterator[Client]:
    with Client(live_server_url) as client:
        yield client


def stored(values: torch.Tensor) -> torch.Tensor:
    return values.detach().double().reshape(-1)


def assert_moments(values: torch.Tensor, mean: float, std: float, name: str) -> None:
    """Sample mean and std within 5 standard errors of the service's numbers.

    For n i.i.d. draws the sample mean has standard error σ/√n and the sample
    std relative standard error about 1/√(2n) (exact for a normal, close for
    the bounded distributions here).
    """
    flat = stored(values)
    n = flat.numel()
    assert abs(float(flat.mean()) - mean) < 5 * std / math.sqrt(n), name
    assert abs(float(flat.std()) / std - 1) < 5 / math.sqrt(2 * n), name


def item(spec: dict, *names: str) -> dict:
    """The spec item at the dotted path ``names``; unnamed groups add no segment."""
    found = _find(spec["layers"], names)
    assert found is not None, names
    return found


def _find(layers: list, names: tuple[str, ...]) -> dict | None:
    for layer in layers:
        if layer.get("name") == names[0]:
            if len(names) == 1:
                return layer
            found = _find(layer.get("layers", []), names[1:])
        elif "name" not in layer and "layers" in layer:
            found = _find(layer["layers"], names)
        else:
            continue
        if found is not None:
            return found
    return None


# --- specs from modules ----------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_gpt_spec_counts_like_the_module(client: Client, variant: str) -> None:
    model = GPT(conv1d=VARIANTS[variant])
    module_spec = spec_from_module(model)

    answer = client.recommend(module_spec.spec)

    # Tied lm_head.weight is wte.weight: module.parameters() yields it once.
    assert answer.parameter_count == sum(p.numel() for p in model.parameters())
    # wte 100·32 + wpe 16·32 + 2 blocks · (2 norms 2·2·32 + qkv 96·32 + 96
    # + o 32·32 + 32 + c_fc 128·32 + 128 + c_proj 32·128 + 32) + ln_f 2·32.
    assert answer.parameter_count == 3200 + 512 + 2 * 12704 + 64 == 29184
    assert answer.by_name("lm_head.weight").tied_to == "wte.weight"
    # Two pre-norm residual groups (attention, MLP) per block.
    assert answer.residual_branch_count == 2 * LAYERS
    mapped = set()
    for row in answer.parameters:
        module_name = module_spec.parameter_names[row.name]
        tensor = model.get_parameter(module_name)
        expected = tuple(row.shape)
        if row.layout == "in_out":
            expected = expected[::-1]
        assert tuple(tensor.shape) == expected, row.name
        mapped.add(id(tensor))
    assert mapped == {id(p) for p in model.parameters()}


def test_spec_names_map_back_to_each_library(client: Client) -> None:
    linear = spec_from_module(GPT(conv1d=False))
    conv1d = spec_from_module(GPT(conv1d=True))

    assert linear.module_name("h.1.attn.qkv.weight") == "h.1.attn.in_proj_weight"
    assert linear.module_name("h.1.attn.o.bias") == "h.1.attn.out_proj.bias"
    assert conv1d.module_name("h.1.attn.qkv.weight") == "h.1.attn.c_attn.weight"
    assert conv1d.module_name("h.1.attn.o.weight") == "h.1.attn.c_proj.weight"
    assert conv1d.module_name("lm_head.weight") == "lm_head.weight"
    with pytest.raises(KeyError, match="did you mean 'h.1.attn.qkv.weight'"):
        conv1d.module_name("h.1.attn.qkv.weights")

    # The MLP's activation: from nn.Sequential's order, and from GPT-2's act.
    assert item(linear.spec, "h", "mlp", "c_fc")["activation"] == "gelu"
    assert item(conv1d.spec, "h", "mlp", "c_fc")["activation"] == "gelu_tanh"
    attention = item(conv1d.spec, "h", "attn")
    assert (attention["n_heads"], attention["layout"]) == (HEADS, "in_out")
    # Two identical blocks: one repeat group whose count is a dim.
    repeat = item(linear.spec, "h")
    assert (repeat["kind"], linear.spec["dims"][repeat["count"]]) == ("repeat", 2)
    assert any("tied_to" in note for note in linear.notes)


def test_dims_named_by_the_caller(client: Client) -> None:
    module_spec = spec_from_module(GPT(), dims={"d_model": D_MODEL, "d_ff": D_FF})

    dims = module_spec.spec["dims"]
    assert dims["d_model"] == D_MODEL and dims["d_ff"] == D_FF
    assert item(module_spec.spec, "h", "mlp", "c_fc")["out"] == "d_ff"
    # Renaming sizes changes no tensor.
    answer = client.recommend(module_spec.spec)
    assert answer.parameter_count == 29184


def test_convolutions_norms_and_inferred_activations(client: Client) -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, groups=16),
        nn.GroupNorm(4, 16),
        nn.LeakyReLU(0.2),
        nn.Conv1d(16, 8, (5,)),
        nn.ConvTranspose2d(8, 4, (2, 3)),
        nn.Flatten(),
        nn.Linear(36, 10),
    )
    # Shapes are all that counts here: the layers need not chain.
    module_spec = spec_from_module(model)
    spec = module_spec.spec

    answer = client.recommend(spec, scheme="kaiming_normal")

    assert answer.parameter_count == sum(p.numel() for p in model.parameters())
    first, depthwise, one_d, transposed = (item(spec, str(i)) for i in (0, 3, 6, 7))
    assert first["activation"] == "relu"  # through the batch norm
    assert depthwise["activation"] == {"name": "leaky_relu", "negative_slope": 0.2}
    assert depthwise["groups"] == depthwise["in"]  # the width: widens with it
    assert (one_d["kind"], transposed["kind"]) == ("conv1d", "conv_transpose2d")
    assert item(spec, "4")["kind"] == "layer_norm"  # GroupNorm: (C,) weight and bias
    # He et al. (2015): std = gain/√fan_in, gain √2 for ReLU, √(2/(1+a²)) leaky.
    relu_std = math.sqrt(2 / (3 * 3 * 3))
    assert answer.by_name("0.weight").std == pytest.approx(relu_std, rel=1e-12)
    leaky_std = math.sqrt(2 / (1 + 0.2**2)) / math.sqrt(1 * 3 * 3)
    assert answer.by_name("3.weight").std == pytest.approx(leaky_std, rel=1e-12)

    apply_recommendation(model, answer, names=module_spec, seed=5)
    assert_moments(model[0].weight, 0.0, relu_std, "0.weight")
    assert torch.equal(model[1].weight, torch.ones(16))


def test_transformer_encoder_residual_groups(client: Client) -> None:
    layer = nn.TransformerEncoderLayer(32, 4, 64, norm_first=True, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=3, enable_nested_tensor=False)

    module_spec = spec_from_module(model)
    answer = client.recommend(module_spec.spec, scheme="gpt2")

    assert answer.parameter_count == sum(p.numel() for p in model.parameters())
    assert answer.residual_branch_count == 2 * 3
    # GPT-2's scheme scales each branch's output layer by 1/√(2·n_layer)
    # (Radford et al. 2019), with 2·n_layer the residual branch count.
    out = answer.by_name("layers.2.linear2.weight")
    assert out.std == pytest.approx(0.02 / math.sqrt(6), rel=1e-12)
    assert answer.by_name("layers.0.linear1.weight").std == pytest.approx(0.02)
    assert module_spec.module_name("layers.1.self_attn.qkv.weight") == (
        "layers.1.self_attn.in_proj_weight"
    )


def test_transformer_decoder_post_norm(client: Client) -> None:
    layer = nn.TransformerDecoderLayer(32, 4, 64, activation="gelu")
    model = nn.TransformerDecoder(layer, num_layers=2)

    module_spec = spec_from_module(model)
    answer = client.recommend(module_spec.spec)

    assert answer.parameter_count == sum(p.numel() for p in model.parameters())
    # Self-attention, cross-attention and the MLP: three branches per layer.
    assert answer.residual_branch_count == 3 * 2
    groups = item(module_spec.spec, "layers")["layers"]
    assert [group["norm"] for group in groups] == ["post"] * 3
    assert [group["norm_layer"]["name"] for group in groups] == [
        "norm1",
        "norm2",
        "norm3",
    ]
    assert item(module_spec.spec, "layers", "linear1")["activation"] == "gelu"


class LlamaRMSNorm(nn.Module):
    """Built like Llama's RMS norm in transformers: one weight, no bias."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))


class LlamaAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, kv_heads: int) -> None:
        super().__init__()
        self.head_dim = d_model // heads
        kv_width = kv_heads * self.head_dim
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, kv_width, bias=False)
        self.v_proj = nn.Linear(d_model, kv_width, bias=False)
        self.o_proj = nn.Linear(d_model, d_model, bias=False)


class LlamaMLP(nn.Module):
    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)
        self.act_fn = nn.SiLU()


class LlamaLayer(nn.Module):
    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.self_attn = LlamaAttention(d_model, 4, 2)
        self.mlp = LlamaMLP(d_model, d_ff)
        self.input_layernorm = LlamaRMSNorm(d_model)
        self.post_attention_layernorm = LlamaRMSNorm(d_model)


def test_llama_style_blocks(client: Client) -> None:
    model = nn.Module()
    model.embed_tokens = nn.Embedding(VOCAB, D_MODEL, padding_idx=0)
    model.layers = nn.ModuleList(LlamaLayer(D_MODEL, 96) for _ in range(3))
    model.norm = nn.RMSNorm(D_MODEL)
    model.lm_head = nn.Linear(D_MODEL, VOCAB, bias=False)

    module_spec = spec_from_module(model)
    answer = client.recommend(module_spec.spec, scheme="megatron")
    apply_recommendation(model, answer, names=module_spec, seed=4)

    assert answer.parameter_count == sum(p.numel() for p in model.parameters())
    assert answer.residual_branch_count == 2 * 3
    attention = item(module_spec.spec, "layers", "self_attn")
    # Grouped-query attention: 4 query heads of 8 share 2 key/value heads.
    assert (attention["n_heads"], attention["n_kv_heads"]) == (4, 2)
    mlp = item(module_spec.spec, "layers", "mlp")
    assert (mlp["kind"], mlp["activation"]) == ("gated_mlp", "silu")
    assert module_spec.module_name("layers.2.mlp.gate.weight") == (
        "layers.2.mlp.gate_proj.weight"
    )
    assert module_spec.module_name("layers.0.self_attn.k.weight") == (
        "layers.0.self_attn.k_proj.weight"
    )
    assert item(module_spec.spec, "norm")["kind"] == "rms_norm"
    # padding_idx's row is zeroed after the draw, as nn.Embedding does.
    table = model.embed_tokens.weight.detach()
    assert torch.equal(table[0], torch.zeros(D_MODEL))
    assert_moments(table[1:], 0.0, answer.by_name("embed_tokens.weight").std, "wte")


def test_attention_with_own_key_and_value_sizes(client: Client) -> None:
    model = nn.Module()
    model.attn = nn.MultiheadAttention(32, 4, kdim=12, vdim=20)

    module_spec = spec_from_module(model)
    answer = client.recommend(module_spec.spec, scheme="torch_default")
    apply_recommendation(model, answer, names=module_spec, seed=2)

    assert answer.parameter_count == sum(p.numel() for p in model.parameters())
    assert module_spec.parameter_slices["attn.k.bias"] == (32, 64)
    # torch_default draws a bias from U(±1/√fan_in), fan_in of its own weight:
    # each third of in_proj_bias has its own bound.
    bias = model.attn.in_proj_bias.detach()
    for index, fan_in in enumerate((32, 12, 20)):
        part = bias[32 * index : 32 * (index + 1)]
        bound = answer.by_name(f"attn.{'qkv'[index]}.bias").bound
        assert bound == pytest.approx(1 / math.sqrt(fan_in), rel=1e-12)
        assert float(part.abs().max()) <= bound
        assert float(part.abs().max()) > 0.5 * bound
    assert any("four linear layers" in note for note in module_spec.notes)


def test_attention_slices_share_one_optimizer_group(client: Client) -> None:
    def model(width: int) -> nn.Module:
        holder = nn.Module()
        holder.attn = nn.MultiheadAttention(width, 4, kdim=12, vdim=20)
        holder.head = nn.Linear(width, 3)
        return holder

    base = spec_from_module(model(32), dims={"d_model": 32})
    table = client.mup_table(base.spec, targets=[{"d_model": 64}], lr=LR)
    wide = model(64)

    groups = mup_param_groups(table.targets[0], wide, names=spec_from_module(wide))

    placed = [id(tensor) for group in groups for tensor in group["params"]]
    assert sorted(placed) == sorted(id(p) for p in wide.parameters())
    bias_group = next(
        group
        for group in groups
        if any(tensor is wide.attn.in_proj_bias for tensor in group["params"])
    )
    for name in ("attn.q.bias", "attn.k.bias", "attn.v.bias"):
        assert table.targets[0].by_name(name).lr == bias_group["lr"]


def test_activations_set_by_glob_and_notes(client: Client) -> None:
    class Loose(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(4, 8)
            self.act = nn.Tanh()
            self.fc2 = nn.Linear(8, 2)

    inferred = spec_from_module(Loose())
    assert "activation" not in item(inferred.spec, "fc1")
    assert any("act: activation modules outside" in n for n in inferred.notes)

    explicit = spec_from_module(Loose(), activations={"fc1": "tanh"})
    assert item(explicit.spec, "fc1")["activation"] == "tanh"
    answer = client.recommend(explicit.spec, scheme="xavier_normal")
    # Glorot & Bengio (2010): std = gain·√(2/(fan_in + fan_out)); PyTorch's
    # xavier takes the gain as an option (1 by default), not from tanh.
    assert answer.by_name("fc1.weight").std == pytest.approx(math.sqrt(2 / 12))

    sequential = spec_from_module(nn.Sequential(nn.Linear(4, 4), nn.ReLU6()))
    assert any("ReLU6" in note for note in sequential.notes)


def test_skip_inside_a_block_writes_it_plainly(client: Client) -> None:
    model = GPT()

    module_spec = spec_from_module(model, skip=["h.*.mlp"])
    answer = client.recommend(module_spec.spec)

    mlp = sum(p.numel() for block in model.h for p in block.mlp.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert answer.parameter_count == total - mlp
    assert answer.residual_branch_count == 0
    assert "h.1.mlp.c_proj.bias" in module_spec.skipped
    apply_recommendation(model, answer, names=module_spec)


# --- drawing recommendations --------------------------------------------------------

SCHEMES = {
    "auto": "auto",
    "kaiming_normal": "kaiming_normal",
    "xavier_uniform": "xavier_uniform",
    "trunc_normal": {"name": "trunc_normal", "mean": 0.01, "std": 0.2, "a": -0.2},
    "orthogonal": {"name": "orthogonal", "gain": 1.5},
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_drawn_as_recommended(client: Client, variant: str, scheme: str) -> None:
    model = GPT(conv1d=VARIANTS[variant])
    module_spec = spec_from_module(model)
    answer = client.recommend(module_spec.spec, scheme=SCHEMES[scheme])

    apply_recommendation(model, answer, names=module_spec, seed=11)

    assert model.lm_head.weight is model.wte.weight
    for row in answer.parameters:
        if row.tied_to is not None:
            continue
        values = model.get_parameter(module_spec.module_name(row.name)).detach()
        check_row(row, values)


def check_row(row, values: torch.Tensor) -> None:
    flat = stored(values)
    if row.distribution == "constant":
        assert torch.equal(flat, torch.full_like(flat, row.mean)), row.name
        return

    if row.distribution == "orthogonal":
        # Saxe et al. (2014): a (semi-)orthogonal matrix times the gain;
        # flattened as stored, rows = shape[0].
        matrix = values.double().reshape(values.shape[0], -1)
        rows, columns = matrix.shape
        gram = matrix @ matrix.T if rows <= columns else matrix.T @ matrix
        identity = torch.eye(min(rows, columns), dtype=torch.float64)
        assert torch.allclose(gram, row.gain**2 * identity, atol=1e-5), row.name
        rms = float(matrix.pow(2).mean().sqrt())
        assert rms == pytest.approx(row.std, rel=1e-5), row.name
        return

    assert_moments(values, row.mean, row.std, row.name)
    sample = flat.numpy()
    if row.distribution == "normal":
        reference = stats.norm(row.mean, row.std)
    elif row.distribution == "uniform":
        assert float(flat.abs().max()) <= row.bound, row.name
        reference = stats.uniform(row.mean - row.bound, 2 * row.bound)
    else:
        cut = row.truncation
        assert cut.lower <= float(flat.min()) and float(flat.max()) <= cut.upper
        # The sampler's centre is the scheme's own mean option.
        centre, sigma = row.scheme["mean"], cut.sampler_std
        reference = stats.truncnorm(
            (cut.lower - centre) / sigma,
            (cut.upper - centre) / sigma,
            loc=centre,
            scale=sigma,
        )
    assert stats.kstest(sample, reference.cdf).pvalue > KS_FLOOR, row.name


def test_truncated_normal_off_centre(client: Client) -> None:
    model = nn.Linear(64, 256)
    answer = client.recommend(
        {
            "dims": {},
            "layers": [{"kind": "linear", "name": "fc", "in": 64, "out": 256}],
        },
        scheme={"name": "trunc_normal", "mean": 0.1, "std": 0.1, "a": -0.05, "b": 0.2},
    )

    apply_recommendation(
        model, answer, names={"fc.weight": "weight", "fc.bias": "bias"}
    )

    row = answer.by_name("fc.weight")
    # The cut is not centred on 0.1, so the values' mean moves below it.
    assert row.mean < 0.1
    check_row(row, model.weight)


def test_same_seed_same_tensors(client: Client) -> None:
    models = [GPT(conv1d=True) for _ in range(3)]
    module_spec = spec_from_module(models[0])
    answer = client.recommend(module_spec.spec, scheme="xavier_normal")

    for model, seed in ((models[0], 7), (models[1], 7), (models[2], 8)):
        apply_recommendation(model, answer, names=module_spec, seed=seed)

    first, again, other = (dict(model.named_parameters()) for model in models)
    for name, tensor in first.items():
        assert torch.equal(tensor, again[name]), name
        is_constant = bool((tensor == tensor.reshape(-1)[0]).all())
        assert torch.equal(tensor, other[name]) == is_constant, name


# --- errors -------------------------------------------------------------------------


def test_unsupported_module_named_with_the_fix() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.LSTM(8, 8))

    with pytest.raises(TypeError) as caught:
        spec_from_module(model)

    message = str(caught.value)
    assert "1 (torch.nn.modules.rnn.LSTM)" in message
    assert "weight_ih_l0" in message
    assert "nn.Linear" in message and "skip=['1']" in message

    skipped = spec_from_module(model, skip=["1"])
    assert skipped.skipped == (
        "1.weight_ih_l0",
        "1.weight_hh_l0",
        "1.bias_ih_l0",
        "1.bias_hh_l0",
    )
    assert set(skipped.parameter_names) == {"0.weight", "0.bias"}


def test_raw_parameter_and_bad_arguments_refused() -> None:
    model = nn.Module()
    model.cls_token = nn.Parameter(torch.zeros(1, 1, 8))
    model.proj = nn.Linear(8, 8)

    with pytest.raises(TypeError, match=r"the root module .* holds parameters cls"):
        spec_from_module(model)
    assert spec_from_module(model, skip=["cls_token"]).skipped == ("cls_token",)
    with pytest.raises(ValueError, match=r"'no_such\.\*' matches no module"):
        spec_from_module(model, skip=["cls_token"], activations={"no_such.*": "relu"})
    with pytest.raises(ValueError, match=r"dims\['d_ff'\] = 3072 names no size"):
        spec_from_module(model, skip=["cls_token"], dims={"d_ff": 3072})
    with pytest.raises(ValueError, match="names the size 8 twice"):
        spec_from_module(model, dims={"a": 8, "b": 8})
    norm = nn.Sequential(nn.LayerNorm((4, 8)))
    with pytest.raises(ValueError, match=r"normalizes over \(4, 8\)"):
        spec_from_module(norm)


def test_name_mismatch_names_the_tensor(client: Client) -> None:
    model = GPT(conv1d=True)
    module_spec = spec_from_module(model)
    answer = client.recommend(module_spec.spec)
    before = model.h[0].attn.c_attn.weight.detach().clone()

    with pytest.raises(ValueError) as caught:
        apply_recommendation(model, answer)  # spec names, no map

    message = str(caught.value)
    assert "'h.0.attn.qkv.weight'" in message and "names=" in message
    # Checked before anything is drawn: the module is untouched.
    after = model.h[0].attn.c_attn.weight.detach()
    assert torch.equal(after.view(torch.int32), before.view(torch.int32))

    apply_recommendation(model, answer, strict=False)
    assert float(model.wte.weight.detach().std()) == pytest.approx(
        answer.by_name("wte.weight").std, rel=0.05
    )


def test_module_parameter_without_recommendation(client: Client) -> None:
    small = nn.Sequential(nn.Linear(4, 8))
    larger = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    answer = client.recommend(spec_from_module(small).spec)

    with pytest.raises(ValueError, match=r"have no recommendation, first '1\.weight'"):
        apply_recommendation(larger, answer)

    apply_recommendation(larger, answer, strict=False)


def test_shape_mismatch_names_both_shapes(client: Client) -> None:
    wide = spec_from_module(GPT(d_model=64, d_ff=256, conv1d=True))
    answer = client.recommend(wide.spec)

    with pytest.raises(ValueError) as caught:
        apply_recommendation(GPT(conv1d=True), answer, names=wide)

    message = str(caught.value)
    assert "wte.weight: the recommendation has shape (100, 64)" in message
    assert "(100, 32)" in message and "spec_from_module" in message


def test_tie_the_module_lacks(client: Client) -> None:
    untied = GPT()
    untied.lm_head.weight = nn.Parameter(torch.empty(VOCAB, D_MODEL))
    answer = client.recommend(spec_from_module(GPT()).spec)

    with pytest.raises(ValueError, match="ties it to wte.weight, but the module"):
        apply_recommendation(untied, answer, names=spec_from_module(GPT()))


# --- µP ------------------------------------------------------------------------------

LR, WEIGHT_DECAY = 1e-3, 0.1


@pytest.fixture(scope="module")
def mup_targets(client: Client) -> dict:
    """The µP target at twice the width, from each variant's base spec."""
    targets = {}
    for variant, conv1d in VARIANTS.items():
        base = spec_from_module(
            GPT(conv1d=conv1d), dims={"d_model": D_MODEL, "d_ff": D_FF}
        )
        table = client.mup_table(
            base.spec,
            targets=[{"d_model": 2 * D_MODEL, "d_ff": 2 * D_FF}],
            lr=LR,
            weight_decay=WEIGHT_DECAY,
        )
        targets[variant] = table.targets[0]
    return targets


@pytest.mark.parametrize("variant", VARIANTS)
def test_mup_groups_match_the_rows(mup_targets: dict, variant: str) -> None:
    mup_target = mup_targets[variant]
    wide = GPT(2 * D_MODEL, 2 * D_FF, conv1d=VARIANTS[variant])
    names = spec_from_module(wide)

    groups = mup_param_groups(mup_target, wide, names=names)
    optimizer = torch.optim.AdamW(groups)

    lr_of = {}
    for group in optimizer.param_groups:
        for tensor in group["params"]:
            assert id(tensor) not in lr_of
            lr_of[id(tensor)] = (group["lr"], group["weight_decay"], group["eps"])
    assert set(lr_of) == {id(p) for p in wide.parameters()}
    for row in mup_target.parameters:
        tensor = wide.get_parameter(names.module_name(row.name))
        assert lr_of[id(tensor)][:2] == (row.lr, row.weight_decay), row.name
    # Tensor Programs V, Table 8 (Adam): a hidden weight's lr is η/m_in and
    # its AdamW decay λ·m_in; vector-like tensors keep η and λ. m_in = 2.
    hidden = wide.get_parameter(names.module_name("h.1.mlp.c_proj.weight"))
    assert lr_of[id(hidden)] == (LR / 2, WEIGHT_DECAY * 2, 1e-8)
    bias = wide.get_parameter(names.module_name("h.1.attn.qkv.bias"))
    assert lr_of[id(bias)] == (LR, WEIGHT_DECAY, 1e-8)

    loss = sum(p.square().sum() for p in wide.parameters())
    loss.backward()
    optimizer.step()


def test_mup_multipliers_are_the_targets(mup_targets: dict) -> None:
    mup_target = mup_targets["linear"]
    multipliers = mup_multipliers(mup_target)

    assert isinstance(multipliers, MupMultipliers)
    assert multipliers.output_multiplier == mup_target.output_multiplier == 0.5
    assert multipliers.input_multiplier == mup_target.input_multiplier
    assert multipliers.residual_multiplier == mup_target.residual_multiplier
    # µP's logit scale: √d_head,base / d_head = √8 / 16 (§4 of Tensor Programs V).
    assert multipliers.attention_scale == pytest.approx(math.sqrt(8) / 16)
    assert multipliers.attention_scale == mup_target.attention_scale
    assert dict(multipliers.attention_scales) == {
        layer.layer: layer.scale for layer in mup_target.attention
    }
    assert dict(multipliers.forward_multipliers) == {"lm_head.weight": 0.5}


def test_mup_init_drawn_from_the_rows(mup_targets: dict) -> None:
    mup_target = mup_targets["conv1d"]
    wide = GPT(2 * D_MODEL, 2 * D_FF, conv1d=True)
    names = spec_from_module(wide)

    apply_mup_init(wide, mup_target, names=names, seed=3)

    hidden = wide.get_parameter(names.module_name("h.0.mlp.c_fc.weight"))
    # µP: a hidden weight's init std is σ/√m_in = 0.02/√2.
    assert_moments(hidden, 0.0, 0.02 / math.sqrt(2), "h.0.mlp.c_fc.weight")
    assert torch.equal(wide.h[0].ln_1.weight, torch.ones(2 * D_MODEL))
    assert torch.equal(wide.h[0].attn.c_attn.bias, torch.zeros(6 * D_MODEL))
    assert_moments(wide.wte.weight, 0.0, 0.02, "wte.weight")


INIT_SCHEMES = {
    "xavier_uniform": "xavier_uniform",
    "orthogonal": "orthogonal",
    "trunc_normal": {"name": "trunc_normal", "std": 0.02, "a": -0.04, "b": 0.04},
}


@pytest.mark.parametrize("scheme", INIT_SCHEMES)
def test_mup_init_of_each_distribution(client: Client, scheme: str) -> None:
    base = spec_from_module(GPT(), dims={"d_model": D_MODEL, "d_ff": D_FF})
    table = client.mup_table(
        base.spec,
        targets=[{"d_model": 2 * D_MODEL, "d_ff": 2 * D_FF}],
        lr=LR,
        init_scheme=INIT_SCHEMES[scheme],
    )
    target = table.targets[0]
    wide = GPT(2 * D_MODEL, 2 * D_FF)
    names = spec_from_module(wide)

    apply_mup_init(wide, target, names=names, seed=9)

    row = target.by_name("h.0.mlp.c_fc.weight")
    values = wide.get_parameter(names.module_name(row.name)).detach().double()
    if scheme == "orthogonal":
        assert row.init_distribution == "orthogonal"
        # Element RMS std of a semi-orthogonal (256, 64) matrix: gain/√256.
        gain = row.init_std * math.sqrt(256)
        gram = values.T @ values
        identity = torch.eye(64, dtype=torch.float64)
        assert torch.allclose(gram, gain**2 * identity, atol=1e-5)
        return

    assert_moments(values, row.init_mean, row.init_std, row.name)
    largest = float(values.abs().max())
    if scheme == "xavier_uniform":
        assert row.init_distribution == "uniform"
        assert largest <= math.sqrt(3) * row.init_std
    else:
        assert row.init_distribution == "truncated_normal"
        # Cut at ±2 sampler stds; the sampler std is the row's std over the
        # std of N(0, 1) cut to [-2, 2].
        sampler_std = row.init_std / stats.truncnorm(-2, 2).std()
        assert largest <= 2 * sampler_std * (1 + 1e-6)
        reference = stats.truncnorm(-2, 2, scale=sampler_std)
        pvalue = stats.kstest(values.reshape(-1).numpy(), reference.cdf).pvalue
        assert pvalue > KS_FLOOR


def test_mup_groups_refuse_a_module_of_other_names(mup_targets: dict) -> None:
    mup_target = mup_targets["conv1d"]
    wide = GPT(2 * D_MODEL, 2 * D_FF, conv1d=True)

    with pytest.raises(ValueError, match=r"first 'h\.0\.attn\.qkv\.weight'"):
        mup_param_groups(mup_target, wide)
    with pytest.raises(TypeError, match="ModuleSpec of spec_from_module"):
        mup_param_groups(mup_target, wide, names=["h"])
    base = GPT(conv1d=True)
    with pytest.raises(ValueError, match=r"\(100, 64\) but .* \(100, 32\); build"):
        mup_param_groups(mup_target, base, names=spec_from_module(base))


def test_module_spec_is_read_only() -> None:
    module_spec = spec_from_module(nn.Linear(3, 2))

    assert isinstance(module_spec, ModuleSpec)
    assert dict(module_spec.parameter_names) == {
        "linear.weight": "weight",
        "linear.bias": "bias",
    }
    with pytest.raises(TypeError):
        module_spec.parameter_names["linear.weight"] = "x"


# --- parameters outside the table ---------------------------------------------------


def test_mup_groups_refuse_parameters_the_table_leaves_out(client: Client) -> None:
    def model(width: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(4, width), nn.ReLU(), nn.Linear(width, width), nn.LSTM(width, 3)
        )

    base = spec_from_module(model(16), dims={"d": 16}, skip=["3"])
    table = client.mup_table(base.spec, targets=[{"d": 32}], lr=LR)
    wide = model(32)
    wide_spec = spec_from_module(wide, dims={"d": 32}, skip=["3"])
    lstm = [f"3.{name}" for name, _ in wide[3].named_parameters()]
    assert len(lstm) == 4 and len(list(wide.parameters())) == 8

    with pytest.raises(ValueError) as caught:
        mup_param_groups(table.targets[0], wide, names=wide_spec)

    message = str(caught.value)
    assert "4 of the module's 8 parameters would be in no group" in message
    assert f"{', '.join(lstm)} (all left out of the spec by skip=)" in message
    assert "give them a group of your own and pass strict=False" in message
    # Without the ModuleSpec's skip list the reason is the table's.
    with pytest.raises(ValueError, match=r"\(the table has no row for them\)"):
        mup_param_groups(table.targets[0], wide, names=dict(wide_spec.parameter_names))

    groups = mup_param_groups(table.targets[0], wide, names=wide_spec, strict=False)

    placed = [tensor for group in groups for tensor in group["params"]]
    covered = [*wide[0].parameters(), *wide[2].parameters()]
    assert sorted(map(id, placed)) == sorted(map(id, covered))
    groups.append({"params": list(wide[3].parameters()), "lr": LR})
    optimizer = torch.optim.AdamW(groups)
    trained = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(trained) == sorted(id(p) for p in wide.parameters())


# --- repeat counts named by dims ------------------------------------------------------


def test_dims_name_the_repeat_count_and_a_depth_target(client: Client) -> None:
    named = {"d_model": D_MODEL, "d_ff": D_FF, "n_layer": LAYERS}
    base = spec_from_module(GPT(), dims=named)

    assert item(base.spec, "h")["count"] == "n_layer"
    assert base.spec["dims"] == {
        "vocab_100": VOCAB,
        "d_model": D_MODEL,
        "vocab_16": POSITIONS,
        "d_ff": D_FF,
        "n_layer": LAYERS,
        "d_100": VOCAB,  # lm_head's out, the vocabulary as a width
    }
    # The name spec_from_module would write itself may be given too.
    assert item(spec_from_module(GPT(), dims={"n_h": 2}).spec, "h")["count"] == "n_h"
    with pytest.raises(ValueError) as caught:
        spec_from_module(GPT(), dims={"n_layer": 3})
    message = str(caught.value)
    assert "dims['n_layer'] = 3 names no size of the module" in message
    # Widths 32 and 128, tables of 100 and 16 rows, 2 blocks: no 3.
    assert "repeat counts are [2, 16, 32, 100, 128]" in message

    table = client.mup_table(
        base.spec,
        targets=[{"d_model": 2 * D_MODEL, "d_ff": 2 * D_FF, "n_layer": 2 * LAYERS}],
        lr=LR,
        weight_decay=WEIGHT_DECAY,
        depth="completep",
    )
    target = table.targets[0]
    deep = GPT(2 * D_MODEL, 2 * D_FF, layers=2 * LAYERS)
    names = spec_from_module(deep)
    groups = mup_param_groups(target, deep, names=names)
    apply_mup_init(deep, target, names=names, seed=1)

    placed = [id(tensor) for group in groups for tensor in group["params"]]
    assert sorted(placed) == sorted(id(p) for p in deep.parameters())
    assert target.dims["n_layer"] == 2 * LAYERS
    # CompleteP (Dey et al. 2025, Table 1), α = 1, m_N = m_L = 2: branches
    # multiplied by m_L^-α; a hidden weight in a block at Adam LR
    # η·m_N⁻¹·m_L^(α−1) = η/2; Adam's ε·m_N⁻¹·m_L^-α = ε/4 (ε = 1e-8).
    assert mup_multipliers(target).residual_multiplier == pytest.approx(0.5)
    hidden = deep.get_parameter(names.module_name("h.3.mlp.c_fc.weight"))
    group = next(g for g in groups if any(t is hidden for t in g["params"]))
    assert group["lr"] == pytest.approx(LR / 2)
    assert group["eps"] == pytest.approx(1e-8 / 4)


def test_a_size_both_a_count_and_a_width(client: Client) -> None:
    def model() -> nn.Sequential:
        blocks = (nn.Sequential(nn.Linear(2, 2)) for _ in range(2))
        return nn.Sequential(nn.Linear(8, 2), nn.Sequential(*blocks))

    depth = spec_from_module(model(), dims={"n_layer": 2})
    width = spec_from_module(model(), dims={"w": 2})

    # A name starting with n_ goes to the repeat count, any other to the widths.
    assert item(depth.spec, "1")["count"] == "n_layer"
    assert item(depth.spec, "0")["out"] == "d_2"
    assert any("n_layer (2) names the repeat counts" in n for n in depth.notes)
    assert item(width.spec, "1")["count"] == "n_copies"
    assert item(width.spec, "0")["out"] == "w"
    assert any("w (2) names the widths" in n for n in width.notes)
    table = client.mup_table(depth.spec, targets=[{"d_2": 4}], lr=LR)
    # Linear(8, 4) then two Linear(4, 4): 36 + 2 · 20.
    assert table.targets[0].parameter_count == 36 + 2 * 20


# --- norms without parameters ---------------------------------------------------------


def test_norms_without_parameters_are_noted(client: Client) -> None:
    model = nn.Sequential(
        nn.Linear(16, 16),
        nn.LayerNorm(16, elementwise_affine=False),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3),
        nn.BatchNorm2d(16, affine=False),
    )
    blocks = nn.Module()
    blocks.h = nn.ModuleList(
        nn.Sequential(nn.Linear(4, 4), nn.InstanceNorm1d(4)) for _ in range(3)
    )

    module_spec = spec_from_module(model)
    answer = client.recommend(module_spec.spec)

    assert [layer["kind"] for layer in module_spec.spec["layers"]] == [
        "linear",
        "conv2d",
    ]
    # Through the parameter-free norm, the ReLU is still the linear's.
    assert item(module_spec.spec, "0")["activation"] == "relu"
    assert answer.parameter_count == sum(p.numel() for p in model.parameters())
    note = next(n for n in module_spec.notes if "no parameters" in n)
    assert "1 (LayerNorm), 4 (BatchNorm2d)" in note
    assert "/v1/statistics models no normalization there" in note
    repeated = spec_from_module(blocks).notes
    assert any("h.*.1 (InstanceNorm1d, 3 modules)" in n for n in repeated)


# --- a module registered twice ------------------------------------------------------


def test_module_reused_under_two_names(client: Client) -> None:
    model = nn.Module()
    model.a = nn.Linear(8, 8)
    model.norm = nn.LayerNorm(8)
    model.b = model.a
    model.norm_again = model.norm

    module_spec = spec_from_module(model)
    answer = client.recommend(module_spec.spec, scheme="torch_default")
    apply_recommendation(model, answer, names=module_spec, seed=3)

    second = item(module_spec.spec, "b")
    assert (second["tied_to"], second["bias"]) == ("a", False)
    norm = item(module_spec.spec, "norm_again")
    assert (norm["tied_to"], norm["bias"]) == ("norm", False)
    # Linear 8·8 + 8 and LayerNorm 8 + 8, each once.
    assert answer.parameter_count == sum(p.numel() for p in model.parameters()) == 88
    assert answer.by_name("b.weight").tied_to == "a.weight"
    assert any(
        "b.weight and b.bias are a.weight and a.bias" in n for n in module_spec.notes
    )
    # PyTorch's default bias: U(±1/√fan_in), drawn once into the shared tensor.
    bias = model.b.bias.detach()
    assert float(bias.abs().max()) <= 1 / math.sqrt(8)
    assert float(bias.abs().max()) > 0


def test_module_reused_where_the_spec_cannot_say_it() -> None:
    model = nn.Module()
    model.a = nn.MultiheadAttention(8, 2)
    model.b = model.a

    with pytest.raises(ValueError) as caught:
        spec_from_module(model)

    message = str(caught.value)
    assert message.startswith("b is the module a registered again")
    assert "a module reused under two names is supported for a linear" in message
    assert "pass skip=['b']" in message
    left_out = spec_from_module(model, skip=["b"])
    assert left_out.skipped == ()
    assert set(left_out.parameter_names.values()) == {
        name for name, _ in model.named_parameters()
    }
    with pytest.raises(ValueError, match=r"skip= leaves a out; pass skip=\['b'\] too"):
        spec_from_module(model, skip=["a"])

    shared = nn.Module()
    shared.a = nn.Linear(4, 4)
    shared.b = nn.Linear(4, 4)
    shared.b.bias = shared.a.bias
    with pytest.raises(ValueError, match="b.bias is the same tensor as a.bias"):
        spec_from_module(shared)


# --- without PyTorch ------------------------------------------------------------------


def test_import_without_torch_says_how_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # as if PyTorch were not installed\n"
        "try:\n"
        "    import initlab_client.pytorch\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error.name)\n"
        "    print(error)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    name, message = result.stdout.splitlines()
    assert name == "torch"
    assert message.startswith(
        "initlab_client.pytorch needs PyTorch 2.1 or newer, which is not installed"
    )
    assert "pip install '<path to initlab>/client[torch]'" in message
    assert "initlab-client is not on PyPI" in message
    assert "https://pytorch.org/get-started/locally/" in message
