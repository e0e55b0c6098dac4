-- The GPU processes running on each host at its latest sample (report_processes, _prepare.sql).
SELECT host, ts, gpu_index, pid, "user", command, gpu_mem_bytes, type, started_at
FROM report_processes
ORDER BY host, gpu_index, gpu_mem_bytes DESC NULLS LAST, pid
