-- Who is running on a GPU right now without a booking: per host, GPU and user, the processes running at the
-- host's latest sample (hosts that are up: $hosts, those that answered their latest run, not stale) when no booking of that user holds that GPU
-- (or the whole host) at the sample's time: start <= ts < end. Users match case-insensitively.
-- Only hosts the calendars book at all (named by any row of the bookings table, 35 days back to 35 ahead)
-- are checked, so a lab or a host that does not use bookings is not flagged; processes whose user the
-- collector could not tell are left out (no booking can name them). `booked_by`: the users who have that
-- GPU booked at that time instead. Reads the report_* temp tables (_prepare.sql).
-- Parameters: $hosts.
WITH booked_hosts AS (
    SELECT DISTINCT host FROM bookings
),
running AS (
    SELECT p.host, p.gpu_index, p."user", p.ts, p.pid, p.command, p.gpu_mem_bytes
    FROM report_processes AS p
    WHERE p."user" IS NOT NULL AND p.host IN (SELECT host FROM booked_hosts)
      AND p.host IN (SELECT unnest($hosts::VARCHAR[]))
),
flagged AS (
    SELECT r.host, r.gpu_index, r."user", any_value(r.ts) AS ts,
           count(*) AS processes,
           sum(r.gpu_mem_bytes) AS gpu_mem_bytes,
           list_sort(list_distinct(list(r.command))) AS commands
    FROM running AS r
    WHERE NOT EXISTS (
        SELECT 1 FROM bookings AS b
        WHERE b.host = r.host AND (b.gpu_index IS NULL OR b.gpu_index = r.gpu_index)
          AND lower(b."user") = lower(r."user") AND b."start" <= r.ts AND r.ts < b."end"
    )
    GROUP BY r.host, r.gpu_index, r."user"
),
others AS (
    SELECT f.host, f.gpu_index, f."user", list_sort(list_distinct(list(coalesce(b."user", '?')))) AS booked_by
    FROM flagged AS f
    JOIN bookings AS b ON b.host = f.host AND (b.gpu_index IS NULL OR b.gpu_index = f.gpu_index)
                      AND b."start" <= f.ts AND f.ts < b."end"
    GROUP BY ALL
)
SELECT f.*, coalesce(o.booked_by, []) AS booked_by
FROM flagged AS f
LEFT JOIN others AS o ON o.host = f.host AND o.gpu_index = f.gpu_index AND o."user" = f."user"
ORDER BY f.host, f.gpu_index, f."user"
