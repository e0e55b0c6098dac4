-- Each host's status history as periods: consecutive runs with the same status make one period (from its
-- first to its last run), newest first, at most $limit per host. `message` is that of the period's last run;
-- `until` is when the next period began (NULL: still going on). Only the runs where the status changes are
-- kept after the first pass, so a long history stays cheap.
-- Parameters: $limit (periods per host).
WITH marked AS (
    SELECT host, ts, run_id, status, message,
           status IS DISTINCT FROM lag(status) OVER w AS starts,
           status IS DISTINCT FROM lead(status) OVER w AS ends,
           row_number() OVER w AS n
    FROM host_status
    WINDOW w AS (PARTITION BY host ORDER BY ts, run_id)
),
edges AS (
    SELECT host, ts, run_id, status, message, starts, ends, n,
           lead(ts) OVER e AS next_ts, lead(n) OVER e AS next_n, lead(message) OVER e AS next_message
    FROM marked
    WHERE starts OR ends
    WINDOW e AS (PARTITION BY host ORDER BY ts, run_id)
)
SELECT host, status,
       ts AS started,
       CASE WHEN ends THEN ts ELSE next_ts END AS last_ts,
       CASE WHEN ends THEN 1 ELSE next_n - n + 1 END AS runs,
       CASE WHEN ends THEN message ELSE next_message END AS message,
       lead(ts) OVER (PARTITION BY host ORDER BY ts, run_id) AS until
FROM edges
WHERE starts
QUALIFY row_number() OVER (PARTITION BY host ORDER BY ts DESC, run_id DESC) <= $limit
ORDER BY host, started DESC
