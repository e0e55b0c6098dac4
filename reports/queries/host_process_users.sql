-- Per host and user at the host's latest sample, like a job list: the user's processes (those of the top list,
-- report_host_processes, and those running on a GPU, report_processes; counted once by pid), the CPU %, memory
-- (RSS) and CPU time summed over the user's top-list processes, and the GPUs the user's processes run on with
-- the GPU memory they hold. A user without a name is '(unknown)'.
WITH top AS (
    SELECT host, coalesce("user", '(unknown)') AS "user",
           sum(cpu_percent) AS cpu_pct, sum(rss_bytes) AS rss_bytes, sum(cpu_time_s) AS cpu_time_s
    FROM report_host_processes
    GROUP BY ALL
),
on_gpus AS (
    SELECT host, coalesce("user", '(unknown)') AS "user",
           list(DISTINCT gpu_index ORDER BY gpu_index) AS gpu_indexes, sum(gpu_mem_bytes) AS gpu_mem_bytes
    FROM report_processes
    GROUP BY ALL
),
pids AS (
    SELECT host, coalesce("user", '(unknown)') AS "user", count(DISTINCT pid) AS processes
    FROM (SELECT host, "user", pid FROM report_host_processes
          UNION ALL
          SELECT host, "user", pid FROM report_processes)
    GROUP BY ALL
)
SELECT host, "user",
       coalesce(n.processes, 0) AS processes,
       t.cpu_pct,
       t.rss_bytes,
       t.cpu_time_s,
       coalesce(g.gpu_indexes, []) AS gpu_indexes,
       g.gpu_mem_bytes
FROM pids AS n
LEFT JOIN top AS t USING (host, "user")
LEFT JOIN on_gpus AS g USING (host, "user")
ORDER BY host, t.cpu_time_s DESC NULLS LAST, g.gpu_mem_bytes DESC NULLS LAST, "user"
