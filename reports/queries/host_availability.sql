-- Each host's runs (host_status) over the 7 days, 30 days and year up to $end, and the share it answered (ok):
-- how often it was down, failing or timing out, as far back as host_status is kept (rollup.hourly_days);
-- first_ts: its first run kept.
-- Parameters: $end.
WITH runs AS (
    SELECT host,
           count(*) FILTER (WHERE ts > $end - INTERVAL 7 DAY) AS runs_7d,
           count(*) FILTER (WHERE ts > $end - INTERVAL 7 DAY AND status = 'ok') AS ok_7d,
           count(*) FILTER (WHERE ts > $end - INTERVAL 30 DAY) AS runs_30d,
           count(*) FILTER (WHERE ts > $end - INTERVAL 30 DAY AND status = 'ok') AS ok_30d,
           count(*) FILTER (WHERE ts > $end - INTERVAL 365 DAY) AS runs_1y,
           count(*) FILTER (WHERE ts > $end - INTERVAL 365 DAY AND status = 'ok') AS ok_1y,
           min(ts) AS first_ts
    FROM host_status
    WHERE ts <= $end
    GROUP BY host
)
SELECT host, runs_7d, runs_30d, runs_1y, first_ts,
       100.0 * ok_7d / nullif(runs_7d, 0) AS ok_7d_pct,   -- NULL: no run in the window
       100.0 * ok_30d / nullif(runs_30d, 0) AS ok_30d_pct,
       100.0 * ok_1y / nullif(runs_1y, 0) AS ok_1y_pct
FROM runs
