-- Bookings that break the lab's rules ([bookings] settings; 0: no rule), among the bookings that end after
-- $since. The one implementation of the rules: the problems page and `fleetscope bookings sync` / `collect`
-- (fleetscope.bookings.rule_breaks) both run this file. Reads the bookings and hosts tables only.
--   rule 'max_hours': one row per event occurrence (source, uid) longer than $max_hours hours.
--   rule 'max_gpus_per_user': one row per user whose bookings hold more than $max_gpus_per_user distinct GPUs
--     at one instant: the peak, the first instant it is reached (`start`; counted from $since on) and when
--     the first of the bookings then active ends (`end`). A whole-host booking holds every GPU of the host
--     (hosts.gpu_count of its latest inventory row; a host never seen holds none); the same GPU booked twice
--     counts once. Bookings without a user are left out of this rule. Users match case-insensitively.
-- `targets` is written as in the calendars: `gpu01` (whole host), `gpu01:0,1`, several separated by spaces.
-- Parameters: $since, $max_hours, $max_gpus_per_user.
WITH b AS (
    SELECT source, uid, "start", "end", host, gpu_index, "user", summary
    FROM bookings
    WHERE "end" > $since AND "end" > "start"
),
per_host AS (
    SELECT source, uid, host,
           host || CASE WHEN bool_or(gpu_index IS NULL) THEN ''
                        ELSE ':' || array_to_string(list_sort(list_distinct(list(gpu_index))), ',') END AS target
    FROM b
    GROUP BY source, uid, host
),
events AS (
    SELECT b.source, b.uid, any_value(b."user") AS "user", any_value(b.summary) AS summary,
           min(b."start") AS "start", max(b."end") AS "end"
    FROM b
    GROUP BY ALL
),
too_long AS (
    SELECT 'max_hours' AS rule, e."user", e."start", e."end",
           (epoch(e."end") - epoch(e."start")) / 3600.0 AS hours,
           NULL::BIGINT AS gpus,
           (SELECT string_agg(t.target, ' ' ORDER BY t.host) FROM per_host AS t
            WHERE t.source = e.source AND t.uid = e.uid) AS targets,
           e.summary
    FROM events AS e
    WHERE $max_hours > 0 AND (epoch(e."end") - epoch(e."start")) / 3600.0 > $max_hours
),
gpu_count AS (
    SELECT host, arg_max(gpu_count, ts) AS n
    FROM hosts
    GROUP BY host
),
per_gpu AS (  -- one row per booked GPU; a whole-host booking: one per GPU of the host
    SELECT lower(b."user") AS "user", b.host,
           unnest(CASE WHEN b.gpu_index IS NULL THEN range(coalesce(c.n, 0)::BIGINT)
                       ELSE [b.gpu_index::BIGINT] END) AS gpu_index,
           b."start", b."end", b.summary
    FROM b
    LEFT JOIN gpu_count AS c ON c.host = b.host
    WHERE b."user" IS NOT NULL AND $max_gpus_per_user > 0
),
instants AS (  -- the count only goes up when a booking starts (or where the check starts)
    SELECT DISTINCT "user", greatest("start", $since::TIMESTAMP) AS t
    FROM per_gpu
),
held AS (
    SELECT i."user", i.t, p.host, p.gpu_index, p."end", p.summary
    FROM instants AS i
    JOIN per_gpu AS p ON p."user" = i."user" AND p."start" <= i.t AND i.t < p."end"
),
counts AS (
    SELECT "user", t, count(DISTINCT host || ':' || gpu_index) AS gpus, min("end") AS "end",
           array_to_string(list_sort(list_distinct(list(summary))), '; ') AS summary
    FROM held
    GROUP BY "user", t
    QUALIFY row_number() OVER (PARTITION BY "user" ORDER BY gpus DESC, t) = 1
),
peak_targets AS (
    SELECT "user", t, host,
           host || ':' || array_to_string(list_sort(list_distinct(list(gpu_index))), ',') AS target
    FROM held
    GROUP BY "user", t, host
),
too_many AS (
    SELECT 'max_gpus_per_user' AS rule, c."user", c.t AS "start", c."end", NULL::DOUBLE AS hours, c.gpus,
           (SELECT string_agg(p.target, ' ' ORDER BY p.host) FROM peak_targets AS p
            WHERE p."user" = c."user" AND p.t = c.t) AS targets,
           c.summary
    FROM counts AS c
    WHERE c.gpus > $max_gpus_per_user
)
SELECT * FROM too_long
UNION ALL
SELECT * FROM too_many
ORDER BY rule, "start", "user", targets
