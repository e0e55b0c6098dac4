-- Who holds GPUs right now: per user, the GPUs their running processes are on at each host's latest sample
-- (hosts that are up: $hosts, those that answered their latest run, not stale nor retired), how many of those GPUs are idle (utilization at or below
-- $busy_pct; a GPU without one, in MIG mode, is not counted idle), the GPU memory the processes hold and
-- where. `oldest_ts` is the oldest sample behind the row.
-- Reads the report_* temp tables (_prepare.sql).
-- Parameters: $busy_pct, $hosts.
WITH per_gpu AS (
    SELECT coalesce(p."user", '(unknown)') AS "user", p.host, p.gpu_uuid, any_value(p.ts) AS ts,
           count(*) AS processes, sum(p.gpu_mem_bytes) AS gpu_mem_bytes
    FROM report_processes AS p
    WHERE p.host IN (SELECT unnest($hosts::VARCHAR[]))
    GROUP BY ALL
)
SELECT u."user",
       count(*) AS gpus,
       count(*) FILTER (WHERE coalesce(g.utilization_gpu_avg_pct, g.utilization_gpu_pct) <= $busy_pct) AS gpus_idle,
       sum(u.processes) AS processes,
       sum(u.gpu_mem_bytes) AS gpu_mem_bytes,
       list(DISTINCT u.host ORDER BY u.host) AS hosts,
       min(u.ts) AS oldest_ts
FROM per_gpu AS u
LEFT JOIN report_gpus AS g ON g.host = u.host AND g.gpu_uuid IS NOT DISTINCT FROM u.gpu_uuid
GROUP BY u."user"
ORDER BY gpus DESC, gpu_mem_bytes DESC NULLS LAST, u."user"
