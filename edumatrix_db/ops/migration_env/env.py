"""Alembic's environment for every service's migrations: `edumatrix-db migrate` passes the migrator's
connection and the service in `config.attributes`; this file only hands over to edumatrix_db.ops.migrate."""

from alembic import context

from edumatrix_db.ops.migrate import run_migrations

run_migrations(context)
