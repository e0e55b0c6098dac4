-- The most recent status rows of each host, newest first.
-- Parameters: $limit (rows per host).
SELECT host, run_id, ts, status, message, errors, duration_s
FROM host_status
QUALIFY row_number() OVER (PARTITION BY host ORDER BY ts DESC, run_id DESC) <= $limit
ORDER BY host, ts DESC, run_id DESC
