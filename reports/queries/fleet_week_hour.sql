-- Fleet GPU use by day of week (1 = Monday) and hour of day, UTC, from gpu_hourly since $since: the share of
-- GPU-seconds that were active, and the time-weighted mean utilization (over the seconds that had one).
-- `first_ts`: the oldest hour behind the cell.
-- Parameters: $since.
SELECT isodow(ts) AS dow,
       hour(ts) AS hour,
       100.0 * sum(active_s) / nullif(sum(seconds), 0) AS active_pct,
       sum(util_s) / nullif(sum(coalesce(util_seconds, seconds)), 0) AS util_pct,
       count(DISTINCT date_trunc('day', ts)) AS days,
       min(ts) AS first_ts
FROM gpu_hourly
WHERE ts >= $since
GROUP BY ALL
ORDER BY dow, hour
