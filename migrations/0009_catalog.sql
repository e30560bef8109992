-- The platform catalog (issue 13, docs/catalog.md): the tenant `platform` holds the definitions every tenant shares
-- (medicines, code systems, value sets, concept maps, profiles, search parameters). Any tenant's session may READ the
-- platform's rows of those types, alongside its own. The policy is permissive and FOR SELECT only: INSERT, UPDATE and
-- DELETE still pass the tenant_isolation policy alone, so no tenant can change a catalog row (and reads of every other
-- type, and every platform row of another type, stay walled off). The type list matches CATALOG_TYPES in
-- src/store/resources.ts. Every index table carries resource_type, so the same test applies to its rows.
-- No new key or index: reads name tenant_id (theirs and 'platform'), which still leads every key.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['resource','resource_history','sp_token','sp_string','sp_reference','sp_date','sp_number','sp_uri','sp_composite','sp_fulltext'] LOOP
    EXECUTE format($p$CREATE POLICY catalog_read ON %I FOR SELECT
                      USING (tenant_id = 'platform'
                             AND resource_type IN ('Medication', 'CodeSystem', 'ValueSet', 'ConceptMap', 'StructureDefinition', 'SearchParameter'))$p$, t);
  END LOOP;
END
$$;
