-- One row per host ever named in the warehouse: its latest status, its latest inventory row, and the
-- numbers of its latest sample (report_* temp tables, _prepare.sql). CPU use comes from the last two samples
-- of the host; a reboot between them (boot_time moved) or a counter going backwards gives NULL, never a
-- negative value.
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
           count(*) FILTER (WHERE utilization_gpu_pct > $busy_pct) AS gpus_busy
    FROM report_gpus
    GROUP BY host
),
users_now AS (
    SELECT host, list(DISTINCT "user" ORDER BY "user") AS users
    FROM report_processes
    WHERE "user" IS NOT NULL
    GROUP BY host
)
SELECT n.host,
       s.status,
       s.message,
       s.status_ts,
       s.last_seen,
       i.os,
       i.cpu_model,
       coalesce(l.cpu_logical, i.cpu_logical) AS cpu_logical,
       CASE WHEN l.d_total > 0 AND l.d_idle >= 0 AND l.d_idle <= l.d_total AND coalesce(l.d_boot_s, 0) <= 5
            THEN 100.0 * (l.d_total - l.d_idle) / l.d_total END AS cpu_pct,
       l.load1,
       l.mem_used_bytes,
       coalesce(l.mem_total_bytes, i.mem_total_bytes) AS mem_total_bytes,
       l.ts AS sample_ts,
       l.gpu_reason,
       coalesce(g.gpus_total, 0) AS gpus_total,
       coalesce(g.gpus_busy, 0) AS gpus_busy,
       coalesce(u.users, []) AS users
FROM names AS n
LEFT JOIN report_status AS s USING (host)
LEFT JOIN inventory AS i USING (host)
LEFT JOIN latest AS l USING (host)
LEFT JOIN gpu_now AS g USING (host)
LEFT JOIN users_now AS u USING (host)
ORDER BY n.host
