"""The service box: an ECS cluster and a Fargate service behind an Application Load Balancer."""

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from bookshelf import contract

# Below the app's keep-alive, so the ALB, not the app, closes idle connections (no stray 502s).
ALB_IDLE_TIMEOUT = Duration.seconds(60)


@dataclass(frozen=True, kw_only=True)
class Https:
    """A DNS name in a hosted zone: enables an ACM certificate and HTTP→HTTPS redirect."""

    domain_name: str
    zone: route53.IHostedZone


@dataclass(frozen=True, kw_only=True)
class Sizing:
    cpu: int
    memory_mib: int
    workers: int
    desired_count: int
    max_count: int
    cpu_architecture: ecs.CpuArchitecture


class Service(Construct):
    """The Bookshelf API on Fargate: DB location as environment, credentials as ECS secrets."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        task_subnets: ec2.SubnetSelection,
        public_ip: bool,
        database: rds.DatabaseInstance,
        db_name: str,
        db_secret: secretsmanager.ISecret,
        image: ecs.ContainerImage,
        sizing: Sizing,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
        container_insights: bool,
        https: Https | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.api_keys_secret = secretsmanager.Secret(
            self,
            "ApiKeys",
            description="Bookshelf API key (BOOKSHELF_API_KEYS), sent as Authorization: Bearer",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=40
            ),
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=log_removal_policy
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Bookshelf tasks: ingress from the load balancer only",
            allow_all_outbound=False,
        )
        # Image pulls, logs and secrets are HTTPS calls to AWS APIs; the DB rule is added by
        # the stack when it wires the database to this service.
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs: ECR, CloudWatch Logs, Secrets"
        )
        task_definition = self._task_definition(vpc, database, db_name, db_secret, image, sizing)
        cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED
            if container_insights
            else ecs.ContainerInsights.DISABLED,
        )
        self.fargate_service = ecs_patterns.ApplicationLoadBalancedFargateService(
            self,
            "Fargate",
            cluster=cluster,
            task_definition=task_definition,
            task_subnets=task_subnets,
            assign_public_ip=public_ip,
            security_groups=[self.security_group],
            desired_count=sizing.desired_count,
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            health_check_grace_period=Duration.seconds(60),
            idle_timeout=ALB_IDLE_TIMEOUT,
            public_load_balancer=True,
            open_listener=True,
            protocol=elbv2.ApplicationProtocol.HTTPS if https else elbv2.ApplicationProtocol.HTTP,
            certificate=self._certificate(https),
            domain_name=https.domain_name if https else None,
            domain_zone=https.zone if https else None,
            redirect_http=https is not None,
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS if https else None,
        )
        self._configure_target_group()
        self._autoscale(sizing)
        scheme = "https" if https else "http"
        host = (
            https.domain_name
            if https
            else self.fargate_service.load_balancer.load_balancer_dns_name
        )
        self.url = f"{scheme}://{host}"
        self._suppress(container_insights)

    def _task_definition(
        self,
        vpc: ec2.IVpc,
        database: rds.DatabaseInstance,
        db_name: str,
        db_secret: secretsmanager.ISecret,
        image: ecs.ContainerImage,
        sizing: Sizing,
    ) -> ecs.FargateTaskDefinition:
        task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=sizing.cpu,
            memory_limit_mib=sizing.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=sizing.cpu_architecture,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        task_definition.add_container(
            "App",
            image=image,
            port_mappings=[ecs.PortMapping(container_port=contract.CONTAINER_PORT)],
            environment={
                contract.DB_HOST: database.db_instance_endpoint_address,
                contract.DB_PORT: database.db_instance_endpoint_port,
                contract.DB_NAME: db_name,
                contract.DB_SSLMODE: "require",
                contract.MIGRATE_ON_START: "true",
                contract.PORT: str(contract.CONTAINER_PORT),
                contract.WORKERS: str(sizing.workers),
                contract.FORWARDED_ALLOW_IPS: vpc.vpc_cidr_block,
            },
            secrets={
                contract.DB_SECRET: ecs.Secret.from_secrets_manager(db_secret),
                contract.API_KEYS: ecs.Secret.from_secrets_manager(self.api_keys_secret),
            },
            health_check=ecs.HealthCheck(
                # The image's own HEALTHCHECK command; ECS does not read the image's.
                command=["CMD", *contract.HEALTH_CHECK_COMMAND],
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(30),
            ),
            stop_timeout=Duration.seconds(contract.STOP_TIMEOUT_SECONDS),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="bookshelf", log_group=self.log_group),
        )
        return task_definition

    def _certificate(self, https: Https | None) -> acm.ICertificate | None:
        if https is None:
            return None
        return acm.Certificate(
            self,
            "Certificate",
            domain_name=https.domain_name,
            validation=acm.CertificateValidation.from_dns(https.zone),
        )

    def _configure_target_group(self) -> None:
        target_group = self.fargate_service.target_group
        target_group.configure_health_check(
            path=contract.LIVE_PATH,
            healthy_http_codes="200",
            interval=Duration.seconds(15),
            timeout=Duration.seconds(5),
            healthy_threshold_count=2,
            unhealthy_threshold_count=3,
        )
        # The ALB stops sending new requests, then ECS sends SIGTERM; the app drains for
        # DRAIN_SECONDS and ECS waits STOP_TIMEOUT_SECONDS before SIGKILL.
        target_group.set_attribute(
            "deregistration_delay.timeout_seconds", str(contract.DRAIN_SECONDS)
        )

    def _autoscale(self, sizing: Sizing) -> None:
        scaling = self.fargate_service.service.auto_scale_task_count(
            min_capacity=sizing.desired_count, max_capacity=sizing.max_count
        )
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        scaling.scale_on_request_count(
            "Requests",
            requests_per_target=500,
            target_group=self.fargate_service.target_group,
        )

    def _suppress(self, container_insights: bool) -> None:
        reasons = [
            NagPackSuppression(
                id="AwsSolutions-ELB2",
                reason="ALB access logs need an S3 bucket per region; the app logs each request.",
            ),
            NagPackSuppression(
                id="AwsSolutions-EC23",
                reason="A public API: the load balancer admits the world on 80/443 only.",
            ),
            NagPackSuppression(
                id="AwsSolutions-ECS2",
                reason="The environment holds only non-secret settings (DB host, port, name); "
                "credentials and API keys are ECS secrets.",
            ),
            NagPackSuppression(
                id="AwsSolutions-SMG4",
                reason="The API key is rotated by hand (README, Rotate the secrets): put a new "
                "value, then force a new ECS deployment, since the app reads it only at start.",
            ),
        ]
        if self.fargate_service.task_definition.execution_role is not None:
            NagSuppressions.add_resource_suppressions(
                self.fargate_service.task_definition.execution_role,
                [
                    NagPackSuppression(
                        id="AwsSolutions-IAM5",
                        reason="ecr:GetAuthorizationToken has no resource-level permissions; "
                        "CDK grants it on * to pull the image built from the Dockerfile.",
                        applies_to=["Resource::*"],
                    )
                ],
                apply_to_children=True,
            )
        if not container_insights:
            reasons.append(
                NagPackSuppression(
                    id="AwsSolutions-ECS4",
                    reason="Container Insights is billed per metric; dev does without it.",
                )
            )
        NagSuppressions.add_resource_suppressions(self, reasons, apply_to_children=True)
