"""PersonalDataReads (edumatrix:gdpr:PersonalDataReads): reads of personal data per service, counted from the
exported PostgreSQL log (spec 4.A gdpr logging "Access tracking"; docs/gdpr.md).

pgaudit's object audit logs every statement touching a table `rds_pgaudit` holds a privilege on, i.e. the
catalog's personal tables, as `AUDIT: OBJECT,<n>,<n>,READ,SELECT,TABLE,<schema>.<table>,...` (the role is in
RDS's line prefix `%t:%r:%u@%d:[%p]:`). One CloudWatch Logs metric filter per service holding personal data
counts its READ lines: every quoted term of a filter pattern must occur in the line, case-sensitive
(CloudWatch Logs "Filter pattern syntax"); the schema name is the service's own, so a line counts for one
service only. Metric filters take dimensions only from fields the pattern extracts, not fixed values, so the
service is in the metric's name and the instance in the namespace, like the security filters':
`PersonalDataReads.<service>` in `EduMatrix/Database/<instance>` (`config.monitoring.log_metrics_namespace`).
The dashboard (`components/database_alarms.py`) graphs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from config.monitoring import log_metrics_namespace
from config.naming import schema_name


def read_pattern(service: str) -> str:
    """The filter pattern counting pgaudit object-audit READ lines of `service`'s schema."""
    return f'"AUDIT: OBJECT," ",READ," ",{schema_name(service)}."'


def metric_name(service: str) -> str:
    return f"PersonalDataReads.{service}"


@dataclass(frozen=True)
class PersonalDataReadsArgs:
    instance_identifier: str
    """The instance whose exported PostgreSQL log (`/aws/rds/instance/<identifier>/postgresql`) is counted."""
    services: Sequence[str]
    """The services holding personal data (the catalog's `personal_tables`)."""


class PersonalDataReads(pulumi.ComponentResource):
    def __init__(self, name: str, args: PersonalDataReadsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("edumatrix:gdpr:PersonalDataReads", name, None, opts)
        if not args.services:
            raise ValueError("PersonalDataReadsArgs.services is empty: no service holds personal data")
        namespace = log_metrics_namespace(args.instance_identifier)
        self.filters = [
            aws.cloudwatch.LogMetricFilter(
                f"{name}-{service}",
                name=f"personal-data-reads-{service}",
                log_group_name=f"/aws/rds/instance/{args.instance_identifier}/postgresql",
                pattern=read_pattern(service),
                metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                    name=metric_name(service), namespace=namespace, value="1", unit="Count"),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for service in args.services
        ]
        self.metrics = {service: metric_name(service) for service in args.services}
        self.register_outputs({"namespace": namespace, "metrics": self.metrics})
