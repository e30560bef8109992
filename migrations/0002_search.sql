-- Search: composite parameter rows and full-text (_text, _content) vectors; same tenant wall as 0001.

CREATE TABLE sp_composite (
  tenant_id     text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  code          text NOT NULL,
  -- first component (token)
  system1       text,
  value1        text,
  -- second component: token (system2/value2), string/uri/reference (value2), number/quantity (num2, system2, value2 = unit), date (low2/high2)
  system2       text,
  value2        text,
  num2          numeric,
  low2          timestamptz,
  high2         timestamptz
);
CREATE INDEX sp_composite_idx ON sp_composite (tenant_id, resource_type, code, value1, system1);
CREATE INDEX sp_composite_resource_idx ON sp_composite (tenant_id, resource_id);

CREATE TABLE sp_fulltext (
  tenant_id     text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  narrative     tsvector,
  content       tsvector NOT NULL
);
CREATE INDEX sp_fulltext_resource_idx ON sp_fulltext (tenant_id, resource_id);
-- GIN cannot lead with tenant_id without btree_gin (not available in the embedded database); queries always
-- filter on tenant_id too, and row-level security applies as everywhere else.
CREATE INDEX sp_fulltext_content_idx ON sp_fulltext USING gin (content);
CREATE INDEX sp_fulltext_narrative_idx ON sp_fulltext USING gin (narrative);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['sp_composite','sp_fulltext'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting('app.tenant_id', true))
                      WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO fhir_app', t);
  END LOOP;
END
$$;
