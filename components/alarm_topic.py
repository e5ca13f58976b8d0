"""The topic every alarm of a region pages (spec 4.B "alerting", 8.A "lag alerts"): an SNS topic encrypted
with its own CMK, the people the stack file names subscribed to it.

Why its own key: an alarm cannot publish to a topic under the AWS-managed `alias/aws/sns` key (its policy
cannot be changed to admit CloudWatch), and the platform's data key should not be usable by CloudWatch. The
key policy lets `cloudwatch.amazonaws.com` (alarms) and `events.rds.amazonaws.com` (RDS event
subscriptions) generate data keys and decrypt only for this topic: the condition
`kms:EncryptionContext:aws:sns:topicArn` (SNS puts the topic's ARN in the encryption context of every
message). The topic's name is fixed (`<prefix>-alarms`), so its ARN is known before it exists and the key
policy can name it. The topic policy admits the same two services only for this account's alarms and event
subscriptions (`aws:SourceAccount`, `aws:SourceArn`). Sources: AWS knowledge center "Why didn't I receive
an SNS notification for my CloudWatch alarm trigger?" (KMS key policy for cloudwatch.amazonaws.com) and the
RDS guide "Granting permissions to publish notifications to an Amazon SNS topic".

Email subscriptions stay "pending confirmation" until the person clicks the link AWS sends; Pulumi cannot
confirm them (docs/monitoring.md says what to do after the first `pulumi up`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from config.settings import Subscription

CLOUDWATCH = "cloudwatch.amazonaws.com"
RDS_EVENTS = "events.rds.amazonaws.com"


@dataclass(frozen=True)
class AlarmTopicArgs:
    topic_name: str
    """The topic's name (its ARN is derived from it before it exists, for the key policy)."""
    subscriptions: Sequence[Subscription] = ()
    region: str | None = None
    """None: the provider's region. Alarms may only notify a topic in their own region."""
    tags: Mapping[str, str] = field(default_factory=dict)


def alarm_key_policy(account_id: str, partition: str, topic_arn: str) -> str:
    """The topic key's policy: the account administers it; CloudWatch alarms and RDS events use it for this
    topic only."""
    publishers = [
        {
            "Sid": f"{sid}EncryptForThisTopicOnly",
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": topic_arn,
                                           "aws:SourceAccount": account_id}},
        }
        for sid, service in (("CloudWatchAlarms", CLOUDWATCH), ("RdsEvents", RDS_EVENTS))
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdministersThroughIam", "Effect": "Allow",
         "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"}, "Action": "kms:*", "Resource": "*"},
        *publishers,
    ]})


def alarm_topic_policy(account_id: str, partition: str, region: str, topic_arn: str) -> str:
    """The topic's policy: this account's alarms and RDS event subscriptions in this region may publish."""
    sources = (("CloudWatchAlarms", CLOUDWATCH, f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:*"),
               ("RdsEventSubscriptions", RDS_EVENTS, f"arn:{partition}:rds:{region}:{account_id}:es:*"))
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": f"{sid}Publish", "Effect": "Allow", "Principal": {"Service": service}, "Action": "sns:Publish",
         "Resource": topic_arn,
         "Condition": {"StringEquals": {"aws:SourceAccount": account_id}, "ArnLike": {"aws:SourceArn": source}}}
        for sid, service, source in sources
    ]})


class AlarmTopic(pulumi.ComponentResource):
    """`edumatrix:monitoring:AlarmTopic`: a CMK, the topic under it, its policy and its subscriptions."""

    arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AlarmTopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:monitoring:AlarmTopic", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        region = (pulumi.Output.from_input(args.region) if args.region
                  else aws.get_region_output(opts=invoke).region)
        topic_arn = pulumi.Output.concat("arn:", partition, ":sns:", region, ":", account, ":", args.topic_name)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"SNS topic {args.topic_name}: alarm and RDS event notifications",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(account, partition, topic_arn).apply(lambda v: alarm_key_policy(*v)),
            region=args.region,
            tags=tags,
            opts=child,
        )
        topic = aws.sns.Topic(
            f"{name}-topic",
            name=args.topic_name,
            kms_master_key_id=key.arn,
            region=args.region,
            tags=tags,
            opts=child,
        )
        aws.sns.TopicPolicy(
            f"{name}-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(account, partition, region, topic.arn).apply(lambda v: alarm_topic_policy(*v)),
            region=args.region,
            opts=child,
        )
        for index, subscription in enumerate(args.subscriptions, start=1):
            aws.sns.TopicSubscription(
                f"{name}-{subscription.protocol}-{index}",
                topic=topic.arn,
                protocol=subscription.protocol,
                endpoint=subscription.endpoint,
                region=args.region,
                opts=child,
            )
        self.arn = topic.arn
        self.key_arn = key.arn
        self.register_outputs({"arn": self.arn, "keyArn": self.key_arn})
