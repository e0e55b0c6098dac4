-- Hosts whose GPUs are missing or unreadable at their latest sample (report_latest, _prepare.sql): fewer GPUs
-- than at any of its samples since $since (a GPU fallen off the bus, a driver gone or failing: NVML then
-- gives none), or NVML failed to start there ("NVML init failed: ...", a driver/library version mismatch
-- after an upgrade, say), even on a host never seen with GPUs. A host without a driver that never had GPUs
-- is not listed. `most`: its most GPUs since $since, `last_full_ts` the last sample with them; `gone`: the
-- GPUs of that sample (by uuid) missing from the latest one, with the index, name and bus id they had.
-- Parameters: $since.
WITH counts AS (
    SELECT host, max(gpu_count) AS most,
           arg_max({'ts': ts, 'run_id': run_id}, {'n': gpu_count, 'ts': ts}) AS last_full
    FROM host_samples
    WHERE ts >= $since AND gpu_count IS NOT NULL
    GROUP BY host
),
missing AS (
    SELECT l.host, l.ts, l.gpu_count, l.gpu_reason, c.most,
           CASE WHEN l.gpu_count < c.most THEN c.last_full.ts END AS last_full_ts,
           CASE WHEN l.gpu_count < c.most THEN c.last_full.run_id END AS last_full_run
    FROM report_latest AS l
    LEFT JOIN counts AS c ON c.host = l.host
    WHERE l.gpu_count < c.most OR l.gpu_reason LIKE 'NVML init failed%'
),
gone AS (
    SELECT m.host,
           list({'gpu_index': g.gpu_index, 'gpu_uuid': g.gpu_uuid, 'name': g.name, 'bus_id': g.bus_id}
                ORDER BY g.gpu_index) AS gone
    FROM missing AS m
    JOIN gpu_samples AS g ON g.host = m.host AND g.ts = m.last_full_ts AND g.run_id = m.last_full_run
    LEFT JOIN report_gpus AS r ON r.host = g.host AND r.gpu_uuid = g.gpu_uuid
    WHERE r.host IS NULL
    GROUP BY m.host
)
SELECT m.host, m.ts, m.gpu_count, m.gpu_reason, m.most, m.last_full_ts, coalesce(g.gone, []) AS gone
FROM missing AS m
LEFT JOIN gone AS g ON g.host = m.host
ORDER BY m.host
