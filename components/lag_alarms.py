"""Replica lag alarms (spec 8.A "monitoring: lag alerts").

What RDS can measure: the `ReplicaLag` metric (namespace AWS/RDS, dimension DBInstanceIdentifier) is
reported in seconds, one datapoint a minute, and on RDS for PostgreSQL "a read replica reports a replication
lag of up to five minutes if there are no user transactions occurring on the source DB instance" (AWS RDS user
guide). So the threshold is in seconds and above 300 (default 600), and missing datapoints are left out of the
evaluation (`treat_missing_data=missing`) instead of paging: the alarm pages on real lag only. The spec's
"< 100ms" target cannot be measured this way (README, "Limits"). Lag of logical replication (the spec's
data-sync method) is not a CloudWatch metric: it is read from `pg_stat_replication` / `pg_replication_slots` on
the publisher (see docs/failover-runbook.md).

The topic the alarms page is encrypted with a key of its own (`PlatformKey` purpose `alarms`), whose policy lets
CloudWatch alarms use it and nothing else; the data key grants CloudWatch alarms nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.kms_key import PlatformKey, PlatformKeyArgs
from config.settings import LagAlarmSettings

REPLICA_LAG_METRIC = "ReplicaLag"
RDS_NAMESPACE = "AWS/RDS"
PERIOD_SECONDS = 60  # RDS publishes ReplicaLag once a minute


@dataclass(frozen=True)
class ReplicaLagAlarmsArgs:
    """One alarm per replica identifier; pages `alarm_topic_arn` or a topic declared here (under its own key)."""

    replica_identifiers: Sequence[pulumi.Input[str]]
    settings: LagAlarmSettings
    region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def alarm_topic(parent: pulumi.Resource, topic_name: str, key_name: str, what: str, *, region: str | None = None,
                tags: Mapping[str, str] | None = None) -> pulumi.Output[str]:
    """An SNS topic for CloudWatch alarms, encrypted with a key of its own (`PlatformKey` purpose `alarms`): the
    key lets CloudWatch alarms publish and serves nothing else. Returns the topic's ARN."""
    child = pulumi.ResourceOptions(parent=parent)
    key = PlatformKey(key_name, PlatformKeyArgs(
        description=f"{topic_name}: the topic {what} page (CloudWatch alarms publish with it)",
        alias=key_name.removesuffix("-kms"),
        purpose="alarms",
        region=region,
        tags=dict(tags or {}),
    ), opts=child)
    topic = aws.sns.Topic(topic_name, kms_master_key_id=key.arn, region=region, tags=dict(tags or {}), opts=child)
    return topic.arn


class ReplicaLagAlarms(pulumi.ComponentResource):
    """`edumatrix:monitoring:ReplicaLagAlarms`: a `ReplicaLag` alarm per replica and the topic it pages."""

    topic_arn: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: ReplicaLagAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:monitoring:ReplicaLagAlarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        settings = args.settings
        if settings.alarm_topic_arn:
            self.topic_arn = pulumi.Output.from_input(settings.alarm_topic_arn)
        else:
            self.topic_arn = alarm_topic(self, f"{name}-topic", f"{name}-kms", "the replica-lag alarms",
                                         region=args.region, tags=tags)
        alarms = [
            aws.cloudwatch.MetricAlarm(
                f"{name}-{index}",
                alarm_description=pulumi.Output.concat(
                    "Replica lag of ", identifier, f" above {settings.lag_threshold_seconds} s "
                    f"({settings.lag_datapoints_to_alarm} of {settings.lag_evaluation_minutes} minutes); "
                    "runbook: docs/failover-runbook.md"),
                namespace=RDS_NAMESPACE,
                metric_name=REPLICA_LAG_METRIC,
                dimensions={"DBInstanceIdentifier": identifier},
                statistic="Maximum",
                period=PERIOD_SECONDS,
                evaluation_periods=settings.lag_evaluation_minutes,
                datapoints_to_alarm=settings.lag_datapoints_to_alarm,
                threshold=settings.lag_threshold_seconds,
                comparison_operator="GreaterThanThreshold",
                # Missing datapoints neither page nor clear the alarm; a stopped replica shows in RDS events.
                treat_missing_data="missing",
                alarm_actions=[self.topic_arn],
                ok_actions=[self.topic_arn],
                region=args.region,
                tags=tags,
                opts=child,
            )
            for index, identifier in enumerate(args.replica_identifiers, start=1)
        ]
        self.alarm_names = [alarm.name for alarm in alarms]
        self.register_outputs({"topicArn": self.topic_arn, "alarmNames": self.alarm_names})
