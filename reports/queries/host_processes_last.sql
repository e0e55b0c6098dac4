-- The top processes of each host at its latest sample (report_host_processes, _prepare.sql): only the top
-- consumers the host reports (collect.top_processes by CPU time plus as many by memory). With the GPUs each one
-- runs on at that sample and the GPU memory it holds there (report_processes, joined by pid).
-- cpu_percent is the host's figure: the process's CPU time over its lifetime.
WITH on_gpus AS (
    SELECT host, pid, list(DISTINCT gpu_index ORDER BY gpu_index) AS gpu_indexes, sum(gpu_mem_bytes) AS gpu_mem_bytes
    FROM report_processes
    WHERE pid IS NOT NULL
    GROUP BY host, pid
)
SELECT p.host, p.ts, p.pid, p."user", p.command, p.cpu_time_s, p.cpu_percent, p.rss_bytes, p.started_at,
       coalesce(g.gpu_indexes, []) AS gpu_indexes,
       g.gpu_mem_bytes
FROM report_host_processes AS p
LEFT JOIN on_gpus AS g ON g.host = p.host AND g.pid = p.pid
ORDER BY p.host, p.cpu_time_s DESC NULLS LAST, p.pid
