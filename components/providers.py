"""The pulumi-postgresql providers the platform connects through: never a superuser, TLS verified.

`rds_admin_provider` for an AWS stack (the instance's master user, password from its RDS-managed secret),
`local_provider` for the `local` stack (the admin login `edumatrix-db local up` wrote); both build on
`postgres_provider`. `components.service_schema` declares the schemas through whichever one it is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pulumi
import pulumi_aws as aws
import pulumi_postgresql as postgresql

from config.settings import StackSettings


def postgres_provider(
    name: str,
    *,
    host: pulumi.Input[str],
    port: pulumi.Input[int],
    username: pulumi.Input[str],
    password: pulumi.Input[str],
    database: str,
    sslrootcert: str,
    opts: pulumi.ResourceOptions | None = None,
) -> postgresql.Provider:
    """The pulumi-postgresql provider as the platform admin: not a superuser, TLS verified (verify-full).

    AWS stacks pass the instance's `address` as host and the RDS CA bundle path as `sslrootcert`.
    """
    return postgresql.Provider(
        name,
        host=host,
        port=port,
        username=username,
        password=password,
        database=database,
        sslmode="verify-full",
        sslrootcert=sslrootcert,
        superuser=False,
        connect_timeout=15,
        opts=opts,
    )


def local_provider(
    settings: StackSettings, project_root: Path, opts: pulumi.ResourceOptions | None = None
) -> postgresql.Provider:
    """The provider of the `local` stack: the admin login that `edumatrix-db local up` wrote.

    Without `.local/connections.json` (an offline plan, a fresh checkout) it falls back to the defaults
    `local up` would use and warns; a real `pulumi up` then fails to connect, saying where.
    """
    path = project_root / settings.local.connections_file
    host, port = "127.0.0.1", settings.local.preferred_port
    username, password = settings.instance.master_username, ""
    sslrootcert = ".local/tls/ca.crt"
    if path.is_file():
        admin = urlsplit(json.loads(path.read_text())["admin"])
        query = dict(part.split("=", 1) for part in admin.query.split("&") if "=" in part)
        host, port = admin.hostname or host, admin.port or port
        username, password = unquote(admin.username or username), unquote(admin.password or "")
        sslrootcert = _relative_to(project_root, unquote(query.get("sslrootcert", sslrootcert)))
    else:
        pulumi.log.warn(
            f"{path} not found: run `edumatrix-db local up --server-only` before `pulumi up --stack local`"
        )
    return postgres_provider(
        "local-postgresql",
        host=host,
        port=port,
        username=username,
        password=pulumi.Output.secret(password),
        database=settings.instance.database_name,
        sslrootcert=sslrootcert,
        opts=opts,
    )


def _relative_to(project_root: Path, path: str) -> str:
    """`path` relative to the project root when it lies inside it: plans do not depend on the checkout's place."""
    try:
        return str(Path(path).resolve().relative_to(project_root.resolve()))
    except ValueError:
        return path


def rds_admin_provider(
    name: str,
    *,
    address: pulumi.Input[str],
    port: pulumi.Input[int],
    master_username: str,
    master_secret_arn: pulumi.Input[str],
    database: str,
    rds_ca_bundle: str,
    opts: pulumi.ResourceOptions | None = None,
) -> postgresql.Provider:
    """The provider of an AWS stack: the instance's `address`, the master password read from its Secrets Manager
    secret (the platform's, or the RDS-managed one; after rotation the secret is the only place it is right),
    TLS verified against the RDS CA bundle (a PEM file path relative to the project root, e.g. AWS's
    `global-bundle.pem` committed to the repository)."""
    return postgres_provider(
        name,
        host=address,
        port=port,
        username=master_username,
        password=master_password(master_secret_arn),
        database=database,
        sslrootcert=rds_ca_bundle,
        opts=opts,
    )


def master_password(master_secret_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The master password as its Secrets Manager secret holds it now (after rotation the only right place)."""
    secret = aws.secretsmanager.get_secret_version_output(secret_id=master_secret_arn)
    return pulumi.Output.secret(secret.secret_string.apply(lambda text: json.loads(text)["password"] if text else ""))
