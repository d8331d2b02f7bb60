-- One round trip to open a step's write: the tenant for row-level security, the execution row locked (which
-- serialises one execution's steps), and whether the step is already recorded (exactly-once). Invoker's rights:
-- row-level security applies as to the statements it replaces.
CREATE FUNCTION playbook_step_begin(p_org uuid, p_execution text, p_step text, p_iteration text,
                                    OUT execution_id uuid, OUT recorded boolean, OUT output jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.organization_id', p_org::text, true);
    SELECT t.id INTO execution_id FROM universal_transactions t
    WHERE t.organization_id = p_org AND t.transaction_type = 'playbook_execution' AND t.transaction_code = p_execution
    FOR UPDATE;
    recorded := false;
    IF execution_id IS NULL THEN
        RETURN;
    END IF;
    SELECT true, l.metadata -> 'output' INTO recorded, output FROM universal_transaction_lines l
    WHERE l.transaction_id = execution_id AND l.line_type = 'playbook_step'
      AND l.metadata ->> 'step_id' = p_step AND l.metadata ->> 'iteration' = p_iteration;
    recorded := coalesce(recorded, false);
END $$;
REVOKE EXECUTE ON FUNCTION playbook_step_begin(uuid, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION playbook_step_begin(uuid, text, text, text) TO playbook_engine;
