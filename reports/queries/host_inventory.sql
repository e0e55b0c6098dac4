-- The latest inventory row of each host.
SELECT *
FROM hosts
QUALIFY row_number() OVER (PARTITION BY host ORDER BY ts DESC, run_id DESC) = 1
ORDER BY host
