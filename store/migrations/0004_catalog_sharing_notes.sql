-- Catalog sharing and execution notes.

-- Sharing: an organization reads a playbook definition another organization shares with it by name
-- (metadata.shared_with lists the organizations' uuids). Read only: the owner alone changes its catalog.
CREATE POLICY shared_definitions ON core_entities FOR SELECT
    USING (entity_type = 'playbook_definition'
           AND metadata -> 'shared_with' ? (playbook_current_org()::text));

-- Version rows and catalog changes are looked up by playbook: keep those reads off a scan of every entity.
CREATE INDEX core_entities_version_idx ON core_entities (organization_id, (metadata ->> 'playbook_id'))
    WHERE entity_type = 'playbook_version';

-- Notes on an execution (add_note, "lessons learned") are `playbook_note` lines: one per note id, so a
-- retried activity records a note once.
CREATE UNIQUE INDEX universal_transaction_lines_note_key
    ON universal_transaction_lines (transaction_id, (metadata ->> 'note_id'))
    WHERE line_type = 'playbook_note';
