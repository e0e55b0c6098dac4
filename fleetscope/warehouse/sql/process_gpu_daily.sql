-- process_gpu_daily for one day, from the GPU intervals (view gpu_iv) and the processes seen on each GPU at
-- each sample (view proc_src: gpu_processes of the day): the job-level history, kept as long as the daily
-- tier once the raw processes are gone.
-- A process is its host, pid, user and start, to the minute (a later process given the same pid starts later;
-- the start is read to the second from a boot time that a clock step can move); its command is the last one
-- seen in the day (a process may rename itself: setproctitle). Where the start is not known (a collector
-- from before 2026-11-29, a process gone before it was read), the host, pid and user alone.
-- Its share of a GPU at a sample is its user's share there, as user_gpu_daily splits the GPU between users
-- (by GPU memory held, equally when nobody reports memory), split between the user's processes on that GPU
-- the same way: so a user's processes add up to the user's row of user_gpu_daily. A process on several MIG
-- instances of one GPU counts once, with their memory.
WITH p AS (
    SELECT ts, host, gpu_uuid, pid, coalesce("user", '(unknown)') AS "user",
        date_trunc('minute', started_at) AS start_key,
        any_value(command) AS command, any_value(gpu_index) AS gpu_index, min(started_at) AS started_at,
        sum(coalesce(gpu_mem_bytes, 0)) AS mem
    FROM proc_src
    WHERE source = 'running' AND ts >= $day_start AND ts < $day_end
    GROUP BY ts, host, gpu_uuid, pid, "user", start_key
), users AS (
    SELECT ts, host, gpu_uuid, "user", sum(mem) AS user_mem, count(*) AS procs
    FROM p
    GROUP BY ALL
), user_shares AS (
    SELECT *,
        CASE WHEN sum(user_mem) OVER g > 0 THEN user_mem / sum(user_mem) OVER g ELSE 1.0 / count(*) OVER g END
            AS user_share
    FROM users
    WINDOW g AS (PARTITION BY ts, host, gpu_uuid)
), shares AS (
    SELECT p.*,
        u.user_share * CASE WHEN u.user_mem > 0 THEN p.mem / u.user_mem ELSE 1.0 / u.procs END AS share
    FROM p
    JOIN user_shares AS u USING (ts, host, gpu_uuid, "user")
)
SELECT
    date_trunc('day', i.ts) AS ts, s.host, s.pid, s."user",
    arg_max(s.command, i.ts) FILTER (WHERE s.command IS NOT NULL) AS command,
    min(s.started_at) AS started_at,
    min(i.ts) AS first_seen,
    max(i.ts) AS last_seen,
    count(DISTINCT i.ts) AS samples,
    count(DISTINCT i.gpu_uuid) AS gpus,
    list_sort(list_distinct(list(s.gpu_index))) AS gpu_indexes,
    coalesce(sum(i.seconds * s.share) FILTER (WHERE i.state = 'active'), 0) AS active_s,
    coalesce(sum(i.seconds * s.share) FILTER (WHERE i.state = 'idle_held'), 0) AS idle_held_s,
    coalesce(sum(i.seconds * s.share) FILTER (WHERE i.state = 'unmeasured'), 0) AS unmeasured_s,
    sum(s.mem * i.seconds) AS gpu_mem_byte_s,
    max(s.mem) AS gpu_mem_max_bytes,
    coalesce(sum(i.energy_j * s.share), 0) AS energy_j
FROM gpu_iv AS i
JOIN shares AS s ON s.ts = i.ts AND s.host = i.host AND s.gpu_uuid = i.gpu_uuid
GROUP BY date_trunc('day', i.ts), s.host, s.pid, s."user", s.start_key
