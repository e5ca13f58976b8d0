#!/bin/bash
# The pooler task's entrypoint (pooler-image/Dockerfile). PID 1 is ECS's init (the task definition's
# initProcessEnabled): it reaps children and passes SIGTERM on to this script.
#   1. the agent renders PgBouncer's files from the environment and the backend record (docs/extraction-runbook.md,
#      "The pooler image");
#   2. PgBouncer starts on them;
#   3. the agent watches the record and RELOADs PgBouncer over the unix socket when it changes.
# If either process ends, the task ends and ECS replaces it (the new task reads the record at start).
set -euo pipefail

RUN=/run/pgbouncer
AGENT=/opt/edumatrix/pooler_agent.py
: "${EDUMATRIX_POOLER_RECORD:?the task definition sets it (components/service_pooler.py)}"
: "${PGBOUNCER_DATABASE:?the task definition sets it}"
PORT="${PGBOUNCER_LISTEN_PORT:-6432}"

python3 "$AGENT" render --dir "$RUN" --record "$EDUMATRIX_POOLER_RECORD"
pgbouncer "$RUN/pgbouncer.ini" &
pgbouncer_pid=$!
python3 "$AGENT" run --ini "$RUN/pgbouncer.ini" --record "$EDUMATRIX_POOLER_RECORD" --alias "$PGBOUNCER_DATABASE" \
    --admin "host=$RUN port=$PORT user=pgbouncer dbname=pgbouncer" &
agent_pid=$!

# ECS stops a task with SIGTERM, then SIGKILL after stopTimeout (30 s). PgBouncer's SIGINT is its safe shutdown
# (PAUSE, then exit once running transactions finished); its SIGTERM would drop them.
trap 'kill -INT "$pgbouncer_pid" 2>/dev/null; kill -TERM "$agent_pid" 2>/dev/null' TERM INT
set +e
wait -n "$pgbouncer_pid" "$agent_pid"
status=$?
kill -INT "$pgbouncer_pid" 2>/dev/null
kill -TERM "$agent_pid" 2>/dev/null
wait
exit "$status"
