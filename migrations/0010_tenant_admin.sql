-- Tenant administration (issue 11): what a tenant is sold (plan, type), how it looks (branding), its own host name,
-- and where it is in its life (trial end, when the status last changed, when a terminated tenant is erased).
-- `tenant` stays a small platform table (no tenant_id column: a reference table under Citus, docs/scaling.md).
ALTER TABLE tenant
  ADD COLUMN plan              text,
  ADD COLUMN type              text,
  ADD COLUMN branding          jsonb NOT NULL DEFAULT '{}'::jsonb,
  ADD COLUMN host              text,
  ADD COLUMN trial_ends_at     timestamptz,
  ADD COLUMN status_changed_at timestamptz,
  ADD COLUMN terminate_after   timestamptz;

-- the lifecycle states of src/core/tenant.ts TenantStatus; host names compare lowercase, one tenant each
ALTER TABLE tenant ADD CONSTRAINT tenant_status_known CHECK (status IN ('trial', 'active', 'suspended', 'archived', 'terminated'));
ALTER TABLE tenant ADD CONSTRAINT tenant_host_lowercase CHECK (host = lower(host));
CREATE UNIQUE INDEX tenant_host_idx ON tenant (host) WHERE host IS NOT NULL;
