"""Write tests/fixtures/reference/import_huggingface.json from transformers itself.

For every config in ``examples/hf/`` and every head initlab's Hugging Face
importer offers for its model type, and for a few of those configs with keys
changed (``VARIANTS``: the keys whose defaults and options change shapes), the
script builds the transformers model
class that head stands for (GPT2LMHeadModel, BertModel without its pooler,
...) from the config, on ``torch.device("meta")`` so no weights are allocated
(a 7B model builds in a second), and records:

- ``parameter_count``: the sum of ``numel()`` over ``model.parameters()``,
  which yields a tensor shared by several modules (a tied LM head) once;
- ``shapes``: the shape of each of those tensors, as stored (GPT-2's Conv1D
  weights are (in, out), ViT's class token is (1, 1, hidden)), sorted;
- ``parameters``: each of those tensors by its name in ``named_parameters()``
  (the first name of a shared one), with its shape.

``tests/core/test_import_huggingface.py`` imports each config with that head
and requires the spec's parameter count and shapes to equal these.

Needs torch 2.13.0 (CPU) and transformers 5.25.0 (requirements-reference.txt
and requirements-transformers.txt); ``make fixtures`` installs them into
``tools/.venv-reference``. The service and its tests never import either.

Usage, from tools/: ``python make_import_fixtures.py --out ../tests/fixtures/reference``
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import sys
import types
from pathlib import Path
from typing import Any

import torch

# transformers imports torchvision when it is installed (for image
# processors). The PyPI torchvision wheel next to the CPU torch cannot register
# its detection ops' meta kernels (see make_torchvision_fixtures.py); no model
# here uses them, so that one module is replaced by an empty one first.
if importlib.util.find_spec("torchvision") is not None:
    sys.modules.setdefault(
        "torchvision._meta_registrations",
        types.ModuleType("torchvision._meta_registrations"),
    )

import transformers  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "examples" / "hf"
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "reference"
GENERATOR = "tools/make_import_fixtures.py"
COMMAND = "make fixtures"

#: The transformers class (and its constructor's options) each head of each
#: model type reproduces, as initlab's HUGGINGFACE_MODEL_TYPES documents it.
HEAD_CLASSES: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "gpt2": {
        "lm": ("GPT2LMHeadModel", {}),
        "classifier": ("GPT2ForSequenceClassification", {}),
        "none": ("GPT2Model", {}),
    },
    "llama": {
        "lm": ("LlamaForCausalLM", {}),
        "classifier": ("LlamaForSequenceClassification", {}),
        "none": ("LlamaModel", {}),
    },
    "mistral": {
        "lm": ("MistralForCausalLM", {}),
        "classifier": ("MistralForSequenceClassification", {}),
        "none": ("MistralModel", {}),
    },
    "bert": {
        "pooler": ("BertModel", {"add_pooling_layer": True}),
        "lm": ("BertForMaskedLM", {}),
        "classifier": ("BertForSequenceClassification", {}),
        "none": ("BertModel", {"add_pooling_layer": False}),
    },
    "t5": {
        "lm": ("T5ForConditionalGeneration", {}),
        "none": ("T5Model", {}),
    },
    "vit": {
        "classifier": ("ViTForImageClassification", {}),
        "pooler": ("ViTModel", {"add_pooling_layer": True}),
        "none": ("ViTModel", {"add_pooling_layer": False}),
    },
}

#: Configs of examples/hf/ with keys changed, to check how the importer reads
#: the keys whose defaults and options change shapes: (config, overrides, heads).
VARIANTS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    (
        "gpt2-small.json",
        {"n_inner": 1000, "tie_word_embeddings": False, "hidden_size": 768},
        ("lm",),
    ),
    (
        "llama-2-7b.json",
        {
            "num_key_value_heads": 8,
            "head_dim": 96,
            "attention_bias": True,
            "mlp_bias": True,
            "tie_word_embeddings": True,
        },
        ("lm",),
    ),
    ("mistral-7b-v0.1.json", {"num_key_value_heads": 4, "head_dim": 160}, ("lm",)),
    (
        "bert-base-uncased.json",
        {"num_labels": 3, "type_vocab_size": 4},
        ("classifier",),
    ),
    (
        "t5-small.json",
        {
            "feed_forward_proj": "gated-gelu",
            "d_ff": 1024,
            "num_heads": 6,
            "num_decoder_layers": 4,
        },
        ("lm",),
    ),
    (
        "vit-base-patch16-224.json",
        {
            "image_size": [224, 160],
            "patch_size": [16, 32],
            "num_channels": 1,
            "pooler_output_size": 512,
            "num_labels": 5,
        },
        ("classifier", "pooler"),
    ),
]

NOTES = [
    "Each case: a config of examples/hf/ with the keys in overrides replaced,"
    " the importer's head, the transformers class built for it on the meta"
    " device, its parameter count (tied tensors once), the sorted shapes of its"
    " parameters as stored, and each parameter's name and shape.",
    "Shapes are transformers' own: GPT-2's Conv1D weights (in, out), ViT's"
    " cls_token (1, 1, hidden) and position_embeddings (1, positions, hidden).",
    "Configs are read with the model type's config class"
    " (CONFIG_MAPPING[model_type].from_dict), as from_pretrained reads"
    " config.json.",
]


def build(config_data: dict[str, Any], head: str) -> tuple[str, torch.nn.Module]:
    """The model ``head`` stands for, built from ``config_data`` without weights."""
    config_class = transformers.CONFIG_MAPPING[config_data["model_type"]]
    config = config_class.from_dict(config_data)
    class_name, options = HEAD_CLASSES[config_data["model_type"]][head]
    with torch.device("meta"):
        model = getattr(transformers, class_name)(config, **options)

    return class_name, model


def case(config_path: Path, overrides: dict[str, Any], head: str) -> dict[str, Any]:
    config_data = json.loads(config_path.read_text()) | overrides
    class_name, model = build(config_data, head)
    named = list(model.named_parameters())  # a shared tensor once, at its first name

    return {
        "config": config_path.name,
        "overrides": overrides,
        "model_type": config_data["model_type"],
        "head": head,
        "class": class_name,
        "parameter_count": sum(parameter.numel() for _, parameter in named),
        "shapes": sorted(list(parameter.shape) for _, parameter in named),
        "parameters": {name: list(parameter.shape) for name, parameter in named},
    }


def write(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)

    runs = []
    for path in sorted(CONFIGS.glob("*.json")):
        model_type = json.loads(path.read_text())["model_type"]
        runs.append((path.name, {}, tuple(HEAD_CLASSES[model_type])))
    cases = []
    for name, overrides, heads in runs + VARIANTS:
        for head in heads:
            cases.append(case(CONFIGS / name, overrides, head))
            count = cases[-1]["parameter_count"]
            print(f"{name} {overrides or ''} {head}: {count:,}")

    document = {
        "generator": GENERATOR,
        "command": COMMAND,
        "versions": {
            "torch": torch.__version__,
            "transformers": importlib.metadata.version("transformers"),
            "python": platform.python_version(),
        },
        "notes": NOTES,
        "cases": cases,
    }
    path = arguments.out / "import_huggingface.json"
    write(path, document)
    print(f"wrote {path} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
