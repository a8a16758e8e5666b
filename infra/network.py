"""The network box: a VPC over two AZs with public, (optionally) private and isolated subnets."""

from aws_cdk import aws_ec2 as ec2
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct


class Network(Construct):
    """Public subnets for the load balancer (and the tasks when there is no NAT), isolated
    subnets for the database, and private subnets behind NAT only when `nat_gateways` > 0."""

    def __init__(self, scope: Construct, id: str, *, nat_gateways: int) -> None:
        super().__init__(scope, id)
        subnets = [
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
            ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        ]
        if nat_gateways:
            subnets.insert(
                1,
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
                ),
            )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.0.0.0/16"),
            max_azs=2,
            nat_gateways=nat_gateways,
            subnet_configuration=subnets,
        )
        self.task_subnets = ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
            if nat_gateways
            else ec2.SubnetType.PUBLIC
        )
        NagSuppressions.add_resource_suppressions(
            self.vpc,
            [
                NagPackSuppression(
                    id="AwsSolutions-VPC7",
                    reason="Flow logs are billed per GB; ALB metrics and app logs cover requests.",
                )
            ],
        )
