-- 0006_reports.sql: KPI reports computed from the event log (on-time rates, sign-for and resolve times, backlog).
--
-- Numbers come from incident_event, never from counters. To know whether a
-- sign or a resolve was on time we must know the deadline that applied at
-- that moment, and deadlines move (escalation, return, reopening and
-- extension restart or move them). So every event row records the
-- incident's deadlines *after* the event (new columns sign_due and
-- resolve_due, the same values the broker writes into the incident
-- projection); the deadline in force when an event happened is the one
-- recorded on the incident's previous event (version - 1). NULL means no
-- deadline: such a sign or resolve counts as on time. Rows written before
-- the broker records these columns are NULL too.
--
-- Definitions (period = [start, end) of local days/weeks/months in p_tz;
-- an incident belongs to the town/community/grid of its location unit, or
-- to its category; unlocated incidents are grouped under key ''):
--   received          receive events in the period
--   signed            sign events in the period (a re-signed incident after
--                     escalation, return or reopening counts again)
--   signed_on_time    of those, at or before the sign deadline then in force
--   resolved          resolve events in the period; resolved_on_time likewise
--   on_time_rate      resolved_on_time / resolved (NULL when none resolved)
--   sign_mean_s/p90_s seconds from the incident reaching the signing unit
--                     (the latest receive, dispatch, return, escalate or
--                     reopen before the sign) to the sign
--   resolve_mean_s/p90_s  seconds from receipt (received_at) to the resolve
--   escalations, returns, extensions (approved: event extend)
--   closed, reopened  feedback: close (satisfied or timed out) / reopen
--   satisfaction_rate closed / (closed + reopened)
--   backlog           incidents received before the period end and open
--                     (not RESOLVED/CLOSED) at the period end
-- p90 is percentile_cont(0.9).

BEGIN;
SELECT pg_advisory_xact_lock(7347001);

DO $migration$
BEGIN
IF EXISTS (SELECT 1 FROM schema_version WHERE version = 6) THEN
    RETURN;
END IF;

ALTER TABLE incident_event ADD COLUMN IF NOT EXISTS sign_due timestamptz;
ALTER TABLE incident_event ADD COLUMN IF NOT EXISTS resolve_due timestamptz;
COMMENT ON COLUMN incident_event.sign_due IS
    'the incident''s sign-for deadline after this event (NULL: none); the deadline in force at an event is the previous event''s';
COMMENT ON COLUMN incident_event.resolve_due IS
    'the incident''s resolve deadline after this event (NULL: none)';

-- Every org unit with its ancestors at each level (NULL above its own level).
CREATE VIEW gd_unit_path AS
WITH RECURSIVE p AS (
    SELECT code, level, code AS district, NULL::text AS town, NULL::text AS community,
           NULL::text AS grid
      FROM org_unit WHERE parent IS NULL
    UNION ALL
    SELECT u.code, u.level, p.district,
           CASE WHEN u.level = 'town' THEN u.code ELSE p.town END,
           CASE WHEN u.level = 'community' THEN u.code ELSE p.community END,
           CASE WHEN u.level = 'grid' THEN u.code ELSE p.grid END
      FROM org_unit u JOIN p ON u.parent = p.code
)
SELECT code, level, district, town, community, grid FROM p;

-- Every event with what the reports need from before it: the deadlines in
-- force, and when the incident last reached a new owner.
CREATE VIEW gd_report_event AS
SELECT e.incident_id, e.version, e.at, e.kind, e.from_state, e.to_state, e.queue, e.owner_unit,
       e.sign_due, e.resolve_due,
       lag(e.sign_due) OVER w AS sign_due_before,
       lag(e.resolve_due) OVER w AS resolve_due_before,
       max(e.at) FILTER (WHERE e.kind IN ('receive', 'dispatch', 'return', 'escalate', 'reopen'))
           OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS handed_at
  FROM incident_event e
WINDOW w AS (PARTITION BY e.incident_id ORDER BY e.version);

CREATE FUNCTION gd_report(p_group text, p_from timestamptz, p_to timestamptz,
                          p_period text DEFAULT 'all', p_tz text DEFAULT 'Asia/Shanghai')
RETURNS TABLE (
    period_start      timestamptz,
    period_end        timestamptz,
    group_key         text,
    group_name        text,
    received          bigint,
    signed            bigint,
    signed_on_time    bigint,
    resolved          bigint,
    resolved_on_time  bigint,
    on_time_rate      numeric,
    sign_mean_s       numeric,
    sign_p90_s        numeric,
    resolve_mean_s    numeric,
    resolve_p90_s     numeric,
    escalations       bigint,
    returns           bigint,
    extensions        bigint,
    closed            bigint,
    reopened          bigint,
    satisfaction_rate numeric,
    backlog           bigint
)
LANGUAGE plpgsql STABLE AS $fn$
#variable_conflict use_column
DECLARE
    root text;
    step text := CASE WHEN p_period = 'all' THEN 'day' ELSE p_period END;
BEGIN
    IF p_group IS NULL OR p_group NOT IN ('district', 'town', 'community', 'grid', 'category') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('report group %L: use district, town, community, grid or category', p_group);
    END IF;
    IF p_period IS NULL OR p_period NOT IN ('all', 'day', 'week', 'month') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('report period %L: use all, day, week or month', p_period);
    END IF;
    IF p_from IS NULL OR p_to IS NULL OR p_to <= p_from THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'report range: the end must be after the start';
    END IF;
    IF p_period <> 'all' AND p_to - p_from > interval '3700 days' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'report range: at most about ten years split into periods';
    END IF;
    PERFORM now() AT TIME ZONE p_tz;  -- an unknown time zone fails here, clearly
    SELECT code INTO root FROM org_unit WHERE parent IS NULL;

    RETURN QUERY
    WITH periods AS (
        SELECT greatest(g AT TIME ZONE p_tz, p_from) AS ps,
               least((g + ('1 ' || step)::interval) AT TIME ZONE p_tz, p_to) AS pe
          FROM generate_series(date_trunc(step, p_from AT TIME ZONE p_tz),
                               (p_to AT TIME ZONE p_tz) - interval '1 microsecond',
                               ('1 ' || step)::interval) g
         WHERE p_period <> 'all'
        UNION ALL
        SELECT p_from, p_to WHERE p_period = 'all'
    ),
    inc AS (
        SELECT i.id, i.received_at, i.state, i.updated_at,
               coalesce(CASE p_group
                            WHEN 'district' THEN coalesce(up.district, root)
                            WHEN 'town' THEN up.town
                            WHEN 'community' THEN up.community
                            WHEN 'grid' THEN up.grid
                            ELSE i.category
                        END, '') AS gkey
          FROM incident i
          LEFT JOIN gd_unit_path up ON up.code = i.location_unit
    ),
    ev AS (
        SELECT p.ps, p.pe, inc.gkey, e.kind, e.at, e.sign_due_before, e.resolve_due_before,
               extract(epoch FROM e.at - e.handed_at) AS sign_s,
               extract(epoch FROM e.at - inc.received_at) AS resolve_s
          FROM gd_report_event e
          JOIN inc ON inc.id = e.incident_id
          JOIN periods p ON e.at >= p.ps AND e.at < p.pe
         WHERE e.incident_id IN (SELECT x.incident_id FROM incident_event x
                                  WHERE x.at >= p_from AND x.at < p_to)
    ),
    agg AS (
        SELECT ev.ps, ev.pe, ev.gkey,
               count(*) FILTER (WHERE kind = 'receive') AS received,
               count(*) FILTER (WHERE kind = 'sign') AS signed,
               count(*) FILTER (WHERE kind = 'sign'
                                  AND (sign_due_before IS NULL OR at <= sign_due_before)) AS signed_on_time,
               count(*) FILTER (WHERE kind = 'resolve') AS resolved,
               count(*) FILTER (WHERE kind = 'resolve'
                                  AND (resolve_due_before IS NULL OR at <= resolve_due_before)) AS resolved_on_time,
               avg(sign_s) FILTER (WHERE kind = 'sign') AS sign_mean_s,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY sign_s) FILTER (WHERE kind = 'sign') AS sign_p90_s,
               avg(resolve_s) FILTER (WHERE kind = 'resolve') AS resolve_mean_s,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY resolve_s) FILTER (WHERE kind = 'resolve') AS resolve_p90_s,
               count(*) FILTER (WHERE kind = 'escalate') AS escalations,
               count(*) FILTER (WHERE kind = 'return') AS returns,
               count(*) FILTER (WHERE kind = 'extend') AS extensions,
               count(*) FILTER (WHERE kind = 'close') AS closed,
               count(*) FILTER (WHERE kind = 'reopen') AS reopened
          FROM ev
         GROUP BY ev.ps, ev.pe, ev.gkey
    ),
    back AS (
        SELECT p.ps, p.pe, inc.gkey, count(*) AS backlog
          FROM periods p
          JOIN inc ON inc.received_at < p.pe
                  AND (inc.state NOT IN ('RESOLVED', 'CLOSED') OR inc.updated_at >= p.ps)
         WHERE (SELECT x.to_state FROM incident_event x
                 WHERE x.incident_id = inc.id AND x.at < p.pe
                 ORDER BY x.version DESC LIMIT 1) NOT IN ('RESOLVED', 'CLOSED')
         GROUP BY p.ps, p.pe, inc.gkey
    )
    SELECT k.ps, k.pe, k.gkey,
           coalesce(CASE WHEN p_group = 'category' THEN c.name ELSE u.name END,
                    CASE WHEN p_group = 'category' THEN '(未分类 uncategorised)'
                         ELSE '(未定位 unlocated)' END),
           coalesce(a.received, 0), coalesce(a.signed, 0), coalesce(a.signed_on_time, 0),
           coalesce(a.resolved, 0), coalesce(a.resolved_on_time, 0),
           round(a.resolved_on_time::numeric / nullif(a.resolved, 0), 4),
           round(a.sign_mean_s::numeric, 1), round(a.sign_p90_s::numeric, 1),
           round(a.resolve_mean_s::numeric, 1), round(a.resolve_p90_s::numeric, 1),
           coalesce(a.escalations, 0), coalesce(a.returns, 0), coalesce(a.extensions, 0),
           coalesce(a.closed, 0), coalesce(a.reopened, 0),
           round(a.closed::numeric / nullif(a.closed + a.reopened, 0), 4),
           coalesce(b.backlog, 0)
      FROM (SELECT agg.ps, agg.pe, agg.gkey FROM agg
            UNION SELECT back.ps, back.pe, back.gkey FROM back) k
      LEFT JOIN agg a ON a.ps = k.ps AND a.gkey = k.gkey
      LEFT JOIN back b ON b.ps = k.ps AND b.gkey = k.gkey
      LEFT JOIN org_unit u ON p_group <> 'category' AND u.code = k.gkey
      LEFT JOIN category c ON p_group = 'category' AND c.code = k.gkey
     ORDER BY k.ps, k.gkey;
END
$fn$;

COMMENT ON FUNCTION gd_report(text, timestamptz, timestamptz, text, text) IS
    'KPI report from the event log: gd_report(group, from, to, period all|day|week|month, time zone); definitions in 0006_reports.sql';

INSERT INTO schema_version (version, name) VALUES (6, 'reports');
END
$migration$;

COMMIT;
