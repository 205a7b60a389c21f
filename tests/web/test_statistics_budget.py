"""What an over-budget /v1/statistics refusal tells the user to change."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import ContractClient
from .test_statistics import message_at, pointers, problem_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GPT2_SMALL = json.loads((EXAMPLES / "gpt2-small.spec.json").read_text("utf-8"))


def test_gpt2_small_with_one_seed_is_told_to_go_forward_only(
    api: ContractClient,
) -> None:
    request = {"spec": GPT2_SMALL, "method": "monte_carlo", "batch_size": 2}
    response = api.post("/v1/statistics", json_body={**request, "seeds": 1})

    body = problem_of(response, 422, "limit-exceeded")
    assert body["limit"] == "compute_budget"
    estimate = body["estimate"]
    drawn = estimate["random_number_flops"] * estimate["random_numbers"]
    assert drawn > 0.9 * estimate["work"]
    assert pointers(body) == ["/backward"]
    message = message_at(body, "/backward")
    assert "for 1 seed of a batch of 2" in message
    assert "drawing the weights for the backward pass dominates" in message
    assert '"backward": false (forward statistics only' in message
    assert "seeds (you asked" not in message
    assert message.count("method 'analytic'") == 1

    # The change named is enough: forward-only is answered.
    forward = api.post(
        "/v1/statistics", json_body={**request, "seeds": 1, "backward": False}
    )
    assert forward.status_code == 200
    assert forward.get_json()["cost"]["work"] <= body["limit_value"]
