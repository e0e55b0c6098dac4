-- process_gpu_daily for one day, from the GPU intervals (view gpu_iv), the processes seen on each GPU at each
-- sample (view proc_src: gpu_processes of the day), each user's share of each GPU then (temp table
-- gpu_user_shares) and the rows of the days before (view prev_proc: PREVIOUS_DAYS of them): the job-level
-- history, kept as long as the daily tier once the raw processes are gone.
-- A process is its host, pid, user and start: a start read for a pid more than 60 s from the one read before
-- it is a later process (the start is read to the second from a boot time that jitters by one and that a
-- clock step moves); a sample belongs to the process of the last start read at or before it, and a sample
-- before any (a collector from before 2026-11-29, the process gone before it was read) to the first. Its
-- started_at is the value of the latest earlier day that has the same process (a start within 60 s; the
-- days before were rolled up first), else its earliest reading: so that its days share one value to group
-- by, also across a day it was not seen (its host down). Its command is the last one seen in the day (a
-- process may rename itself: setproctitle).
-- Its share of a GPU at a sample is its user's share there, as user_gpu_daily splits the GPU between users
-- (by GPU memory held, equally when nobody reports memory), split between the user's processes on that GPU
-- the same way: so a user's processes add up to the user's row of user_gpu_daily (seconds, energy, memory x
-- seconds). A process on several MIG instances of one GPU counts once, with their memory.
WITH p AS (
    SELECT ts, host, gpu_uuid, pid, coalesce("user", '(unknown)') AS "user",
        any_value(command) AS command, any_value(gpu_index) AS gpu_index, min(started_at) AS started_at,
        sum(coalesce(gpu_mem_bytes, 0)) AS mem
    FROM proc_src
    WHERE source = 'running' AND ts >= $day_start AND ts < $day_end
    GROUP BY ts, host, gpu_uuid, pid, "user"
), starts AS (  -- each start read for a pid, from the sample it was first read at
    SELECT host, pid, "user", started_at, min(ts) AS since
    FROM p
    WHERE started_at IS NOT NULL
    GROUP BY ALL
), runs AS (
    SELECT *,
        sum(CASE WHEN abs(epoch(started_at) - epoch(prev)) > 60 THEN 1 ELSE 0 END)
            OVER (PARTITION BY host, pid, "user" ORDER BY since, started_at ROWS UNBOUNDED PRECEDING) AS process_no
    FROM (SELECT *, lag(started_at) OVER (PARTITION BY host, pid, "user" ORDER BY since, started_at) AS prev
          FROM starts)
), numbered AS (  -- each sample's process: that of the last start read at or before it
    SELECT p.*, coalesce(r.process_no, 0) AS process_no
    FROM p
    ASOF LEFT JOIN runs AS r ON p.host = r.host AND p.pid = r.pid AND p."user" = r."user" AND p.ts >= r.since
), shares AS (
    SELECT n.*,
        u.share * CASE WHEN u.mem > 0 THEN n.mem / u.mem ELSE 1.0 / u.procs END AS share
    FROM numbered AS n
    JOIN gpu_user_shares AS u USING (ts, host, gpu_uuid, "user")
), day AS (
    SELECT
        date_trunc('day', i.ts) AS ts, s.host, s.pid, s."user", s.process_no,
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
    GROUP BY date_trunc('day', i.ts), s.host, s.pid, s."user", s.process_no
), inherited AS (  -- the same process's start as the latest earlier day with it has it
    SELECT d.host, d.pid, d."user", d.process_no,
        arg_max(b.started_at, (b.ts, b.last_seen)) AS started_at  -- of that day, the one seen last
    FROM day AS d
    JOIN prev_proc AS b ON b.host = d.host AND b.pid = d.pid AND b."user" = d."user"
        AND abs(epoch(b.started_at) - epoch(d.started_at)) <= 60
    GROUP BY ALL
)
SELECT d.ts, d.host, d.pid, d."user", d.command, coalesce(n.started_at, d.started_at) AS started_at,
    d.first_seen, d.last_seen, d.samples, d.gpus, d.gpu_indexes, d.active_s, d.idle_held_s, d.unmeasured_s,
    d.gpu_mem_byte_s, d.gpu_mem_max_bytes, d.energy_j
FROM day AS d
LEFT JOIN inherited AS n USING (host, pid, "user", process_no)
