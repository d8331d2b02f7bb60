-- Tenancy: the engine's role, its grants, row-level security, and the organization directory.

-- The role the engine works as: no superuser, no BYPASSRLS, owns nothing, so RLS always applies to it.
-- Roles are cluster-wide; tolerate another database's migration creating it at the same moment.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'playbook_engine') THEN
        CREATE ROLE playbook_engine NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;

GRANT USAGE ON SCHEMA public TO playbook_engine;
GRANT SELECT ON schema_migrations, core_organizations TO playbook_engine;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON core_entities, core_dynamic_data, core_relationships, universal_transactions, universal_transaction_lines
    TO playbook_engine;

ALTER TABLE core_organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE core_entities ENABLE ROW LEVEL SECURITY;
ALTER TABLE core_dynamic_data ENABLE ROW LEVEL SECURITY;
ALTER TABLE core_relationships ENABLE ROW LEVEL SECURITY;
ALTER TABLE universal_transactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE universal_transaction_lines ENABLE ROW LEVEL SECURITY;
-- FORCE: the owner too (when the engine connects as the owner rather than as playbook_engine).
ALTER TABLE core_organizations FORCE ROW LEVEL SECURITY;
ALTER TABLE core_entities FORCE ROW LEVEL SECURITY;
ALTER TABLE core_dynamic_data FORCE ROW LEVEL SECURITY;
ALTER TABLE core_relationships FORCE ROW LEVEL SECURITY;
ALTER TABLE universal_transactions FORCE ROW LEVEL SECURITY;
ALTER TABLE universal_transaction_lines FORCE ROW LEVEL SECURITY;

-- An organization sees its own row; the directory functions below see them all.
CREATE POLICY organizations_own ON core_organizations FOR SELECT USING (id = playbook_current_org());
DO $$
BEGIN
    -- The directory functions run as their owner (whoever migrates), who is subject to FORCE RLS.
    EXECUTE format('CREATE POLICY organizations_directory ON core_organizations TO %I USING (true) WITH CHECK (true)',
                   current_user);
END $$;

CREATE POLICY tenant ON core_entities
    USING (organization_id = playbook_current_org()) WITH CHECK (organization_id = playbook_current_org());
-- Everyone reads the platform library; org-specific definitions override it (see Store.get_definition).
CREATE POLICY platform_library ON core_entities FOR SELECT
    USING (organization_id = playbook_platform_org() AND entity_type = 'playbook_definition');
CREATE POLICY tenant ON core_dynamic_data
    USING (organization_id = playbook_current_org()) WITH CHECK (organization_id = playbook_current_org());
CREATE POLICY tenant ON core_relationships
    USING (organization_id = playbook_current_org()) WITH CHECK (organization_id = playbook_current_org());
CREATE POLICY tenant ON universal_transactions
    USING (organization_id = playbook_current_org()) WITH CHECK (organization_id = playbook_current_org());
CREATE POLICY tenant ON universal_transaction_lines
    USING (organization_id = playbook_current_org()) WITH CHECK (organization_id = playbook_current_org());

-- Resolving a code happens before any organization is known, so it needs its owner's view of the table.
CREATE FUNCTION playbook_find_org(p_code text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT id FROM core_organizations WHERE organization_code = p_code $$;

CREATE FUNCTION playbook_register_org(p_code text, p_name text DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_id uuid;
BEGIN
    INSERT INTO core_organizations (organization_code, organization_name)
    VALUES (p_code, coalesce(p_name, p_code))
    ON CONFLICT (organization_code) DO NOTHING
    RETURNING id INTO v_id;
    -- Lost a race with a concurrent registration: that row is committed and visible now.
    IF v_id IS NULL THEN
        SELECT id INTO v_id FROM core_organizations WHERE organization_code = p_code;
    END IF;
    RETURN v_id;
END $$;

REVOKE EXECUTE ON FUNCTION playbook_find_org(text), playbook_register_org(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION playbook_find_org(text), playbook_register_org(text, text) TO playbook_engine;
