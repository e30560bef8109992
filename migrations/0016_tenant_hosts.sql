-- Host-based tenants (issue 11, src/tenancy/tenant-hosts.ts): a request names its tenant by Host before any tenant is
-- bound, and fhir_app sees only the bound tenant's `tenant` row. One function answers the (host, tenant id) pairs and
-- nothing else: it runs as fhir_host_lookup, a role that cannot log in and may read only those two columns, whose one
-- policy lets it see every row; fhir_app may call the function and nothing else of that role (as 0006's
-- fhir_notify_scan does for the outbox).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fhir_host_lookup') THEN
    CREATE ROLE fhir_host_lookup NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
  -- ALTER FUNCTION ... OWNER TO needs membership in the new owner (superusers have it anyway)
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT fhir_host_lookup TO %I', current_user);
  END IF;
END
$$;
GRANT SELECT (id, host) ON tenant TO fhir_host_lookup;
CREATE POLICY host_lookup ON tenant FOR SELECT TO fhir_host_lookup USING (true);

CREATE FUNCTION tenant_hosts() RETURNS TABLE (host text, tenant_id text) LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $f$
  SELECT t.host, t.id FROM public.tenant t WHERE t.host IS NOT NULL
$f$;

ALTER FUNCTION tenant_hosts() OWNER TO fhir_host_lookup;
REVOKE ALL ON FUNCTION tenant_hosts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_hosts() TO fhir_app;
