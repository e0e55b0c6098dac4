-- Fleet utilization and memory from the hourly rollups (the 7 d and 30 d ranges of the fleet page), per
-- $bucket_s (a whole number of hours). Time-weighted: utilization is util_s / util_seconds (the seconds that had a utilization: not a GPU in MIG
-- mode; rows rolled up before that column existed count all their seconds), memory the byte-seconds
-- used over the byte-seconds there were; GPUs busy is active GPU-seconds per second of the bucket that has
-- samples (the mean number of active GPUs while collected). `ts` is the bucket start.
-- Parameters: $since, $bucket_s.
WITH per_gpu AS (
    SELECT time_bucket(to_seconds($bucket_s), ts) AS ts, host, gpu_uuid,  -- a uuid of index:N is per host
           sum(util_s) AS util_s, sum(coalesce(util_seconds, seconds)) AS util_seconds,
           sum(mem_used_byte_s) AS mem_used_byte_s, sum(mem_total_bytes * seconds) AS mem_byte_s,
           sum(active_s) AS active_s, sum(seconds) AS seconds
    FROM gpu_hourly
    WHERE ts >= $since
    GROUP BY ALL
),
g AS (
    SELECT ts,
           sum(util_s) / nullif(sum(util_seconds), 0) AS gpu_util_pct,
           100.0 * sum(mem_used_byte_s) / nullif(sum(mem_byte_s), 0) AS gpu_mem_pct,
           -- per second the bucket has samples for (its most covered GPU's seconds): the bucket still
           -- being filled, or one collection began or paused in, is not read as GPUs gone idle
           sum(active_s) / nullif(max(seconds), 0) AS gpus_busy,
           count(*) AS gpus  -- per_gpu has one row per host and GPU
    FROM per_gpu
    GROUP BY ts
),
h AS (
    SELECT time_bucket(to_seconds($bucket_s), ts) AS ts,
           100.0 * sum(cpu_busy_jiffies) / nullif(sum(cpu_total_jiffies), 0) AS cpu_pct,
           100.0 * sum(mem_used_byte_s) / nullif(sum(mem_total_bytes * seconds), 0) AS mem_pct
    FROM host_hourly
    WHERE ts >= $since
    GROUP BY 1
)
SELECT coalesce(g.ts, h.ts) AS ts, g.gpu_util_pct, g.gpu_mem_pct, g.gpus_busy, g.gpus, h.cpu_pct, h.mem_pct
FROM g
FULL OUTER JOIN h ON h.ts = g.ts
ORDER BY 1
