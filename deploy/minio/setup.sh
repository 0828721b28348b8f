#!/bin/sh
# One-shot setup of the MinIO that docker-compose.yml and deploy/k8s/overlays/local start: the
# bucket `dpe` (versioned), then one user per client with only its policy (policies/CLIENT.json):
#   dpe-mlflow    mlflow/*           MLflow's artifacts (the server proxies them for its clients)
#   dpe-api       store/models/* read, store/predictions/* (the prediction log)
#   dpe-sync      store/models/*     the champion it exports
#   dpe-workbench store/*            ingest, datasets, promotion, monitoring
#   dpe-pipeline  store/*            the same steps, run by the scheduler
# Every client may list the bucket's keys (s3fs lists before it reads); reading and writing
# objects are limited to its prefixes. The root account is used here only.
# Idempotent: a rerun sets the passwords and policies again.
# Environment: MINIO_URL, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD, and each client's secret key
# S3_SECRET_MLFLOW, S3_SECRET_API, S3_SECRET_SYNC, S3_SECRET_WORKBENCH, S3_SECRET_PIPELINE.
set -eu
policies="$(dirname "$0")/policies"

mc alias set local "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing local/dpe
mc version enable local/dpe

for client in mlflow api sync workbench pipeline; do
  variable="S3_SECRET_$(echo "$client" | tr '[:lower:]' '[:upper:]')"
  secret="$(printenv "$variable")" || { echo "$variable is not set" >&2; exit 1; }
  mc admin policy create local "dpe-$client" "$policies/$client.json"
  mc admin user add local "dpe-$client" "$secret"
  if ! attached="$(mc admin policy attach local "dpe-$client" --user "dpe-$client" 2>&1)"; then
    case "$attached" in
      *already*) ;;  # attached by an earlier run
      *) echo "$attached" >&2; exit 1 ;;
    esac
  fi
done
echo "bucket dpe and its 5 client users are ready"
