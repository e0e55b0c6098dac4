-- Every GPU of each host at the host's latest sample (report_gpus, _prepare.sql): the "now" of the fleet
-- page's GPU heat-map, the host pages' GPU table and data/latest.json (site.py adds whether its host is up).
-- `util_pct` is NVML's ~15 s mean, else the current reading, as everywhere; `users` are the users with a running process on the GPU; `maintenance`: the GPU is
-- in maintenance (report_maintenance), since `maint_ts`, by `maint_by`.
WITH users AS (
    SELECT host, gpu_uuid, list(DISTINCT "user" ORDER BY "user") AS users
    FROM report_processes
    WHERE "user" IS NOT NULL
    GROUP BY ALL
)
SELECT g.host,
       g.ts,
       g.gpu_index,
       g.gpu_uuid,
       g.name,
       g.bus_id,
       coalesce(g.utilization_gpu_avg_pct, g.utilization_gpu_pct) AS util_pct,  -- busy or idle by it
       g.utilization_mem_pct AS util_mem_pct,
       g.mem_used_bytes,
       g.mem_total_bytes,
       g.temperature_c,
       g.power_w,
       g.power_limit_w,
       g.clock_sm_mhz,
       g.clock_mem_mhz,
       g.pstate,
       g.throttle_reasons,
       g.ecc_volatile_uncorrected,
       g.ecc_aggregate_uncorrected,
       g.remapped_rows_uncorrectable,
       g.remapped_rows_pending,
       g.remapped_rows_failure,
       g.persistence_mode,
       g.compute_mode,
       g.mig_mode,
       g.process_count,
       coalesce(u.users, []) AS users,
       m.host IS NOT NULL AS maintenance,
       m.ts AS maint_ts,
       m.operator AS maint_by
FROM report_gpus AS g
LEFT JOIN users AS u ON u.host = g.host AND u.gpu_uuid IS NOT DISTINCT FROM g.gpu_uuid
LEFT JOIN report_maintenance AS m ON m.host = g.host AND m.gpu_index = g.gpu_index
ORDER BY g.host, g.gpu_index
