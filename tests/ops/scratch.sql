-- The `scratch` database restores go to (PLAYBOOK_DB_SCRATCH), with the DBA's helper for exact row counts.
-- Loaded by tests/fixtures_ops.py; for `playbook test`: psql "$PLAYBOOK_DB_SCRATCH" -f scratch.sql
CREATE FUNCTION exact_row_counts(target_schema text) RETURNS TABLE ("table" text, rows bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE t text;
BEGIN
  FOR t IN SELECT table_name FROM information_schema.tables
           WHERE table_schema = target_schema AND table_type = 'BASE TABLE' ORDER BY table_name LOOP
    "table" := t;
    EXECUTE format('SELECT count(*) FROM %I.%I', target_schema, t) INTO rows;
    RETURN NEXT;
  END LOOP;
END $$;
