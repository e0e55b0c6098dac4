-- Each user's share of each GPU at each sample of the day being rolled up, from the processes seen on it (view
-- proc_src: gpu_processes of the day), for user_gpu_daily and process_gpu_daily, which split it alike: a GPU
-- shared by several users at a sample is split between them in proportion to the GPU memory their processes
-- hold (equally when no process reports memory). mem: the user's processes' memory together; procs: how many.
-- Parameters: $day_start, $day_end.
SELECT *,
    CASE WHEN sum(mem) OVER g > 0 THEN mem / sum(mem) OVER g ELSE 1.0 / count(*) OVER g END AS share
FROM (
    SELECT ts, host, gpu_uuid, coalesce("user", '(unknown)') AS "user", sum(coalesce(gpu_mem_bytes, 0)) AS mem,
        count(DISTINCT pid) AS procs
    FROM proc_src
    WHERE source = 'running' AND ts >= $day_start AND ts < $day_end
    GROUP BY ALL
)
WINDOW g AS (PARTITION BY ts, host, gpu_uuid)
