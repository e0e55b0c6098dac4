-- Bookings against real use, per user, over the last 7 and 30 days (whole UTC days, as user_usage.sql),
-- from the raw GPU samples and processes (kept 30 days) and the bookings table (35 days back).
-- Time comes from the samples exactly as the rollups count it (gpu_intervals.sql): a sample stands for the
-- interval [ts - seconds, ts) since the previous sample of the same GPU, at most $max_interval_s long (the
-- first sample read, and one after more than 24 h without a sample, stand for nothing; the day before the
-- window is read for predecessors, as the rollup does); it belongs to a window when its ts does; it is active when its utilization is above $busy_pct,
-- unknown where NVML gave none (MIG mode).
-- A user's bookings of a GPU are the bookings of that GPU index or of its whole host, merged into disjoint
-- intervals, so overlapping bookings count once. Users match case-insensitively (shown in lower case).
--   booked_h:      hours of sample intervals covered by the user's bookings of that GPU: booked time while
--                  the GPU was monitored (a booking of a host that was down, or in the future, counts none)
--   booked_idle_h: the part of booked_h whose sample was not active (and not unknown), whoever was on it
--   unbooked_h:    the user's active GPU-hours (their share of an active interval, or of one whose activity
--                  is unknown while their processes are on the GPU, split by GPU memory as in
--                  user_gpu_daily) outside their bookings of that GPU; only on hosts the calendars book at
--                  all (named by any row of the bookings table), as on the problems page
-- Parameters: $since_7d, $since_30d (day starts), $busy_pct, $max_interval_s, $held_bytes.
WITH booked_hosts AS (
    SELECT DISTINCT host FROM bookings
),
s AS (
    SELECT host, gpu_uuid, gpu_index, ts,
           -- NULL where NVML gave no utilization (MIG mode): neither idle nor known to be active
           CASE WHEN coalesce(utilization_gpu_avg_pct, utilization_gpu_pct) IS NOT NULL
                THEN coalesce(utilization_gpu_avg_pct, utilization_gpu_pct) > $busy_pct
                WHEN coalesce(process_count, 0) = 0 AND coalesce(mem_used_bytes, 0) <= $held_bytes THEN false
           END AS active,
           CASE WHEN epoch(ts) - epoch(lag(ts) OVER w) <= 86400 THEN epoch(ts) - epoch(lag(ts) OVER w) END AS dt
    FROM gpu_samples
    WHERE ts >= $since_30d::TIMESTAMP - INTERVAL 1 DAY
      AND host IN (SELECT host FROM booked_hosts)  -- the others can be neither booked nor unbooked
    WINDOW w AS (PARTITION BY host, gpu_uuid ORDER BY ts)
),
iv AS MATERIALIZED (
    SELECT host, gpu_uuid, gpu_index, ts, active, ts >= $since_7d AS in_7d,
           epoch(ts) - least(dt, $max_interval_s) AS a, epoch(ts) AS b
    FROM s
    WHERE ts >= $since_30d AND dt IS NOT NULL
),
booked AS (  -- a whole-host booking holds every GPU index the host has in the samples
    SELECT lower(k."user") AS "user", k.host, g.gpu_index, epoch(k."start") AS bs, epoch(k."end") AS be
    FROM bookings AS k
    JOIN (SELECT DISTINCT host, gpu_index FROM iv) AS g
      ON g.host = k.host AND (k.gpu_index IS NULL OR k.gpu_index = g.gpu_index)
    WHERE k."user" IS NOT NULL AND k."end" > k."start"
),
marked AS (
    SELECT *,
           coalesce(bs > max(be) OVER (PARTITION BY "user", host, gpu_index ORDER BY bs, be
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), true) AS starts
    FROM booked
),
islands AS (  -- disjoint booked intervals per user and GPU index
    SELECT "user", host, gpu_index, min(bs) AS bs, max(be) AS be
    FROM (SELECT *, sum(starts::INTEGER) OVER (PARTITION BY "user", host, gpu_index ORDER BY bs, be
                                               ROWS UNBOUNDED PRECEDING) AS island
          FROM marked)
    GROUP BY "user", host, gpu_index, island
),
covered AS (  -- per user and sample: the seconds of its interval the user's bookings cover
    SELECT i."user", v.host, v.gpu_uuid, v.ts, any_value(v.active) AS active, any_value(v.in_7d) AS in_7d,
           sum(least(v.b, i.be) - greatest(v.a, i.bs)) AS s
    FROM iv AS v
    JOIN islands AS i ON i.host = v.host AND i.gpu_index = v.gpu_index AND i.bs < v.b AND i.be > v.a
    GROUP BY i."user", v.host, v.gpu_uuid, v.ts
),
p AS (
    SELECT ts, host, gpu_uuid, "user", sum(coalesce(gpu_mem_bytes, 0)) AS mem
    FROM gpu_processes
    WHERE source = 'running' AND ts >= $since_30d AND host IN (SELECT host FROM booked_hosts)
    GROUP BY ALL
),
shares AS (  -- as user_gpu_daily: by memory held, equally when no process reports memory
    SELECT ts, host, gpu_uuid, lower("user") AS "user",
           CASE WHEN sum(mem) OVER g > 0 THEN mem / sum(mem) OVER g ELSE 1.0 / count(*) OVER g END AS share
    FROM p
    WINDOW g AS (PARTITION BY ts, host, gpu_uuid)
),
unbooked AS (
    SELECT sh."user", v.in_7d, sh.share * ((v.b - v.a) - coalesce(c.s, 0)) AS s
    FROM iv AS v
    JOIN shares AS sh ON sh.ts = v.ts AND sh.host = v.host AND sh.gpu_uuid = v.gpu_uuid
    LEFT JOIN covered AS c ON c."user" = sh."user" AND c.host = v.host AND c.gpu_uuid = v.gpu_uuid AND c.ts = v.ts
    WHERE v.active IS NOT FALSE AND sh."user" IS NOT NULL AND v.host IN (SELECT host FROM booked_hosts)
),
parts AS (
    SELECT "user", in_7d, s AS booked_s, CASE WHEN NOT active THEN s ELSE 0 END AS idle_s, 0 AS unbooked_s
    FROM covered
    UNION ALL
    SELECT "user", in_7d, 0, 0, s
    FROM unbooked
)
SELECT "user",
       coalesce(sum(booked_s) FILTER (WHERE in_7d), 0) / 3600.0 AS booked_h_7d,
       coalesce(sum(idle_s) FILTER (WHERE in_7d), 0) / 3600.0 AS booked_idle_h_7d,
       coalesce(sum(unbooked_s) FILTER (WHERE in_7d), 0) / 3600.0 AS unbooked_h_7d,
       sum(booked_s) / 3600.0 AS booked_h_30d,
       sum(idle_s) / 3600.0 AS booked_idle_h_30d,
       sum(unbooked_s) / 3600.0 AS unbooked_h_30d
FROM parts
GROUP BY "user"
ORDER BY booked_h_30d + unbooked_h_30d DESC, "user"
