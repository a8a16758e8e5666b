"""Policy checks on the synthesized stacks: cdk-nag AWS Solutions and cfn-lint."""

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Annotations, Match, Template
from cfnlint.api import lint

NAG_FINDING = Match.string_like_regexp("AwsSolutions-.*")


@pytest.fixture(params=["dev_stack", "prod_stack", "https_stack"])
def stack(request: pytest.FixtureRequest) -> Stack:
    result: Stack = request.getfixturevalue(request.param)
    return result


def test_cdk_nag_finds_no_unsuppressed_errors(stack: Stack) -> None:
    errors = Annotations.from_stack(stack).find_error("*", NAG_FINDING)
    assert [f"{e.id}: {e.entry.data}" for e in errors] == []


def test_cdk_nag_finds_no_unsuppressed_warnings(stack: Stack) -> None:
    warnings = Annotations.from_stack(stack).find_warning("*", NAG_FINDING)
    assert [f"{w.id}: {w.entry.data}" for w in warnings] == []


def test_every_nag_suppression_has_a_reason(template: Template) -> None:
    suppressions: list[dict[str, Any]] = [
        rule
        for resource in template.to_json()["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert suppressions, "expected the documented suppressions to be in the template"
    for rule in suppressions:
        assert rule["id"].startswith("AwsSolutions-")
        assert len(rule["reason"]) >= 20, rule


@pytest.mark.parametrize("name", ["dev", "prod", "https"])
def test_cfn_lint_finds_no_errors(request: pytest.FixtureRequest, name: str) -> None:
    template: Template = request.getfixturevalue(name)
    matches = lint(json.dumps(template.to_json()), regions=["us-east-1"])
    errors = [str(m) for m in matches if m.rule.id.startswith("E")]
    assert errors == []
