"""The network box: a VPC over two AZs with public, (optionally) private and isolated subnets."""

from aws_cdk import aws_ec2 as ec2
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

# 4,096 addresses per subnet: 2 AZs x 3 tiers use 6 of the /16's 16 such blocks.
SUBNET_MASK = 20


class Network(Construct):
    """Public subnets for the load balancer (and the tasks when there is no NAT), isolated
    subnets for the database, and private subnets behind NAT only when `nat_gateways` > 0."""

    def __init__(self, scope: Construct, id: str, *, nat_gateways: int) -> None:
        super().__init__(scope, id)
        # Fixed sizes, private last: turning NAT on or off later adds or removes the private
        # subnets and leaves the public and isolated ones (and the database in them) where
        # they are. With sizes left to CDK, every subnet's range would move, and
        # CloudFormation cannot replace a subnet with one that overlaps it.
        subnets = [
            ec2.SubnetConfiguration(
                name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=SUBNET_MASK
            ),
            ec2.SubnetConfiguration(
                name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=SUBNET_MASK
            ),
        ]
        if nat_gateways:
            subnets.append(
                ec2.SubnetConfiguration(
                    name="private",
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                    cidr_mask=SUBNET_MASK,
                )
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
