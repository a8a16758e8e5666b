"""The stacks, asserted by intent: counts and key properties, never hashed logical ids."""

from typing import Any

import pytest
from aws_cdk import App
from aws_cdk import aws_ecs as ecs
from aws_cdk.assertions import Match, Template

from bookshelf import contract
from infra.app import build_app
from infra.config import DEV, PROD
from infra.database import PASSWORD_EXCLUDED_CHARACTERS
from tests.infra._template import container, only, ref, resources

ANYWHERE = "0.0.0.0/0"


def _ingress(template: Template, group_id: str) -> list[dict[str, Any]]:
    """Every ingress rule of a security group: inline ones and separate resources."""
    group = template.to_json()["Resources"][group_id]
    rules: list[dict[str, Any]] = list(group["Properties"].get("SecurityGroupIngress", []))
    for rule in resources(template, "AWS::EC2::SecurityGroupIngress").values():
        if ref(rule["Properties"]["GroupId"]) == group_id:
            rules.append(rule["Properties"])
    return rules


def _egress(template: Template, group_id: str) -> set[tuple[str, str, int, int]]:
    """(destination CIDR or security group, protocol, from port, to port) of every egress rule:
    inline ones and separate resources."""
    group = template.to_json()["Resources"][group_id]
    rules: list[dict[str, Any]] = list(group["Properties"].get("SecurityGroupEgress", []))
    for rule in resources(template, "AWS::EC2::SecurityGroupEgress").values():
        if ref(rule["Properties"]["GroupId"]) == group_id:
            rules.append(rule["Properties"])
    return {
        (
            r["CidrIp"] if "CidrIp" in r else ref(r["DestinationSecurityGroupId"]),
            r["IpProtocol"],
            r["FromPort"],
            r["ToPort"],
        )
        for r in rules
    }


def _groups(template: Template) -> tuple[str, str, str]:
    """The security groups of the load balancer, the tasks and the database."""
    _, alb = only(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    _, service = only(template, "AWS::ECS::Service")
    _, db = only(template, "AWS::RDS::DBInstance")
    vpc_config = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    (alb_sg,) = alb["Properties"]["SecurityGroups"]
    (task_sg,) = vpc_config["SecurityGroups"]
    (db_sg,) = db["Properties"]["VPCSecurityGroups"]
    return ref(alb_sg), ref(task_sg), ref(db_sg)


def _default_route(template: Template, subnet_id: str) -> dict[str, Any]:
    associations = resources(template, "AWS::EC2::SubnetRouteTableAssociation").values()
    (table,) = [
        ref(a["Properties"]["RouteTableId"])
        for a in associations
        if ref(a["Properties"]["SubnetId"]) == subnet_id
    ]
    routes = [
        r["Properties"]
        for r in resources(template, "AWS::EC2::Route").values()
        if ref(r["Properties"]["RouteTableId"]) == table
        and r["Properties"].get("DestinationCidrBlock") == ANYWHERE
    ]
    return routes[0] if routes else {}


# Network


def test_stacks_are_named_per_environment(app: Any) -> None:
    assert [s.node.id for s in app.node.children if hasattr(s, "template_options")] == [
        "Bookshelf-dev",
        "Bookshelf-prod",
    ]


def test_vpc_spans_two_azs_with_public_and_isolated_subnets(dev: Template) -> None:
    dev.resource_count_is("AWS::EC2::VPC", 1)
    subnets = resources(dev, "AWS::EC2::Subnet").values()
    public = [s for s in subnets if s["Properties"]["MapPublicIpOnLaunch"]]
    assert len(subnets) == 4
    assert len(public) == 2


def test_dev_has_no_nat_gateway(dev: Template) -> None:
    dev.resource_count_is("AWS::EC2::NatGateway", 0)


def test_prod_reaches_aws_through_nat_from_private_subnets(prod: Template) -> None:
    prod.resource_count_is("AWS::EC2::NatGateway", PROD.nat_gateways)
    assert len(resources(prod, "AWS::EC2::Subnet")) == 6


def test_prod_tasks_use_the_nat_gateway_in_their_own_az(prod: Template) -> None:
    """An AZ outage then takes down only that AZ's tasks, not the other AZ's way out."""
    assert PROD.nat_gateways == 2
    subnets = resources(prod, "AWS::EC2::Subnet")
    nat_az = {
        nat_id: subnets[ref(nat["Properties"]["SubnetId"])]["Properties"]["AvailabilityZone"]
        for nat_id, nat in resources(prod, "AWS::EC2::NatGateway").items()
    }
    _, service = only(prod, "AWS::ECS::Service")
    task_subnets = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
    used = []
    for subnet in task_subnets:
        nat = ref(_default_route(prod, ref(subnet))["NatGatewayId"])
        assert nat_az[nat] == subnets[ref(subnet)]["Properties"]["AvailabilityZone"]
        used.append(nat)
    assert sorted(used) == sorted(nat_az), "each NAT gateway serves one AZ's tasks"


@pytest.mark.parametrize(
    ("name", "route_target", "public_ip"),
    [("dev", "GatewayId", "ENABLED"), ("prod", "NatGatewayId", "DISABLED")],
)
def test_tasks_have_a_route_to_pull_the_image_and_read_secrets(
    request: pytest.FixtureRequest, name: str, route_target: str, public_ip: str
) -> None:
    template: Template = request.getfixturevalue(name)
    _, service = only(template, "AWS::ECS::Service")
    vpc_config = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert vpc_config["AssignPublicIp"] == public_ip
    assert len(vpc_config["Subnets"]) == 2
    for subnet in vpc_config["Subnets"]:
        assert route_target in _default_route(template, ref(subnet))
    _, task_sg, _ = _groups(template)
    egress = template.to_json()["Resources"][task_sg]["Properties"]["SecurityGroupEgress"]
    assert any(
        r.get("CidrIp") == ANYWHERE and (r["FromPort"], r["ToPort"]) == (443, 443) for r in egress
    )


# Database


def test_database_is_private_encrypted_postgres_in_isolated_subnets(template: Template) -> None:
    _, db = only(template, "AWS::RDS::DBInstance")
    props = db["Properties"]
    assert props["Engine"] == "postgres"
    assert props["EngineVersion"].split(".")[0] in {"16", "17"}
    assert props["PubliclyAccessible"] is False
    assert props["StorageEncrypted"] is True
    assert int(props["AllocatedStorage"]) == 20
    assert props["BackupRetentionPeriod"] >= 1
    _, subnet_group = only(template, "AWS::RDS::DBSubnetGroup")
    for subnet in subnet_group["Properties"]["SubnetIds"]:
        subnet_props = template.to_json()["Resources"][ref(subnet)]["Properties"]
        assert subnet_props["MapPublicIpOnLaunch"] is False
        assert _default_route(template, ref(subnet)) == {}


def test_database_requires_tls(template: Template) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBParameterGroup", {"Parameters": {"rds.force_ssl": "1"}}
    )


def test_database_password_is_generated_without_characters_rds_rejects(
    template: Template,
) -> None:
    secrets = resources(template, "AWS::SecretsManager::Secret").values()
    (db_secret,) = [
        s for s in secrets if "SecretStringTemplate" in s["Properties"]["GenerateSecretString"]
    ]
    excluded = db_secret["Properties"]["GenerateSecretString"]["ExcludeCharacters"]
    assert excluded == PASSWORD_EXCLUDED_CHARACTERS
    assert set('/@" ') <= set(excluded)
    template.resource_count_is("AWS::SecretsManager::SecretTargetAttachment", 1)


def test_dev_database_is_single_az_and_destroyed_with_the_stack(dev: Template) -> None:
    dev.has_resource(
        "AWS::RDS::DBInstance",
        {
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": Match.object_like(
                {
                    "MultiAZ": False,
                    "DeletionProtection": False,
                    "DeleteAutomatedBackups": True,
                    "BackupRetentionPeriod": DEV.db_backup_retention_days,
                }
            ),
        },
    )


def test_prod_database_is_multi_az_protected_and_snapshotted(prod: Template) -> None:
    prod.has_resource(
        "AWS::RDS::DBInstance",
        {
            "DeletionPolicy": "Snapshot",
            "UpdateReplacePolicy": "Snapshot",
            "Properties": Match.object_like(
                {
                    "MultiAZ": True,
                    "DeletionProtection": True,
                    "DeleteAutomatedBackups": False,
                    "BackupRetentionPeriod": PROD.db_backup_retention_days,
                }
            ),
        },
    )
    assert PROD.db_backup_retention_days > DEV.db_backup_retention_days


@pytest.mark.parametrize(
    ("name", "policy"),
    [("dev", ("Delete", "Delete")), ("prod", ("RetainExceptOnCreate", "Retain"))],
)
def test_database_secret_outlives_the_stack_only_when_the_database_does(
    request: pytest.FixtureRequest, name: str, policy: tuple[str, str]
) -> None:
    """A restored snapshot keeps its master password, which only this secret holds."""
    template: Template = request.getfixturevalue(name)
    _, attachment = only(template, "AWS::SecretsManager::SecretTargetAttachment")
    db_secret = template.to_json()["Resources"][ref(attachment["Properties"]["SecretId"])]
    # RetainExceptOnCreate: a first deploy that rolls back leaves nothing behind to collide.
    assert (db_secret["DeletionPolicy"], db_secret["UpdateReplacePolicy"]) == policy


# Security groups


def test_load_balancer_admits_the_world_on_http_only(template: Template) -> None:
    alb_sg, _, _ = _groups(template)
    rules = _ingress(template, alb_sg)
    assert [(r["CidrIp"], r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules] == [
        (ANYWHERE, "tcp", 80, 80)
    ]


def test_tasks_admit_only_the_load_balancer_on_the_app_port(template: Template) -> None:
    alb_sg, task_sg, _ = _groups(template)
    (rule,) = _ingress(template, task_sg)
    assert ref(rule["SourceSecurityGroupId"]) == alb_sg
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == (
        "tcp",
        contract.CONTAINER_PORT,
        contract.CONTAINER_PORT,
    )


def test_database_admits_only_the_tasks_on_5432(template: Template) -> None:
    _, task_sg, db_sg = _groups(template)
    (rule,) = _ingress(template, db_sg)
    assert ref(rule["SourceSecurityGroupId"]) == task_sg
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 5432, 5432)


def test_load_balancer_sends_only_to_the_tasks_on_the_app_port(template: Template) -> None:
    """Its one egress rule is a separate resource. Adding it makes CloudFormation drop the
    allow-all rule EC2 gives a new group (CDK relies on that: aws/aws-cdk#987)."""
    alb_sg, task_sg, _ = _groups(template)
    assert "SecurityGroupEgress" not in template.to_json()["Resources"][alb_sg]["Properties"]
    assert _egress(template, alb_sg) == {
        (task_sg, "tcp", contract.CONTAINER_PORT, contract.CONTAINER_PORT)
    }


def test_tasks_send_only_https_to_aws_apis_and_5432_to_the_database(template: Template) -> None:
    _, task_sg, db_sg = _groups(template)
    assert _egress(template, task_sg) == {
        (ANYWHERE, "tcp", 443, 443),
        (db_sg, "tcp", 5432, 5432),
    }


def test_database_sends_nothing(template: Template) -> None:
    """CDK's placeholder rule matches no traffic; without it EC2 would allow all egress."""
    _, _, db_sg = _groups(template)
    assert _egress(template, db_sg) == {("255.255.255.255/32", "icmp", 252, 86)}


# Service


def test_task_env_and_secrets_match_the_runtime_contract(template: Template) -> None:
    app = container(template)
    assert tuple(e["Name"] for e in app["Environment"]) == contract.TASK_ENVIRONMENT
    assert tuple(s["Name"] for s in app["Secrets"]) == contract.TASK_SECRETS


def test_credentials_are_injected_as_secrets_never_plaintext(template: Template) -> None:
    app = container(template)
    # The DB secret is read through its attachment, which adds host, port and dbname to it.
    attachments = resources(template, "AWS::SecretsManager::SecretTargetAttachment")
    secret_of = {id_: ref(a["Properties"]["SecretId"]) for id_, a in attachments.items()}
    injected = {secret_of.get(ref(s["ValueFrom"]), ref(s["ValueFrom"])) for s in app["Secrets"]}
    assert injected == set(resources(template, "AWS::SecretsManager::Secret"))
    env = {e["Name"]: e["Value"] for e in app["Environment"]}
    assert env[contract.DB_SSLMODE] == "require"
    assert env[contract.MIGRATE_ON_START] == "true"
    assert env[contract.PORT] == str(contract.CONTAINER_PORT)
    assert "password" not in str(env).lower()


def test_workers_match_the_task_vcpu(dev: Template, prod: Template) -> None:
    for template, config in ((dev, DEV), (prod, PROD)):
        env = {e["Name"]: e["Value"] for e in container(template)["Environment"]}
        assert env[contract.WORKERS] == str(max(1, config.task_cpu // 1024))


def test_container_checks_health_and_stops_after_the_drain(template: Template) -> None:
    app = container(template)
    assert app["HealthCheck"]["Command"] == ["CMD", *contract.HEALTH_CHECK_COMMAND]
    assert app["StopTimeout"] == contract.STOP_TIMEOUT_SECONDS > contract.DRAIN_SECONDS
    assert app["PortMappings"] == [{"ContainerPort": contract.CONTAINER_PORT, "Protocol": "tcp"}]
    assert app["LogConfiguration"]["LogDriver"] == "awslogs"


def test_tasks_run_on_arm64_fargate(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "RequiresCompatibilities": ["FARGATE"],
            "RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"},
        },
    )


def test_load_balancer_checks_live_health_and_drains(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "HealthCheckPath": contract.LIVE_PATH,
            "TargetType": "ip",
            "TargetGroupAttributes": Match.array_with(
                [
                    {
                        "Key": "deregistration_delay.timeout_seconds",
                        "Value": str(contract.DRAIN_SECONDS),
                    }
                ]
            ),
        },
    )


def test_load_balancer_closes_idle_connections_before_the_app(template: Template) -> None:
    _, alb = only(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert int(attributes["idle_timeout.timeout_seconds"]) < contract.KEEP_ALIVE_SECONDS


@pytest.mark.parametrize(("name", "config"), [("dev", DEV), ("prod", PROD)])
def test_service_rolls_back_failed_deployments(
    request: pytest.FixtureRequest, name: str, config: Any
) -> None:
    template: Template = request.getfixturevalue(name)
    template.has_resource_properties(
        "AWS::ECS::Service",
        {
            "LaunchType": "FARGATE",
            "LoadBalancers": [Match.object_like({"ContainerPort": contract.CONTAINER_PORT})],
            "DesiredCount": config.desired_count,
            "HealthCheckGracePeriodSeconds": Match.any_value(),
            "DeploymentConfiguration": Match.object_like(
                {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}
            ),
        },
    )


def test_prod_runs_two_tasks_over_two_azs(prod: Template) -> None:
    assert PROD.desired_count == 2
    _, service = only(prod, "AWS::ECS::Service")
    subnets = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
    resources_ = prod.to_json()["Resources"]
    azs = {str(resources_[ref(s)]["Properties"]["AvailabilityZone"]) for s in subnets}
    assert len(azs) == 2


@pytest.mark.parametrize(("name", "config"), [("dev", DEV), ("prod", PROD)])
def test_service_scales_on_cpu_and_requests(
    request: pytest.FixtureRequest, name: str, config: Any
) -> None:
    template: Template = request.getfixturevalue(name)
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"MinCapacity": config.desired_count, "MaxCapacity": config.max_count},
    )
    metrics = {
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"][
            "PredefinedMetricSpecification"
        ]["PredefinedMetricType"]
        for p in resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    assert metrics == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}


@pytest.mark.parametrize(
    ("name", "days", "policy"), [("dev", 7, "Delete"), ("prod", 30, "RetainExceptOnCreate")]
)
def test_logs_have_a_retention(
    request: pytest.FixtureRequest, name: str, days: int, policy: str
) -> None:
    """The app's log group and the database's, both in the stack."""
    template: Template = request.getfixturevalue(name)
    groups = resources(template, "AWS::Logs::LogGroup").values()
    assert len(groups) == 2
    for group in groups:
        assert group["DeletionPolicy"] == policy
        assert group["Properties"]["RetentionInDays"] == days


def test_database_logs_go_to_a_group_the_stack_creates_first(template: Template) -> None:
    """RDS would otherwise create /aws/rds/instance/<id>/postgresql itself, kept forever."""
    db_id, db = only(template, "AWS::RDS::DBInstance")
    identifier = db["Properties"]["DBInstanceIdentifier"]
    groups = resources(template, "AWS::Logs::LogGroup")
    names = {g["Properties"].get("LogGroupName"): id_ for id_, g in groups.items()}
    (export,) = db["Properties"]["EnableCloudwatchLogsExports"]
    group_id = names[f"/aws/rds/instance/{identifier}/{export}"]
    assert group_id in db["DependsOn"]


def test_outputs_name_the_url_secrets_and_logs(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    names = {name for name in outputs if not name.startswith("ServiceFargate")}
    assert names == {"ServiceUrl", "DbSecretName", "ApiKeysSecretName", "LogGroupName"}
    assert "http://" in str(outputs["ServiceUrl"]["Value"])


# HTTPS


def test_http_only_without_a_domain(template: Template) -> None:
    template.resource_count_is("AWS::CertificateManager::Certificate", 0)
    template.resource_count_is("AWS::ElasticLoadBalancingV2::Listener", 1)
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener", {"Protocol": "HTTP", "Port": 80}
    )


def test_http_only_stack_warns_at_synth(dev_stack: Any) -> None:
    from aws_cdk.assertions import Annotations

    # has_warning, not find_warning: the latter hands jsii MetadataEntry structs back to
    # Python, which fails intermittently ("Unknown interface ... MetadataEntry").
    Annotations.from_stack(dev_stack).has_warning("*", Match.string_like_regexp("plain HTTP"))


def test_https_with_a_domain_redirects_http(https: Template) -> None:
    https.resource_count_is("AWS::CertificateManager::Certificate", 1)
    https.has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {"DomainName": "books.example.com", "ValidationMethod": "DNS"},
    )
    https.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener", {"Protocol": "HTTPS", "Port": 443}
    )
    https.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Protocol": "HTTP",
            "Port": 80,
            "DefaultActions": [
                Match.object_like(
                    {"Type": "redirect", "RedirectConfig": Match.object_like({"Port": "443"})}
                )
            ],
        },
    )
    https.has_resource_properties("AWS::Route53::RecordSet", {"Type": "A"})
    alb_sg, _, _ = _groups(https)
    ports = sorted(r["FromPort"] for r in _ingress(https, alb_sg))
    assert ports == [80, 443]


def test_a_domain_given_for_prod_leaves_dev_on_http(https_dev: Template) -> None:
    https_dev.resource_count_is("AWS::CertificateManager::Certificate", 0)
    https_dev.resource_count_is("AWS::Route53::RecordSet", 0)


def _build_with(context: dict[str, str]) -> None:
    build_app(App(context=context), image=ecs.ContainerImage.from_registry("example/image"))


def test_an_unprefixed_domain_is_refused_rather_than_put_on_both_stacks() -> None:
    with pytest.raises(ValueError, match="per environment"):
        _build_with(
            {
                "domain": "books.example.com",
                "hosted_zone_id": "Z1",
                "hosted_zone_name": "example.com",
            }
        )


def test_a_partial_domain_names_the_missing_keys() -> None:
    with pytest.raises(ValueError, match="prod.hosted_zone_name"):
        _build_with({"prod.domain": "books.example.com", "prod.hosted_zone_id": "Z1"})


def test_turning_nat_on_keeps_the_public_and_isolated_subnets_where_they_are(
    dev: Template, prod: Template
) -> None:
    """CloudFormation cannot replace a subnet with one overlapping it: ranges must not move."""

    def ranges(template: Template, tier: str) -> set[str]:
        return {
            subnet["Properties"]["CidrBlock"]
            for subnet in resources(template, "AWS::EC2::Subnet").values()
            if {"Key": "aws-cdk:subnet-name", "Value": tier} in subnet["Properties"]["Tags"]
        }

    for tier in ("public", "isolated"):
        assert ranges(dev, tier) == ranges(prod, tier)
        assert len(ranges(dev, tier)) == 2
    assert ranges(dev, "private") == set()
    assert len(ranges(prod, "private")) == 2
