-- The audit trail (issue 12): one row per interaction, sign-in, token issue, ... of a tenant, rendered as a FHIR
-- AuditEvent (IHE Basic Audit Log Patterns shape) when it is read. A row is small and has four indexes, so auditing
-- every read costs a fraction of storing an AuditEvent resource with its history and search index rows.
--
-- Append-only for the application: fhir_app may SELECT and INSERT, never UPDATE or DELETE. The retention purge runs
-- on the owner's (admin) connection (src/store/audit.ts purgeAudit).
CREATE TABLE audit_event (
  tenant_id      text NOT NULL,
  seq            bigint GENERATED ALWAYS AS IDENTITY,
  recorded       timestamptz NOT NULL,
  category       text NOT NULL,             -- AuditEvent.type: rest | login | logout | token | ... (src/fhir/audit.ts)
  subtype        text NOT NULL,             -- read | search-type | create | ... | sign-in | token-issue | purge ...
  action         text NOT NULL,             -- C R U D E
  outcome        smallint NOT NULL,         -- 0 success, 4 minor failure (4xx), 8 serious failure (5xx), 12 major
  outcome_desc   text,
  user_ref       text,                      -- the user as a FHIR reference (fhirUser), when known
  user_sub       text,                      -- the user's account (token subject / sign-in name)
  client_id      text,
  role           text,
  address        text,                      -- the network address the request came from
  purpose        text[],
  entity         text[] NOT NULL DEFAULT '{}',   -- 'Type/id' of each resource touched
  entity_version integer[] NOT NULL DEFAULT '{}', -- its version (0: none), same positions as entity
  patient        text[] NOT NULL DEFAULT '{}',   -- ids of the patients those resources belong to
  query          text,                      -- a search's query string
  request_id     text,
  detail         jsonb,
  PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_event_recorded_idx ON audit_event (tenant_id, recorded, seq);
CREATE INDEX audit_event_refs_idx ON audit_event USING gin (patient, entity);
CREATE INDEX audit_event_user_idx ON audit_event (tenant_id, user_ref, recorded) WHERE user_ref IS NOT NULL;

ALTER TABLE audit_event ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_event FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_event USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON audit_event TO fhir_app;
