"""The alarm topic: one per region that has alarms, on a CMK only CloudWatch and RDS events may use and only
for this topic, with the stack file's subscribers; prod must name who is paged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.alarm_topic import alarm_key_policy, alarm_topic_policy
from config.errors import ConfigError
from config.loader import load_stack
from edumatrix_db.offline.engine import Planner, RecordedResource, Recording
from tests.region_support import copy_stacks, data_key, edit_stack

TOPIC = "aws:sns/topic:Topic"
KEY = "aws:kms/key:Key"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:edumatrix-prod-alarms"


def topic_key(recording: Recording) -> RecordedResource:
    (key,) = [k for k in recording.of_type(KEY) if "edumatrix:monitoring:AlarmTopic$" in k.urn]
    return key


def test_prod_has_one_topic_under_its_own_key_in_the_stacks_region(prod: Recording) -> None:
    topic = prod.one(TOPIC)
    assert topic.props["arn"] == TOPIC_ARN
    assert topic.inputs["kmsMasterKeyId"] == topic_key(prod).props["arn"]
    assert topic.inputs["kmsMasterKeyId"] != prod.outputs["kmsKeyArn"]  # not the data key
    assert topic.inputs["region"] == "us-east-1"


def test_the_key_lets_cloudwatch_and_rds_events_encrypt_for_this_topic_only(prod: Recording) -> None:
    statements = json.loads(topic_key(prod).inputs["policy"])["Statement"]
    services = {s["Principal"].get("Service"): s for s in statements if "Service" in s["Principal"]}
    assert set(services) == {"cloudwatch.amazonaws.com", "events.rds.amazonaws.com"}
    for statement in services.values():
        assert set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        assert statement["Condition"]["StringEquals"] == {
            "kms:EncryptionContext:aws:sns:topicArn": TOPIC_ARN, "aws:SourceAccount": "123456789012"}
    assert topic_key(prod).inputs["enableKeyRotation"] is True


def test_the_topic_policy_admits_only_this_accounts_alarms_and_event_subscriptions() -> None:
    statements = json.loads(alarm_topic_policy("123456789012", "aws", "us-east-1", TOPIC_ARN))["Statement"]
    sources = {s["Principal"]["Service"]: s["Condition"]["ArnLike"]["aws:SourceArn"] for s in statements}
    assert sources == {"cloudwatch.amazonaws.com": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*",
                       "events.rds.amazonaws.com": "arn:aws:rds:us-east-1:123456789012:es:*"}
    assert {s["Action"] for s in statements} == {"sns:Publish"}
    assert {s["Resource"] for s in statements} == {TOPIC_ARN}


def test_the_key_policy_never_grants_cloudwatch_more_than_the_topic_needs() -> None:
    text = alarm_key_policy("123456789012", "aws", TOPIC_ARN)
    statements = json.loads(text)["Statement"]
    cloudwatch = [s for s in statements if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"]
    assert len(cloudwatch) == 1
    assert "kms:Encrypt" not in cloudwatch[0]["Action"]


def test_the_stack_files_subscribers_are_subscribed(prod: Recording) -> None:
    (subscription,) = prod.of_type(SUBSCRIPTION)
    assert subscription.inputs["protocol"] == "email"
    assert subscription.inputs["endpoint"] == "dba-oncall@edumatrix.example"
    assert subscription.inputs["topic"] == TOPIC_ARN


def test_a_region_stack_pages_a_topic_of_its_own_region() -> None:
    region = Planner().plan("prod-eu-west-1")
    topic = region.one(TOPIC)
    assert topic.props["arn"].startswith("arn:aws:sns:eu-west-1:")
    lag = [a for a in region.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
           if a.inputs.get("metricName") == "ReplicaLag"]
    assert lag
    assert {tuple(a.inputs["alarmActions"]) for a in lag} == {(topic.props["arn"],)}


def test_the_data_key_no_longer_admits_cloudwatch(prod: Recording) -> None:
    assert "cloudwatch.amazonaws.com" not in data_key(prod).inputs["policy"]


def test_prod_without_anyone_to_page_is_a_config_error(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "      - {protocol: email, endpoint: dba-oncall@edumatrix.example}\n", "")
    edit_stack(stacks, "prod", "    subscriptions:\n", "    subscriptions: []\n")
    with pytest.raises(ConfigError, match=r"edumatrix-db:alarms.subscriptions: prod must name who is paged"):
        load_stack("prod", stacks)


def test_dev_may_run_without_subscribers() -> None:
    assert load_stack("dev").alarms.subscriptions == ()


@pytest.mark.parametrize(("protocol", "endpoint"), [
    ("email", "not-an-address"), ("sms", "0151 1234"), ("https", "http://pager.example/hook"),
    ("sqs", "arn:aws:lambda:us-east-1:123456789012:function:f"),
])
def test_an_endpoint_that_does_not_fit_its_protocol_is_a_config_error(tmp_path: Path, protocol: str,
                                                                       endpoint: str) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "{protocol: email, endpoint: dba-oncall@edumatrix.example}",
               f"{{protocol: {protocol}, endpoint: '{endpoint}'}}")
    with pytest.raises(ConfigError, match=r"edumatrix-db:alarms.subscriptions\[0\].endpoint: .*is not"):
        load_stack("prod", stacks)
