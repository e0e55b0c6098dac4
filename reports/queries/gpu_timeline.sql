-- Per host, GPU and time bucket: utilization, memory used, temperature and power. Power is the exact mean
-- between two runs from the cumulative energy counter; where that is unknown (first sample, driver
-- reload resetting the counter, an implausible jump) the instantaneous power_w reading stands in.
-- Ordered by host, GPU index, then time.
-- Parameters: $since, $bucket_s.
WITH deltas AS (
    SELECT host, gpu_index, ts, utilization_gpu_pct, mem_used_bytes, mem_total_bytes, temperature_c,
           power_w, power_limit_w,
           energy_mj - lag(energy_mj) OVER w AS d_energy_mj,
           epoch(ts) - epoch(lag(ts) OVER w) AS d_s
    FROM gpu_samples
    WHERE ts >= $since
    WINDOW w AS (PARTITION BY host, coalesce(gpu_uuid, CAST(gpu_index AS VARCHAR)) ORDER BY ts)
),
power AS (
    SELECT *,
           CASE WHEN d_s > 0 AND d_energy_mj >= 0
                     AND d_energy_mj / 1000.0 / d_s <= 2 * coalesce(power_limit_w, 1500)
                THEN d_energy_mj / 1000.0 / d_s END AS power_avg_w
    FROM deltas
)
SELECT host,
       gpu_index,
       min(ts) AS ts,
       avg(utilization_gpu_pct) AS util_pct,
       avg(mem_used_bytes) / 1073741824.0 AS mem_used_gib,
       max(mem_total_bytes) / 1073741824.0 AS mem_total_gib,
       avg(temperature_c) AS temperature_c,
       avg(coalesce(power_avg_w, power_w)) AS power_w
FROM power
GROUP BY host, gpu_index, time_bucket(to_seconds($bucket_s), ts)
ORDER BY host, gpu_index, ts
