"""The database box: RDS PostgreSQL in the isolated subnets, its password in Secrets Manager."""

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

DB_NAME = "bookshelf"
DB_USER = "bookshelf"
PORT = 5432
LOG_EXPORT = "postgresql"
# RDS refuses / @ " and space in a master password; the rest would need escaping in a DSN.
PASSWORD_EXCLUDED_CHARACTERS = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"


class Database(Construct):
    """A private, encrypted PostgreSQL instance that only accepts TLS connections."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        instance_type: ec2.InstanceType,
        allocated_storage_gib: int,
        max_allocated_storage_gib: int,
        multi_az: bool,
        backup_retention: Duration,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        # Unique per account and region, as the stack name is. RDS names its log group after
        # the instance, so the name must be known before the instance exists (see _log_group).
        # The cost of a fixed name: a change that needs a new instance must also rename it.
        identifier = f"{Stack.of(self).stack_name}-postgres".lower()
        self.log_group = self._log_group(identifier, log_retention, log_removal_policy)
        # A pinned minor (cfn-lint flags a bare major); RDS applies newer minors itself.
        engine = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17_9)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Bookshelf PostgreSQL: ingress from the service tasks only",
            allow_all_outbound=False,
        )
        parameters = rds.ParameterGroup(
            self, "Parameters", engine=engine, parameters={"rds.force_ssl": "1"}
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=engine,
            instance_type=instance_type,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.security_group],
            publicly_accessible=False,
            port=PORT,
            instance_identifier=identifier,
            database_name=DB_NAME,
            credentials=rds.Credentials.from_generated_secret(
                DB_USER, exclude_characters=PASSWORD_EXCLUDED_CHARACTERS
            ),
            parameter_group=parameters,
            storage_type=rds.StorageType.GP3,
            allocated_storage=allocated_storage_gib,
            max_allocated_storage=max_allocated_storage_gib,
            storage_encrypted=True,
            multi_az=multi_az,
            backup_retention=backup_retention,
            delete_automated_backups=removal_policy == RemovalPolicy.DESTROY,
            deletion_protection=removal_policy != RemovalPolicy.DESTROY,
            removal_policy=removal_policy,
            cloudwatch_logs_exports=[LOG_EXPORT],
            auto_minor_version_upgrade=True,
        )
        # Created first, deleted last: otherwise RDS makes the group on its own.
        self.instance.node.add_dependency(self.log_group)
        secret = self.instance.secret
        assert secret is not None  # from_generated_secret always makes one
        self.secret = secret
        self._keep_secret_with_snapshot(removal_policy)
        self._suppress(
            multi_az=multi_az, deletion_protection=removal_policy != RemovalPolicy.DESTROY
        )

    def _keep_secret_with_snapshot(self, removal_policy: RemovalPolicy) -> None:
        """A restored snapshot keeps its master password, so the secret holding it stays too."""
        # `instance.secret` is the attachment; the generated secret is the instance's "Secret".
        generated = self.instance.node.find_child("Secret")
        assert isinstance(generated, secretsmanager.Secret)
        generated.apply_removal_policy(
            RemovalPolicy.DESTROY
            if removal_policy == RemovalPolicy.DESTROY
            else RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE  # a failed first deploy leaves none
        )

    def _log_group(
        self, identifier: str, retention: logs.RetentionDays, removal_policy: RemovalPolicy
    ) -> logs.LogGroup:
        """The group RDS exports the server log to; left to RDS, it would never expire and
        would outlive the stack, since CloudFormation would not know of it."""
        return logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/rds/instance/{identifier}/{LOG_EXPORT}",
            retention=retention,
            removal_policy=removal_policy,
        )

    def _suppress(self, *, multi_az: bool, deletion_protection: bool) -> None:
        reasons = [
            NagPackSuppression(
                id="AwsSolutions-SMG4",
                reason="Automatic rotation (a Lambda that reaches both Secrets Manager and the "
                "isolated subnets) is a follow-up; a redeploy never regenerates the secret. Rotate "
                "by hand (README, Rotate the secrets): set a new master password on the instance "
                "and in the secret, then force a new ECS deployment (tasks read it at start).",
            ),
            NagPackSuppression(
                id="AwsSolutions-RDS11",
                reason="The default port is fine: only the service's security group may connect.",
            ),
        ]
        if not multi_az:
            reasons.append(
                NagPackSuppression(id="AwsSolutions-RDS3", reason="dev runs single-AZ, for cost.")
            )
        if not deletion_protection:
            reasons.append(
                NagPackSuppression(
                    id="AwsSolutions-RDS10",
                    reason="dev is disposable: `make destroy ENV=dev` must remove the database.",
                )
            )
        NagSuppressions.add_resource_suppressions(self, reasons, apply_to_children=True)
