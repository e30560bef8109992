-- Core storage: tenants, current resources, history, search index tables; row-level security on tenant_id.
-- tenant_id leads every primary key and index (ARCHITECTURE.md "Storage").

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fhir_app') THEN
    CREATE ROLE fhir_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END
$$;

CREATE TABLE tenant (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  status      text NOT NULL DEFAULT 'active',
  settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE resource (
  tenant_id     text NOT NULL,
  resource_type text NOT NULL,
  id            text NOT NULL,
  version_id    integer NOT NULL,
  last_updated  timestamptz NOT NULL,
  deleted       boolean NOT NULL DEFAULT false,
  content       jsonb,
  -- covering: search pages are chosen from the key alone (index-only), bodies are read for the page rows only
  PRIMARY KEY (tenant_id, resource_type, id) INCLUDE (version_id, last_updated, deleted)
);
CREATE INDEX resource_updated_idx ON resource (tenant_id, resource_type, last_updated);

CREATE TABLE resource_history (
  tenant_id     text NOT NULL,
  resource_type text NOT NULL,
  id            text NOT NULL,
  version_id    integer NOT NULL,
  last_updated  timestamptz NOT NULL,
  deleted       boolean NOT NULL DEFAULT false,
  -- 'POST' | 'PUT' | 'DELETE' (PATCH is recorded as PUT, as history.html asks)
  method        text NOT NULL,
  content       jsonb,
  PRIMARY KEY (tenant_id, resource_type, id, version_id)
);
CREATE INDEX resource_history_tenant_time_idx ON resource_history (tenant_id, last_updated);
CREATE INDEX resource_history_type_time_idx ON resource_history (tenant_id, resource_type, last_updated);

-- Search index rows, one per extracted value; `code` is the SearchParameter code.
CREATE TABLE sp_token (
  tenant_id     text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  code          text NOT NULL,
  system        text,
  value         text
);
CREATE INDEX sp_token_value_idx ON sp_token (tenant_id, resource_type, code, value, system);
CREATE INDEX sp_token_resource_idx ON sp_token (tenant_id, resource_id);

CREATE TABLE sp_string (
  tenant_id     text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  code          text NOT NULL,
  norm          text NOT NULL,
  value         text NOT NULL
);
CREATE INDEX sp_string_norm_idx ON sp_string (tenant_id, resource_type, code, norm text_pattern_ops);
CREATE INDEX sp_string_resource_idx ON sp_string (tenant_id, resource_id);

CREATE TABLE sp_reference (
  tenant_id     text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  code          text NOT NULL,
  target_type   text,
  target_id     text,
  url           text
);
CREATE INDEX sp_reference_target_idx ON sp_reference (tenant_id, target_type, target_id, code, resource_type);
CREATE INDEX sp_reference_resource_idx ON sp_reference (tenant_id, resource_id);

CREATE TABLE sp_date (
  tenant_id     text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  code          text NOT NULL,
  low           timestamptz,
  high          timestamptz
);
CREATE INDEX sp_date_idx ON sp_date (tenant_id, resource_type, code, low, high);
CREATE INDEX sp_date_resource_idx ON sp_date (tenant_id, resource_id);

CREATE TABLE sp_number (
  tenant_id     text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  code          text NOT NULL,
  value         numeric,
  system        text,
  unit          text
);
CREATE INDEX sp_number_idx ON sp_number (tenant_id, resource_type, code, value);
CREATE INDEX sp_number_resource_idx ON sp_number (tenant_id, resource_id);

CREATE TABLE sp_uri (
  tenant_id     text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  code          text NOT NULL,
  value         text NOT NULL
);
CREATE INDEX sp_uri_idx ON sp_uri (tenant_id, resource_type, code, value);
CREATE INDEX sp_uri_resource_idx ON sp_uri (tenant_id, resource_id);

-- Second wall: every row is visible and writable only when app.tenant_id names its tenant.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['resource','resource_history','sp_token','sp_string','sp_reference','sp_date','sp_number','sp_uri'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting('app.tenant_id', true))
                      WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO fhir_app', t);
  END LOOP;
END
$$;

-- The tenant table: the application sees only the bound tenant's row (and cannot create tenants);
-- tenant administration goes through the admin connection.
ALTER TABLE tenant ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_self ON tenant USING (id = current_setting('app.tenant_id', true));
GRANT SELECT ON tenant TO fhir_app;
