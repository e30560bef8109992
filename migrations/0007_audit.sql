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

-- A read by id that records itself (src/store/resources.ts readCurrentAudited): the current version and, when it exists
-- and is not deleted, its audit record, in one call. A function so that its statements' plans are cached per
-- connection (planning the same work as one ad-hoc statement cost more than the read). It runs as the caller, under
-- row-level security like any statement. The read's commit is asynchronous: the record is committed before the
-- request answers, durable once the WAL writer flushes (a fraction of a second later).
CREATE FUNCTION audit_read_current(p_type text, p_id text, p_recorded timestamptz, p_user_ref text, p_user_sub text,
    p_client text, p_role text, p_address text, p_purpose text[], p_request text)
  RETURNS TABLE (rt text, rid text, vid integer, lu timestamptz, del boolean, body text)
  LANGUAGE plpgsql AS $f$
DECLARE
  t text := current_setting('app.tenant_id', true);
  cur record;
BEGIN
  SELECT r.version_id, r.last_updated, r.deleted, r.content::text AS content INTO cur
    FROM resource r WHERE r.tenant_id = t AND r.resource_type = p_type AND r.id = p_id;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF NOT cur.deleted THEN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO audit_event (tenant_id, recorded, category, subtype, action, outcome, user_ref, user_sub, client_id, role,
                             address, purpose, entity, entity_version, patient, request_id)
    VALUES (t, p_recorded, 'rest', 'read', 'R', 0, p_user_ref, p_user_sub, p_client, p_role, p_address, p_purpose,
            ARRAY[p_type || '/' || p_id], ARRAY[cur.version_id],
            -- (a UNION with the Patient's own id cost twice as much as the lookup itself)
            CASE WHEN p_type = 'Patient' THEN ARRAY[p_id]
                 ELSE ARRAY(SELECT DISTINCT x.target_id FROM sp_reference x
                             WHERE x.tenant_id = t AND x.resource_id = p_id AND x.resource_type = p_type AND x.target_type = 'Patient') END,
            p_request);
  END IF;
  rt := p_type; rid := p_id; vid := cur.version_id; lu := cur.last_updated; del := cur.deleted; body := cur.content;
  RETURN NEXT;
END
$f$;
GRANT EXECUTE ON FUNCTION audit_read_current(text, text, timestamptz, text, text, text, text, text, text[], text) TO fhir_app;
