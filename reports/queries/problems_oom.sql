-- Hosts whose kernel killed processes for lack of memory (the OOM killer, a memory cgroup's limit included)
-- within the window: the rises of host_samples.oom_kills (cumulative since boot) from each sample with the count
-- to the next one of the same boot (boot_time moved by no more than 5 s, as the rollups take it; a sample
-- without the count in between is bridged), and the count since a boot inside the window at its first sample.
-- The last sample with the count in the day before the window starts the first rise.
-- Parameters: $since.
WITH s AS (
    SELECT host, ts, oom_kills, boot_time,
        lag(CASE WHEN oom_kills IS NOT NULL THEN {'kills': oom_kills, 'ts': ts, 'boot': boot_time} END IGNORE NULLS)
            OVER (PARTITION BY host ORDER BY ts) AS prev
    FROM host_samples
    WHERE ts >= $since - INTERVAL 1 DAY
), d AS (
    SELECT *,
        -- the first count of a boot: no earlier one of it in sight (a reboot, or the first sample of a host); a
        -- boot time not known (the host part failed) is taken for the same boot, as the rollups take it
        prev IS NULL OR coalesce(abs(epoch(boot_time) - epoch(prev.boot)) > 5, false) AS first_of_boot
    FROM s
    WHERE ts >= $since AND oom_kills IS NOT NULL
), k AS (
    SELECT *,
        CASE
            WHEN NOT first_of_boot THEN greatest(oom_kills - prev.kills, 0)
            WHEN boot_time >= $since THEN oom_kills  -- killed since a boot inside the window
        END AS killed,
        CASE WHEN first_of_boot THEN boot_time ELSE prev.ts END AS after
    FROM d
)
SELECT k.host,
       sum(killed) AS killed,
       min(after) FILTER (WHERE killed > 0) AS first_after,
       max(k.ts) FILTER (WHERE killed > 0) AS last_by,
       l.mem_used_bytes / nullif(l.mem_total_bytes, 0) * 100 AS mem_used_pct,
       l.swap_used_bytes / nullif(l.swap_total_bytes, 0) * 100 AS swap_used_pct
FROM k
JOIN report_latest AS l USING (host)
GROUP BY k.host, l.mem_used_bytes, l.mem_total_bytes, l.swap_used_bytes, l.swap_total_bytes
HAVING sum(killed) > 0
ORDER BY killed DESC, k.host
