-- Authorization (SMART-on-FHIR on oidc-provider): users per tenant, EHR launch contexts, registered clients,
-- signing keys, and the authorization server's own artifacts (codes, sessions, grants, refresh tokens, ...).
--
-- Tenant data (app_user, launch_context, registration_token) is tenant-first with the same row-level security as
-- every FHIR table. The authorization server's platform tables (oauth_client, oidc_payload, signing_key,
-- auth_secret) are looked up by opaque ids before any tenant is known (a client_id at the token endpoint, a session
-- cookie), so they carry no tenant wall; only src/store/auth-*.ts touches them (docs/design-notes.md, "Auth tables").

-- Staff and patients who sign in. Platform administrators live under the reserved tenant id 'platform' (no tenant
-- can take that slug). password_hash is argon2id.
CREATE TABLE app_user (
  tenant_id        text NOT NULL,
  id               text NOT NULL,
  username         text NOT NULL,
  password_hash    text NOT NULL,
  role             text NOT NULL,
  fhir_user        text,
  display_name     text,
  totp_secret      text,
  -- the 30-second step of the last accepted code: a code is accepted once (RFC 6238 §5.2)
  totp_last_step   bigint,
  failed_logins    integer NOT NULL DEFAULT 0,
  locked_until     timestamptz,
  disabled         boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX app_user_username_idx ON app_user (tenant_id, lower(username));

-- EHR launch: an authenticated EHR creates a context; the app later presents its opaque `launch` value.
CREATE TABLE launch_context (
  tenant_id    text NOT NULL,
  id           text NOT NULL,
  client_id    text,
  patient      text,
  encounter    text,
  created_by   text NOT NULL,
  expires_at   timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);

-- RFC 7591 initial access tokens that a tenant admin obtains; only their SHA-256 is stored.
CREATE TABLE registration_token (
  tenant_id    text NOT NULL,
  token_hash   text NOT NULL,
  scope        text NOT NULL,
  created_by   text NOT NULL,
  expires_at   timestamptz NOT NULL,
  used_at      timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, token_hash)
);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['app_user','launch_context','registration_token'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting('app.tenant_id', true))
                      WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO fhir_app', t);
  END LOOP;
END
$$;

-- OAuth clients (apps and backend services), each registered to exactly one tenant. `metadata` is the client's
-- RFC 7591 metadata as oidc-provider reads it (including the tenant property).
CREATE TABLE oauth_client (
  client_id    text PRIMARY KEY,
  tenant_id    text NOT NULL,
  metadata     jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oauth_client_tenant_idx ON oauth_client (tenant_id, client_id);

-- oidc-provider's artifacts (adapter models): Session, Interaction, AuthorizationCode, RefreshToken, Grant,
-- ReplayDetection, ... plus SmartGrant (the SMART launch context of a grant).
CREATE TABLE oidc_payload (
  model        text NOT NULL,
  id           text NOT NULL,
  payload      jsonb NOT NULL,
  grant_id     text,
  uid          text,
  user_code    text,
  expires_at   timestamptz,
  consumed_at  timestamptz,
  PRIMARY KEY (model, id)
);
CREATE INDEX oidc_payload_grant_idx ON oidc_payload (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX oidc_payload_uid_idx ON oidc_payload (model, uid) WHERE uid IS NOT NULL;
CREATE INDEX oidc_payload_expiry_idx ON oidc_payload (expires_at);

-- Signing keys (JWK), generated on first start; the newest active key signs, every unexpired key verifies.
CREATE TABLE signing_key (
  kid          text PRIMARY KEY,
  alg          text NOT NULL,
  private_jwk  jsonb NOT NULL,
  public_jwk   jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  -- set by rotation: the key stops signing at once and stops verifying after retire_at
  superseded_at timestamptz,
  retire_at    timestamptz
);

-- Server secrets (cookie signing keys), generated on first start.
CREATE TABLE auth_secret (
  name         text PRIMARY KEY,
  value        text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE, DELETE ON oauth_client, oidc_payload, signing_key, auth_secret TO fhir_app;
