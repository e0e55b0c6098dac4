-- The GPU processes running on each host at its latest sampled run (accounting records of processes
-- that already ended are left out: this is "who is on the GPUs now").
WITH latest AS (
    SELECT host, run_id
    FROM host_samples
    QUALIFY row_number() OVER (PARTITION BY host ORDER BY ts DESC, run_id DESC) = 1
)
SELECT p.host, p.ts, p.gpu_index, p.pid, p.user, p.command, p.gpu_mem_bytes, p.type
FROM gpu_processes AS p
JOIN latest AS l ON l.host = p.host AND l.run_id = p.run_id
WHERE coalesce(p.source, 'running') = 'running'
ORDER BY p.host, p.gpu_index, p.gpu_mem_bytes DESC NULLS LAST, p.pid
