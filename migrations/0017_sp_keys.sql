-- Search index rows get a primary key (issue 16, docs/scaling.md): Citus moves a shard online by logical replication,
-- which needs a replica identity on every table of the tenant's shard group, and the sp_* tables had none. `seq` is a
-- row number of no meaning (its order is never read); the key leads with (tenant_id, resource_id) like the index it
-- replaces, so the DELETE of a resource's rows (src/store/resources.ts writeVersions) still reads one key range.
-- Every INSERT into these tables names its columns, so the new column fills itself. Each connection takes its numbers
-- 1,000 at a time (CACHE): a number per row from the shared sequence cost a write of twenty index rows about a tenth
-- more; with the cache it costs what it did before the key.
--
-- Citus cannot add an identity column to a distributed table that holds rows, so where the sp_* tables are already
-- distributed (`db distribute` ran before this migration) each is brought back to the coordinator, changed, and
-- distributed again, colocated with `resource` as before. FORCE row-level security would hide every row from the owner
-- while Citus copies them, so it is lifted for the copy and put back as it was. On PGlite and plain PostgreSQL the
-- Citus branches do nothing.
DO $$
DECLARE
  t text;
  citus boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus');
  moved text[] := '{}';
  forced text[] := '{}';
BEGIN
  FOREACH t IN ARRAY ARRAY['sp_token','sp_string','sp_reference','sp_date','sp_number','sp_uri','sp_composite','sp_fulltext'] LOOP
    IF citus THEN
      IF EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = t::regclass) THEN
        moved := moved || t;
        IF (SELECT relforcerowsecurity FROM pg_class WHERE oid = t::regclass) THEN
          forced := forced || t;
          EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
        END IF;
        PERFORM undistribute_table(t);
      END IF;
    END IF;
    EXECUTE format('ALTER TABLE %I ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000), ADD CONSTRAINT %I PRIMARY KEY (tenant_id, resource_id, seq)', t, t || '_pkey');
    EXECUTE format('DROP INDEX %I', t || '_resource_idx');
  END LOOP;
  FOREACH t IN ARRAY moved LOOP
    PERFORM create_distributed_table(t, 'tenant_id', colocate_with => 'resource');
    -- the coordinator's copy the shards were filled from
    PERFORM truncate_local_data_after_distributing_table(t);
    IF t = ANY(forced) THEN
      EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END IF;
  END LOOP;
END
$$;
