#!/usr/bin/env python3
"""Build `config/rds_parameters/postgres<major>.json`: the parameters an RDS for PostgreSQL parameter group of
that family accepts, whether each is static (needs `pending-reboot`) or dynamic, and its allowed values.

Nothing here can ask AWS, so the table is built from what can be read, and says where each row came from:

1. `--postgres-bin DIR`: a throwaway PostgreSQL server of that major version (initdb in a temporary directory,
   pg_stat_statements and pgaudit preloaded when installed) is asked for `pg_settings`. A parameter whose
   `context` is `postmaster` is static (PostgreSQL reads it only at start, which is what RDS's ApplyType
   `static` means for it); `internal` ones are not settable and left out; every other context is dynamic.
   Allowed values come from `vartype`, `enumvals`, `min_val`/`max_val`.
2. `config/rds_parameters/overlay.yaml`: what only AWS documents (the `rds.*` parameters, RDS defaults, values
   RDS does not offer), each row with its source. Overlay rows win.
3. `--from-aws FILE` (after the first contact with AWS): the JSON of
   `aws rds describe-engine-default-parameters --db-parameter-group-family postgres15`; its ApplyType,
   AllowedValues, IsModifiable and ParameterValue then replace the inferred ones (the authoritative source).

Usage: `python scripts/rds_parameter_table.py --postgres-bin /usr/lib/postgresql/15/bin`
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import yaml

ROOT = Path(__file__).resolve().parent.parent
TABLE_DIR = ROOT / "config" / "rds_parameters"
PRELOAD = ("pg_stat_statements", "pgaudit")
# Parameters that name files, sockets or listening addresses of the server: RDS runs the server, a parameter
# group cannot point it elsewhere (not modifiable there). Left out, so a stack setting one is told at once.
HOST_ONLY_SUFFIXES = ("_file", "_directory", "_directories", "_dir")
HOST_ONLY = {"listen_addresses", "port", "unix_socket_group", "unix_socket_permissions", "archive_command",
             "archive_library", "restore_command", "ssl", "ssl_passphrase_command", "bonjour", "bonjour_name",
             "cluster_name", "event_source", "log_destination", "logging_collector", "log_filename",
             "syslog_facility", "syslog_ident", "dynamic_library_path", "local_preload_libraries"}


def _server_settings(bindir: Path) -> tuple[str, list[dict[str, Any]]]:
    """`pg_settings` of a throwaway server started from `bindir` (version string, rows)."""
    work = Path(tempfile.mkdtemp(prefix="rds-params-"))
    data, sock = work / "data", work / "sock"
    sock.mkdir()
    # PostgreSQL refuses to run as root: there, the server runs as the `postgres` system user.
    as_server = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_server:
        shutil.chown(work, "postgres")
        shutil.chown(sock, "postgres")
    try:
        subprocess.run([*as_server, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
                       check=True, capture_output=True)
        libs = _installed_preload(bindir)
        conf = [f"unix_socket_directories = '{sock}'", "listen_addresses = ''"]
        if libs:
            conf.append(f"shared_preload_libraries = '{','.join(libs)}'")
        with (data / "postgresql.conf").open("a") as f:
            f.write("\n".join(conf) + "\n")
        subprocess.run([*as_server, str(bindir / "pg_ctl"), "start", "-D", str(data), "-l", str(work / "log"),
                        "-w"], check=True, capture_output=True)
        try:
            for _ in range(50):
                try:
                    conn = psycopg.connect(host=str(sock), user="postgres", dbname="postgres")
                    break
                except psycopg.OperationalError:
                    time.sleep(0.1)
            with conn:
                version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
                cur = conn.execute("SELECT name, context, vartype, unit, min_val, max_val, enumvals "
                                   "FROM pg_settings ORDER BY name")
                columns = [d.name for d in cur.description or ()]
                return str(version), [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
        finally:
            subprocess.run([*as_server, str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast"],
                           capture_output=True, check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _installed_preload(bindir: Path) -> list[str]:
    out = subprocess.run([str(bindir / "pg_config"), "--pkglibdir"], capture_output=True, text=True, check=False)
    libdir = Path(out.stdout.strip()) if out.returncode == 0 else bindir.parent / "lib"
    return [lib for lib in PRELOAD if (libdir / f"{lib}.so").exists()]


def _row(setting: dict[str, Any]) -> dict[str, Any] | None:
    name, context, vartype = setting["name"], setting["context"], setting["vartype"]
    if context == "internal" or name in HOST_ONLY or name.endswith(HOST_ONLY_SUFFIXES):
        return None
    row: dict[str, Any] = {"apply": "static" if context == "postmaster" else "dynamic", "type": vartype}
    if vartype == "bool":
        row["allowed"] = ["0", "1"]
    elif vartype == "enum":
        row["allowed"] = list(setting["enumvals"] or [])
    elif vartype in ("integer", "real"):
        number = int if vartype == "integer" else float
        row["min"], row["max"] = number(setting["min_val"]), number(setting["max_val"])
    if setting["unit"]:
        row["unit"] = setting["unit"]
    return row


def _from_aws(path: Path) -> dict[str, dict[str, Any]]:
    """Rows from `describe-engine-default-parameters` output (EngineDefaults.Parameters)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    params = data.get("EngineDefaults", data).get("Parameters", [])
    rows: dict[str, dict[str, Any]] = {}
    for p in params:
        if not p.get("IsModifiable", True):
            continue
        row: dict[str, Any] = {"apply": p.get("ApplyType", "static"), "type": p.get("DataType", "string"),
                               "source": f"aws rds describe-engine-default-parameters ({path.name})"}
        allowed = str(p.get("AllowedValues") or "")
        if allowed and "-" in allowed and row["type"] in ("integer", "float") and "," not in allowed:
            low, _, high = allowed.partition("-")
            with contextlib.suppress(ValueError):
                row["min"], row["max"] = float(low), float(high)
        elif allowed and "," in allowed:
            row["allowed"] = [v.strip() for v in allowed.split(",")]
        if p.get("ParameterValue") is not None:
            row["rdsDefault"] = str(p["ParameterValue"])
        rows[p["ParameterName"]] = row
    return rows


def build(major: int, bindir: Path | None, aws_file: Path | None) -> dict[str, Any]:
    overlay = yaml.safe_load((TABLE_DIR / "overlay.yaml").read_text(encoding="utf-8"))
    rows: dict[str, dict[str, Any]] = {}
    sources = []
    if bindir is not None:
        version, settings = _server_settings(bindir)
        if int(version.split(".")[0]) != major:
            sys.exit(f"{bindir}: PostgreSQL {version}, not {major}")
        sources.append(f"pg_settings of PostgreSQL {version} (context postmaster = static, internal left out)")
        for setting in settings:
            row = _row(setting)
            if row is not None:
                rows[setting["name"]] = row
    for name, row in (overlay.get("parameters") or {}).items():
        families = row.pop("families", None)
        if families is not None and f"postgres{major}" not in families:
            continue
        per_family = row.pop("perFamily", {}).get(f"postgres{major}", {})
        rows[name] = {**rows.get(name, {}), **row, **per_family}
    sources.append("config/rds_parameters/overlay.yaml (AWS documentation, cited per row)")
    if aws_file is not None:
        rows.update(_from_aws(aws_file))
        sources.append(f"AWS describe-engine-default-parameters ({aws_file.name})")
    return {
        "family": f"postgres{major}",
        "generated": datetime.date.today().isoformat(),
        "generator": "scripts/rds_parameter_table.py",
        "sources": sources,
        "parameters": dict(sorted(rows.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--major", type=int, default=15)
    parser.add_argument("--postgres-bin", type=Path, help="bin directory of a PostgreSQL of that major version")
    parser.add_argument("--from-aws", type=Path, help="JSON of aws rds describe-engine-default-parameters")
    args = parser.parse_args(argv)
    if args.postgres_bin is None and args.from_aws is None:
        parser.error("give --postgres-bin, --from-aws or both")
    table = build(args.major, args.postgres_bin, args.from_aws)
    target = TABLE_DIR / f"postgres{args.major}.json"
    target.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"{target.relative_to(ROOT)}: {len(table['parameters'])} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
