"""What AWS accepts as names, ids and tags: the rules the SDK's mocks never check, written once.

Each check raises SettingError (message and fix) and cites where the rule comes from. The settings models
use them as field validators; the loader uses them for names it derives (the instance identifier from the
stack name, replica identifiers).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from config.errors import SettingError
from config.naming import InvalidIdentifier, check_identifier

# -- RDS DB instance identifiers ------------------------------------------------------------------------------
# CreateDBInstance `DBInstanceIdentifier`: "Must contain from 1 to 63 letters, numbers, or hyphens. First
# character must be a letter. Can't end with a hyphen or contain two consecutive hyphens." (stored lowercase)
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html
RDS_IDENTIFIER_MAX = 63
_RDS_IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]*$")
# Same-region read replicas are `<identifier>-replica-<n>` (components/read_replicas.py).
REPLICA_SUFFIX = "-replica-{n}"
# The monthly point-in-time-restore validation restores into `<identifier>-pitr-check` (components/pitr_validation.py).
PITR_CHECK_SUFFIX = "-pitr-check"


def rds_identifier_problem(identifier: str, *, suffix: str = "", suffix_of: str = "read replicas"
                           ) -> tuple[str, str] | None:
    """(message, fix) when RDS refuses `identifier` (with `suffix` appended, as a replica's name is), or None."""
    full = identifier + suffix
    if not _RDS_IDENTIFIER.match(identifier):
        return (f"{identifier!r} is not an RDS identifier: lowercase letters, digits and hyphens, starting with "
                "a letter", IDENTIFIER_FIX)
    if "--" in identifier:
        return f"{identifier!r} contains '--', which RDS refuses in an identifier", IDENTIFIER_FIX
    if identifier.endswith("-"):
        return f"{identifier!r} ends with a hyphen, which RDS refuses in an identifier", IDENTIFIER_FIX
    if len(full) > RDS_IDENTIFIER_MAX:
        return (f"{full!r} is {len(full)} characters; RDS identifiers are at most {RDS_IDENTIFIER_MAX}",
                f"shorten it to at most {RDS_IDENTIFIER_MAX - len(suffix)} characters"
                + (f" ({suffix_of} append {suffix!r})" if suffix else ""))
    return None


IDENTIFIER_FIX = ("use lowercase letters, digits and single hyphens, starting with a letter and not ending with a "
                  "hyphen (RDS DBInstanceIdentifier rules), e.g. edumatrix-prod")


def check_rds_identifier(identifier: str) -> str:
    problem = rds_identifier_problem(identifier)
    if problem:
        raise SettingError(*problem)
    return identifier


# -- names derived from the stack name ---------------------------------------------------------------------------
# A primary stack names these `edumatrix-<stack>-...` whatever instance.identifier says, so the stack name must fit
# each API. Lambda CreateFunction FunctionName: 1-64 of [a-zA-Z0-9-_]; CloudFormation StackName: "must start with
# an alphabetic character and can't be longer than 128 characters" of [a-zA-Z0-9-] (the provider prefixes the
# rotation application's stack with `serverlessrepo-`); CloudWatch PutDashboard DashboardName: "The maximum
# length is 255, and valid characters are A-Z, a-z, 0-9, "-", and "_""; SQS QueueName: up to 80 of [a-zA-Z0-9-_].
_LAMBDA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DERIVED_NAMES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("the rotation function's Lambda name (64 of A-Z a-z 0-9 - _)", "{prefix}-secret-rotation", _LAMBDA_NAME),
    # Step Functions CreateStateMachine name: 1-80 of [0-9A-Za-z_-]; EventBridge Scheduler CreateSchedule Name:
    # 1-64 of [0-9a-zA-Z-_.]; IAM CreateRole RoleName: 1-64 (components/pitr_validation.py names all three so).
    ("the point-in-time validation's state machine, schedule and role name (64 of A-Z a-z 0-9 - _)",
     "{prefix}-pitr-validation", _LAMBDA_NAME),
    ("the ops runner's Lambda name (64 of A-Z a-z 0-9 - _)", "{prefix}-ops-runner", _LAMBDA_NAME),
    ("the rotation application's CloudFormation stack name (128 of A-Z a-z 0-9 -, a letter first)",
     "serverlessrepo-{prefix}-secret-rotation", re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")),
    ("the database dashboard's name (255 of A-Z a-z 0-9 - _)", "{prefix}-database",
     re.compile(r"^[A-Za-z0-9_-]{1,255}$")),
    ("the ops runner's dead-letter queue name (80 of A-Z a-z 0-9 - _)", "{prefix}-ops-runner-dlq",
     re.compile(r"^[A-Za-z0-9_-]{1,80}$")),
    # components/backups.py names it with the prefix's hyphens as underscores (same length): "Must be between 1
    # and 50 characters long and contain only alphanumeric characters and underscores" (pulumi_aws
    # backup/restore_testing_plan.py, from the AWS Backup API's RestoreTestingPlanName).
    ("the restore testing plan's name (50 of A-Z a-z 0-9 _)", "{prefix}_weekly",
     re.compile(r"^[A-Za-z0-9_-]{1,50}$")),
)


# EventBridge Scheduler ScheduleExpression: "at(yyyy-mm-ddThh:mm:ss)", "rate(value unit)" or
# "cron(minutes hours day_of_month month day_of_week year)" (Scheduler API reference, CreateSchedule).
_SCHEDULE = re.compile(r"^(cron\((\S+ ){5}\S+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\)|at\(\S+\))$")


def check_schedule_expression(expression: str) -> str:
    if not _SCHEDULE.match(expression):
        raise SettingError(f"{expression!r} is not an EventBridge Scheduler expression",
                           "use cron(minutes hours day-of-month month day-of-week year), e.g. cron(0 4 1 * ? *) "
                           "for the 1st of every month at 04:00 UTC, or rate(N days)")
    return expression


def derived_name_problems(prefix: str) -> list[tuple[str, str]]:
    """(what, name) of every name derived from `prefix` that its AWS API refuses."""
    return [(what, name) for what, template, pattern in DERIVED_NAMES
            if not pattern.match(name := template.format(prefix=prefix))]


# -- database name and master user -----------------------------------------------------------------------------
# CreateDBInstance `DBName` (PostgreSQL): 1-63 letters, digits or underscores, beginning with a letter, not a
# reserved word. `MasterUsername`: "Must be 1 to 16 letters, numbers, or underscores. First character must be a
# letter. Can't be a reserved word for the chosen database engine." (enforced since 2023:
# crossplane-contrib/provider-aws#1701). `admin` is reserved on PostgreSQL engines, `rdsadmin` on all
# (aws-cloudformation/cfn-lint#4425; error "MasterUsername admin cannot be used as it is a reserved word used by
# the engine", aws/aws-cdk#10579); names starting `pg_` are reserved by PostgreSQL (DataShades/ckan-aws-templates#6).
MASTER_USERNAME_MAX = 16
RDS_RESERVED_ROLES = frozenset({
    # roles RDS for PostgreSQL creates in every instance ("Understanding PostgreSQL roles and permissions",
    # RDS user guide) and the engine-reserved `admin`
    "rdsadmin", "rdsrepladmin", "rdstopmgr", "rds_superuser", "rds_replication", "rds_password", "rds_iam",
    "rds_ad", "admin",
})
# Databases every RDS for PostgreSQL instance already has (PostgreSQL's templates, RDS's own `rdsadmin`).
EXISTING_DATABASES = frozenset({"template0", "template1", "rdsadmin"})


def check_database_name(name: str) -> str:
    _plain_identifier(name, "databaseName", "e.g. edumatrix")
    if not name[0].isalpha():
        raise SettingError(f"databaseName {name!r} starts with {name[0]!r}; RDS database names begin with a letter "
                           "(CreateDBInstance DBName)", f"e.g. {name.lstrip('_0123456789') or 'edumatrix'}")
    if name in EXISTING_DATABASES:
        raise SettingError(f"databaseName {name!r} already exists on every RDS for PostgreSQL instance",
                           "choose the platform's own name, e.g. edumatrix")
    return name


def check_master_username(name: str) -> str:
    _plain_identifier(name, "masterUsername", "e.g. edumatrix_admin")
    if not name[0].isalpha():
        raise SettingError(f"masterUsername {name!r} starts with {name[0]!r}; RDS needs a letter first "
                           "(CreateDBInstance MasterUsername)", "e.g. edumatrix_admin")
    if len(name) > MASTER_USERNAME_MAX:
        raise SettingError(f"masterUsername {name!r} is {len(name)} characters; RDS allows at most "
                           f"{MASTER_USERNAME_MAX} (CreateDBInstance MasterUsername)",
                           f"shorten it, e.g. {name[:MASTER_USERNAME_MAX].rstrip('_')!r}")
    if name in RDS_RESERVED_ROLES:
        raise SettingError(f"masterUsername {name!r} is reserved by RDS for PostgreSQL (\"cannot be used as it is "
                           "a reserved word used by the engine\")", "choose another name, e.g. edumatrix_admin")
    return name


def _plain_identifier(name: str, what: str, example: str) -> None:
    try:
        check_identifier(name, what)
    except InvalidIdentifier as exc:
        raise SettingError(str(exc), f"use lowercase letters, digits and underscores, {example}") from None


# -- AWS resource ids ------------------------------------------------------------------------------------------
# EC2 resource ids are a prefix and 8 hex digits (before 2016) or 17 (the longer format since): "Resource IDs"
# in the EC2 user guide. Nine to sixteen digits is neither.
AWS_ID_KINDS: Mapping[str, str] = {"vpc": "a VPC", "subnet": "a subnet", "sg": "a security group"}
AWS_ID_EXAMPLES: Mapping[str, str] = {"vpc": "vpc-0a1b2c3d4e5f60718", "subnet": "subnet-0a1b2c3d4e5f60001",
                                      "sg": "sg-0a1b2c3d4e5f60101"}


def check_aws_id(prefix: str, value: str) -> str:
    if re.fullmatch(rf"{re.escape(prefix)}-(?:[0-9a-f]{{8}}|[0-9a-f]{{17}})", value):
        return value
    raise SettingError(f"{value!r} is not {AWS_ID_KINDS[prefix]} id",
                       f"AWS writes it {prefix}- and 8 or 17 lowercase hex digits, e.g. {AWS_ID_EXAMPLES[prefix]} "
                       "(copy it from the console or `aws ec2 describe-...`)")


def check_vpc_id(value: str) -> str:
    return check_aws_id("vpc", value)


def check_subnet_id(value: str) -> str:
    return check_aws_id("subnet", value)


def check_security_group_id(value: str) -> str:
    return check_aws_id("sg", value)


# -- the extraction pooler's image and certificate -------------------------------------------------------------
# ECR CreateRepository repositoryName: 2-256 characters, pattern
# (?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)* (ECR API reference); an image digest is
# `sha256:` and 64 lowercase hex digits (OCI image spec, "Digests").
ECR_REPOSITORY = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")


def _checked(value: str, ok: bool, what: str, fix: str) -> str:
    if ok:
        return value
    raise SettingError(f"{value!r} is not {what}", fix)


def check_ecr_repository(value: str) -> str:
    return _checked(value, 2 <= len(value) <= 256 and bool(ECR_REPOSITORY.match(value)), "an ECR repository name",
                    "2-256 lowercase letters, digits and . _ - separated path parts, e.g. platform/pgbouncer "
                    "(the repository's name, not its URI)")


def check_image_digest(value: str) -> str:
    return _checked(value, bool(IMAGE_DIGEST.match(value)), "an image digest",
                    "pin the image by digest: sha256: and 64 hex digits (`aws ecr describe-images` imageDigest); "
                    "a tag can be moved, a digest cannot")


def check_secret_arn(value: str) -> str:
    return _checked(value, bool(SECRET_ARN.match(value)), "a Secrets Manager secret ARN",
                    "copy the ARN from `aws secretsmanager describe-secret` "
                    "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx)")


# -- SNS topic ARNs --------------------------------------------------------------------------------------------
SNS_TOPIC_ARN = re.compile(r"^arn:(aws[a-z-]*):sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256})$")


def check_sns_topic_arn(value: str) -> str:
    if not SNS_TOPIC_ARN.match(value):
        raise SettingError(f"{value!r} is not an SNS topic ARN",
                           "write arn:aws:sns:<region>:<12-digit account>:<topic name>, e.g. "
                           "arn:aws:sns:us-east-1:123456789012:db-alarms")
    return value


def topic_region(arn: str) -> tuple[str, str]:
    """(partition, region) of an SNS topic ARN checked by check_sns_topic_arn."""
    match = SNS_TOPIC_ARN.match(arn)
    assert match is not None
    return match[1], match[2]


# -- tags ------------------------------------------------------------------------------------------------------
# RDS `Tag`: key 1-128 Unicode characters, value 0-256, neither prefixed `aws:` or `rds:`, only "Unicode letters,
# digits, white-space, '_', '.', ':', '/', '=', '+', '-', '@'" (Java regex ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$).
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_Tag.html . At most 50 tags per resource
# (the platform adds its own; see StackSettings.base_tags).
TAG_KEY_MAX, TAG_VALUE_MAX, TAGS_PER_RESOURCE = 128, 256, 50
TAG_SYMBOLS = frozenset("_.:/=+-@")
RESERVED_TAG_PREFIXES = ("aws:", "rds:")
TAG_FIX = "use letters, digits, spaces and _ . : / = + - @ only"


def _tag_character_ok(char: str) -> bool:
    return char in TAG_SYMBOLS or unicodedata.category(char)[0] in "LZN"


def tag_problem(key: str, value: str) -> tuple[str, str] | None:
    """(message, fix) for a tag AWS refuses, or None."""
    if not 1 <= len(key) <= TAG_KEY_MAX:
        return f"tag key is {len(key)} characters; AWS allows 1 to {TAG_KEY_MAX}", "shorten the key"
    if len(value) > TAG_VALUE_MAX:
        return f"tag value is {len(value)} characters; AWS allows at most {TAG_VALUE_MAX}", "shorten the value"
    for what, text in (("key", key), ("value", value)):
        if text.lower().startswith(RESERVED_TAG_PREFIXES):
            return (f"tag {what} {text!r} starts with {text[:4]!r}, which AWS reserves",
                    "drop the prefix, e.g. team:" + text[4:])
        bad = sorted({c for c in text if not _tag_character_ok(c)})
        if bad:
            return f"tag {what} {text!r} contains {', '.join(map(repr, bad))}, which AWS refuses in tags", TAG_FIX
    return None
