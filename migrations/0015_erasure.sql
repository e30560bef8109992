-- Tenant erasure (issue 11): the platform-level record that a terminated tenant's data was erased. Every row of the
-- tenant itself is gone (src/admin/erase.ts), its audit trail included; this row is what remains: which tenant, who
-- asked, when, and how many rows each table lost. A platform table (no tenant_id column: no tenant's session may see
-- it, and no tenant wall would make sense for a tenant that no longer exists); only the admin connection reads or
-- writes it. A slug may be taken again after its erasure, so erased_tenant is not unique.
CREATE TABLE tenant_erasure (
  id             text PRIMARY KEY,
  erased_tenant  text NOT NULL,
  -- who terminated the tenant (or asked for the erasure), as the audit trail names accounts
  requested_by   text NOT NULL,
  requested_at   timestamptz NOT NULL,
  erased_at      timestamptz NOT NULL DEFAULT now(),
  -- table name -> rows deleted (every table that has a tenant_id column, plus tenant, oidc_payload)
  row_counts     jsonb NOT NULL,
  files_removed  integer NOT NULL DEFAULT 0
);
CREATE INDEX tenant_erasure_tenant_idx ON tenant_erasure (erased_tenant, erased_at);
