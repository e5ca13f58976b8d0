"""Broken copies of the repository's stack files: each a small edit a person could make, the key the error
must name and a fragment of the fix it must give (tests/test_broken_stack_files.py runs them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutation:
    """Replace `old` (which must be in the file) by `new` in `stacks/Pulumi.<stack>.yaml`, or write `raw` bytes.

    The loader must refuse the result with a problem whose key is `key` and whose fix contains `fix`.
    `name` is the stack file to create (default: `stack` itself, changed in place).
    """

    id: str
    stack: str
    old: str
    new: str
    key: str
    fix: str
    name: str = ""
    raw: bytes | None = None

    @property
    def target(self) -> str:
        return self.name or self.stack

    def apply(self, stacks_dir: Path) -> Path:
        path = stacks_dir / f"Pulumi.{self.target}.yaml"
        if self.raw is not None:
            path.write_bytes(self.raw)
            return path
        text = (stacks_dir / f"Pulumi.{self.stack}.yaml").read_text(encoding="utf-8")
        assert self.old in text, f"{self.id}: {self.old!r} is not in Pulumi.{self.stack}.yaml"
        path.write_text(text.replace(self.old, self.new, 1), encoding="utf-8")
        return path


def _instance(stack: str, anchor: str, line: str, key: str, fix: str, id: str) -> Mutation:
    """A line added to the `edumatrix-db:instance` section, after `anchor` (a line of that section)."""
    return Mutation(id, stack, anchor, f"{anchor}    {line}\n", key, fix)


def _config(stack: str, lines: str, key: str, fix: str, id: str) -> Mutation:
    """Lines added at the top of the `config:` section (each indented two spaces)."""
    body = "".join(f"  {line}\n" for line in lines.splitlines())
    return Mutation(id, stack, "config:\n", f"config:\n{body}", key, fix)


NS = "edumatrix-db"
PROD_ANCHOR = "    maxConnections: 1500\n"
DEV_ANCHOR = "    maxConnections: 500\n"
EU = "prod-eu-west-1"
LATIN1_COMMENT = b"# Development: small and cheap" + b" \xe9t\xe9\n"

MUTATIONS: list[Mutation] = [
    # -- the namespace itself -------------------------------------------------------------------------------
    Mutation("namespace-typo", "dev", f"{NS}:environment: dev", "edumatrx-db:environment: dev",
             "edumatrx-db:environment", f"did you mean '{NS}:environment'"),
    Mutation("namespace-underscore", "prod", f"{NS}:instance:", "edumatrix_db:instance:",
             "edumatrix_db:instance", f"'{NS}:instance'"),
    Mutation("namespace-short", "staging", f"{NS}:replicas:", "edumatrix:replicas:", "edumatrix:replicas",
             f"'{NS}:replicas'"),
    Mutation("namespace-missing", "dev", f"{NS}:environment: dev", "environment: dev", "environment",
             f"write it as '{NS}:environment'"),
    Mutation("namespace-missing-aws", "prod", "aws:region: us-east-1", "region: us-east-1", "region",
             "'aws:region'"),
    _config("prod", "postgres:sslmode: require", "postgres:sslmode", "did you mean 'postgresql:sslmode'",
            "namespace-provider-typo"),
    _config("prod", "gcp:project: edumatrix", "gcp:project", "remove it or fix the namespace",
            "namespace-foreign"),
    Mutation("aws-key-typo", "dev", "aws:region: us-east-1", "aws:regoin: us-east-1", "aws:regoin",
             "did you mean 'aws:region'"),
    _config("staging", "postgresql:sslmod: require", "postgresql:sslmod", "did you mean 'postgresql:sslmode'",
            "postgresql-key-typo"),
    _config("staging", "random:seed: 42", "random:seed", "remove the key", "random-takes-no-config"),
    _config("prod", f"{NS}:promote: true", f"{NS}:promote", f"'{NS}:region.promote'", "section-key-at-top"),
    # -- keys given twice -----------------------------------------------------------------------------------
    Mutation("duplicate-nested", "dev", "    multiAz: false\n", "    multiAz: false\n    multiAz: true\n",
             f"{NS}:instance.multiAz", "delete one of the two lines"),
    Mutation("duplicate-top-level", "prod", "  aws:region: us-east-1\n",
             "  aws:region: us-east-1\n  aws:region: us-west-2\n", "aws:region", "delete one"),
    Mutation("duplicate-section", "prod", "  edumatrix-db:replicas:\n    count: 2\n",
             "  edumatrix-db:replicas:\n    count: 2\n  edumatrix-db:replicas:\n    count: 0\n",
             f"{NS}:replicas", "delete one"),
    Mutation("duplicate-service", "dev", "    courses_platform: {poolSize: 10}\n",
             "    courses_platform: {poolSize: 10}\n    courses_platform: {poolSize: 20}\n",
             f"{NS}:services.courses_platform", "delete one"),
    Mutation("duplicate-in-flow-mapping", "dev", "students_platform: {poolSize: 10}",
             "students_platform: {poolSize: 10, poolSize: 12}", f"{NS}:services.students_platform.poolSize",
             "delete one"),
    Mutation("duplicate-config", "local", "config:\n", "config:\n  aws:region: us-east-1\nconfig:\n", "config",
             "delete one"),
    Mutation("duplicate-list-section", "staging", "    allowedSecurityGroupIds:\n",
             "    allowedCidrs: [10.0.0.0/16]\n    allowedCidrs: [10.1.0.0/16]\n    allowedSecurityGroupIds:\n",
             f"{NS}:network.allowedCidrs", "delete one"),
    # -- YAML 1.1 spellings and quoted numbers ---------------------------------------------------------------
    Mutation("bool-no", "dev", "multiAz: false", "multiAz: no", f"{NS}:instance.multiAz", "write true or false"),
    Mutation("bool-off", "dev", "deletionProtection: false", "deletionProtection: off",
             f"{NS}:instance.deletionProtection", "write true or false"),
    Mutation("bool-quoted", "dev", "multiAz: false", 'multiAz: "false"', f"{NS}:instance.multiAz",
             "without quotes"),
    Mutation("bool-n", EU, "promote: false", "promote: n", f"{NS}:region.promote", "write true or false"),
    Mutation("bool-capital-no", EU, "promote: false", "promote: No", f"{NS}:region.promote", "true or false"),
    Mutation("bool-yes-quoted", EU, "promote: false", "promote: 'yes'", f"{NS}:region.promote", "true or false"),
    _instance("prod", PROD_ANCHOR, "iamAuth: on", f"{NS}:instance.iamAuth", "write true or false", "bool-on"),
    Mutation("bool-y-backups", EU, "    promote: false\n", "    promote: false\n    replicateBackups: y\n",
             f"{NS}:region.replicateBackups", "true or false"),
    Mutation("int-quoted", "prod", "count: 2", 'count: "2"', f"{NS}:replicas.count", "whole number without quotes"),
    Mutation("int-as-float", "prod", "allocatedStorageGb: 500", "allocatedStorageGb: 500.0",
             f"{NS}:instance.allocatedStorageGb", "whole number"),
    Mutation("int-leading-zero", "dev", "backupRetentionDays: 7", "backupRetentionDays: 07",
             f"{NS}:instance.backupRetentionDays", "whole number"),
    Mutation("int-underscore", "dev", "maxConnections: 500", "maxConnections: 5_00",
             f"{NS}:instance.maxConnections", "whole number"),
    Mutation("int-exponent", EU, "lagThresholdSeconds: 600", "lagThresholdSeconds: 6e2",
             f"{NS}:region.lagThresholdSeconds", "whole number"),
    Mutation("int-bool", "prod", "count: 2", "count: true", f"{NS}:replicas.count", "whole number"),
    Mutation("int-sexagesimal", "dev", "backupRetentionDays: 7", "backupRetentionDays: 1:30",
             f"{NS}:instance.backupRetentionDays", "whole number"),
    _instance("prod", PROD_ANCHOR, "engineVersion: 15", f"{NS}:instance.engineVersion", "quote the value",
              "text-given-a-number"),
    _instance("prod", PROD_ANCHOR, "engineVersion: 15.10", f"{NS}:instance.engineVersion", "15.1",
              "text-given-a-float"),
    _config("dev", f"{NS}:tags: {{cost-center: 1234}}", f"{NS}:tags.cost-center", "quote the value",
            "tag-value-number"),
    _instance("prod", PROD_ANCHOR, "parameters: {work_mem: 65536}", f"{NS}:instance.parameters.work_mem",
              "quote the value", "parameter-value-number"),
    Mutation("date-for-number", "dev", "backupRetentionDays: 7", "backupRetentionDays: 2024-01-01",
             f"{NS}:instance.backupRetentionDays", "whole number"),
    # -- values YAML cannot carry as plain JSON, encodings, syntax -------------------------------------------
    Mutation("yaml-set", "dev", "    subnetIds:\n      - subnet-0c1b2c3d4e5f60001\n      - subnet-0c1b2c3d4e5f60002\n",
             "    subnetIds: !!set {subnet-0c1b2c3d4e5f60001, subnet-0c1b2c3d4e5f60002}\n",
             f"{NS}:network.subnetIds", "no sets, dates"),
    Mutation("yaml-timestamp", "dev", "backupRetentionDays: 7", "backupRetentionDays: !!timestamp 2024-01-01",
             f"{NS}:instance.backupRetentionDays", "no sets, dates"),
    _config("dev", f"{NS}:owner: !!binary cGxhdGZvcm0=", f"{NS}:owner", "no sets, dates", "yaml-binary"),
    _config("staging", f"{NS}:owner: !Ref Owner", f"{NS}:owner", "plain text", "yaml-custom-tag"),
    Mutation("key-not-text", "dev", DEV_ANCHOR, f"{DEV_ANCHOR}    1: one\n", f"{NS}:instance", "quote the key"),
    Mutation("not-utf8", "dev", "", "", "line 1", "save the file as UTF-8", raw=LATIN1_COMMENT),
    Mutation("not-utf8-in-a-value", "dev", "", "", f"{NS}:owner", "save the file as UTF-8",
             raw=b"config:\n  edumatrix-db:environment: dev\n  edumatrix-db:owner: \xe9quipe\n"),
    Mutation("not-utf16", "dev", "", "", "line 1", "UTF-8",
             raw="config:\n  edumatrix-db:environment: dev\n".encode("utf-16")),
    Mutation("yaml-syntax", "dev", "subnetIds:", "subnetIds: [", "line 9", "fix the YAML syntax"),
    Mutation("yaml-tab-indent", "local", "    maxConnections: 500", "\tmaxConnections: 500", "line 6",
             "indentation"),
    Mutation("file-a-list", "local", "", "", "config", "start the file with `config:`",
             raw=b"- edumatrix-db:environment: local\n"),
    Mutation("config-a-list", "local", "", "", "config", "indent the settings",
             raw=b"config:\n  - edumatrix-db:environment: local\n"),
    Mutation("unknown-top-level", "local", "config:\n", "configs:\n", "configs", "put settings under `config:`"),
    # -- RDS names and identifiers ---------------------------------------------------------------------------
    _instance("prod", PROD_ANCHOR, "identifier: edumatrix-prod-", f"{NS}:instance.identifier",
              "not ending with a hyphen", "identifier-trailing-hyphen"),
    _instance("prod", PROD_ANCHOR, "identifier: edumatrix--prod", f"{NS}:instance.identifier", "single hyphens",
              "identifier-double-hyphen"),
    _instance("prod", PROD_ANCHOR, "identifier: 1edumatrix", f"{NS}:instance.identifier", "starting with a letter",
              "identifier-leading-digit"),
    _instance("prod", PROD_ANCHOR, "identifier: Edumatrix-Prod", f"{NS}:instance.identifier", "lowercase",
              "identifier-uppercase"),
    _instance("prod", PROD_ANCHOR, "identifier: edumatrix_prod", f"{NS}:instance.identifier", "hyphens",
              "identifier-underscore"),
    _instance("prod", PROD_ANCHOR, f"identifier: {'p' * 60}", f"{NS}:instance.identifier",
              "at most 53 characters (read replicas append '-replica-2')", "identifier-too-long-for-replicas"),
    _instance("dev", DEV_ANCHOR, f"identifier: {'d' * 64}", f"{NS}:instance.identifier", "at most 63",
              "identifier-too-long"),
    Mutation("stack-name-uppercase", "dev", "multiAz: false", "multiAz: false", "stack name",
             "rename the stack", name="Dev_Test"),
    Mutation("stack-name-too-long", "prod", "count: 2", "count: 2", "stack name", "rename the stack",
             name="production-" + "x" * 35),
    # no replicas in dev, so the identifier (50 characters) fits; the rotation function's name (66) does not
    Mutation("stack-name-too-long-for-lambda", "dev", "multiAz: false", "multiAz: false", "stack name",
             "at most 33 characters", name="d" * 40),
    # the rotation function's name fits (62), the restore testing plan's (51, AWS Backup: 50) does not
    Mutation("stack-name-too-long-for-backup-restore-testing", "dev", "multiAz: false", "multiAz: false",
             "stack name", "at most 33 characters", name="d" * 34),
    # a copy of dev in dev's VPC naming dev's zone: Route 53 refuses the second zone ("ConflictingDomainExists")
    Mutation("dns-zone-of-another-stack-in-the-same-vpc", "dev", "edumatrix-db:connections:\n",
             "edumatrix-db:connections:\n    dnsZone: dev.db.edumatrix.internal\n", f"{NS}:connections.dnsZone",
             "give this stack another dnsZone", name="devblue"),
    Mutation("stack-name-trailing-hyphen", "staging", "count: 1", "count: 1", "stack name", "rename the stack",
             name="staging-"),
    _instance("prod", PROD_ANCHOR, "databaseName: _edumatrix", f"{NS}:instance.databaseName", "e.g. edumatrix",
              "database-leading-underscore"),
    _instance("prod", PROD_ANCHOR, "databaseName: template1", f"{NS}:instance.databaseName", "e.g. edumatrix",
              "database-exists"),
    _instance("prod", PROD_ANCHOR, "databaseName: EduMatrix", f"{NS}:instance.databaseName", "lowercase",
              "database-uppercase"),
    _instance("prod", PROD_ANCHOR, f"databaseName: {'d' * 64}", f"{NS}:instance.databaseName", "lowercase",
              "database-too-long"),
    _instance("prod", PROD_ANCHOR, "masterUsername: feedback_app", f"{NS}:instance.masterUsername",
              "choose another name", "master-user-is-a-service-role"),
    _instance("dev", DEV_ANCHOR, "masterUsername: jobs_portal_owner", f"{NS}:instance.masterUsername",
              "shorten it", "master-user-too-long"),
    _instance("local", "    maxConnections: 500\n", "masterUsername: news_system_app",
              f"{NS}:instance.masterUsername", "choose another name", "master-user-collides-locally"),
    _instance("prod", PROD_ANCHOR, "masterUsername: rds_superuser", f"{NS}:instance.masterUsername",
              "choose another name", "master-user-rds-role"),
    _instance("prod", PROD_ANCHOR, "masterUsername: admin", f"{NS}:instance.masterUsername", "choose another name",
              "master-user-admin"),
    _instance("prod", PROD_ANCHOR, "masterUsername: _dba", f"{NS}:instance.masterUsername", "edumatrix_admin",
              "master-user-underscore"),
    _instance("prod", PROD_ANCHOR, "masterUsername: pg_dba", f"{NS}:instance.masterUsername", "lowercase letters",
              "master-user-pg-prefix"),
    _instance("prod", PROD_ANCHOR, "masterUsername: postgres", f"{NS}:instance.masterUsername",
              "choose another name", "master-user-default"),
    # -- tags ------------------------------------------------------------------------------------------------
    _config("dev", f"{NS}:tags: {{'cost#center': platform}}", f"{NS}:tags.cost#center", "letters, digits, spaces",
            "tag-key-character"),
    _config("dev", f"{NS}:tags: {{aws:created-by: me}}", f"{NS}:tags.aws:created-by", "drop the prefix",
            "tag-key-aws-prefix"),
    _config("dev", f"{NS}:tags: {{rds:team: data}}", f"{NS}:tags.rds:team", "drop the prefix",
            "tag-key-rds-prefix"),
    _config("dev", f"{NS}:tags: {{team: 'data!'}}", f"{NS}:tags.team", "letters, digits, spaces",
            "tag-value-character"),
    _config("dev", f"{NS}:tags: {{team: {'v' * 257}}}", f"{NS}:tags.team", "shorten the value", "tag-value-long"),
    _config("dev", f"{NS}:tags: {{{'k' * 129}: x}}", f"{NS}:tags.{'k' * 129}", "shorten the key", "tag-key-long"),
    _config("dev", f"{NS}:tags: {{owner: me}}", f"{NS}:tags.owner", f"{NS}:owner", "tag-platform-key"),
    _config("dev", f"{NS}:tags: {{role: writer}}", f"{NS}:tags.role", "remove it", "tag-component-key"),
    _config("dev", f"{NS}:tags: {{{', '.join(f't{i}: x' for i in range(41))}}}", f"{NS}:tags", "at most 40",
            "tags-too-many"),
    # -- storage ---------------------------------------------------------------------------------------------
    _instance("prod", PROD_ANCHOR, "storageType: io1", f"{NS}:instance.storageType", "gp3", "storage-io1-no-iops"),
    _instance("staging", "    allocatedStorageGb: 100\n", "storageType: io2", f"{NS}:instance.storageType", "gp3",
              "storage-io2-no-iops"),
    _instance("prod", PROD_ANCHOR, "storageType: gp2", f"{NS}:instance.storageType", "gp3, io1, io2",
              "storage-gp2"),
    # -- AWS resource ids and regions ------------------------------------------------------------------------
    Mutation("vpc-id-12-digits", "dev", "vpc-0c1b2c3d4e5f60718", "vpc-0c1b2c3d4e5f", f"{NS}:network.vpcId",
             "8 or 17 lowercase hex digits"),
    Mutation("subnet-id-uppercase", "dev", "subnet-0c1b2c3d4e5f60002", "subnet-0C1B2C3D4E5F60002",
             f"{NS}:network.subnetIds[1]", "8 or 17 lowercase hex"),
    Mutation("sg-id-9-digits", "staging", "sg-0b1b2c3d4e5f60101", "sg-0b1b2c3d4",
             f"{NS}:network.allowedSecurityGroupIds[0]", "8 or 17"),
    Mutation("vpc-id-no-prefix", "prod", "vpc-0a1b2c3d4e5f60718", "0a1b2c3d4e5f60718", f"{NS}:network.vpcId",
             "vpc-0a1b2c3d4e5f60718"),
    Mutation("vpc-of-another-region", EU, "vpc-0e1b2c3d4e5f60718", "vpc-0a1b2c3d4e5f60718",
             f"{NS}:network.vpcId", "use the ids of this stack's VPC in eu-west-1"),
    Mutation("subnet-of-another-region", EU, "subnet-0e1b2c3d4e5f60003", "subnet-0a1b2c3d4e5f60003",
             f"{NS}:network.subnetIds", "in eu-west-1"),
    Mutation("sg-of-another-region", EU, "sg-0e1b2c3d4e5f60101", "sg-0a1b2c3d4e5f60101",
             f"{NS}:network.allowedSecurityGroupIds", "in eu-west-1"),
    Mutation("region-unknown", "staging", "aws:region: us-east-1", "aws:region: us-east-7", "aws:region",
             "did you mean"),
    Mutation("cidr-public", "dev", "10.20.0.0/16", "0.0.0.0/0", f"{NS}:network.allowedCidrs", "private range"),
    Mutation("cidr-host-bits", "dev", "10.20.0.0/16", "10.20.0.1/16", f"{NS}:network.allowedCidrs", "host bits"),
    Mutation("no-client-allowed", "dev", "    allowedCidrs:\n      - 10.20.0.0/16\n", "", f"{NS}:network",
             "allowedSecurityGroupIds or allowedCidrs"),
    Mutation("one-subnet", "staging", "      - subnet-0b1b2c3d4e5f60002\n", "", f"{NS}:network.subnetIds",
             "list more items"),
    Mutation("subnet-twice", "staging", "subnet-0b1b2c3d4e5f60002", "subnet-0b1b2c3d4e5f60001",
             f"{NS}:network.subnetIds", "remove the repeated subnet"),
    # -- parameters ------------------------------------------------------------------------------------------
    _instance("prod", PROD_ANCHOR, "parameters: {Max_Connections: '2000'}",
              f"{NS}:instance.parameters.Max_Connections", "set the typed setting", "parameter-managed-other-case"),
    _instance("prod", PROD_ANCHOR, "parameters: {RDS.Force_SSL: '0'}", f"{NS}:instance.parameters.RDS.Force_SSL",
              "remove it from parameters", "parameter-force-ssl-other-case"),
    _instance("prod", PROD_ANCHOR, "parameters: {work_mem: 4MB, Work_Mem: 8MB}",
              f"{NS}:instance.parameters.Work_Mem", "keep one of them", "parameter-twice-in-two-cases"),
    # -- alarms ----------------------------------------------------------------------------------------------
    Mutation("alarm-topic-other-region", "prod", "    count: 2\n",
             "    count: 2\n    alarmTopicArn: arn:aws:sns:eu-west-1:123456789012:db-alarms\n",
             f"{NS}:replicas.alarmTopicArn", "use a topic in us-east-1"),
    Mutation("alarm-topic-primary-region", EU, "    lagThresholdSeconds: 600\n",
             "    lagThresholdSeconds: 600\n    alarmTopicArn: arn:aws:sns:us-east-1:123456789012:db-alarms\n",
             f"{NS}:region.alarmTopicArn", "use a topic in eu-west-1"),
    Mutation("alarm-topic-other-partition", "prod", "    count: 2\n",
             "    count: 2\n    alarmTopicArn: arn:aws-us-gov:sns:us-east-1:123456789012:db-alarms\n",
             f"{NS}:replicas.alarmTopicArn", "arn:aws:sns:us-east-1"),
    Mutation("alarm-topic-not-an-arn", "prod", "    count: 2\n", "    count: 2\n    alarmTopicArn: db-alarms\n",
             f"{NS}:replicas.alarmTopicArn", "arn:aws:sns:<region>"),
    Mutation("alarm-datapoints", EU, "    lagThresholdSeconds: 600\n",
             "    lagThresholdSeconds: 600\n    lagEvaluationMinutes: 2\n", f"{NS}:region.lagDatapointsToAlarm",
             "raise lagEvaluationMinutes"),
    # -- promotion and region stacks -------------------------------------------------------------------------
    _config("prod", f"{NS}:region:\n  promote: true", f"{NS}:region.promote",
            "set promote: true in the region stack that replicates this one (here: stacks/Pulumi.prod-eu-west-1.yaml)",
            "promote-on-the-primary"),
    Mutation("region-stack-declares-instance", EU, "config:\n",
             "config:\n  edumatrix-db:instance:\n    multiAz: true\n", f"{NS}:instance", "region.instanceClass"),
    Mutation("region-stack-primary-typo", EU, "primaryStack: prod", "primaryStack: prdo",
             f"{NS}:region.primaryStack", "did you mean 'prod'"),
    Mutation("region-stack-in-primary-region", EU, "aws:region: eu-west-1", "aws:region: us-east-1", "aws:region",
             f"{NS}:replicas.count"),
    # -- ranges, choices, formats ----------------------------------------------------------------------------
    Mutation("storage-below-minimum", "dev", "allocatedStorageGb: 20", "allocatedStorageGb: 10",
             f"{NS}:instance.allocatedStorageGb", "from 20 to 65536"),
    Mutation("replicas-above-ceiling", "prod", "count: 2", "count: 9", f"{NS}:replicas.count", "from 0 to 5"),
    Mutation("pool-size-zero", "dev", "students_platform: {poolSize: 10}", "students_platform: {poolSize: 0}",
             f"{NS}:services.students_platform.poolSize", "from 1 to 1000"),
    _instance("prod", PROD_ANCHOR, "logRetentionDays: 31", f"{NS}:instance.logRetentionDays", "30, 60, 90",
              "log-retention-choice"),
    Mutation("environment-choice", "staging", f"{NS}:environment: staging", f"{NS}:environment: stage",
             f"{NS}:environment", "local, dev, staging, prod"),
    Mutation("environment-missing", "staging", f"  {NS}:environment: staging\n", "", f"{NS}:environment",
             f"add `{NS}:environment: dev`"),
    Mutation("instance-class-format", "prod", "instanceClass: db.r6g.2xlarge", "instanceClass: r6g.2xlarge",
             f"{NS}:instance.instanceClass", "e.g. db.r6g.large"),
    Mutation("owner-format", "prod", f"{NS}:owner: platform-team", f"{NS}:owner: Platform Team", f"{NS}:owner",
             "lowercase letters, digits and hyphens"),
    _instance("prod", PROD_ANCHOR, "engineVersion: '12'", f"{NS}:instance.engineVersion", "from 13",
              "engine-version-too-old"),
    _instance("prod", PROD_ANCHOR, "maintenanceWindow: sun:02:00-sun:02:15", f"{NS}:instance.maintenanceWindow",
              "at least 30 minutes", "maintenance-window-short"),
    _instance("prod", PROD_ANCHOR, "maintenanceWindow: sun:02:00-sun:02:00", f"{NS}:instance.maintenanceWindow",
              "at least 30 minutes", "maintenance-window-empty"),
    _instance("prod", PROD_ANCHOR, "maintenanceWindow: Sunday 02:00", f"{NS}:instance.maintenanceWindow",
              "ddd:HH:MM-ddd:HH:MM", "maintenance-window-format"),
    _instance("prod", PROD_ANCHOR, "backupWindow: 00:00-00:15", f"{NS}:instance.backupWindow", "at least 30 minutes",
              "backup-window-short"),
    _instance("prod", PROD_ANCHOR, "backupWindow: '0:00-0:30'", f"{NS}:instance.backupWindow", "HH:MM-HH:MM",
              "backup-window-format"),
    _instance("prod", PROD_ANCHOR, "backupWindow: 02:00-03:00\n    maintenanceWindow: sun:02:30-sun:03:30",
              f"{NS}:instance.maintenanceWindow", "move one of them", "windows-overlap"),
    _instance("prod", PROD_ANCHOR, "performanceInsightsRetentionDays: 30",
              f"{NS}:instance.performanceInsightsRetentionDays", "multiple of 31", "pi-retention"),
    _instance("prod", PROD_ANCHOR, "monitoringIntervalSeconds: 45", f"{NS}:instance.monitoringIntervalSeconds",
              "0, 1, 5, 10, 15, 30, 60", "monitoring-interval"),
    _instance("prod", PROD_ANCHOR, "caCertIdentifier: rds-ca-2019", f"{NS}:instance.caCertIdentifier",
              "rds-ca-rsa2048-g1", "ca-retired"),
    Mutation("storage-ceiling-below-start", "prod", "maxAllocatedStorageGb: 4000", "maxAllocatedStorageGb: 400",
             f"{NS}:instance.maxAllocatedStorageGb", "raise maxAllocatedStorageGb"),
    Mutation("reserved-above-max", "local", "reservedConnections: 20", "reservedConnections: 600",
             f"{NS}:instance.reservedConnections", "lower reservedConnections"),
    _instance("prod", PROD_ANCHOR, "engineVersion: '15.10'", f"{NS}:instance.engineVersion", "write '15'",
              "pinned-minor"),
    _instance("prod", PROD_ANCHOR, "multiAz: false", f"{NS}:instance.multiAz", "only dev may turn it off",
              "prod-single-az"),
    Mutation("section-empty", "prod", f"  {NS}:replicas:\n    count: 2\n", f"  {NS}:replicas:\n", f"{NS}:replicas",
             "give the section its keys"),
    Mutation("section-a-number", "prod", f"  {NS}:replicas:\n    count: 2\n", f"  {NS}:replicas: 2\n",
             f"{NS}:replicas", "write a mapping"),
    Mutation("list-a-string", "staging", "    allowedSecurityGroupIds:\n      - sg-0b1b2c3d4e5f60101\n",
             "    allowedSecurityGroupIds: sg-0b1b2c3d4e5f60101\n", f"{NS}:network.allowedSecurityGroupIds",
             "write a list"),
    Mutation("unknown-nested-key", "dev", "multiAz: false", "mutliAz: false", f"{NS}:instance.mutliAz",
             "did you mean 'multiAz'"),
    Mutation("unknown-service", "dev", "edu_matrix_hub:", "edumatrix_hub:", f"{NS}:services.edumatrix_hub",
             "did you mean 'edu_matrix_hub'"),
    Mutation("pools-over-budget", "dev", "students_platform: {poolSize: 10}", "students_platform: {poolSize: 900}",
             f"{NS}:services", "raise edumatrix-db:instance.maxConnections"),
    Mutation("local-replicas", "local", "config:\n", "config:\n  edumatrix-db:replicas: {count: 1}\n",
             f"{NS}:replicas.count", "remove the key"),
    # -- what AWS refuses for the settings of issue 10 (config/preflight.py, config/regions.py) ----------------
    _instance("prod", PROD_ANCHOR, "sslMinProtocolVersion: TLSv1.3", f"{NS}:instance.sslMinProtocolVersion",
              "engineVersion 16", "tls13-on-postgres15"),
    _instance("prod", PROD_ANCHOR, "masterPassword: rds-managed", f"{NS}:instance.masterPassword",
              "remove masterPassword", "managed-password-with-replicas"),
    _instance("prod", PROD_ANCHOR, "parameters: {shared_bufers: '1024'}", f"{NS}:instance.parameters.shared_bufers",
              "config/rds_parameters/postgres15.json", "parameter-unknown-to-the-family"),
    _instance("prod", PROD_ANCHOR, "parameters: {log_statement: loud}", f"{NS}:instance.parameters.log_statement",
              "use an allowed value", "parameter-value-not-offered"),
    _instance("dev", DEV_ANCHOR, "storageType: gp3\n    iops: 12000", f"{NS}:instance.iops",
              "raise allocatedStorageGb to 400", "gp3-iops-below-400"),
    _instance("prod", PROD_ANCHOR, "databaseInsightsMode: advanced", f"{NS}:instance.performanceInsightsRetentionDays",
              "databaseInsightsMode", "insights-retention"),
    _instance("prod", PROD_ANCHOR, "timeouts: {create: 30m}", f"{NS}:instance.timeouts.create", "at least 40m",
              "timeout-below-provider"),
    Mutation("lag-threshold-idle", EU, "lagThresholdSeconds: 600", "lagThresholdSeconds: 60",
             f"{NS}:region.lagThresholdSeconds", "use more than 300"),
    Mutation("lag-threshold-renamed", EU, "lagThresholdSeconds: 600", "lagThresholdMs: 100",
             f"{NS}:region.lagThresholdMs", "rename it to lagThresholdSeconds"),
    Mutation("secret-region-missing", "prod", "      - eu-west-1\n", "      - eu-central-1\n",
             f"{NS}:secrets.replicaRegions", "add eu-west-1"),
    # -- extractions (issue 12): impossible moves, unknown services, unsafe targets -------------------------------
    Mutation("extraction-skips-a-phase", "staging", "      phase: replicate\n", "      phase: cutover\n",
             f"{NS}:extractions.feedback.phase", "set edumatrix-db:extractions.feedback.phase to one of: replicate"),
    Mutation("extraction-history-skips-a-phase", "staging", "      history: [prepare]\n",
             "      history: [prepare, cutover]\n", f"{NS}:extractions.feedback.history", "after prepare comes"),
    Mutation("extraction-unknown-phase", "staging", "      phase: replicate\n", "      phase: replicating\n",
             f"{NS}:extractions.feedback.phase", "use one of: prepare, replicate"),
    Mutation("extraction-unknown-service", "staging", "    feedback:\n      phase:", "    feedbak:\n      phase:",
             f"{NS}:extractions.feedbak", "did you mean 'feedback'"),
    Mutation("extraction-target-is-the-shared-instance", "staging", "        instanceClass: db.t4g.medium\n",
             "        instanceClass: db.t4g.medium\n        identifier: edumatrix-staging\n",
             f"{NS}:extractions.feedback.instance.identifier", "choose another identifier"),
    Mutation("extraction-instance-key-typo", "staging", "        instanceClass: db.t4g.medium\n",
             "        instanceClas: db.t4g.medium\n", f"{NS}:extractions.feedback.instance.instanceClas",
             "did you mean 'instanceClass'"),
    _config("local", f"{NS}:extractions:\n  feedback:\n    phase: prepare", f"{NS}:extractions",
            "extractions belong to the primary stack", "extraction-on-the-local-stack"),
]
