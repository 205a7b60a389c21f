"""Hugging Face configs as specs: counts, shapes and names against transformers 5.25.

tests/fixtures/reference/import_huggingface.json holds what transformers itself
builds from each config in examples/hf/ (and a few with keys changed), per
head: tools/make_import_fixtures.py, on the meta device. No torch or
transformers is needed here.
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import pytest

from initlab.core.errors import InvalidInput
from initlab.core.importers.huggingface import (
    ACTIVATIONS,
    HUGGINGFACE_MODEL_TYPES,
    import_huggingface,
)
from initlab.core.recommend import recommend
from initlab.core.spec import SpecLimits, expand
from initlab.core.types import SchemeChoice
from initlab.web.schemas.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "examples" / "hf"
FIXTURE = ROOT / "tests" / "fixtures" / "reference" / "import_huggingface.json"
REFERENCE = json.loads(FIXTURE.read_text(encoding="utf-8"))
CASES = REFERENCE["cases"]

#: transformers' names → the spec's: the spec language's projection names,
#: T5's relative bias once per stack, ViT's parameters as embeddings, GPT-2
#: under GPT2Model's names. Each rename is stated in the import's notes.
RENAMES: dict[str, list[tuple[str, str]]] = {
    "gpt2": [
        (r"^transformer\.", ""),
        (r"\.attn\.c_attn\.", ".attn.qkv."),
        (r"\.attn\.c_proj\.", ".attn.o."),
    ],
    "llama": [(r"\.(q|k|v|o|gate|up|down)_proj\.", r".\1.")],
    "mistral": [(r"\.(q|k|v|o|gate|up|down)_proj\.", r".\1.")],
    "bert": [
        (r"\.attention\.self\.query\.", ".attention.self.q."),
        (r"\.attention\.self\.key\.", ".attention.self.k."),
        (r"\.attention\.self\.value\.", ".attention.self.v."),
        (r"\.attention\.output\.dense\.", ".attention.self.o."),
        (r"\.attention\.output\.LayerNorm\.", ".attention.LayerNorm."),
        (r"\.output\.LayerNorm\.", ".LayerNorm."),
        (r"^cls\.predictions\.bias$", "cls.predictions.decoder.bias"),
    ],
    "t5": [
        (
            r"^(encoder|decoder)\.block\.0\.layer\.0\.SelfAttention"
            r"\.relative_attention_bias\.",
            r"\1.relative_attention_bias.",
        ),
    ],
    # T5's gated feed-forward (T5DenseGatedActDense) is a spec gated_mlp.
    "t5-gated": [
        (r"\.DenseReluDense\.wi_0\.", ".DenseReluDense.gate."),
        (r"\.DenseReluDense\.wi_1\.", ".DenseReluDense.up."),
        (r"\.DenseReluDense\.wo\.", ".DenseReluDense.down."),
    ],
    "vit": [
        (r"\.attention\.(q|k|v|o)_proj\.", r".attention.\1."),
        (r"\.(cls_token|position_embeddings)$", r".\1.weight"),
    ],
}


def config(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text(encoding="utf-8"))


def expanded(config_data: dict, head: str = "default"):
    imported = import_huggingface(config_data, head)
    return expand(load_spec(imported.spec, SpecLimits()))


def problems(config_data: object, head: str = "default") -> list:
    with pytest.raises(InvalidInput) as caught:
        import_huggingface(config_data, head)
    return caught.value.problems


def only_problem(config_data: object, head: str = "default"):
    found = problems(config_data, head)
    assert len(found) == 1, [problem.message for problem in found]
    return found[0]


def stored_shape(parameter, model_type: str) -> list[int]:
    """The shape transformers stores: Conv1D weights (in, out), ViT's class
    token and position embeddings with a leading batch axis of 1."""
    shape = list(parameter.shape)
    if parameter.layout == "in_out":
        shape.reverse()
    if model_type == "vit" and parameter.layer.endswith(
        ("cls_token", "position_embeddings")
    ):
        shape.insert(0, 1)

    return shape


def spec_names(case: dict) -> dict[str, list[int]]:
    """The reference's parameters, renamed as the spec names them."""
    renames = RENAMES[case["model_type"]]
    if any(".wi_0." in name for name in case["parameters"]):
        renames = renames + RENAMES["t5-gated"]
    renamed = {}
    for name, shape in case["parameters"].items():
        for pattern, replacement in renames:
            name = re.sub(pattern, replacement, name)
        renamed[name] = shape

    return renamed


def case_id(case: dict) -> str:
    changed = "+" + ",".join(case["overrides"]) if case["overrides"] else ""
    return f"{case['config'].removesuffix('.json')}{changed}-{case['head']}"


@pytest.fixture(scope="module", params=CASES, ids=case_id)
def reference_case(request):
    case = request.param
    config_data = config(case["config"]) | case["overrides"]
    return case, expanded(config_data, case["head"])


# --- Against transformers itself ----------------------------------------------


def test_reference_was_made_with_the_pinned_versions():
    assert REFERENCE["versions"]["transformers"] == "5.25.0"
    assert REFERENCE["versions"]["torch"].startswith("2.13.0")
    configs = {case["config"] for case in CASES}
    assert configs == {path.name for path in CONFIGS.glob("*.json")}


def test_parameter_count_matches_transformers(reference_case):
    case, spec = reference_case

    assert spec.parameter_count == case["parameter_count"]


def test_shapes_match_transformers(reference_case):
    case, spec = reference_case
    untied = [p for p in spec.parameters if p.tied_to is None]

    shapes = sorted(stored_shape(p, case["model_type"]) for p in untied)
    assert shapes == case["shapes"]


def test_names_and_shapes_match_transformers_after_the_stated_renames(
    reference_case,
):
    case, spec = reference_case
    untied = {p.name: p for p in spec.parameters if p.tied_to is None}

    renamed = spec_names(case)
    assert sorted(renamed) == sorted(untied)
    for name, shape in renamed.items():
        assert stored_shape(untied[name], case["model_type"]) == shape, name


def test_every_head_is_checked_against_the_class_the_catalogue_names():
    checked = {(case["model_type"], case["head"]) for case in CASES}
    expected = {
        (model_type, head)
        for model_type, kind in HUGGINGFACE_MODEL_TYPES.items()
        for head in kind.heads
    }

    assert checked == expected
    for case in CASES:
        kind = HUGGINGFACE_MODEL_TYPES[case["model_type"]]
        assert kind.heads[case["head"]] == case["class"]


# --- The published counts -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count", "head"),
    [
        ("gpt2-small.json", 124_439_808, "lm"),
        ("gpt2-medium.json", 354_823_168, "lm"),
        ("bert-base-uncased.json", 109_482_240, "pooler"),
        ("llama-2-7b.json", 6_738_415_616, "lm"),
        ("mistral-7b-v0.1.json", 7_241_732_096, "lm"),
        ("t5-small.json", 60_506_624, "lm"),
        ("vit-base-patch16-224.json", 86_567_656, "classifier"),
    ],
)
def test_default_head_gives_the_published_count(name, count, head):
    imported = import_huggingface(config(name))
    spec = expand(load_spec(imported.spec, SpecLimits()))

    assert spec.parameter_count == count
    assert imported.notes[0].startswith(f'Head "{head}"')
    assert imported.source == f"huggingface:{config(name)['model_type']}"


def test_same_count_as_the_hand_written_example_specs():
    for model, example in [("gpt2-small", "gpt2-small"), ("llama-2-7b", "llama-2-7b")]:
        written = json.loads((ROOT / "examples" / f"{example}.spec.json").read_text())
        by_hand = expand(load_spec(written, SpecLimits()))
        imported = expanded(config(f"{model}.json"))

        assert imported.parameter_count == by_hand.parameter_count
        assert [p.shape for p in imported.parameters] == [
            p.shape for p in by_hand.parameters
        ]


def test_t5_v1_1_small_keeps_its_lm_head_apart():
    # google/t5-v1_1-small: gated-GELU, 8 + 8 blocks, 6 heads, untied head.
    # transformers 5.25 builds 60,511,616 parameters with the head tied; the
    # checkpoint stores lm_head apart: + 32128 · 512.
    v1_1 = config("t5-small.json") | {
        "d_ff": 1024,
        "num_heads": 6,
        "num_layers": 8,
        "num_decoder_layers": 8,
        "feed_forward_proj": "gated-gelu",
        "tie_word_embeddings": False,
    }

    spec = expanded(v1_1)

    assert spec.parameter_count == 60_511_616 + 32128 * 512 == 76_961_152
    by_name = {p.name: p for p in spec.parameters}
    assert by_name["lm_head.weight"].tied_to is None
    gate = by_name["encoder.block.3.layer.1.DenseReluDense.gate.weight"]
    assert gate.shape == (1024, 512)
    assert gate.activation.name == "gelu_tanh"


# --- GPT-2 ---------------------------------------------------------------------


def test_gpt2_projections_are_conv1d_and_the_head_is_tied():
    spec = expanded(config("gpt2-small.json"))
    by_name = {p.name: p for p in spec.parameters}

    for layer in ("attn.qkv", "attn.o", "mlp.c_fc", "mlp.c_proj"):
        assert by_name[f"h.7.{layer}.weight"].layout == "in_out"
    assert by_name["h.7.attn.qkv.weight"].shape == (2304, 768)
    assert by_name["h.7.mlp.c_fc.weight"].activation.name == "gelu_tanh"
    assert by_name["lm_head.weight"].tied_to == "wte.weight"
    assert by_name["wte.weight"].shape == (50257, 768)


def test_gpt2_residual_outputs_get_the_depth_scaled_std():
    spec = expanded(config("gpt2-small.json"))
    by_name = {p.name: p for p in spec.parameters}

    outputs = {
        p.name
        for p in spec.parameters
        if p.tensor == "weight" and p.residual and p.residual.is_branch_output
    }
    assert outputs == {
        f"h.{layer}.{projection}.weight"
        for layer in range(12)
        for projection in ("attn.o", "mlp.c_proj")
    }
    assert by_name["h.0.attn.o.weight"].residual.branch_count == 24

    rows = {row.name: row for row in recommend(spec, SchemeChoice("gpt2")).parameters}
    assert rows["h.11.attn.o.weight"].std == 0.02 / math.sqrt(24)
    assert rows["h.11.mlp.c_proj.weight"].std == 0.02 / math.sqrt(24)
    assert rows["h.11.attn.qkv.weight"].std == 0.02


def test_gpt2_scale_dims_and_dims():
    imported = import_huggingface(config("gpt2-medium.json"))

    assert imported.spec["dims"] == {
        "vocab": 50257,
        "n_positions": 1024,
        "d_model": 1024,
        "d_ff": 4096,
        "n_layer": 24,
        "n_heads": 16,
    }
    assert imported.scale_dims == {
        "d_model": 1024,
        "d_ff": 4096,
        "n_heads": 16,
        "d_head": 64,
        "n_layer": 24,
    }
    assert imported.derived_dims == ("d_head",)


def test_gpt2_reads_n_inner_and_the_config_class_aliases():
    aliased = {
        "model_type": "gpt2",
        "vocab_size": 1000,
        "max_position_embeddings": 64,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "n_inner": 100,
    }

    imported = import_huggingface(aliased)

    assert imported.spec["dims"]["n_positions"] == 64
    assert imported.spec["dims"]["d_ff"] == 100
    assert imported.scale_dims["n_layer"] == 2
    spec = expanded(aliased)
    # wte, wpe, 2 × (2 norms, qkv, o, c_fc, c_proj), ln_f; lm_head tied.
    per_block = 2 * 2 * 32 + (32 * 96 + 96) + (32 * 32 + 32) + (32 * 100 + 100)
    per_block += 100 * 32 + 32
    assert spec.parameter_count == 1000 * 32 + 64 * 32 + 2 * per_block + 2 * 32


def test_gpt2_untied_and_classifier_heads():
    untied = config("gpt2-small.json") | {"tie_word_embeddings": False}
    assert expanded(untied).parameter_count == 124_439_808 + 50257 * 768

    classifier = import_huggingface(config("gpt2-small.json"), "classifier")
    assert classifier.spec["dims"]["n_labels"] == 2
    assert any("default of 2 labels" in note for note in classifier.notes)
    none = expanded(config("gpt2-small.json"), "none")
    assert none.parameters[-1].name == "ln_f.bias"


# --- Llama and Mistral -----------------------------------------------------------


def test_llama_dims_without_grouped_query_attention():
    imported = import_huggingface(config("llama-2-7b.json"))

    assert imported.spec["dims"] == {
        "vocab": 32000,
        "d_model": 4096,
        "d_ff": 11008,
        "n_layer": 32,
        "n_heads": 32,
    }
    assert imported.derived_dims == ("d_head",)
    assert imported.scale_dims["d_head"] == 128
    spec = expanded(config("llama-2-7b.json"))
    by_name = {p.name: p for p in spec.parameters}
    assert by_name["model.layers.31.mlp.gate.weight"].activation.name == "silu"
    assert by_name["model.layers.31.input_layernorm.weight"].kind == "rms_norm"
    assert by_name["lm_head.weight"].tied_to is None


def test_mistral_has_grouped_query_attention():
    imported = import_huggingface(config("mistral-7b-v0.1.json"))
    spec = expanded(config("mistral-7b-v0.1.json"))
    by_name = {p.name: p for p in spec.parameters}

    assert imported.spec["dims"]["n_kv_heads"] == 8
    assert by_name["model.layers.0.self_attn.k.weight"].shape == (1024, 4096)
    assert by_name["model.layers.0.self_attn.q.weight"].shape == (4096, 4096)


def test_mistral_defaults_to_8_key_value_heads_and_llama_to_all():
    mistral = config("mistral-7b-v0.1.json")
    del mistral["num_key_value_heads"]
    llama = config("llama-2-7b.json")
    del llama["num_key_value_heads"]
    llama_null = config("llama-2-7b.json") | {"num_key_value_heads": None}

    assert import_huggingface(mistral).spec["dims"]["n_kv_heads"] == 8
    assert "n_kv_heads" not in import_huggingface(llama).spec["dims"]
    assert expanded(llama_null).parameter_count == 6_738_415_616


def test_llama_head_dim_apart_from_the_width_is_a_dim():
    changed = config("llama-2-7b.json") | {"head_dim": 96, "num_key_value_heads": 8}

    imported = import_huggingface(changed)
    by_name = {p.name: p for p in expanded(changed).parameters}

    assert imported.spec["dims"]["d_head"] == 96
    assert imported.derived_dims == ()
    assert imported.scale_dims["d_head"] == 96
    assert by_name["model.layers.0.self_attn.q.weight"].shape == (3072, 4096)
    assert by_name["model.layers.0.self_attn.o.weight"].shape == (4096, 3072)
    assert by_name["model.layers.0.self_attn.v.weight"].shape == (768, 4096)


def test_llama_biases_and_tied_head():
    changed = config("llama-2-7b.json") | {
        "attention_bias": True,
        "mlp_bias": True,
        "tie_word_embeddings": True,
    }

    spec = expanded(changed)
    by_name = {p.name: p for p in spec.parameters}

    per_layer = 4 * 4096 + 2 * 11008 + 4096
    assert spec.parameter_count == 6_738_415_616 - 32000 * 4096 + 32 * per_layer
    assert by_name["lm_head.weight"].tied_to == "model.embed_tokens.weight"
    assert by_name["model.layers.2.mlp.down.bias"].shape == (4096,)


def test_llama_backbone_has_llama_models_names():
    spec = expanded(config("llama-2-7b.json"), "none")

    assert spec.parameters[0].name == "embed_tokens.weight"
    assert spec.parameters[-1].name == "norm.weight"


# --- BERT ------------------------------------------------------------------------


def test_bert_is_post_norm_with_a_tanh_pooler():
    imported = import_huggingface(config("bert-base-uncased.json"))
    spec = expand(load_spec(imported.spec, SpecLimits()))
    by_name = {p.name: p for p in spec.parameters}

    assert imported.spec["dims"] == {
        "vocab": 30522,
        "n_positions": 512,
        "type_vocab": 2,
        "d_model": 768,
        "d_ff": 3072,
        "n_layer": 12,
        "n_heads": 12,
    }
    assert by_name["encoder.layer.5.attention.self.q.bias"].shape == (768,)
    assert by_name["encoder.layer.5.attention.self.o.weight"].residual.norm == "post"
    assert by_name["encoder.layer.5.LayerNorm.weight"].residual is None
    assert by_name["encoder.layer.5.intermediate.dense.weight"].activation.name == (
        "gelu"
    )
    assert by_name["pooler.dense.weight"].activation.name == "tanh"
    assert by_name["embeddings.LayerNorm.weight"].residual is None
    assert any("embedding LayerNorm" in note for note in imported.notes)


def test_bert_masked_lm_head_shares_the_word_embeddings():
    spec = expanded(config("bert-base-uncased.json"), "lm")
    by_name = {p.name: p for p in spec.parameters}

    decoder = by_name["cls.predictions.decoder.weight"]
    assert decoder.tied_to == "bert.embeddings.word_embeddings.weight"
    assert by_name["cls.predictions.decoder.bias"].shape == (30522,)
    assert "pooler.dense.weight" not in by_name
    assert "bert.pooler.dense.weight" not in by_name


def test_bert_classifier_counts_id2label():
    labelled = config("bert-base-uncased.json") | {
        "id2label": {str(index): f"class {index}" for index in range(7)}
    }

    spec = expanded(labelled, "classifier")

    assert spec.parameter_count == 109_482_240 + 7 * 768 + 7
    assert spec.parameters[-1].name == "classifier.bias"


# --- T5 --------------------------------------------------------------------------


def test_t5_layout_and_relative_bias():
    imported = import_huggingface(config("t5-small.json"))
    spec = expand(load_spec(imported.spec, SpecLimits()))
    by_name = {p.name: p for p in spec.parameters}

    assert imported.spec["dims"] == {
        "vocab": 32128,
        "d_model": 512,
        "d_ff": 2048,
        "n_layer": 6,
        "n_heads": 8,
        "d_head": 64,
        "n_buckets": 32,
    }
    assert imported.derived_dims == ()
    assert by_name["encoder.relative_attention_bias.weight"].shape == (32, 8)
    assert by_name["decoder.relative_attention_bias.weight"].shape == (32, 8)
    cross = by_name["decoder.block.5.layer.1.EncDecAttention.k.weight"]
    assert cross.shape == (512, 512)
    assert "decoder.block.5.layer.1.EncDecAttention.k.bias" not in by_name
    assert by_name["decoder.block.5.layer.2.layer_norm.weight"].kind == "rms_norm"
    assert by_name["encoder.block.0.layer.1.DenseReluDense.wi.weight"].shape == (
        2048,
        512,
    )
    assert by_name["lm_head.weight"].tied_to == "shared.weight"
    # 6 encoder blocks × 2 and 6 decoder blocks × 3 residual sublayers.
    assert spec.residual_branch_count == 30
    assert any("relative_attention_bias" in note for note in imported.notes)


def test_t5_decoder_depth_apart_from_the_encoder():
    changed = config("t5-small.json") | {"num_decoder_layers": 2}

    imported = import_huggingface(changed)
    spec = expanded(changed)

    assert imported.spec["dims"]["n_decoder_layer"] == 2
    assert spec.residual_branch_count == 6 * 2 + 2 * 3


@pytest.mark.parametrize(
    ("feed_forward", "activation", "gated"),
    [
        ("relu", "relu", False),
        ("gelu", "gelu", False),
        ("gated-gelu", "gelu_tanh", True),
        ("gated-silu", "silu", True),
    ],
)
def test_t5_feed_forward_proj(feed_forward, activation, gated):
    changed = config("t5-small.json") | {"feed_forward_proj": feed_forward}

    by_name = {p.name: p for p in expanded(changed).parameters}

    first = "gate" if gated else "wi"
    weight = by_name[f"encoder.block.0.layer.1.DenseReluDense.{first}.weight"]
    assert weight.activation.name == activation
    assert ("encoder.block.0.layer.1.DenseReluDense.up.weight" in by_name) is gated


# --- ViT -------------------------------------------------------------------------


def test_vit_classifier_from_architectures_and_pooler_without():
    classifier = import_huggingface(config("vit-base-patch16-224.json"))
    plain = config("vit-base-patch16-224.json")
    del plain["architectures"]
    pooler = import_huggingface(plain)

    assert classifier.spec["dims"]["n_positions"] == 197
    assert classifier.spec["dims"]["n_labels"] == 1000
    assert classifier.notes[0].startswith('Head "classifier"')
    assert pooler.notes[0].startswith('Head "pooler"')
    assert expanded(plain).parameter_count == 86_389_248


def test_vit_patch_embedding_and_class_token():
    spec = expanded(config("vit-base-patch16-224.json"))
    by_name = {p.name: p for p in spec.parameters}

    patch = by_name["vit.embeddings.patch_embeddings.projection.weight"]
    assert patch.shape == (768, 3, 16, 16)
    assert by_name["vit.embeddings.patch_embeddings.projection.bias"].shape == (768,)
    assert by_name["vit.embeddings.cls_token.weight"].shape == (1, 768)
    assert by_name["vit.embeddings.position_embeddings.weight"].shape == (197, 768)
    assert by_name["vit.layers.11.attention.q.bias"].shape == (768,)
    assert by_name["vit.layers.11.mlp.fc1.weight"].activation.name == "gelu"
    assert by_name["classifier.weight"].shape == (1000, 768)


def test_vit_image_and_patch_sizes_as_pairs():
    changed = config("vit-base-patch16-224.json") | {
        "image_size": [224, 160],
        "patch_size": [16, 32],
    }

    imported = import_huggingface(changed)
    by_name = {p.name: p for p in expanded(changed).parameters}

    assert imported.spec["dims"]["n_positions"] == 14 * 5 + 1
    patch = by_name["vit.embeddings.patch_embeddings.projection.weight"]
    assert patch.shape == (768, 3, 16, 32)


def test_vit_drops_the_edge_that_fills_no_patch():
    changed = config("vit-base-patch16-224.json") | {"image_size": 230}

    imported = import_huggingface(changed)

    assert imported.spec["dims"]["n_positions"] == 14 * 14 + 1
    assert any("not a multiple of patch_size" in note for note in imported.notes)


# --- Catalogue and shared behaviour -----------------------------------------------


def test_catalogue_lists_the_six_model_types():
    assert list(HUGGINGFACE_MODEL_TYPES) == [
        "gpt2",
        "llama",
        "mistral",
        "bert",
        "t5",
        "vit",
    ]
    for kind in HUGGINGFACE_MODEL_TYPES.values():
        assert kind.default_head in kind.heads
        assert "none" in kind.heads
        described = kind.as_dict()
        assert described["default_head"] == kind.default_head
        assert json.loads(json.dumps(described)) == described


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gelu_new", "gelu_tanh"),
        ("gelu_pytorch_tanh", "gelu_tanh"),
        ("gelu", "gelu"),
        ("silu", "silu"),
        ("swish", "silu"),
        ("relu", "relu"),
    ],
)
def test_activation_names(name, expected):
    changed = config("gpt2-small.json") | {"activation_function": name}

    by_name = {p.name: p for p in expanded(changed).parameters}

    assert ACTIVATIONS[name] == expected
    assert by_name["h.0.mlp.c_fc.weight"].activation.name == expected


def test_every_config_imports_with_every_head_and_is_json():
    for path in sorted(CONFIGS.glob("*.json")):
        config_data = config(path.name)
        before = copy.deepcopy(config_data)
        kind = HUGGINGFACE_MODEL_TYPES[config_data["model_type"]]
        for head in ("default", *kind.heads):
            imported = import_huggingface(config_data, head)
            assert json.loads(json.dumps(imported.spec)) == imported.spec
            assert import_huggingface(config_data, head) == imported
            roles = {"d_model", "d_ff", "n_heads", "d_head", "n_layer"}
            extra = {"n_kv_heads", "n_decoder_layer"} & set(imported.spec["dims"])
            assert set(imported.scale_dims) == roles | extra
            for role, value in imported.scale_dims.items():
                if role not in imported.derived_dims:
                    assert imported.spec["dims"][role] == value
        assert config_data == before


# --- Problems ----------------------------------------------------------------------


def test_unknown_model_type_lists_the_supported_ones():
    problem = only_problem({"model_type": "gtp2"})

    assert problem.path == ("config", "model_type")
    assert '"gtp2"' in problem.message
    assert 'did you mean "gpt2"?' in problem.message
    assert "gpt2, llama, mistral, bert, t5, vit" in problem.message


@pytest.mark.parametrize(
    ("config_data", "fragment"),
    [
        ({}, "missing model_type"),
        ({"model_type": 7}, "must be a string"),
        ({"model_type": ["gpt2"]}, "must be a string"),
        ({"model_type": "roberta"}, 'unsupported model_type "roberta"'),
    ],
)
def test_model_type_problems(config_data, fragment):
    problem = only_problem(config_data)

    assert problem.path == ("config", "model_type")
    assert fragment in problem.message


def test_config_must_be_an_object():
    problem = only_problem(["model_type", "gpt2"])

    assert problem.path == ("config",)
    assert "a list" in problem.message


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("gpt2-small.json", "n_embd"),
        ("llama-2-7b.json", "intermediate_size"),
        ("mistral-7b-v0.1.json", "num_hidden_layers"),
        ("bert-base-uncased.json", "vocab_size"),
        ("t5-small.json", "d_kv"),
        ("vit-base-patch16-224.json", "num_attention_heads"),
    ],
)
def test_missing_required_key(name, key):
    config_data = config(name)
    del config_data[key]

    problem = only_problem(config_data)

    assert problem.path == ("config", key)
    assert problem.message.startswith(f"missing {key} (")
    assert "copy it from the model's config.json" in problem.message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("768", '"768" (a string)'),
        (768.0, "768.0 (a number) (write 768, without the decimal point)"),
        (True, "true (a boolean)"),
        (None, "null"),
        (0, "got 0"),
        (-768, "got -768"),
    ],
)
def test_width_must_be_a_positive_integer(value, fragment):
    changed = config("gpt2-small.json") | {"n_embd": value}

    problem = only_problem(changed)

    assert problem.path == ("config", "n_embd")
    assert "n_embd (the width) must be a positive integer" in problem.message
    assert fragment in problem.message
    assert problem.value == value


def test_every_problem_is_reported_at_once():
    broken = config("llama-2-7b.json") | {
        "hidden_size": "4096",
        "num_hidden_layers": 0,
        "hidden_act": "gelu_nwe",
        "attention_bias": "no",
    }

    found = problems(broken)

    assert [problem.path[1] for problem in found] == [
        "hidden_size",
        "num_hidden_layers",
        "hidden_act",
        "attention_bias",
    ]
    assert 'did you mean "gelu_new"?' in found[2].message
    assert ", ".join(ACTIVATIONS) in found[2].message
    assert "attention_bias (biases on q, k, v, o) must be true or false" in (
        found[3].message
    )


def test_heads_must_divide_the_width():
    problem = only_problem(config("gpt2-small.json") | {"n_head": 10})

    assert problem.path == ("config", "n_head")
    assert "n_head = 10 does not divide the width 768" in problem.message
    assert "choose a divisor of 768, such as 6, 8, 12" in problem.message


def test_key_value_heads_must_divide_the_heads():
    problem = only_problem(config("mistral-7b-v0.1.json") | {"num_key_value_heads": 5})

    assert problem.path == ("config", "num_key_value_heads")
    assert "num_key_value_heads = 5 does not divide num_attention_heads = 32" in (
        problem.message
    )


def test_mistral_refuses_null_key_value_heads_as_its_config_class_does():
    problem = only_problem(
        config("mistral-7b-v0.1.json") | {"num_key_value_heads": None}
    )

    assert problem.path == ("config", "num_key_value_heads")
    assert "got null" in problem.message


def test_head_the_model_type_does_not_have():
    problem = only_problem(config("t5-small.json"), "classifier")

    assert problem.path == ("head",)
    assert 'a t5 model has no head "classifier"' in problem.message
    assert "the t5 heads are default, lm, none" in problem.message


def test_a_wrong_head_names_the_head_default_builds_for_this_config():
    # This ViT config lists ViTForImageClassification: its default is the
    # classifier, not the pooler of a bare ViTModel.
    problem = only_problem(config("vit-base-patch16-224.json"), "lm")

    assert problem.message.endswith('(default builds "classifier" for this config)')


def test_misspelt_head_and_head_of_the_wrong_type():
    misspelt = only_problem(config("vit-base-patch16-224.json"), "poolr")
    not_text = only_problem(config("vit-base-patch16-224.json"), 3)

    assert 'did you mean "pooler"?' in misspelt.message
    assert not_text.path == ("head",)
    assert "head must be a string; got 3 (an integer)" in not_text.message


def test_head_and_config_problems_come_together():
    found = problems(config("t5-small.json") | {"d_model": "512"}, "classifier")

    assert [problem.path for problem in found] == [("head",), ("config", "d_model")]


def test_alias_that_disagrees_with_its_key():
    problem = only_problem(config("gpt2-small.json") | {"hidden_size": 1024})

    assert problem.path == ("config", "hidden_size")
    assert "n_embd = 768, hidden_size = 1024" in problem.message


@pytest.mark.parametrize(
    ("name", "changes", "key", "fragment"),
    [
        (
            "t5-small.json",
            {"feed_forward_proj": "gelu-gated"},
            "feed_forward_proj",
            "an activation name, or 'gated-' and one",
        ),
        (
            "t5-small.json",
            {"feed_forward_proj": "gated-softmax"},
            "feed_forward_proj",
            '"softmax" is not an activation initlab has',
        ),
        (
            "vit-base-patch16-224.json",
            {"qkv_bias": False},
            "qkv_bias",
            "qkv_bias = false is not supported",
        ),
        (
            "vit-base-patch16-224.json",
            {"image_size": 8},
            "image_size",
            "smaller than patch_size [16, 16]",
        ),
        (
            "vit-base-patch16-224.json",
            {"patch_size": [16, 16, 3]},
            "patch_size",
            "a positive integer or a list [height, width]",
        ),
        (
            "vit-base-patch16-224.json",
            {"architectures": "ViTForImageClassification"},
            "architectures",
            "must be a list of transformers class names",
        ),
        (
            "gpt2-small.json",
            {"add_cross_attention": True},
            "add_cross_attention",
            "add_cross_attention = true (cross-attention to an encoder)",
        ),
        (
            "bert-base-uncased.json",
            {"position_embedding_type": "relative_key"},
            "position_embedding_type",
            'position_embedding_type "relative_key" is not supported',
        ),
        (
            "gpt2-small.json",
            {"tie_word_embeddings": "true"},
            "tie_word_embeddings",
            'must be true or false; got "true" (a string)',
        ),
    ],
)
def test_values_the_importer_refuses(name, changes, key, fragment):
    problem = only_problem(config(name) | changes)

    assert problem.path == ("config", key)
    assert fragment in problem.message


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ({"num_labels": 4, "id2label": {"0": "a"}}, "num_labels", "names 1 label;"),
        ({"id2label": ["a", "b"]}, "id2label", "must map label indices"),
        ({"id2label": {}}, "id2label", "names no label"),
        ({"num_labels": 0}, "num_labels", "got 0"),
    ],
)
def test_label_problems(changes, key, fragment):
    changed = config("bert-base-uncased.json") | changes

    problem = only_problem(changed, "classifier")

    assert problem.path == ("config", key)
    assert fragment in problem.message


def test_examples_readme_lists_each_config_with_its_count():
    readme = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")

    for path in sorted(CONFIGS.glob("*.json")):
        row = next(
            line
            for line in readme.splitlines()
            if line.startswith(f"| `hf/{path.name}` |")
        )
        imported = import_huggingface(config(path.name))
        spec = expand(load_spec(imported.spec, SpecLimits()))
        kind = HUGGINGFACE_MODEL_TYPES[config(path.name)["model_type"]]
        head = imported.notes[0].split('"')[1]
        cells = [cell.strip() for cell in row.strip("|").split("|")]

        assert cells[2] == f"`{head}` ({kind.heads[head]})"
        assert cells[3].startswith(f"{spec.parameter_count:,}")
        assert cells[4] == str(len(spec.parameters))
        assert cells[5] == str(spec.residual_branch_count)
