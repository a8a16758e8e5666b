"""Sizes and lifecycles of each environment, in one typed, frozen config per environment."""

from dataclasses import dataclass
from typing import Literal

from aws_cdk import RemovalPolicy
from aws_cdk.aws_logs import RetentionDays

Architecture = Literal["arm64", "x86_64"]


@dataclass(frozen=True, kw_only=True)
class Domain:
    """A DNS name for the service, in a Route 53 hosted zone the account already has.

    Given ids, not looked up, so synthesis makes no AWS calls.
    """

    name: str
    hosted_zone_id: str
    hosted_zone_name: str


@dataclass(frozen=True, kw_only=True)
class EnvConfig:
    name: Literal["dev", "prod"]
    # Network: 0 NAT gateways puts the tasks in public subnets with public IPs (no NAT bill);
    # more puts them in private subnets that reach AWS APIs through the NAT gateways. One per
    # AZ (2) keeps each AZ's tasks online when the other AZ, and its NAT, fails.
    nat_gateways: int
    # Database
    db_instance_class: str
    db_allocated_storage_gib: int
    db_max_allocated_storage_gib: int
    db_multi_az: bool
    db_backup_retention_days: int
    db_removal_policy: RemovalPolicy
    # Service
    cpu_architecture: Architecture
    task_cpu: int
    task_memory_mib: int
    desired_count: int
    max_count: int
    log_retention: RetentionDays
    container_insights: bool
    domain: Domain | None = None

    @property
    def workers(self) -> int:
        """One uvicorn worker per whole vCPU of the task, and at least one."""
        return max(1, self.task_cpu // 1024)

    @property
    def log_removal_policy(self) -> RemovalPolicy:
        """Logs go with a disposable database and stay after a kept one (no snapshot of logs).
        Kept on update and delete only: a first deploy that fails and rolls back removes them,
        so a retry does not meet a log group of the same name left behind."""
        if self.db_removal_policy == RemovalPolicy.DESTROY:
            return RemovalPolicy.DESTROY
        return RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE

    @property
    def private_tasks(self) -> bool:
        return self.nat_gateways > 0

    @property
    def stack_id(self) -> str:
        return f"Bookshelf-{self.name}"


DEV = EnvConfig(
    name="dev",
    nat_gateways=0,
    db_instance_class="t4g.micro",
    db_allocated_storage_gib=20,
    db_max_allocated_storage_gib=50,
    db_multi_az=False,
    db_backup_retention_days=1,
    db_removal_policy=RemovalPolicy.DESTROY,
    cpu_architecture="arm64",
    task_cpu=256,
    task_memory_mib=512,
    desired_count=1,
    max_count=2,
    log_retention=RetentionDays.ONE_WEEK,
    container_insights=False,
)

PROD = EnvConfig(
    name="prod",
    nat_gateways=2,
    db_instance_class="t4g.small",
    db_allocated_storage_gib=20,
    db_max_allocated_storage_gib=100,
    db_multi_az=True,
    db_backup_retention_days=14,
    db_removal_policy=RemovalPolicy.SNAPSHOT,
    cpu_architecture="arm64",
    task_cpu=1024,
    task_memory_mib=2048,
    desired_count=2,
    max_count=6,
    log_retention=RetentionDays.ONE_MONTH,
    container_insights=True,
)

ENVIRONMENTS: dict[str, EnvConfig] = {cfg.name: cfg for cfg in (DEV, PROD)}
