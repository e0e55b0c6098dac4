-- user_gpu_daily for one day, from the GPU intervals (view gpu_iv) and the processes seen on each GPU at
-- each sample (view proc_src: gpu_processes of the day).
-- A GPU shared by several users at a sample is split between them in proportion to the GPU memory their
-- processes hold (equally when no process reports memory): seconds, energy and memory follow the share.
WITH p AS (
    SELECT ts, host, gpu_uuid, coalesce("user", '(unknown)') AS "user", sum(coalesce(gpu_mem_bytes, 0)) AS mem
    FROM proc_src
    WHERE source = 'running' AND ts >= $day_start AND ts < $day_end
    GROUP BY ALL
), shares AS (
    SELECT p.*,
        CASE WHEN sum(mem) OVER g > 0 THEN mem / sum(mem) OVER g ELSE 1.0 / count(*) OVER g END AS share
    FROM p
    WINDOW g AS (PARTITION BY ts, host, gpu_uuid)
)
SELECT
    date_trunc('day', i.ts) AS ts, s."user", i.host, i.gpu_uuid,
    arg_max(i.gpu_index, i.ts) AS gpu_index,
    count(*) AS samples,
    coalesce(sum(i.seconds * s.share) FILTER (WHERE i.state = 'active'), 0) AS active_s,
    coalesce(sum(i.seconds * s.share) FILTER (WHERE i.state = 'idle_held'), 0) AS idle_held_s,
    coalesce(sum(i.seconds * s.share) FILTER (WHERE i.state = 'unmeasured'), 0) AS unmeasured_s,
    sum(s.mem * i.seconds) AS gpu_mem_byte_s,
    max(s.mem) AS gpu_mem_max_bytes,
    coalesce(sum(i.energy_j * s.share), 0) AS energy_j
FROM gpu_iv AS i
JOIN shares AS s ON s.ts = i.ts AND s.host = i.host AND s.gpu_uuid = i.gpu_uuid
GROUP BY 1, 2, 3, 4
