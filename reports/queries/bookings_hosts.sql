-- Each host's bookings now and next, for the host pages and data/latest.json: every booking that holds the
-- host or one of its GPUs at $now (`now` true), then the next $next_limit that start after $now. One row per
-- event occurrence (source, uid) and host: `gpus` lists the booked GPU indexes, NULL for the whole host.
-- Parameters: $now, $next_limit.
WITH events AS (
    SELECT host, source, uid,
           any_value("user") AS "user",
           any_value(summary) AS summary,
           min("start") AS "start",
           max("end") AS "end",
           CASE WHEN bool_or(gpu_index IS NULL) THEN NULL
                ELSE list_sort(list_distinct(list(gpu_index))) END AS gpus
    FROM bookings
    WHERE "end" > $now AND "end" > "start"
    GROUP BY host, source, uid
)
SELECT host, "start" <= $now AS now, "user", summary, "start", "end", gpus
FROM events
QUALIFY "start" <= $now
     OR row_number() OVER (PARTITION BY host, "start" <= $now ORDER BY "start", "end", source, uid) <= $next_limit
ORDER BY host, "start", "end", gpus NULLS FIRST, "user", summary
