-- Extended planner statistics for the search index tables and `resource` (issue 14, docs/performance.md).
-- PostgreSQL estimates a search criterion such as `MedicationRequest?status=active` as the product of its columns'
-- separate selectivities (tenant, resource type, parameter code, value), although they go together: it guessed 139
-- index rows where there were 3,271, so it collected every match and sorted them instead of walking
-- `resource_updated_idx` in the page's order and stopping after one page (40 ms against 4 ms for 50 of 3,271 matches).
-- The most common combinations (MCV) and the functional dependencies between the columns give it the real counts.
-- They are built by ANALYZE: by autovacuum, or by the server's own statistics upkeep where autovacuum is off
-- (STATS_INTERVAL_MS). On Citus, CREATE STATISTICS on a distributed table is created on each of its shards.
CREATE STATISTICS IF NOT EXISTS sp_token_combo (mcv, dependencies) ON tenant_id, resource_type, code, value FROM sp_token;
CREATE STATISTICS IF NOT EXISTS sp_reference_combo (mcv, dependencies) ON tenant_id, resource_type, code, target_type FROM sp_reference;
CREATE STATISTICS IF NOT EXISTS sp_string_combo (mcv, dependencies) ON tenant_id, resource_type, code FROM sp_string;
CREATE STATISTICS IF NOT EXISTS sp_date_combo (mcv, dependencies) ON tenant_id, resource_type, code FROM sp_date;
CREATE STATISTICS IF NOT EXISTS sp_number_combo (mcv, dependencies) ON tenant_id, resource_type, code FROM sp_number;
CREATE STATISTICS IF NOT EXISTS sp_uri_combo (mcv, dependencies) ON tenant_id, resource_type, code FROM sp_uri;
CREATE STATISTICS IF NOT EXISTS sp_composite_combo (mcv, dependencies) ON tenant_id, resource_type, code FROM sp_composite;
CREATE STATISTICS IF NOT EXISTS resource_combo (mcv, dependencies) ON tenant_id, resource_type FROM resource;
