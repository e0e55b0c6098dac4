-- Fleet utilization over time: per run, the mean GPU utilization over all GPUs, the number of busy GPUs,
-- and the mean CPU use over hosts; then averaged per time bucket so a long window stays a light page.
-- x is the first sample time in the bucket, so with one run per bucket it is the run's own time.
-- Parameters: $since, $bucket_s, $busy_pct.
WITH cpu_deltas AS (
    SELECT run_id, ts,
           cpu_total_jiffies - lag(cpu_total_jiffies) OVER w AS d_total,
           cpu_idle_jiffies - lag(cpu_idle_jiffies) OVER w AS d_idle,
           abs(epoch(boot_time) - epoch(lag(boot_time) OVER w)) AS d_boot_s
    FROM host_samples
    WHERE ts >= $since
    WINDOW w AS (PARTITION BY host ORDER BY ts)
),
cpu_runs AS (
    SELECT run_id, min(ts) AS ts,
           avg(CASE WHEN d_total > 0 AND d_idle >= 0 AND d_idle <= d_total AND coalesce(d_boot_s, 0) <= 5
                    THEN 100.0 * (d_total - d_idle) / d_total END) AS cpu_pct,
           count(*) AS hosts
    FROM cpu_deltas
    GROUP BY run_id
),
gpu_runs AS (
    SELECT run_id, min(ts) AS ts,
           avg(utilization_gpu_pct) AS gpu_util_pct,
           count(*) FILTER (WHERE utilization_gpu_pct > $busy_pct) AS gpus_busy,
           count(*) AS gpus
    FROM gpu_samples
    WHERE ts >= $since
    GROUP BY run_id
),
per_run AS (
    SELECT coalesce(c.ts, g.ts) AS ts, c.cpu_pct, c.hosts, g.gpu_util_pct, g.gpus_busy, g.gpus
    FROM cpu_runs AS c
    FULL OUTER JOIN gpu_runs AS g USING (run_id)
)
SELECT min(ts) AS ts,
       avg(gpu_util_pct) AS gpu_util_pct,
       avg(cpu_pct) AS cpu_pct,
       avg(gpus_busy) AS gpus_busy,
       max(gpus) AS gpus
FROM per_run
GROUP BY time_bucket(to_seconds($bucket_s), ts)
ORDER BY ts
