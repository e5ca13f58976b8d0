"""policy/backup.py: RDS.26 advisory until backup plans exist, then mandatory coverage."""

from edumatrix_db.offline.gate import Violation
from policy import backup
from tests.policy.fixtures import TAGS, instance, replica, resource, run

PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"


def _plan():
    return resource(PLAN, "edumatrix-test-backup-plan", {"name": "edumatrix-test", "tags": dict(TAGS)})


def _summary(violations: list[Violation]) -> list[tuple[str, str, str]]:
    return [(v.policy, v.enforcement, v.urn) for v in violations]


def test_without_backup_plans_uncovered_instances_are_advisory():
    inst = instance()
    assert _summary(run([inst], policies=backup.POLICIES)) == [("rds-backup-plan-declared", "advisory", inst.urn)]


def test_replicas_need_no_backup_plan_of_their_own():
    inst = instance()
    assert [v.urn for v in run([inst, replica()], policies=backup.POLICIES)] == [inst.urn]


def test_with_a_backup_plan_an_unselected_instance_is_mandatory():
    inst = instance()
    other = resource(SELECTION, "other-selection", {"resources": ["arn:aws:rds:us-east-1:123456789012:db:other"]})
    assert _summary(run([inst, _plan(), other], policies=backup.POLICIES)) == [
        ("rds-backup-plan-coverage", "mandatory", inst.urn)]


def test_selection_by_arn_covers_the_instance():
    inst = instance()
    selection = resource(SELECTION, "db-selection", {"resources": [inst.props["arn"]]})
    assert run([inst, _plan(), selection], policies=backup.POLICIES) == []


def test_selection_by_wildcard_or_tag_covers_the_instance():
    inst = instance()
    wildcard = resource(SELECTION, "all-dbs", {"resources": ["arn:aws:rds:*:*:db:*"]})
    by_tag = resource(SELECTION, "by-tag", {"selectionTags": [
        {"type": "STRINGEQUALS", "key": "service", "value": "edumatrix-db"}]})
    assert run([inst, _plan(), wildcard], policies=backup.POLICIES) == []
    assert run([inst, _plan(), by_tag], policies=backup.POLICIES) == []
