-- Background jobs (first user: $reindex). Resumable: the keyset position is stored after every batch.
CREATE TABLE job (
  tenant_id   text NOT NULL,
  id          text NOT NULL,
  kind        text NOT NULL,
  status      text NOT NULL,            -- running | completed | failed
  params      jsonb NOT NULL DEFAULT '{}'::jsonb,
  total       integer NOT NULL DEFAULT 0,
  done        integer NOT NULL DEFAULT 0,
  cursor      jsonb,
  error       text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX job_status_idx ON job (tenant_id, status, updated_at);
ALTER TABLE job ENABLE ROW LEVEL SECURITY;
ALTER TABLE job FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON job USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON job TO fhir_app;
