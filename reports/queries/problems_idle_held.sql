-- GPUs holding memory while idle, for at least $min_held_s: at the host's latest sample (hosts that are up:
-- $hosts), not active (utilization at or below $busy_pct) but with a process or more than
-- $held_bytes of memory used: the rollups' idle_held. A GPU without a utilization (MIG mode) is never idle
-- here, as the rollups class it unmeasured. `held_since` is the first sample of the unbroken
-- idle-held stretch that reaches the latest sample, looked for since $since (`held_since_window` true: no
-- sample since then broke it, so it began at or before the first). Who holds it: the users of its running
-- processes. Reads the report_* temp tables (_prepare.sql).
-- Parameters: $since, $busy_pct, $held_bytes, $min_held_s, $max_interval_s, $hosts.
WITH held_now AS (
    SELECT g.host, g.gpu_uuid, g.gpu_index, g.name, g.ts, g.mem_used_bytes, g.mem_total_bytes,
           coalesce(g.utilization_gpu_avg_pct, g.utilization_gpu_pct) AS util_pct
    FROM report_gpus AS g
    WHERE g.host IN (SELECT unnest($hosts::VARCHAR[]))
      AND coalesce(g.utilization_gpu_avg_pct, g.utilization_gpu_pct) <= $busy_pct
      AND (coalesce(g.process_count, 0) > 0 OR coalesce(g.mem_used_bytes, 0) > $held_bytes)
),
history AS MATERIALIZED (
    SELECT s.host, s.gpu_uuid, s.ts,
           coalesce(coalesce(s.utilization_gpu_avg_pct, s.utilization_gpu_pct) <= $busy_pct, false)
               AND (coalesce(s.process_count, 0) > 0 OR coalesce(s.mem_used_bytes, 0) > $held_bytes) AS held,
           -- as the rollups count a sample: the time since the one before, at most $max_interval_s (a gap in
           -- the samples, the host down, counts no more; none after more than 24 h); unknown for the first
           -- sample since $since
           CASE WHEN epoch(s.ts) - epoch(lag(s.ts) OVER (PARTITION BY s.host, s.gpu_uuid ORDER BY s.ts)) <= 86400
                THEN epoch(s.ts) - epoch(lag(s.ts) OVER (PARTITION BY s.host, s.gpu_uuid ORDER BY s.ts)) END AS gap_s
    FROM gpu_samples AS s
    JOIN held_now AS h ON h.host = s.host AND h.gpu_uuid = s.gpu_uuid
    WHERE s.ts >= $since AND s.ts <= h.ts
),
broken AS (
    SELECT host, gpu_uuid, max(ts) FILTER (WHERE NOT held) AS last_not_held
    FROM history
    GROUP BY ALL
),
stretch AS (
    SELECT h.host, h.gpu_uuid, min(h.ts) AS held_since, bool_and(b.last_not_held IS NULL) AS held_since_window,
           -- least() would take $max_interval_s for the NULL gap of the first sample
           sum(CASE WHEN h.gap_s IS NOT NULL THEN least(h.gap_s, $max_interval_s) ELSE 0 END) AS held_s
    FROM history AS h
    JOIN broken AS b ON b.host = h.host AND b.gpu_uuid = h.gpu_uuid
    WHERE b.last_not_held IS NULL OR h.ts > b.last_not_held
    GROUP BY h.host, h.gpu_uuid
),
holders AS (
    SELECT host, gpu_uuid, list(DISTINCT coalesce("user", '(unknown)') ORDER BY coalesce("user", '(unknown)')) AS users
    FROM report_processes
    GROUP BY ALL
)
SELECT n.host, n.gpu_index, n.gpu_uuid, n.name, st.held_since, st.held_since_window, n.ts AS last_ts,
       st.held_s,
       n.mem_used_bytes, n.mem_total_bytes, n.util_pct,
       coalesce(u.users, []) AS users
FROM held_now AS n
JOIN stretch AS st ON st.host = n.host AND st.gpu_uuid = n.gpu_uuid
LEFT JOIN holders AS u ON u.host = n.host AND u.gpu_uuid = n.gpu_uuid
WHERE st.held_s >= $min_held_s
ORDER BY held_s DESC, n.host, n.gpu_index
