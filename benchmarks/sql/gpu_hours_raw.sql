-- GPU-hours per user in [$since, $until), from the raw tables.
-- Each GPU sample stands for the time since the previous sample of the same GPU, capped at $max_interval_s
-- (the first sample of a GPU, and the first after more than 24 h without one, stand for nothing); the GPU's processes seen at that sample (source 'running')
-- share it in proportion to the GPU memory they hold (equally when none reports memory), per user.
-- This is the rule of user_gpu_daily, so both queries give the same hours (active + idle-held + unmeasured
-- there).
WITH d AS (
    SELECT ts, host, gpu_uuid, epoch(ts) - epoch(lag(ts) OVER (PARTITION BY host, gpu_uuid ORDER BY ts)) AS dt
    FROM gpu_samples
    WHERE ts >= $since - INTERVAL 1 DAY AND ts < $until  -- the day before holds the first predecessors
), g AS (
    SELECT ts, host, gpu_uuid, CASE WHEN dt IS NULL OR dt > 86400 THEN 0 ELSE least(dt, $max_interval_s) END AS seconds
    FROM d
), p AS (
    SELECT ts, host, gpu_uuid, coalesce("user", '(unknown)') AS "user", sum(coalesce(gpu_mem_bytes, 0)) AS mem
    FROM gpu_processes
    WHERE source = 'running' AND ts >= $since AND ts < $until
    GROUP BY ALL
), shares AS (
    SELECT *,
        CASE WHEN sum(mem) OVER w > 0 THEN mem / sum(mem) OVER w ELSE 1.0 / count(*) OVER w END AS share
    FROM p
    WINDOW w AS (PARTITION BY ts, host, gpu_uuid)
)
SELECT s."user", sum(g.seconds * s.share) / 3600 AS gpu_hours
FROM shares AS s
JOIN g USING (ts, host, gpu_uuid)
GROUP BY 1
ORDER BY 2 DESC, 1
