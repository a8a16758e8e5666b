"""Read a synthesized template by intent: resource types and references, never logical ids."""

from typing import Any

from aws_cdk.assertions import Template


def resources(template: Template, type_: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template.find_resources(type_)
    return found


def only(template: Template, type_: str) -> tuple[str, dict[str, Any]]:
    found = resources(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return next(iter(found.items()))


def ref(value: Any) -> str:
    """The logical id a `Ref` or `Fn::GetAtt` points at."""
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])


def container(template: Template) -> dict[str, Any]:
    _, task = only(template, "AWS::ECS::TaskDefinition")
    definitions = task["Properties"]["ContainerDefinitions"]
    assert len(definitions) == 1
    result: dict[str, Any] = definitions[0]
    return result
