"""Expand template.yaml with the AWS SAM translator (the aws-sam-translator package that
cfn-lint installs and runs) and print the CloudFormation JSON: what `sam deploy` would create.
template_rollout_test.go reads it to check the wiring SAM generates (aliases, CodeDeploy,
event sources). CodeUri is replaced by an S3 URI, as `sam package` does; nothing is deployed.
Usage: AWS_DEFAULT_REGION=us-east-1 python3 testdata/sam_transform.py template.yaml ['{"Param": "value"}']
(parameter values as CloudFormation hands them to the transform; defaults otherwise)."""
import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no AWS managed policy by name: nothing to look up."""

    def load(self):
        return {}


def main(path, parameters):
    with open(path) as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key"
    json.dump(transform(template, parameters, NoManagedPolicies()), sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
