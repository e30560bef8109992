-- Invitations (issue 11): the single-use link a new tenant's first administrator (or any invited user) opens to set
-- a password, and to enrol TOTP when the tenant requires it. Only the SHA-256 of the link's token is stored, so the
-- table cannot be turned back into working links. A tenant table like the others (tenant_id first, row-level security).
CREATE TABLE tenant_invitation (
  tenant_id    text NOT NULL,
  token_hash   text NOT NULL,             -- base64url SHA-256 of the link's 32-byte token
  username     text NOT NULL,
  role         text NOT NULL,
  display_name text,
  email        text,
  created_by   text NOT NULL,             -- the inviting account (or 'cli'), for the record
  expires_at   timestamptz NOT NULL,
  used_at      timestamptz,               -- set once: the link works one time only
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, token_hash)
);

ALTER TABLE tenant_invitation ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_invitation FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_invitation USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_invitation TO fhir_app;
