-- Each host's runs (host_status) over the 7 days, 30 days and year up to $end, and the share it answered (ok):
-- how often it was down, failing or timing out, as far back as host_status is kept (rollup.hourly_days);
-- first_ts: its first run kept.
-- Parameters: $end.
SELECT host,
       count(*) FILTER (WHERE ts > $end - INTERVAL 7 DAY) AS runs_7d,
       100.0 * count(*) FILTER (WHERE ts > $end - INTERVAL 7 DAY AND status = 'ok')
           / nullif(count(*) FILTER (WHERE ts > $end - INTERVAL 7 DAY), 0) AS ok_7d_pct,
       count(*) FILTER (WHERE ts > $end - INTERVAL 30 DAY) AS runs_30d,
       100.0 * count(*) FILTER (WHERE ts > $end - INTERVAL 30 DAY AND status = 'ok')
           / nullif(count(*) FILTER (WHERE ts > $end - INTERVAL 30 DAY), 0) AS ok_30d_pct,
       count(*) FILTER (WHERE ts > $end - INTERVAL 365 DAY) AS runs_1y,
       100.0 * count(*) FILTER (WHERE ts > $end - INTERVAL 365 DAY AND status = 'ok')
           / nullif(count(*) FILTER (WHERE ts > $end - INTERVAL 365 DAY), 0) AS ok_1y_pct,
       min(ts) AS first_ts
FROM host_status
WHERE ts <= $end
GROUP BY host
