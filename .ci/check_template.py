"""Checks template.yaml for what cfn-lint cannot see in a SAM template.

cfn-lint validates the structure of AWS::Serverless::* resources but not the values
inside them (a bad Runtime or AuthType passes), so this script asserts the values the
ingest function depends on, then expands the template with the SAM transform offline and
lints the result as plain CloudFormation, where those values are checked too.

Usage: check_template.py TEMPLATE INGEST_CARGO_TOML
"""

import copy
import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml
from samtranslator.translator.transform import transform

FAILURES = []


def check(condition, message):
    """Records a failed expectation; all of them are reported at the end."""
    if not condition:
        FAILURES.append(message)


class TemplateLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation short tags (!Ref, !Sub, ...) into the
    JSON form ({"Ref": ...}, {"Fn::Sub": ...}) that the SAM transform expects."""


def _intrinsic(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


TemplateLoader.add_multi_constructor("!", _intrinsic)


def ref(name):
    return {"Ref": name}


def effective(template, function, key):
    """A function property, falling back to Globals.Function as SAM does."""
    properties = function.get("Properties", {})
    if key in properties:
        return properties[key]
    return template.get("Globals", {}).get("Function", {}).get(key)


def statements(role):
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            # A conditional statement: {"Fn::If": [condition, statement, AWS::NoValue]}.
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]
            yield statement


def as_list(value):
    return value if isinstance(value, list) else [value]


def check_ingest(template, resources, binary):
    functions = {
        name: resource
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    check(list(functions) == ["IngestFunction"], f"one function, IngestFunction: {list(functions)}")
    function = functions.get("IngestFunction")
    if function is None:
        return
    metadata = function.get("Metadata", {})
    properties = function["Properties"]
    check(effective(template, function, "Runtime") == "provided.al2023", "Runtime provided.al2023")
    check(effective(template, function, "Architectures") == ["arm64"], "Architectures [arm64]")
    check(effective(template, function, "Handler") == "bootstrap", "Handler bootstrap")
    check(metadata.get("BuildMethod") == "rust-cargolambda", "BuildMethod rust-cargolambda")
    check(
        metadata.get("BuildProperties", {}).get("Binary") == binary,
        f"BuildProperties.Binary is the ingest binary {binary!r}",
    )
    check(properties.get("CodeUri") == ".", "CodeUri is the workspace root")
    check(ref("SecretsExtensionLayerArn") in properties.get("Layers", []), "extension layer")
    vpc = properties.get("VpcConfig", {})
    check(vpc.get("SubnetIds") == ref("SubnetIds"), "VpcConfig.SubnetIds")
    check(vpc.get("SecurityGroupIds") == ref("SecurityGroupIds"), "VpcConfig.SecurityGroupIds")

    variables = properties.get("Environment", {}).get("Variables", {})
    check(
        variables.get("PUSHGATE_REDIS_SECRET_ARN") == ref("RedisSecretArn"),
        "PUSHGATE_REDIS_SECRET_ARN is the secret's ARN",
    )
    check(
        variables.get("PUSHGATE_AUTH") == ref("IngestAuth"),
        "PUSHGATE_AUTH comes from the IngestAuth parameter",
    )
    for plain in ("PUSHGATE_REDIS_URL", "REDIS_URL", "PUSHGATE_API_KEYS", "PUSHGATE_PATH_SECRET"):
        check(plain not in variables, f"{plain} is not in the environment (secret by ARN)")
    check(
        "{{resolve:" not in json.dumps(template),
        "no dynamic reference: it would store the resolved secret in plain text",
    )
    check(
        variables.get("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH") == "true",
        "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH is \"true\"",
    )

    events = properties.get("Events", {})
    check(
        [event.get("Type") for event in events.values()] == ["HttpApi"],
        "one HttpApi event",
    )
    apis = [r for r in resources.values() if r["Type"] == "AWS::Serverless::HttpApi"]
    for api in apis:
        stage = api.get("Properties", {}).get("StageName", "$default")
        check(stage == "$default", f"the HTTP API serves the $default stage, not {stage!r}")

    parameters = template["Parameters"]
    url_auth = set(parameters["FunctionUrl"]["AllowedValues"]) - {"disabled"}
    check(url_auth <= {"NONE", "AWS_IAM"}, f"function URL auth types: {url_auth}")

    role_name = properties.get("Role", {}).get("Fn::GetAtt", [None])[0]
    role = resources.get(role_name)
    check(role is not None, "the function has its own role")
    if role is not None:
        reads = [s for s in statements(role) if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
        check(
            [s["Resource"] for s in reads] == [ref("RedisSecretArn")],
            "the function reads exactly the Redis secret",
        )


def check_dispatcher(template, resources):
    task = resources.get("DispatcherTaskDefinition", {}).get("Properties", {})
    containers = task.get("ContainerDefinitions", [])
    check(len(containers) == 1, "one dispatcher container")
    if not containers:
        return
    container = containers[0]
    stop = container.get("StopTimeout")
    check(stop == ref("DispatcherStopTimeoutSeconds"), "StopTimeout is a parameter")
    stop_parameter = template["Parameters"]["DispatcherStopTimeoutSeconds"]
    # The dispatcher's default shutdown_deadline_ms is 10 s, plus one read_block_ms (1 s).
    check(
        stop_parameter["Default"] > 11 and stop_parameter["MinValue"] > 11,
        "the stop timeout leaves room for the 10 s drain",
    )
    secrets = {s["Name"]: s["ValueFrom"] for s in container.get("Secrets", [])}
    check(secrets.get("PUSHGATE_REDIS_SECRET") == ref("RedisSecretArn"), "Redis secret injected")
    check(
        secrets.get("PUSHGATE_DISPATCHER_FILES") == ref("DispatcherFilesSecretArn"),
        "dispatcher files injected",
    )
    environment = {e["Name"] for e in container.get("Environment", [])}
    check(not environment & set(secrets), "no secret is also a plain environment value")
    check(task.get("RequiresCompatibilities") == ["FARGATE"], "Fargate task")


def check_account_wide(resources):
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Logs::LogGroup":
            retention = resource["Properties"].get("RetentionInDays")
            check(retention == ref("LogRetentionDays"), f"{name} keeps logs LogRetentionDays")
        if resource["Type"] == "AWS::IAM::Role":
            for statement in statements(resource):
                actions = as_list(statement["Action"])
                check(
                    not any(a == "*" or a.endswith(":*") for a in actions),
                    f"{name}: no wildcard action in {actions}",
                )
                if statement["Resource"] == "*":
                    allowed = all(a.startswith("ec2:") or a == "ecr:GetAuthorizationToken" for a in actions)
                    check(allowed, f"{name}: Resource * only where AWS requires it: {actions}")


def lint_transformed(template, region):
    """Expands the SAM resources offline and lints the plain CloudFormation result."""

    class NoManagedPolicies:
        def load(self):
            return {}

    # The transform wants packaged code, as `sam package` leaves it; the bucket is made up.
    packaged = copy.deepcopy(template)
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://pushgate-template-check/ingest.zip"
    expanded = transform(packaged, {"AWS::Region": region}, NoManagedPolicies())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "expanded.json"
        path.write_text(json.dumps(expanded, indent=1))
        result = subprocess.run(
            ["cfn-lint", "--regions", region, "--", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    check(result.returncode == 0, f"cfn-lint on the expanded template:\n{result.stdout}{result.stderr}")
    function = expanded["Resources"].get("IngestFunction", {})
    check(function.get("Type") == "AWS::Lambda::Function", "the transform made IngestFunction")


def main():
    template_path, cargo_path = sys.argv[1:3]
    template = yaml.load(Path(template_path).read_text(), Loader=TemplateLoader)
    cargo = tomllib.loads(Path(cargo_path).read_text())
    binaries = [b["name"] for b in cargo.get("bin", [])]
    check(binaries == ["ingest"], f"functions/ingest has one binary, ingest: {binaries}")

    check(template.get("Transform") == "AWS::Serverless-2016-10-31", "SAM transform")
    resources = template["Resources"]
    check_ingest(template, resources, binaries[0] if binaries else None)
    check_dispatcher(template, resources)
    check_account_wide(resources)
    lint_transformed(template, "eu-west-1")

    if FAILURES:
        print(f"{len(FAILURES)} template check(s) failed:", file=sys.stderr)
        for failure in FAILURES:
            print(f"  - {failure}", file=sys.stderr)
        sys.exit(1)
    print("template checks passed: values inside the SAM resources and the expanded template")


if __name__ == "__main__":
    main()
