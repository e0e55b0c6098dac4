-- The GPU processes that took the most GPU-hours over the last 30 days, and over the last year (from
-- process_gpu_daily): the users page's "GPU processes with the most GPU-hours". A process is its host, pid,
-- user and started_at, which its days share (there; where the start is not known, from collectors before
-- 2026-11-29, its command stands for it); its days add up, and its command is the last one seen. The $top of
-- each window, together.
-- Parameters: $since_30d, $since_1y (day starts), $top.
-- speed: a year of a large fleet holds millions of processes; they are summed by host, pid and the hash of the
-- rest (report_process_days, _prepare.sql), and only the top ones' names, commands and GPUs are then read.
WITH d AS (
    SELECT * FROM report_process_days WHERE ts >= $since_1y
), p AS (
    SELECT host, pid, h,
           min(started_at) AS started_at,
           min(first_seen) AS first_seen,
           max(last_seen) AS last_seen,
           coalesce(sum(active_s + idle_held_s + coalesce(unmeasured_s, 0)) FILTER (WHERE ts >= $since_30d), 0)
               / 3600.0 AS gpu_h_30d,
           coalesce(sum(idle_held_s) FILTER (WHERE ts >= $since_30d), 0) / 3600.0 AS held_h_30d,
           sum(active_s + idle_held_s + coalesce(unmeasured_s, 0)) / 3600.0 AS gpu_h_1y,
           sum(idle_held_s) / 3600.0 AS held_h_1y,
           sum(energy_j) / 3.6e6 AS kwh_1y
    FROM d
    GROUP BY host, pid, h
), top AS (
    SELECT *
    FROM p
    WHERE gpu_h_1y > 0
    QUALIFY (gpu_h_30d > 0 AND row_number() OVER (ORDER BY gpu_h_30d DESC, last_seen DESC, host, pid, h) <= $top)
         OR row_number() OVER (ORDER BY gpu_h_1y DESC, last_seen DESC, host, pid, h) <= $top
), names AS (
    SELECT host, pid, h, any_value("user") AS "user",
           arg_max(command, last_seen) FILTER (WHERE command IS NOT NULL) AS command,
           len(list_distinct(flatten(list(gpu_indexes)))) AS gpus
    FROM d
    SEMI JOIN top USING (host, pid, h)
    GROUP BY host, pid, h
)
SELECT host, pid, names."user", names.command, started_at, first_seen, last_seen, names.gpus, gpu_h_30d,
       held_h_30d, gpu_h_1y, held_h_1y, kwh_1y
FROM top
JOIN names USING (host, pid, h)
ORDER BY gpu_h_30d DESC, gpu_h_1y DESC, last_seen DESC, host, pid, h
