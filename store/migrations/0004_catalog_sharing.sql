-- Sharing: an organization reads a playbook definition another organization shares with it by name
-- (metadata.shared_with lists the organizations' uuids). Read only: the owner alone changes its catalog.
CREATE POLICY shared_definitions ON core_entities FOR SELECT
    USING (entity_type = 'playbook_definition'
           AND metadata -> 'shared_with' ? (playbook_current_org()::text));

-- Version rows and catalog changes are looked up by playbook: keep those reads off a scan of every entity.
CREATE INDEX core_entities_version_idx ON core_entities (organization_id, (metadata ->> 'playbook_id'))
    WHERE entity_type = 'playbook_version';
