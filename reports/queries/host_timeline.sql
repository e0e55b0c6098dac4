-- Per host and time bucket: CPU use (from consecutive jiffy counters; NULL across a reboot or a counter
-- going backwards), memory used and load, rounded to what a chart shows. `ts` is the bucket start.
-- Ordered by host, then time.
-- Parameters: $since, $bucket_s.
WITH deltas AS (
    SELECT host, ts, mem_used_bytes, mem_total_bytes, load1,
           cpu_total_jiffies - lag(cpu_total_jiffies) OVER w AS d_total,
           cpu_idle_jiffies - lag(cpu_idle_jiffies) OVER w AS d_idle,
           abs(epoch(boot_time) - epoch(lag(boot_time) OVER w)) AS d_boot_s
    FROM host_samples
    WHERE ts >= $since
    WINDOW w AS (PARTITION BY host ORDER BY ts)
),
rates AS (
    SELECT *,
           CASE WHEN d_total > 0 AND d_idle >= 0 AND d_idle <= d_total AND coalesce(d_boot_s, 0) <= 5
                THEN 100.0 * (d_total - d_idle) / d_total END AS cpu_pct
    FROM deltas
)
SELECT host,
       time_bucket(to_seconds($bucket_s), ts) AS ts,
       round(avg(cpu_pct), 1) AS cpu_pct,
       round(avg(mem_used_bytes) / 1073741824.0, 1) AS mem_used_gib,
       round(max(mem_total_bytes) / 1073741824.0, 1) AS mem_total_gib,
       round(avg(load1), 2) AS load1
FROM rates
GROUP BY host, 2
ORDER BY host, 2
