-- Each host's GPU processes with the most GPU-hours over the last 30 days (process_gpu_daily): the host pages'
-- "What ran on its GPUs", the $top of each host. A process as in process_usage.sql (report_process_days: host,
-- pid, user and started_at; its command the last one seen), summed the same way.
-- Parameters: $since_30d (a day start), $top.
WITH d AS (
    SELECT * FROM report_process_days WHERE ts >= $since_30d
), p AS (
    SELECT host, pid, h,
           min(started_at) AS started_at,
           min(first_seen) AS first_seen,
           max(last_seen) AS last_seen,
           sum(active_s + idle_held_s + coalesce(unmeasured_s, 0)) / 3600.0 AS gpu_h,
           sum(idle_held_s) / 3600.0 AS held_h,
           sum(energy_j) / 3.6e6 AS kwh
    FROM d
    GROUP BY host, pid, h
), top AS (
    SELECT *
    FROM p
    WHERE gpu_h > 0
    QUALIFY row_number() OVER (PARTITION BY host ORDER BY gpu_h DESC, last_seen DESC, pid, h) <= $top
), names AS (
    SELECT host, pid, h, any_value("user") AS "user",
           arg_max(command, last_seen) FILTER (WHERE command IS NOT NULL) AS command,
           list_sort(list_distinct(flatten(list(gpu_indexes)))) AS gpu_indexes
    FROM d
    SEMI JOIN top USING (host, pid, h)
    GROUP BY host, pid, h
)
SELECT host, pid, names."user", names.command, started_at, first_seen, last_seen, names.gpu_indexes, gpu_h,
       held_h, kwh
FROM top
JOIN names USING (host, pid, h)
ORDER BY host, gpu_h DESC, last_seen DESC, pid, h
