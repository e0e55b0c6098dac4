-- One row per host ever named in the warehouse: its latest status, its latest inventory row, and the
-- numbers of its latest sample (report_* temp tables, _prepare.sql). CPU use comes from the last two samples
-- of the host; a reboot between them (boot_time moved) or a counter going backwards gives NULL, never a
-- negative value. busy_cpus = CPU % x logical CPUs / 100: how many CPUs' worth of work the host did.
-- The top processes (report_host_processes) give processes_seen and their summed CPU time; maintenance
-- (report_maintenance) is the whole host (maint_all) or a list of GPUs, with who put it there and when (the
-- whole-host action, else the latest per-GPU one).
-- Parameters: $busy_pct (a GPU counts as busy above this utilization).
WITH names AS (
    SELECT host FROM host_status
    UNION SELECT host FROM hosts
    UNION SELECT host FROM host_samples
),
inventory AS (
    SELECT host, os, cpu_model, cpu_logical, mem_total_bytes, gpu_models
    FROM hosts
    QUALIFY row_number() OVER (PARTITION BY host ORDER BY ts DESC, run_id DESC) = 1
),
latest AS (
    SELECT cur.*,
           cur.cpu_total_jiffies - prev.cpu_total_jiffies AS d_total,
           cur.cpu_idle_jiffies - prev.cpu_idle_jiffies AS d_idle,
           -- boot_time is read as a float on some hosts and may jitter by a second: a real reboot moves
           -- it by far more than 5 s.
           abs(epoch(cur.boot_time) - epoch(prev.boot_time)) AS d_boot_s
    FROM report_latest AS cur
    LEFT JOIN report_previous AS prev ON prev.host = cur.host
),
gpu_now AS (
    SELECT host,
           count(*) AS gpus_total,
           count(*) FILTER (WHERE coalesce(utilization_gpu_avg_pct, utilization_gpu_pct) > $busy_pct) AS gpus_busy
    FROM report_gpus
    GROUP BY host
),
users_now AS (
    SELECT host, list(DISTINCT "user" ORDER BY "user") AS users
    FROM report_processes
    WHERE "user" IS NOT NULL
    GROUP BY host
),
top_processes AS (
    SELECT host, count(*) AS processes_seen, sum(cpu_time_s) AS processes_cpu_time_s
    FROM report_host_processes
    GROUP BY host
),
maintenance AS (
    SELECT host,
           bool_or(gpu_index IS NULL) AS maint_all,
           coalesce(list(gpu_index ORDER BY gpu_index) FILTER (WHERE gpu_index IS NOT NULL), []) AS maint_gpus,
           coalesce(max(ts) FILTER (WHERE gpu_index IS NULL), max(ts)) AS maint_ts,
           coalesce(arg_max(operator, ts) FILTER (WHERE gpu_index IS NULL), arg_max(operator, ts)) AS maint_by
    FROM report_maintenance
    GROUP BY host
),
cpu AS (
    SELECT host,
           CASE WHEN d_total > 0 AND d_idle >= 0 AND d_idle <= d_total AND coalesce(d_boot_s, 0) <= 5
                THEN 100.0 * (d_total - d_idle) / d_total END AS cpu_pct
    FROM latest
)
SELECT n.host,
       s.status,
       s.message,
       s.status_ts,
       s.last_seen,
       i.os,
       i.cpu_model,
       coalesce(l.cpu_logical, i.cpu_logical) AS cpu_logical,
       c.cpu_pct,
       c.cpu_pct / 100.0 * coalesce(l.cpu_logical, i.cpu_logical) AS busy_cpus,
       l.load1,
       l.procs_visible,
       l.procs_hidden,
       l.mem_used_bytes,
       coalesce(l.mem_total_bytes, i.mem_total_bytes) AS mem_total_bytes,
       l.ts AS sample_ts,
       l.gpu_reason,
       coalesce(g.gpus_total, 0) AS gpus_total,
       coalesce(g.gpus_busy, 0) AS gpus_busy,
       coalesce(u.users, []) AS users,
       coalesce(t.processes_seen, 0) AS processes_seen,
       t.processes_cpu_time_s,
       coalesce(m.maint_all, false) AS maint_all,
       coalesce(m.maint_gpus, []) AS maint_gpus,
       m.maint_ts,
       m.maint_by
FROM names AS n
LEFT JOIN report_status AS s USING (host)
LEFT JOIN inventory AS i USING (host)
LEFT JOIN latest AS l USING (host)
LEFT JOIN gpu_now AS g USING (host)
LEFT JOIN users_now AS u USING (host)
LEFT JOIN top_processes AS t USING (host)
LEFT JOIN maintenance AS m USING (host)
LEFT JOIN cpu AS c USING (host)
ORDER BY n.host
