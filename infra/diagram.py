"""Draw a synthesized stack as a Mermaid flowchart, so the README diagram cannot drift.

    python -m infra.diagram cdk.out/Bookshelf-dev.template.json            # print it
    python -m infra.diagram cdk.out/Bookshelf-dev.template.json --update README.md

Everything comes from the template: boxes from resources, arrows from security-group rules,
ECS secrets and the log configuration. `--update` rewrites the block between the
`<!-- diagram:start -->` and `<!-- diagram:end -->` markers of each file given.
"""

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

Resources = dict[str, dict[str, Any]]
START, END = "<!-- diagram:start -->", "<!-- diagram:end -->"
SUBNET_TYPE_TAG = "aws-cdk:subnet-type"


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def _of_type(resources: Resources, type_: str) -> Resources:
    return {k: v for k, v in resources.items() if v["Type"] == type_}


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = resource.get("Properties", {})
    return props


SHORT_NAMES = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "alb",
    "AWS::ECS::Service": "service",
    "AWS::RDS::DBInstance": "db",
    "AWS::SecretsManager::Secret": "secret",
    "AWS::Logs::LogGroup": "logs",
    "AWS::CertificateManager::Certificate": "cert",
}


class _Names:
    """Short, stable Mermaid ids: the kind of box and a counter (logical ids are hashed)."""

    def __init__(self, resources: Resources) -> None:
        self._names: dict[str, str] = {}
        for type_, short in SHORT_NAMES.items():
            for n, logical_id in enumerate(sorted(_of_type(resources, type_)), start=1):
                self._names[logical_id] = short if n == 1 else f"{short}{n}"

    def __call__(self, logical_id: str) -> str:
        return self._names.get(logical_id, re.sub(r"\W", "_", logical_id))


def _subnet_types(resources: Resources) -> dict[str, str]:
    """Subnet logical id → Public / Private / Isolated, from the tags CDK puts on subnets."""
    types = {}
    for subnet_id, subnet in _of_type(resources, "AWS::EC2::Subnet").items():
        tags = {t["Key"]: t["Value"] for t in _props(subnet).get("Tags", [])}
        types[subnet_id] = tags.get(SUBNET_TYPE_TAG, "Public")
    return types


def _boxes(resources: Resources) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Labels of the boxes, which subnet tier each sits in, and each box's security groups."""
    labels: dict[str, str] = {}
    tiers: dict[str, str] = {}
    owners: dict[str, str] = {}
    subnet_types = _subnet_types(resources)
    for alb_id, alb in _of_type(resources, "AWS::ElasticLoadBalancingV2::LoadBalancer").items():
        listeners = sorted(
            f"{_props(li)['Protocol']}:{_props(li)['Port']}"
            for li in _of_type(resources, "AWS::ElasticLoadBalancingV2::Listener").values()
            if _ref(_props(li)["LoadBalancerArn"]) == alb_id
        )
        labels[alb_id] = f"Application Load Balancer<br/>{' '.join(listeners)}"
        tiers[alb_id] = "Public"
        owners.update({str(_ref(sg)): alb_id for sg in _props(alb)["SecurityGroups"]})
    for svc_id, svc in _of_type(resources, "AWS::ECS::Service").items():
        vpc = _props(svc)["NetworkConfiguration"]["AwsvpcConfiguration"]
        task = resources[str(_ref(_props(svc)["TaskDefinition"]))]
        platform = _props(task).get("RuntimePlatform", {}).get("CpuArchitecture", "X86_64")
        labels[svc_id] = (
            f"ECS Fargate service<br/>{_props(svc).get('DesiredCount', 1)} task(s), "
            f"{_props(task)['Cpu']} CPU / {_props(task)['Memory']} MiB, {platform}"
            f"<br/>public IP: {vpc.get('AssignPublicIp', 'DISABLED')}"
        )
        tiers[svc_id] = subnet_types.get(str(_ref(vpc["Subnets"][0])), "Public")
        owners.update({str(_ref(sg)): svc_id for sg in vpc["SecurityGroups"]})
    for db_id, db in _of_type(resources, "AWS::RDS::DBInstance").items():
        p = _props(db)
        labels[db_id] = (
            f"RDS {p['Engine']} {p['EngineVersion']}<br/>{p['DBInstanceClass']}, "
            f"{'Multi-AZ' if p.get('MultiAZ') else 'single AZ'}, encrypted"
        )
        tiers[db_id] = "Isolated"
        owners.update({str(_ref(sg)): db_id for sg in p["VPCSecurityGroups"]})
    return labels, tiers, owners


def _rules(resources: Resources) -> list[tuple[str | None, str, str]]:
    """(source SG or None for the internet, destination SG, port) for every ingress rule."""
    rules: list[tuple[str | None, str, str]] = []
    for sg_id, sg in _of_type(resources, "AWS::EC2::SecurityGroup").items():
        for rule in _props(sg).get("SecurityGroupIngress", []):
            source = _ref(rule.get("SourceSecurityGroupId"))
            rules.append((source, sg_id, str(rule.get("FromPort"))))
    for rule in _of_type(resources, "AWS::EC2::SecurityGroupIngress").values():
        p = _props(rule)
        rules.append(
            (_ref(p.get("SourceSecurityGroupId")), str(_ref(p["GroupId"])), str(p["FromPort"]))
        )
    return rules


def _side_arrows(resources: Resources, _node_id: _Names) -> list[str]:
    """The service's secrets and log group, and the NAT gateways if any."""
    lines: list[str] = []
    attachments = {
        k: str(_ref(_props(v)["SecretId"]))
        for k, v in _of_type(resources, "AWS::SecretsManager::SecretTargetAttachment").items()
    }
    for svc_id, svc in _of_type(resources, "AWS::ECS::Service").items():
        task = resources[str(_ref(_props(svc)["TaskDefinition"]))]
        for container in _props(task)["ContainerDefinitions"]:
            for secret in container.get("Secrets", []):
                target = str(_ref(secret["ValueFrom"]))
                target = attachments.get(target, target)
                lines.append(f'  {_node_id(target)}[("Secrets Manager<br/>{secret["Name"]}")]')
                lines.append(f"  {_node_id(svc_id)} -. reads at start .-> {_node_id(target)}")
            log_group = _ref(
                container.get("LogConfiguration", {}).get("Options", {}).get("awslogs-group")
            )
            if log_group:
                days = _props(resources[log_group]).get("RetentionInDays", "∞")
                lines.append(f'  {_node_id(log_group)}[("CloudWatch Logs<br/>{days} days")]')
                lines.append(f"  {_node_id(svc_id)} -. logs .-> {_node_id(log_group)}")
    lines += _database_log_arrows(resources, _node_id)
    nats = _of_type(resources, "AWS::EC2::NatGateway")
    if nats:
        lines.append(f'  nat["NAT gateway x{len(nats)}"]')
    return lines


def _database_log_arrows(resources: Resources, _node_id: _Names) -> list[str]:
    """RDS exports to a group named after the instance; the template links them by name only."""
    by_name = {
        _props(group).get("LogGroupName"): group_id
        for group_id, group in _of_type(resources, "AWS::Logs::LogGroup").items()
    }
    lines: list[str] = []
    for db_id, db in _of_type(resources, "AWS::RDS::DBInstance").items():
        for export in _props(db).get("EnableCloudwatchLogsExports", []):
            name = f"/aws/rds/instance/{_props(db).get('DBInstanceIdentifier')}/{export}"
            if name in by_name:
                days = _props(resources[by_name[name]]).get("RetentionInDays", "∞")
                lines.append(f'  {_node_id(by_name[name])}[("CloudWatch Logs<br/>{days} days")]')
                lines.append(f"  {_node_id(db_id)} -. {export} log .-> {_node_id(by_name[name])}")
    return lines


def mermaid(template: dict[str, Any]) -> str:
    resources: Resources = template["Resources"]
    _node_id = _Names(resources)
    labels, tiers, owners = _boxes(resources)
    lines = ["flowchart LR", '  internet(("Internet"))']
    for cert_id in _of_type(resources, "AWS::CertificateManager::Certificate"):
        lines.append(f'  {_node_id(cert_id)}["ACM certificate"]')
    azs = len(
        {
            str(_props(s).get("AvailabilityZone"))
            for s in _of_type(resources, "AWS::EC2::Subnet").values()
        }
    )
    lines.append(f'  subgraph vpc["VPC, {azs} AZs"]')
    for tier in ("Public", "Private", "Isolated"):
        members = [box for box, t in tiers.items() if t == tier]
        if not members:
            continue
        lines.append(f'    subgraph {tier.lower()}["{tier} subnets"]')
        lines += [f'      {_node_id(box)}["{labels[box]}"]' for box in members]
        lines.append("    end")
    lines.append("  end")
    for source, dest, port in _rules(resources):
        if dest not in owners:
            continue
        origin = "internet" if source is None else _node_id(owners.get(source, source))
        lines.append(f"  {origin} -- {port} --> {_node_id(owners[dest])}")
    # A rule appears once however many ways CloudFormation spells it.
    lines += [
        line for line in dict.fromkeys(_side_arrows(resources, _node_id)) if line not in lines
    ]
    if _of_type(resources, "AWS::EC2::NatGateway"):
        for svc_id in _of_type(resources, "AWS::ECS::Service"):
            lines.append(f"  {_node_id(svc_id)} -. AWS APIs .-> nat")
    return "\n".join(lines) + "\n"


def update(path: Path, diagram: str) -> None:
    text = path.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{path}: no {START} … {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n```mermaid\n{diagram}```\n{END}{tail}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("template", type=Path, help="a synthesized *.template.json")
    parser.add_argument("--update", type=Path, nargs="*", default=[], help="files with markers")
    args = parser.parse_args(argv)
    diagram = mermaid(json.loads(args.template.read_text()))
    for path in args.update:
        update(path, diagram)
    if not args.update:
        sys.stdout.write(diagram)


if __name__ == "__main__":
    main()
