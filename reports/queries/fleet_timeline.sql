-- Fleet utilization and memory from the raw samples (the 24 h range of the fleet page): per run, the mean
-- GPU utilization, GPU memory used as % of GPU memory, busy GPUs, CPU use (all hosts' CPUs together) and host
-- memory used as % of host memory; then averaged per time bucket so the page stays light. `ts` is the bucket start. Whole runs
-- only: a run that started before $since (the window's start would cut it in two) is left out, and each
-- host's CPU use at the first run is measured from its sample before $since (up to $max_interval_s before).
-- Parameters: $since, $bucket_s, $busy_pct, $max_interval_s.
WITH whole_runs AS (
    SELECT run_id FROM runs WHERE started_at >= $since
),
cpu_deltas AS (
    SELECT run_id, ts, mem_used_bytes, mem_total_bytes,
           cpu_total_jiffies - lag(cpu_total_jiffies) OVER w AS d_total,
           cpu_idle_jiffies - lag(cpu_idle_jiffies) OVER w AS d_idle,
           abs(epoch(boot_time) - epoch(lag(boot_time) OVER w)) AS d_boot_s,
           epoch(ts) - epoch(lag(ts) OVER w) AS dt
    FROM host_samples
    WHERE ts >= $since - to_seconds($max_interval_s)
    WINDOW w AS (PARTITION BY host ORDER BY ts)
),
checked AS (
    SELECT *, coalesce(d_total > 0 AND d_idle >= 0 AND d_idle <= d_total AND coalesce(d_boot_s, 0) <= 5
                       AND dt > 0 AND dt <= 86400, false) AS valid,  -- not across a reboot, a counter that
           -- went back, or more than a day; a host back after a gap counts no more than $max_interval_s of it,
           -- as in the rollups (host_intervals.sql), not hours of jiffies that would outweigh the others
           least(dt, $max_interval_s) / dt AS scale
    FROM cpu_deltas
),
cpu_runs AS (
    SELECT run_id, min(ts) AS ts,
           -- weighted by each host's jiffies, as the hourly and daily ranges are (a 256-CPU host counts
           -- 16 times a 16-CPU one), so that a range's switch does not change what the line means
           100.0 * sum((d_total - d_idle) * scale) FILTER (WHERE valid)
               / nullif(sum(d_total * scale) FILTER (WHERE valid), 0) AS cpu_pct,
           100.0 * sum(mem_used_bytes) / nullif(sum(mem_total_bytes) FILTER (WHERE mem_used_bytes IS NOT NULL), 0)
               AS mem_pct
    FROM checked
    WHERE run_id IN (SELECT run_id FROM whole_runs)
    GROUP BY run_id
),
gpu_runs AS (
    SELECT run_id, min(ts) AS ts,
           avg(coalesce(utilization_gpu_avg_pct, utilization_gpu_pct)) AS gpu_util_pct,
           100.0 * sum(mem_used_bytes)
               / nullif(sum(mem_total_bytes) FILTER (WHERE mem_used_bytes IS NOT NULL), 0) AS gpu_mem_pct,
           count(*) FILTER (WHERE coalesce(utilization_gpu_avg_pct, utilization_gpu_pct) > $busy_pct) AS gpus_busy,
           count(*) AS gpus
    FROM gpu_samples
    WHERE ts >= $since AND run_id IN (SELECT run_id FROM whole_runs)
    GROUP BY run_id
),
per_run AS (
    SELECT coalesce(c.ts, g.ts) AS ts, c.cpu_pct, c.mem_pct, g.gpu_util_pct, g.gpu_mem_pct, g.gpus_busy, g.gpus
    FROM cpu_runs AS c
    FULL OUTER JOIN gpu_runs AS g USING (run_id)
)
SELECT time_bucket(to_seconds($bucket_s), ts) AS ts,
       avg(gpu_util_pct) AS gpu_util_pct,
       avg(gpu_mem_pct) AS gpu_mem_pct,
       avg(gpus_busy) AS gpus_busy,
       max(gpus) AS gpus,
       avg(cpu_pct) AS cpu_pct,
       avg(mem_pct) AS mem_pct
FROM per_run
GROUP BY 1
ORDER BY 1
