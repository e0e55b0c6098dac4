-- Run once at the start of a build: each host's latest state as temp tables (report_*), which the page
-- queries read, so the warehouse is searched for "the latest sample of each host" once rather than once per
-- question. Dropped at the end of the build. A document's rows share one `ts` (the controller's clock when
-- it arrived), so a host's latest GPUs and processes are those with its latest sample's run_id and ts.

-- A report runs under cron too: no progress bar in its log for a query that takes a while.
SET enable_progress_bar = false;

-- Each host's latest sample (all host_samples columns).
CREATE OR REPLACE TEMP TABLE report_latest AS
SELECT s.*
FROM host_samples AS s
JOIN (SELECT host, max(ts) AS ts FROM host_samples GROUP BY host) AS m ON m.host = s.host AND m.ts = s.ts
QUALIFY row_number() OVER (PARTITION BY s.host ORDER BY s.run_id DESC) = 1;

-- The sample before it: CPU use between the two comes from the cumulative counters.
CREATE OR REPLACE TEMP TABLE report_previous AS
SELECT s.*
FROM host_samples AS s
JOIN (
    SELECT h.host, max(h.ts) AS ts
    FROM host_samples AS h
    JOIN report_latest AS l ON l.host = h.host AND h.ts < l.ts
    GROUP BY h.host
) AS m ON m.host = s.host AND m.ts = s.ts
QUALIFY row_number() OVER (PARTITION BY s.host ORDER BY s.run_id DESC) = 1;

-- Each host's latest status row, and the last time it answered (ok).
CREATE OR REPLACE TEMP TABLE report_status AS
SELECT host, status_ts, last.status AS status, last.message AS message, last.errors AS errors,
       last.run_id AS run_id, last_seen
FROM (
    SELECT host,
           max(ts) AS status_ts,
           arg_max({'status': status, 'message': message, 'errors': errors, 'run_id': run_id},
                   {'ts': ts, 'run_id': run_id}) AS last,
           max(ts) FILTER (WHERE status = 'ok') AS last_seen
    FROM host_status
    GROUP BY host
);

-- Every GPU at its host's latest sample.
CREATE OR REPLACE TEMP TABLE report_gpus AS
SELECT g.*
FROM gpu_samples AS g
JOIN report_latest AS l ON l.host = g.host AND l.ts = g.ts AND l.run_id = g.run_id;

-- The GPU processes running at each host's latest sample (accounting records of processes that already
-- ended are left out: this is "who is on the GPUs now").
CREATE OR REPLACE TEMP TABLE report_processes AS
SELECT p.*
FROM gpu_processes AS p
JOIN report_latest AS l ON l.host = p.host AND l.ts = p.ts AND l.run_id = p.run_id
WHERE coalesce(p.source, 'running') = 'running';

-- The top processes of each host at its latest sample. host_processes holds only the top consumers a host
-- reports (collect.top_processes by CPU time plus as many by memory), not every process.
CREATE OR REPLACE TEMP TABLE report_host_processes AS
SELECT p.*
FROM host_processes AS p
JOIN report_latest AS l ON l.host = p.host AND l.ts = p.ts AND l.run_id = p.run_id;

-- What is in maintenance now (`fleetscope admin maintenance`, admin_actions): the actions that took effect
-- (status ok, not check mode), the latest one deciding. An action without `gpu` in its arguments covers every
-- GPU of the host; a later one for one GPU overrides it for that GPU. One row per GPU in maintenance (the
-- GPUs of the host's latest sample, those named in actions, and, where its latest sample has none, those
-- of its last hour in gpu_hourly up to its latest whole-host action), plus a row with gpu_index NULL when the
-- host's latest whole-host action turned maintenance on and no GPU has been taken out of it since.
-- `ts`, `operator`: the action that put it there.
CREATE OR REPLACE TEMP TABLE report_maintenance AS
WITH actions AS (
    SELECT host, ts, run_id, operator,
           json_extract_string(args, '$.state') AS state,
           TRY_CAST(json_extract_string(args, '$.gpu') AS INTEGER) AS gpu_index
    FROM admin_actions
    WHERE action = 'maintenance' AND status = 'ok' AND check_mode IS NOT TRUE AND json_valid(args)
),
whole AS (
    SELECT *
    FROM actions
    WHERE gpu_index IS NULL
    QUALIFY row_number() OVER (PARTITION BY host ORDER BY ts DESC, run_id DESC) = 1
),
gpus AS (
    SELECT host, gpu_index FROM report_gpus WHERE host IN (SELECT host FROM actions) AND gpu_index IS NOT NULL
    UNION
    SELECT host, gpu_index FROM actions WHERE gpu_index IS NOT NULL
    UNION  -- a host whose latest sample has no GPU (NVML failing on the broken host put in maintenance): the
    SELECT host, gpu_index FROM (  -- GPUs of its last hour with GPUs up to its whole-host action, "all" then
        SELECT h.host, h.gpu_index, h.ts, max(h.ts) OVER (PARTITION BY h.host) AS last_ts
        FROM gpu_hourly AS h
        JOIN whole AS w ON w.host = h.host
        WHERE h.ts <= w.ts AND h.gpu_index IS NOT NULL AND h.host NOT IN (SELECT host FROM report_gpus)
    )
    WHERE ts = last_ts
),
per_gpu AS (
    SELECT g.host, g.gpu_index, a.state, a.ts, a.operator
    FROM gpus AS g
    JOIN actions AS a ON a.host = g.host AND (a.gpu_index IS NULL OR a.gpu_index = g.gpu_index)
    QUALIFY row_number() OVER (PARTITION BY g.host, g.gpu_index ORDER BY a.ts DESC, a.run_id DESC) = 1
)
SELECT w.host, NULL::INTEGER AS gpu_index, w.ts, w.operator
FROM whole AS w
WHERE w.state = 'on' AND NOT EXISTS (SELECT 1 FROM per_gpu AS p WHERE p.host = w.host AND p.state = 'off')
UNION ALL
SELECT host, gpu_index, ts, operator
FROM per_gpu
WHERE state = 'on';

-- process_gpu_daily with each row's process (process_usage.sql, host_process_usage.sql): a process is its host,
-- pid and this hash of its user and started_at (which its days share), its command standing in for a start
-- never read (collectors before 2026-11-29). speed: a hash, not the strings: a year of a large fleet holds
-- millions of processes. A view: read only by the queries that use it.
CREATE OR REPLACE TEMP VIEW report_process_days AS
SELECT *, hash("user", started_at, CASE WHEN started_at IS NULL THEN command END) AS h
FROM process_gpu_daily;
