#!/usr/bin/env bash
# Runs once, when the postgres container initialises its data folder:
# a login role and a database owned by it for every service.
set -euo pipefail
for service in intake scheduling dosing safety billing engagement; do
  var="${service^^}_DB_PASSWORD"
  password="${!var:?$var must be set}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v service="$service" -v password="$password" <<'SQL'
CREATE ROLE :"service" LOGIN PASSWORD :'password';
CREATE DATABASE :"service" OWNER :"service";
SQL
done
