-- Break-glass support access (issue 11, src/auth/break-glass.ts): a platform administrator asks for time-limited,
-- read-only access to ONE tenant's data, for a stated reason. A tenant table (its administrators see and decide the
-- grants of their tenant; another tenant's session sees none), keyed by tenant_id like every tenant table.
--
-- status: pending (awaiting a tenant admin, when the tenant's settings.breakGlassApproval is true) | approved (active
-- from starts_at until expires_at; past expires_at it has simply expired: no job changes the row) | denied | revoked.
CREATE TABLE break_glass_grant (
  tenant_id      text NOT NULL,
  id             text NOT NULL,
  requested_by   text NOT NULL,          -- the platform administrator's account (their tokens' `sub`)
  requested_name text NOT NULL,          -- their username, as the tenant's administrators read it
  reason         text NOT NULL,
  requested_at   timestamptz NOT NULL,
  minutes        integer NOT NULL CHECK (minutes > 0),
  status         text NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'revoked')),
  decided_by     text,                   -- who approved or denied it (account); NULL with decided_at: the tenant's policy approved it
  decided_name   text,
  decided_at     timestamptz,
  starts_at      timestamptz,            -- set when approved
  expires_at     timestamptz,            -- starts_at + minutes; moved back to the revocation time by a revoke
  revoked_by     text,                   -- who revoked it (either side), when and why
  revoked_name   text,
  revoked_at     timestamptz,
  revoke_reason  text,
  PRIMARY KEY (tenant_id, id),
  CHECK (status <> 'approved' OR (starts_at IS NOT NULL AND expires_at IS NOT NULL))
);
-- the active-grant lookup of every platform administrator's FHIR request, and "their" grants in the admin API
CREATE INDEX break_glass_grant_requester_idx ON break_glass_grant (tenant_id, requested_by, requested_at);

ALTER TABLE break_glass_grant ENABLE ROW LEVEL SECURITY;
ALTER TABLE break_glass_grant FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON break_glass_grant USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
-- no DELETE: a grant is part of the tenant's record of who could see its data (tenant erasure runs as the owner)
GRANT SELECT, INSERT, UPDATE ON break_glass_grant TO fhir_app;
