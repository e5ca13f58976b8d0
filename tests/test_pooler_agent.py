"""The extraction pooler's agent without a server (edumatrix_db/ops/pooler_agent.py): the backend record, the SSM
store's exact API calls (botocore's Stubber: no network), the ini rewrite, when the agent reads, and the image's
rendered PgBouncer files. The agent against a real PgBouncer: tests/pg/test_pooler_agent.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from edumatrix_db.ops.pooler_agent import (
    FAST_POLL_SECONDS,
    PAUSED_CHECK_SECONDS,
    SLOW_POLL_SECONDS,
    STARTUP_POLL_SECONDS,
    STARTUP_WATCH_SECONDS,
    Agent,
    AgentError,
    BackendRecord,
    FileRecordStore,
    SsmRecordStore,
    configured_backends,
    point_pools,
    render,
)

PARAMETER = "/edumatrix-staging/extraction/feedback/pooler-backend"
SOURCE = BackendRecord("edumatrix-staging-db.abc.us-east-1.rds.amazonaws.com", 5432, "edumatrix", 4)


@pytest.fixture
def ssm() -> Iterator[tuple[SsmRecordStore, Stubber]]:
    client = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        yield SsmRecordStore(PARAMETER, client), stubber
        stubber.assert_no_pending_responses()


def test_the_record_reads_back_what_was_written() -> None:
    assert BackendRecord.from_json(SOURCE.to_json()) == SOURCE


def test_the_next_record_has_the_next_generation() -> None:
    assert SOURCE.next("target.example", 5433, "edumatrix") == BackendRecord("target.example", 5433, "edumatrix", 5)


@pytest.mark.parametrize("host", ["db.example auth_user=postgres", "db.example\n[pgbouncer]", ""])
def test_a_record_that_would_add_keys_to_the_ini_line_is_refused(host: str) -> None:
    with pytest.raises(AgentError, match="is not a host name"):
        BackendRecord(host, 5432, "edumatrix")


def test_the_freeze_marker_reads_back_and_survives_a_new_backend() -> None:
    frozen = SOURCE.freezing(True)
    moved = frozen.next("target.example", 5432, "edumatrix")
    assert (BackendRecord.from_json(moved.to_json()), moved.generation) == (moved, SOURCE.generation + 2)
    assert moved.frozen


def test_a_record_written_before_the_freeze_marker_reads_as_not_frozen() -> None:
    assert not BackendRecord.from_json('{"host": "db", "port": 5432, "dbname": "edumatrix"}').frozen


def test_a_freeze_marker_that_is_not_true_or_false_is_refused() -> None:
    with pytest.raises(AgentError, match="frozen is 'yes'"):
        BackendRecord.from_json('{"host": "db", "port": 5432, "dbname": "edumatrix", "frozen": "yes"}')


def test_a_record_without_a_port_is_refused_naming_the_fields() -> None:
    with pytest.raises(AgentError, match="host, port, dbname"):
        BackendRecord.from_json('{"host": "db.example", "dbname": "edumatrix"}')


def test_the_ssm_store_reads_the_parameter_by_name_without_decryption(ssm: tuple[SsmRecordStore, Stubber]) -> None:
    store, stubber = ssm
    stubber.add_response("get_parameter", {"Parameter": {"Name": PARAMETER, "Type": "String",
                                                         "Value": SOURCE.to_json(), "Version": 7}},
                         {"Name": PARAMETER})
    assert store.read() == SOURCE


def test_the_ssm_store_overwrites_the_existing_parameter_with_the_record(ssm: tuple[SsmRecordStore, Stubber]) -> None:
    store, stubber = ssm
    target = SOURCE.next("edumatrix-staging-feedback-db.abc.us-east-1.rds.amazonaws.com", 5432, "edumatrix")
    stubber.add_response("put_parameter", {"Version": 8, "Tier": "Standard"},
                         {"Name": PARAMETER, "Value": target.to_json(), "Overwrite": True})
    store.write(target)


def test_a_missing_parameter_is_an_agent_error_naming_it(ssm: tuple[SsmRecordStore, Stubber]) -> None:
    store, stubber = ssm
    stubber.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": PARAMETER})
    with pytest.raises(AgentError, match=f"cannot read the backend record {PARAMETER}"):
        store.read()


def test_the_file_store_replaces_the_record_in_one_step(tmp_path: Path) -> None:
    store = FileRecordStore(tmp_path / "backend.json")
    store.write(SOURCE)
    store.write(SOURCE.next("10.0.0.9", 5433, "edumatrix"))
    assert (store.read().host, sorted(p.name for p in tmp_path.iterdir())) == ("10.0.0.9", ["backend.json"])


INI = """[databases]
feedback = host=127.0.0.1 port=5432 dbname=edumatrix pool_size=4
feedback_readonly = host=127.0.0.1 port=5432 dbname=edumatrix pool_size=2
feedback_archive = host=127.0.0.1 port=5432 dbname=edumatrix pool_size=2
[pgbouncer]
listen_port = 6432
"""


def test_pointing_the_pools_changes_only_the_services_lines_and_keeps_their_sizes() -> None:
    text = point_pools(INI, ("feedback", "feedback_readonly"), "10.0.0.9", 5433, "edumatrix")
    assert configured_backends(text, ("feedback", "feedback_readonly", "feedback_archive")) == {
        "feedback": ("10.0.0.9", 5433, "edumatrix"), "feedback_readonly": ("10.0.0.9", 5433, "edumatrix"),
        "feedback_archive": ("127.0.0.1", 5432, "edumatrix")}
    assert "feedback = host=10.0.0.9 port=5433 dbname=edumatrix pool_size=4" in text


class _CountingStore(FileRecordStore):
    reads = 0

    def read(self) -> BackendRecord:
        self.reads += 1
        return super().read()


class _Agent(Agent):
    """An agent whose PgBouncer is paused or not as the test says (the real one: tests/pg/test_pooler_agent.py)."""

    is_paused = False

    def paused(self) -> bool:
        return self.is_paused


def _agent(tmp_path: Path, started: float = -STARTUP_WATCH_SECONDS) -> tuple[_Agent, _CountingStore]:
    """An agent past its first minute (`started`) unless the test says otherwise."""
    ini = tmp_path / "pgbouncer.ini"
    ini.write_text(INI)
    store = _CountingStore(tmp_path / "backend.json")
    store.write(BackendRecord("127.0.0.1", 5432, "edumatrix"))
    return _Agent(ini=ini, admin="", aliases=("feedback", "feedback_readonly"), store=store, started=started), store


def test_the_agent_reads_the_record_rarely_while_no_pool_is_paused(tmp_path: Path) -> None:
    agent, store = _agent(tmp_path)
    for second in range(int(SLOW_POLL_SECONDS)):  # one look per second for one slow interval
        agent.step(now=float(second))
    assert store.reads == 1


def test_for_its_first_minute_the_agent_reads_the_record_every_second(tmp_path: Path) -> None:
    agent, store = _agent(tmp_path, started=0.0)
    for look in range(round(STARTUP_WATCH_SECONDS / PAUSED_CHECK_SECONDS)):  # the agent's looks, first minute
        agent.step(now=look * PAUSED_CHECK_SECONDS)
    assert store.reads == int(STARTUP_WATCH_SECONDS / STARTUP_POLL_SECONDS)


def test_the_agent_reads_the_record_at_every_fast_interval_while_a_pool_is_paused(tmp_path: Path) -> None:
    agent, store = _agent(tmp_path)
    agent.is_paused = True
    looks = 10
    for i in range(looks):
        agent.step(now=i * FAST_POLL_SECONDS)
    assert store.reads == looks


def test_a_record_already_applied_leaves_the_ini_untouched(tmp_path: Path) -> None:
    agent, _ = _agent(tmp_path)
    before = agent.ini.stat().st_mtime_ns
    assert (agent.step(now=0.0), agent.ini.stat().st_mtime_ns) == (False, before)


# -- the image's files -------------------------------------------------------------------------------------------

ENV = {
    "PGBOUNCER_DATABASE": "edumatrix",
    "PGBOUNCER_ADMIN_USER": "edumatrix_pooler_admin",
    "PGBOUNCER_ADMIN_PASSWORD": "admin-secret",
    "PGBOUNCER_POOLS": "feedback_app:5,feedback_readonly:3",
    "PGBOUNCER_PASSWORD_FEEDBACK_APP": "app-secret",
    "PGBOUNCER_PASSWORD_FEEDBACK_READONLY": "ro-secret",
    "PGBOUNCER_TLS_CERTIFICATE": "-----BEGIN CERTIFICATE-----",
    "PGBOUNCER_TLS_KEY": "-----BEGIN PRIVATE KEY-----",
    "PGBOUNCER_NLB_ADDRESSES": "10.20.1.250,10.20.2.250",
}


def test_the_rendered_pool_leads_where_the_record_says() -> None:
    ini = render(ENV, SOURCE, Path("/run/pgbouncer"))["pgbouncer.ini"]
    assert configured_backends(ini, ("edumatrix",)) == {"edumatrix": SOURCE.backend}


def test_the_rendered_pool_caps_each_role_at_its_share() -> None:
    ini = render(ENV, SOURCE, Path("/run/pgbouncer"))["pgbouncer.ini"]
    assert ("feedback_app = max_user_connections=5" in ini, "feedback_readonly = max_user_connections=3" in ini,
            "max_db_connections = 8" in ini) == (True, True, True)


def _hba_rules(env: dict[str, str]) -> list[str]:
    return [line for line in render(env, SOURCE, Path("/run/pgbouncer"))["hba.conf"].splitlines()
            if not line.startswith("#")]


def test_over_tcp_only_the_admin_user_reaches_the_console_and_only_over_tls() -> None:
    assert _hba_rules(ENV)[2:4] == ["hostssl pgbouncer edumatrix_pooler_admin 0.0.0.0/0 scram-sha-256",
                                    "host pgbouncer all 0.0.0.0/0 reject"]


def test_the_nlbs_addresses_are_refused_the_console_before_any_line_admits_it() -> None:
    assert _hba_rules(ENV)[:2] == ["host pgbouncer all 10.20.1.250/32 reject",
                                   "host pgbouncer all 10.20.2.250/32 reject"]


def test_a_task_that_cannot_tell_the_nlb_from_the_runner_is_refused() -> None:
    env = {k: v for k, v in ENV.items() if k != "PGBOUNCER_NLB_ADDRESSES"}
    with pytest.raises(AgentError, match="PGBOUNCER_NLB_ADDRESSES"):
        render(env, SOURCE, Path("/run/pgbouncer"))


def test_an_nlb_address_that_is_no_ipv4_address_is_refused() -> None:
    with pytest.raises(AgentError, match=r"'10\.20\.1\.0/24' is not an IPv4 address"):
        render({**ENV, "PGBOUNCER_NLB_ADDRESSES": "10.20.1.0/24"}, SOURCE, Path("/run/pgbouncer"))


def test_the_unix_socket_is_for_pgbouncers_own_user_only() -> None:
    ini = render(ENV, SOURCE, Path("/run/pgbouncer"))["pgbouncer.ini"]
    assert ("unix_socket_dir = /run/pgbouncer" in ini, "unix_socket_mode = 0700" in ini) == (True, True)


def test_a_task_without_a_login_password_is_refused_naming_the_variable() -> None:
    env = {k: v for k, v in ENV.items() if k != "PGBOUNCER_PASSWORD_FEEDBACK_READONLY"}
    with pytest.raises(AgentError, match="PGBOUNCER_PASSWORD_FEEDBACK_READONLY"):
        render(env, SOURCE, Path("/run/pgbouncer"))
