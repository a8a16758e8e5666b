"""The dev stack with the real image asset: the repository's Dockerfile, as `cdk deploy` builds it.

The other infra tests use a stub asset. Synthesis only stages the build context and writes the
asset manifest (no Docker needed), so this is one quick synthesis of one stack.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.config import DEV
from infra.stack import REPO_ROOT, BooksStack
from tests.infra._template import container, only

KEPT_OUT = {".venv", ".git", "tests", "bench", "cdk.out", ".data"}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, dict[str, Any], Path]:
    """The dev template, its one Docker image asset, and the staged build context."""
    outdir = tmp_path_factory.mktemp("cdk.out.asset")
    app = App(outdir=str(outdir))
    stack = BooksStack(app, DEV.stack_id, config=DEV)
    assembly = app.synth()
    manifest = json.loads((Path(assembly.directory) / f"{DEV.stack_id}.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    return Template.from_stack(stack), image, outdir / image["source"]["directory"]


def test_image_is_built_for_the_task_platform(
    synthesized: tuple[Template, dict[str, Any], Path],
) -> None:
    template, image, _ = synthesized
    _, task = only(template, "AWS::ECS::TaskDefinition")
    architecture = task["Properties"]["RuntimePlatform"]["CpuArchitecture"]
    assert architecture == "ARM64"
    assert image["source"]["platform"] == f"linux/{architecture.lower()}"
    (destination,) = image["destinations"].values()
    assert destination["imageTag"] in json.dumps(container(template)["Image"])


def test_image_is_built_from_the_repository_dockerfile(
    synthesized: tuple[Template, dict[str, Any], Path],
) -> None:
    _, image, context = synthesized
    assert image["source"].get("dockerFile", "Dockerfile") == "Dockerfile"
    assert (context / "Dockerfile").read_text() == (REPO_ROOT / "Dockerfile").read_text()
    for needed in ("pyproject.toml", "uv.lock", "README.md", "src/bookshelf/main.py"):
        assert (context / needed).is_file(), needed


def test_build_context_leaves_out_local_state_tests_and_history(
    synthesized: tuple[Template, dict[str, Any], Path],
) -> None:
    _, _, context = synthesized
    # Not vacuous: these are in every checkout the tests run from.
    assert {".git", ".venv", "tests", "bench"} <= {p.name for p in REPO_ROOT.iterdir()}
    staged = {p.relative_to(context) for p in context.rglob("*")}
    assert not {p for p in staged if KEPT_OUT & set(p.parts)}
    assert not {p for p in staged if "__pycache__" in p.parts}
