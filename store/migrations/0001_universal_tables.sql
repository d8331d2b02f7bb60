-- The six universal tables of SPEC §4, their keys, checks and indexes.
-- Text limits here match the write models in store.py (which check them first, with field paths).

-- Maintains created_at/updated_at whatever the client sends.
CREATE FUNCTION playbook_touch_timestamps() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.created_at := now();
    ELSE
        NEW.created_at := OLD.created_at;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

-- The organization of the current transaction (SET LOCAL app.organization_id); NULL when unset.
CREATE FUNCTION playbook_current_org() RETURNS uuid
LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('app.organization_id', true), '')::uuid $$;

-- Owner of the platform library: playbook definitions every organization may read.
CREATE FUNCTION playbook_platform_org() RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$ SELECT '00000000-0000-0000-0000-000000000001'::uuid $$;

CREATE TABLE core_organizations (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_name text NOT NULL CHECK (char_length(organization_name) BETWEEN 1 AND 255),
    organization_code text NOT NULL CHECK (char_length(organization_code) BETWEEN 1 AND 100),
    status            text NOT NULL DEFAULT 'active' CHECK (char_length(status) <= 50),
    settings          jsonb NOT NULL DEFAULT '{}',
    smart_code        text,
    metadata          jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT core_organizations_code_key UNIQUE (organization_code)
);

CREATE TABLE core_entities (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES core_organizations (id),
    entity_type     text NOT NULL CHECK (char_length(entity_type) BETWEEN 1 AND 100),
    entity_name     text NOT NULL CHECK (char_length(entity_name) BETWEEN 1 AND 255),
    entity_code     text CHECK (char_length(entity_code) BETWEEN 1 AND 255),
    status          text NOT NULL DEFAULT 'active' CHECK (char_length(status) <= 50),
    smart_code      text NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT core_entities_code_key UNIQUE (organization_id, entity_type, entity_code),
    -- Target of the composite foreign keys below: a row can only point at entities of its own organization.
    CONSTRAINT core_entities_org_id_key UNIQUE (organization_id, id)
);
CREATE INDEX core_entities_org_code_idx ON core_entities (organization_id, entity_code);

CREATE TABLE core_dynamic_data (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id     uuid NOT NULL REFERENCES core_organizations (id),
    entity_id           uuid NOT NULL,
    field_name          text NOT NULL CHECK (char_length(field_name) BETWEEN 1 AND 100),
    field_type          text NOT NULL CHECK (field_type IN ('text', 'number', 'boolean', 'date', 'datetime', 'json')),
    field_value_text    text,
    field_value_number  numeric,
    field_value_boolean boolean,
    field_value_date    timestamptz,
    field_value_json    jsonb,
    smart_code          text,
    metadata            jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT core_dynamic_data_field_key UNIQUE (entity_id, field_name),
    CONSTRAINT core_dynamic_data_entity_fk FOREIGN KEY (organization_id, entity_id)
        REFERENCES core_entities (organization_id, id) ON DELETE CASCADE
);
-- `unique` validation rules look text values up by field; a prefix keeps huge values indexable.
CREATE INDEX core_dynamic_data_text_idx
    ON core_dynamic_data (organization_id, field_name, left(field_value_text, 200));

CREATE TABLE core_relationships (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES core_organizations (id),
    from_entity_id    uuid NOT NULL,
    to_entity_id      uuid NOT NULL,
    relationship_type text NOT NULL CHECK (char_length(relationship_type) BETWEEN 1 AND 100),
    smart_code        text NOT NULL,
    metadata          jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT core_relationships_key UNIQUE (organization_id, from_entity_id, to_entity_id, relationship_type),
    CONSTRAINT core_relationships_from_entity_fk FOREIGN KEY (organization_id, from_entity_id)
        REFERENCES core_entities (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT core_relationships_to_entity_fk FOREIGN KEY (organization_id, to_entity_id)
        REFERENCES core_entities (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX core_relationships_to_idx ON core_relationships (organization_id, to_entity_id);

CREATE TABLE universal_transactions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES core_organizations (id),
    transaction_type text NOT NULL CHECK (char_length(transaction_type) BETWEEN 1 AND 100),
    transaction_code text CHECK (char_length(transaction_code) BETWEEN 1 AND 255),
    transaction_date timestamptz NOT NULL DEFAULT now(),
    source_entity_id uuid,
    target_entity_id uuid,
    total_amount     numeric,
    currency         text CHECK (currency ~ '^[A-Z]{3}$'),
    status           text NOT NULL DEFAULT 'active' CHECK (char_length(status) <= 50),
    smart_code       text NOT NULL,
    metadata         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT universal_transactions_org_id_key UNIQUE (organization_id, id),
    CONSTRAINT universal_transactions_source_entity_fk FOREIGN KEY (organization_id, source_entity_id)
        REFERENCES core_entities (organization_id, id),
    CONSTRAINT universal_transactions_target_entity_fk FOREIGN KEY (organization_id, target_entity_id)
        REFERENCES core_entities (organization_id, id)
);
-- One execution row per workflow id and organization; the engine upserts on it.
CREATE UNIQUE INDEX universal_transactions_execution_key
    ON universal_transactions (organization_id, transaction_code)
    WHERE transaction_type = 'playbook_execution';
CREATE INDEX universal_transactions_code_idx ON universal_transactions (organization_id, transaction_code);
CREATE INDEX universal_transactions_type_date_idx
    ON universal_transactions (organization_id, transaction_type, transaction_date);
CREATE INDEX universal_transactions_source_idx
    ON universal_transactions (organization_id, source_entity_id) WHERE source_entity_id IS NOT NULL;
CREATE INDEX universal_transactions_target_idx
    ON universal_transactions (organization_id, target_entity_id) WHERE target_entity_id IS NOT NULL;

CREATE TABLE universal_transaction_lines (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES core_organizations (id),
    transaction_id  uuid NOT NULL,
    line_number     integer NOT NULL CHECK (line_number >= 1),
    line_type       text CHECK (char_length(line_type) BETWEEN 1 AND 100),
    entity_id       uuid,
    quantity        numeric CHECK (quantity >= 0),
    unit_price      numeric,
    line_amount     numeric,
    smart_code      text,
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT universal_transaction_lines_number_key UNIQUE (transaction_id, line_number),
    CONSTRAINT universal_transaction_lines_transaction_fk FOREIGN KEY (organization_id, transaction_id)
        REFERENCES universal_transactions (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT universal_transaction_lines_entity_fk FOREIGN KEY (organization_id, entity_id)
        REFERENCES core_entities (organization_id, id)
);
-- The exactly-once record: one audit line per (execution, step, iteration).
CREATE UNIQUE INDEX universal_transaction_lines_step_key
    ON universal_transaction_lines (transaction_id, (metadata ->> 'step_id'), (metadata ->> 'iteration'))
    WHERE line_type = 'playbook_step';
CREATE INDEX universal_transaction_lines_entity_idx
    ON universal_transaction_lines (organization_id, entity_id) WHERE entity_id IS NOT NULL;

CREATE TRIGGER core_organizations_timestamps BEFORE INSERT OR UPDATE ON core_organizations
    FOR EACH ROW EXECUTE FUNCTION playbook_touch_timestamps();
CREATE TRIGGER core_entities_timestamps BEFORE INSERT OR UPDATE ON core_entities
    FOR EACH ROW EXECUTE FUNCTION playbook_touch_timestamps();
CREATE TRIGGER core_dynamic_data_timestamps BEFORE INSERT OR UPDATE ON core_dynamic_data
    FOR EACH ROW EXECUTE FUNCTION playbook_touch_timestamps();
CREATE TRIGGER core_relationships_timestamps BEFORE INSERT OR UPDATE ON core_relationships
    FOR EACH ROW EXECUTE FUNCTION playbook_touch_timestamps();
CREATE TRIGGER universal_transactions_timestamps BEFORE INSERT OR UPDATE ON universal_transactions
    FOR EACH ROW EXECUTE FUNCTION playbook_touch_timestamps();
CREATE TRIGGER universal_transaction_lines_timestamps BEFORE INSERT OR UPDATE ON universal_transaction_lines
    FOR EACH ROW EXECUTE FUNCTION playbook_touch_timestamps();

INSERT INTO core_organizations (id, organization_name, organization_code, smart_code)
VALUES (playbook_platform_org(), 'Platform library', 'platform', 'HERA.PLATFORM.ORG.ENT.v1');
