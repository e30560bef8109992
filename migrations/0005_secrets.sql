-- Hardening (issue 8): secrets at rest, and sign-in lockout per client address.
--
-- Signing keys, the cookie key, client secrets and TOTP secrets are encrypted by the server with a key that lives
-- outside the database (SECRETS_KEY or DATA_DIR/secrets.key), so SQL cannot do it here: rows written before this
-- migration are read as plaintext and sealed by the server at its next start (docs/auth-design.md, "Secrets at rest").

-- oidc-provider's opaque artifacts are looked up by their id, which IS the bearer value (refresh token, authorization
-- code, session cookie, ...). From now on a row is keyed by the SHA-256 (hex) of the id, and the payload's own copy
-- of it (`jti`) is not kept; src/store/auth-payloads.ts hashes the id it is given on every lookup. grant_id, uid and
-- user_code stay as they are.
UPDATE oidc_payload
   SET id = encode(sha256(convert_to(id, 'UTF8')), 'hex'),
       payload = CASE WHEN payload->>'jti' = id THEN payload - 'jti' ELSE payload END;

-- The application only reads signing keys and server secrets: first-start key generation, `keys rotate|retire` and
-- the cookie key go through the owner connection (src/store/auth-keys.ts).
REVOKE INSERT, UPDATE, DELETE ON signing_key, auth_secret FROM fhir_app;

-- Failed sign-ins per (account, client address), plus one account-wide row per account (address '*'). Five failures
-- from one address lock that address out of the account; the account-wide ceiling locks it for everyone. Supersedes
-- app_user.failed_logins/locked_until, which are no longer read or written (locks under them simply lapse).
CREATE TABLE signin_counter (
  tenant_id     text NOT NULL,
  user_id       text NOT NULL,
  address       text NOT NULL,
  failures      integer NOT NULL DEFAULT 0,
  locked_until  timestamptz,
  -- when the counter is forgotten: AUTH_LOCKOUT_MINUTES after the last failure, or after the end of its lock
  expires_at    timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, user_id, address)
);
CREATE INDEX signin_counter_expiry_idx ON signin_counter (tenant_id, expires_at);

ALTER TABLE signin_counter ENABLE ROW LEVEL SECURITY;
ALTER TABLE signin_counter FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON signin_counter USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON signin_counter TO fhir_app;
