-- Hosts that are not ok now, or were not ok at some run since $since, or whose collector reported failed
-- subsystems at its latest run, or that the fleet's runs no longer reach ($stale: ok at their last run, but
-- that was stale_minutes and more before the fleet's latest data): status, since when (the first run of the current status), the last time it
-- answered, runs not ok in the window and the latest of them. Reads report_status (_prepare.sql).
-- Parameters: $since, $stale.
WITH marked AS (
    SELECT host, ts, status, message,
           status IS DISTINCT FROM lag(status) OVER (PARTITION BY host ORDER BY ts, run_id) AS starts
    FROM host_status
),
per_host AS (
    SELECT host,
           max(ts) FILTER (WHERE starts) AS since,
           count(*) FILTER (WHERE ts >= $since) AS runs,
           count(*) FILTER (WHERE ts >= $since AND status <> 'ok') AS bad_runs,
           arg_max({'ts': ts, 'status': status, 'message': message}, ts) FILTER (WHERE status <> 'ok') AS last_bad
    FROM marked
    GROUP BY host
)
SELECT p.host, s.status, s.message, s.errors, s.status_ts, s.last_seen, p.runs, p.bad_runs, p.since,
       p.last_bad.ts AS last_bad_ts, p.last_bad.status AS last_bad_status, p.last_bad.message AS last_bad_message
FROM per_host AS p
JOIN report_status AS s ON s.host = p.host
WHERE s.status <> 'ok' OR p.bad_runs > 0 OR coalesce(s.errors, 0) > 0
   OR p.host IN (SELECT unnest($stale::VARCHAR[]))
ORDER BY s.status = 'ok', p.host
