-- Audit records outside a write's own statement now reach audit_event through a local spool file (issue 12, src/store/
-- audit-spool.ts): appended before the request answers, stored in batches shortly after. `origin` names where the
-- spool kept a record (file, line, position), so a file recovered after its process died is never stored twice.
ALTER TABLE audit_event ADD COLUMN origin text;

-- Reads by id no longer record themselves in the database (the spool made that round trip unnecessary).
DROP FUNCTION audit_read_current(text, text, timestamptz, text, text, text, text, text, text[], text);
