-- Performance views of `playbook stats`: executions and steps read from the universal tables, no new table.
--
-- security_invoker: a view runs with its caller's rights, so the tables' row-level security applies to the
-- engine's role through it (an ordinary view would run as its owner, who may see every organization).
-- Step durations come from the audit lines' metadata (started_at/finished_at, ISO 8601, written by the
-- engine for every step); an execution's duration runs from its first step's start to its last step's end.

-- One row per recorded step run (an audit line of an execution).
CREATE VIEW playbook_step_runs WITH (security_invoker = true) AS
SELECT t.organization_id,
       t.metadata ->> 'playbook_id'                 AS playbook_id,
       t.transaction_code                           AS execution_id,
       l.metadata ->> 'step_id'                     AS step_id,
       coalesce(l.metadata ->> 'iteration', '')     AS iteration,
       l.metadata ->> 'step_type'                   AS step_type,
       l.metadata ->> 'status'                      AS status,
       l.metadata ->> 'completed_by'                AS completed_by,
       (l.metadata ->> 'attempts')::integer         AS attempts,
       span.started_at,
       span.finished_at,
       extract(epoch FROM span.finished_at - span.started_at)::double precision AS duration_s,
       l.line_number
FROM universal_transactions t
JOIN universal_transaction_lines l
  ON l.transaction_id = t.id AND l.organization_id = t.organization_id AND l.line_type = 'playbook_step'
CROSS JOIN LATERAL (
    SELECT (l.metadata ->> 'started_at')::timestamptz  AS started_at,
           (l.metadata ->> 'finished_at')::timestamptz AS finished_at
) span
WHERE t.transaction_type = 'playbook_execution';

-- One row per execution, with the time its steps took end to end once it has ended.
CREATE VIEW playbook_execution_runs WITH (security_invoker = true) AS
SELECT t.organization_id,
       t.metadata ->> 'playbook_id'  AS playbook_id,
       t.transaction_code            AS execution_id,
       t.status,
       t.metadata ->> 'requested_by' AS requested_by,
       t.created_at,
       t.updated_at,
       steps.step_runs,
       steps.first_started_at,
       steps.last_finished_at,
       CASE WHEN t.status IN ('completed', 'failed', 'cancelled')
            THEN extract(epoch FROM steps.last_finished_at - steps.first_started_at)::double precision
       END                           AS duration_s
FROM universal_transactions t
CROSS JOIN LATERAL (
    SELECT count(*)                                            AS step_runs,
           min((l.metadata ->> 'started_at')::timestamptz)     AS first_started_at,
           max((l.metadata ->> 'finished_at')::timestamptz)    AS last_finished_at
    FROM universal_transaction_lines l
    WHERE l.transaction_id = t.id AND l.line_type = 'playbook_step'
) steps
WHERE t.transaction_type = 'playbook_execution';

-- Per organization and playbook: executions by status, success rate of the ended ones, durations.
CREATE VIEW playbook_stats WITH (security_invoker = true) AS
SELECT organization_id,
       playbook_id,
       count(*)                                                      AS executions,
       count(*) FILTER (WHERE status IN ('pending', 'running'))      AS running,
       count(*) FILTER (WHERE status = 'paused')                     AS paused,
       count(*) FILTER (WHERE status = 'completed')                  AS completed,
       count(*) FILTER (WHERE status = 'failed')                     AS failed,
       count(*) FILTER (WHERE status = 'cancelled')                  AS cancelled,
       round(count(*) FILTER (WHERE status = 'completed')::numeric
             / nullif(count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')), 0), 4)
                                                                     AS success_rate,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s)      AS median_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_s)     AS p95_s,
       max(created_at)                                               AS last_started_at
FROM playbook_execution_runs
GROUP BY organization_id, playbook_id;

-- Per organization, playbook and step: runs by outcome; durations of the completed runs (a failure's or a
-- skip's time says little about the work, and a human step's includes the time people took to act).
CREATE VIEW playbook_step_stats WITH (security_invoker = true) AS
SELECT organization_id,
       playbook_id,
       step_id,
       step_type,
       count(*)                                         AS runs,
       count(*) FILTER (WHERE status = 'completed')     AS completed,
       count(*) FILTER (WHERE status = 'failed')        AS failed,
       count(*) FILTER (WHERE status = 'skipped')       AS skipped,
       count(*) FILTER (WHERE status = 'cancelled')     AS cancelled,
       round(count(*) FILTER (WHERE status = 'completed')::numeric
             / nullif(count(*) FILTER (WHERE status IN ('completed', 'failed')), 0), 4)
                                                        AS success_rate,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s) FILTER (WHERE status = 'completed')  AS median_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_s) FILTER (WHERE status = 'completed') AS p95_s,
       -- Audit lines are numbered in completion order: their mean number orders steps as they usually run.
       avg(line_number)::double precision               AS mean_position
FROM playbook_step_runs
GROUP BY organization_id, playbook_id, step_id, step_type;

GRANT SELECT ON playbook_step_runs, playbook_execution_runs, playbook_stats, playbook_step_stats TO playbook_engine;

-- The organizations' ids and codes, for reports over every organization (each then read under its own RLS).
-- Like playbook_find_org it needs the owner's view of the directory; it reveals codes only, no business data.
CREATE FUNCTION playbook_organizations() RETURNS TABLE (id uuid, organization_code text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT id, organization_code FROM core_organizations ORDER BY organization_code $$;

REVOKE EXECUTE ON FUNCTION playbook_organizations() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION playbook_organizations() TO playbook_engine;
