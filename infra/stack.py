"""`BooksStack`: the three boxes, the wiring between them, and the outputs."""

from pathlib import Path
from typing import Any

from aws_cdk import Annotations, CfnOutput, Duration, IgnoreMode, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_route53 as route53
from constructs import Construct

from infra.config import Architecture, EnvConfig
from infra.database import DB_NAME, Database
from infra.database import PORT as DB_PORT
from infra.network import Network
from infra.service import Https, Service, Sizing

REPO_ROOT = Path(__file__).resolve().parent.parent
# Kept out of the image build context (and of the asset hash), on top of any .dockerignore.
IMAGE_CONTEXT_EXCLUDES = [
    ".git",
    ".venv",
    ".tools",
    ".data",
    "cdk.out",
    "infra",
    "tests",
    "bench",
    "docs",
    "**/__pycache__",
    "**/.*_cache",
]


class BooksStack(Stack):
    """One environment of Bookshelf: network, database and service."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvConfig,
        image: ecs.ContainerImage | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        network = Network(self, "Network", nat_gateways=config.nat_gateways)
        database = Database(
            self,
            "Database",
            vpc=network.vpc,
            instance_type=ec2.InstanceType(config.db_instance_class),
            allocated_storage_gib=config.db_allocated_storage_gib,
            max_allocated_storage_gib=config.db_max_allocated_storage_gib,
            multi_az=config.db_multi_az,
            backup_retention=Duration.days(config.db_backup_retention_days),
            removal_policy=config.db_removal_policy,
            log_retention=config.log_retention,
            log_removal_policy=config.log_removal_policy,
        )
        service = Service(
            self,
            "Service",
            vpc=network.vpc,
            task_subnets=network.task_subnets,
            public_ip=not config.private_tasks,
            database=database.instance,
            db_name=DB_NAME,
            db_secret=database.secret,
            image=image or image_from_dockerfile(config.cpu_architecture),
            sizing=_sizing(config),
            log_retention=config.log_retention,
            log_removal_policy=config.log_removal_policy,
            container_insights=config.container_insights,
            https=self._https(config),
        )

        database.instance.connections.allow_from(
            service.security_group, ec2.Port.tcp(DB_PORT), "PostgreSQL from the service tasks"
        )
        if config.domain is None:
            Annotations.of(self).add_warning_v2(
                "bookshelf:http-only",
                f"{id} serves plain HTTP: API keys cross the internet unencrypted. "
                f"For HTTPS, pass -c {config.name}.domain=... and its hosted zone (README, "
                "Call it) or set a domain in infra/config.py.",
            )
        CfnOutput(self, "ServiceUrl", value=service.url)
        CfnOutput(self, "DbSecretName", value=database.secret.secret_name)
        CfnOutput(self, "ApiKeysSecretName", value=service.api_keys_secret.secret_name)
        CfnOutput(self, "LogGroupName", value=service.log_group.log_group_name)

    def _https(self, config: EnvConfig) -> Https | None:
        if config.domain is None:
            return None
        zone = route53.HostedZone.from_hosted_zone_attributes(
            self,
            "Zone",
            hosted_zone_id=config.domain.hosted_zone_id,
            zone_name=config.domain.hosted_zone_name,
        )
        return Https(domain_name=config.domain.name, zone=zone)


def image_from_dockerfile(architecture: Architecture) -> ecs.ContainerImage:
    """The image built by CDK from the repository's Dockerfile at deploy time."""
    return ecs.ContainerImage.from_asset(
        str(REPO_ROOT),
        platform=ecr_assets.Platform.LINUX_ARM64
        if architecture == "arm64"
        else ecr_assets.Platform.LINUX_AMD64,
        exclude=IMAGE_CONTEXT_EXCLUDES,
        ignore_mode=IgnoreMode.DOCKER,
    )


def _sizing(config: EnvConfig) -> Sizing:
    return Sizing(
        cpu=config.task_cpu,
        memory_mib=config.task_memory_mib,
        workers=config.workers,
        desired_count=config.desired_count,
        max_count=config.max_count,
        cpu_architecture=ecs.CpuArchitecture.ARM64
        if config.cpu_architecture == "arm64"
        else ecs.CpuArchitecture.X86_64,
    )
