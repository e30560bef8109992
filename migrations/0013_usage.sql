-- Usage (issue 11): requests and last activity per tenant and day (UTC). Every server process counts admitted FHIR
-- requests in memory and adds them here every USAGE_FLUSH_INTERVAL_MS with one upsert per tenant
-- (src/tenancy/usage.ts, src/store/usage.ts), so the processes add up. One row per tenant and day: kept.
CREATE TABLE tenant_activity (
  tenant_id     text NOT NULL,
  day           date NOT NULL,
  requests      bigint NOT NULL DEFAULT 0,
  last_activity timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, day)
);

ALTER TABLE tenant_activity ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_activity FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_activity USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_activity TO fhir_app;
