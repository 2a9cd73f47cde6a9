-- One database per service, created on the PostgreSQL container's first start
-- (files in /docker-entrypoint-initdb.d run once, on an empty data volume).
-- Each service keeps its own migration history table, so a shared database
-- would work too; separate ones keep "no service reads another's tables" true.
CREATE DATABASE expansion_health;
CREATE DATABASE expansion_pipeline;
CREATE DATABASE expansion_credit;
