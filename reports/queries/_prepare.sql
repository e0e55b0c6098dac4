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
