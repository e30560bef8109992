-- Plans (issue 11, docs/plans.md): what a tenant is sold and the quotas that come with it, as data a platform admin
-- edits (src/store/plans.ts upsertPlan). A small platform table (no tenant_id: a reference table under Citus,
-- docs/scaling.md); tenant.plan (migrations/0010) names a row of it. `quotas` holds every quota of src/core/plans.ts
-- Quotas by name: a non-negative integer, or null for unlimited.
CREATE TABLE plan (
  id            text PRIMARY KEY,
  name          text NOT NULL,
  description   text NOT NULL DEFAULT '',
  trial_days    integer,               -- a trial's length (tenant.trial_ends_at is set from it); null for paid plans
  tenant_types  text[] NOT NULL DEFAULT '{}',  -- the tenant types it is sold to; empty: any
  quotas        jsonb NOT NULL,
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The tiers of the issue; the numbers it leaves open are chosen in docs/plans.md. 1 GiB = 1073741824 bytes.
INSERT INTO plan (id, name, description, trial_days, tenant_types, quotas) VALUES
  ('trial', 'Trial', '30 days to try the platform: 5 staff, 1,000 patients, 1 location.', 30, '{}',
   '{"staffUsers": 5, "patients": 1000, "locations": 1, "storageBytes": 1073741824, "requestsPerMinute": 600,
     "sessions": 10, "subscriptions": 5, "clients": 3}'),
  ('solo-practice', 'Solo practice', 'One practice at one location, up to 10 staff.', NULL, '{solo-practice,lab}',
   '{"staffUsers": 10, "patients": 25000, "locations": 1, "storageBytes": 10737418240, "requestsPerMinute": 1200,
     "sessions": 25, "subscriptions": 10, "clients": 10}'),
  ('multi-branch', 'Multi-branch', 'Multi-branch clinics and diagnostic centres: up to 10 branches and 50 staff.', NULL,
   '{multi-branch,diagnostic-centre,lab}',
   '{"staffUsers": 50, "patients": 250000, "locations": 10, "storageBytes": 107374182400, "requestsPerMinute": 6000,
     "sessions": 150, "subscriptions": 50, "clients": 25}'),
  ('hospital-group', 'Hospital group', 'Hospital groups: no quota.', NULL, '{hospital-group}',
   '{"staffUsers": null, "patients": null, "locations": null, "storageBytes": null, "requestsPerMinute": null,
     "sessions": null, "subscriptions": null, "clients": null}')
ON CONFLICT (id) DO NOTHING;

-- Every process reads the plans as fhir_app; only the platform administration (admin connection) writes them.
GRANT SELECT ON plan TO fhir_app;
