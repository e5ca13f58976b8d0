"""The pack as the Pulumi engine drives it: `policy/__main__.py` serves the analyzer gRPC protocol."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policy.pack import POLICIES

POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    # Started from inside policy/, as `pulumi preview --policy-pack policy` starts it. EDUMATRIX_POLICY_PYTHON
    # names another interpreter, e.g. of a virtualenv built from policy/requirements.txt alone.
    python = os.environ.get("EDUMATRIX_POLICY_PYTHON", sys.executable)
    proc = subprocess.Popen([python, "__main__.py"], cwd=POLICY_DIR, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None  # both piped above
    assert proc.stderr is not None
    try:
        port = proc.stdout.readline().strip()
        assert port.isdigit(), proc.stderr.read()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_served_pack_lists_every_policy_with_its_enforcement(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "edumatrix-db"
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert list(levels) == [p.name for p in POLICIES]
    assert levels["rds-backup-plan-coverage"] == analyzer_pb2.MANDATORY
    assert levels["rds-not-publicly-accessible"] == analyzer_pb2.MANDATORY


def test_served_pack_reports_a_public_instance(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    props = struct_pb2.Struct()
    props.update({"engine": "postgres", "publiclyAccessible": True})
    urn = "urn:pulumi:prod::edumatrix-db::aws:rds/instance:Instance::db"
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(type="aws:rds/instance:Instance", properties=props,
                                                            urn=urn, name="db"))
    # The engine attaches an Analyze diagnostic to the resource it asked about (the urn field stays empty).
    found = {(d.policyName, d.enforcementLevel) for d in response.diagnostics}
    assert ("rds-not-publicly-accessible", analyzer_pb2.MANDATORY) in found
