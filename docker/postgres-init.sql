-- Runs once when the PostgreSQL container initialises its data directory.
-- The server migrates as the owner (POSTGRES_USER) and serves requests as fhir_server, a plain login role
-- that the server grants fhir_app (no table ownership, no BYPASSRLS): row-level security binds it.
CREATE ROLE fhir_server LOGIN PASSWORD 'fhir_server' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
