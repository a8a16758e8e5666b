"""The CDK app: one `BooksStack` per environment, checked by cdk-nag's AWS Solutions pack.

Account and region are left to the CDK CLI's usual environment (AWS profile or AWS_REGION), so
the stacks are environment-agnostic and synthesis makes no AWS calls.
"""

import dataclasses

from aws_cdk import App, Aspects, Tags
from aws_cdk import aws_ecs as ecs
from cdk_nag import AwsSolutionsChecks

from infra.config import ENVIRONMENTS, Domain, EnvConfig
from infra.stack import BooksStack

DOMAIN_KEYS = ("domain", "hosted_zone_id", "hosted_zone_name")


def build_app(app: App | None = None, *, image: ecs.ContainerImage | None = None) -> App:
    """Both stacks in one app; `image` replaces the Dockerfile build (tests pass a registry one)."""
    app = app or App()
    for config in ENVIRONMENTS.values():
        stack = BooksStack(
            app,
            config.stack_id,
            config=_with_context_domain(app, config),
            image=image,
            description=f"Bookshelf books API ({config.name})",
        )
        Tags.of(stack).add("project", "bookshelf")
        Tags.of(stack).add("environment", config.name)
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app


def _with_context_domain(app: App, config: EnvConfig) -> EnvConfig:
    """`cdk -c prod.domain=api.example.com -c prod.hosted_zone_id=Z123
    -c prod.hosted_zone_name=example.com` turns HTTPS on for prod alone, without editing the
    config; `dev.` keys do the same for dev."""
    # Unprefixed keys would apply to both stacks: a domain meant for prod would land on dev too.
    if any(app.node.try_get_context(key) for key in DOMAIN_KEYS):
        raise ValueError(
            "HTTPS context is per environment: use -c dev.domain=... or -c prod.domain=... "
            "(and the same prefix on hosted_zone_id and hosted_zone_name)"
        )
    context = {key: app.node.try_get_context(f"{config.name}.{key}") for key in DOMAIN_KEYS}
    if not any(context.values()):
        return config
    missing = [f"{config.name}.{key}" for key, value in context.items() if not value]
    if missing:
        raise ValueError(f"HTTPS for {config.name} also needs -c {' -c '.join(missing)}")
    domain = Domain(
        name=str(context["domain"]),
        hosted_zone_id=str(context["hosted_zone_id"]),
        hosted_zone_name=str(context["hosted_zone_name"]),
    )
    return dataclasses.replace(config, domain=domain)


if __name__ == "__main__":
    build_app().synth()
