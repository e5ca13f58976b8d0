"""policy/tags.py: required tags on taggable AWS resources."""

import pytest

from policy import tags
from tests.policy.fixtures import TAGS, instance, parameter_group, resource, run


def test_resources_with_the_base_tags_pass() -> None:
    assert run([instance(), parameter_group()], policies=tags.POLICIES) == []


@pytest.mark.parametrize("tag", tags.REQUIRED_TAGS)
def test_missing_required_tag_is_reported(tag: str) -> None:
    inst = instance(tags={k: v for k, v in TAGS.items() if k != tag})
    violations = run([inst], policies=tags.POLICIES)
    assert [(v.policy, v.urn) for v in violations] == [("required-tags", inst.urn)]
    assert tag in violations[0].message


def test_untaggable_types_are_not_checked() -> None:
    alias = resource("aws:kms/alias:Alias", "edumatrix-test-kms-alias", {"name": "alias/edumatrix-test-data"})
    assert run([alias], policies=tags.POLICIES) == []


def test_required_tags_follow_policy_config() -> None:
    inst = instance(tags={**TAGS, "cost-center": ""})
    config = {"required-tags": {"requiredTags": ["cost-center"]}}
    assert [v.policy for v in run([inst], config=config, policies=tags.POLICIES)] == ["required-tags"]
