#!/bin/sh
# PostgreSQL's first start (docker-entrypoint-initdb.d; tests/support/topology.py runs it too):
# one role and one database per client, neither a superuser. The superuser of
# POSTGRES_USER / POSTGRES_PASSWORD stays unused after this.
#   mlflow   owns the database mlflow   (MLflow's runs and registry)    MLFLOW_DB_PASSWORD
#   airflow  owns the database airflow  (Airflow's metadata)            AIRFLOW_DB_PASSWORD
# A volume made before this script existed keeps its roles: create these two by hand.
set -eu
psql --no-psqlrc --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
  --set mlflow_password="$MLFLOW_DB_PASSWORD" --set airflow_password="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
-- Neither client may open the other's database.
REVOKE CONNECT ON DATABASE mlflow FROM PUBLIC;
REVOKE CONNECT ON DATABASE airflow FROM PUBLIC;
GRANT CONNECT ON DATABASE mlflow TO mlflow;
GRANT CONNECT ON DATABASE airflow TO airflow;
SQL
