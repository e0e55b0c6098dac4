-- Hosts whose kernel killed processes for lack of memory (the OOM killer, a memory cgroup's limit included)
-- within the window: the rises of host_samples.oom_kills (cumulative since boot) between consecutive samples
-- of one boot (boot_time moved by no more than 5 s, as the rollups take it), and after a reboot within the
-- window, the count since that boot. The sample before the window starts the first rise.
-- Parameters: $since.
WITH s AS (
    SELECT host, ts, oom_kills, mem_used_bytes, mem_total_bytes, swap_used_bytes, swap_total_bytes,
        boot_time, lag(oom_kills) OVER w AS prev_kills, lag(ts) OVER w AS prev_ts,
        abs(epoch(boot_time) - epoch(lag(boot_time) OVER w)) > 5 AS rebooted
    FROM host_samples
    WHERE ts >= $since - INTERVAL 1 DAY
    WINDOW w AS (PARTITION BY host ORDER BY ts)
), d AS (
    SELECT *,
        CASE
            WHEN rebooted AND boot_time >= $since THEN oom_kills  -- killed since the reboot
            WHEN rebooted THEN NULL
            ELSE greatest(oom_kills - prev_kills, 0)  -- NULL where either sample has no count
        END AS killed
    FROM s
    WHERE ts >= $since
)
SELECT host,
       sum(killed) AS killed,
       min(prev_ts) FILTER (WHERE killed > 0) AS first_after,
       max(ts) FILTER (WHERE killed > 0) AS last_by,
       arg_max(mem_used_bytes / nullif(mem_total_bytes, 0) * 100, ts) AS mem_used_pct,
       arg_max(swap_used_bytes / nullif(swap_total_bytes, 0) * 100, ts) AS swap_used_pct
FROM d
GROUP BY host
HAVING sum(killed) > 0
ORDER BY killed DESC, host
