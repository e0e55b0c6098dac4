-- One row per host sample of the day being rolled up, with the interval it stands for and the counter
-- deltas over it. Input: view host_src (host_samples of the day and the day before).
-- Parameters: $day_start, $day_end, $max_interval_s.
-- A delta is left out (NULL, counted in counter_resets) when the counter went down or the host rebooted
-- (boot_time moved by more than 5 s: some kernels report it with a second of jitter); over a gap longer
-- than $max_interval_s it is scaled to the counted seconds. The first sample after more than 24 h without
-- one stands for nothing, as a host's first does (gpu_intervals.sql).
WITH s AS (
    SELECT *,
        CASE WHEN epoch(ts) - epoch(lag(ts) OVER w) <= 86400 THEN epoch(ts) - epoch(lag(ts) OVER w) END AS dt,
        abs(epoch(boot_time) - epoch(lag(boot_time) OVER w)) > 5 AS rebooted,
        cpu_total_jiffies - cpu_idle_jiffies AS busy,
        lag(cpu_total_jiffies - cpu_idle_jiffies) OVER w AS prev_busy,
        lag(cpu_total_jiffies) OVER w AS prev_total,
        lag(net_rx_bytes) OVER w AS prev_rx,
        lag(net_tx_bytes) OVER w AS prev_tx,
        lag(disk_read_bytes) OVER w AS prev_read,
        lag(disk_write_bytes) OVER w AS prev_write
    FROM host_src
    WINDOW w AS (PARTITION BY host ORDER BY ts)
), f AS (
    SELECT *,
        CASE WHEN dt IS NULL THEN 0 ELSE least(dt, $max_interval_s) END AS seconds,  -- least() skips NULLs
        CASE WHEN dt > 0 AND NOT coalesce(rebooted, false) THEN least(dt, $max_interval_s) / dt END AS scale,
        busy >= prev_busy AND cpu_total_jiffies >= prev_total
            AND busy - prev_busy <= cpu_total_jiffies - prev_total AS cpu_ok  -- NULL without a predecessor
    FROM s
)
SELECT
    ts, host, cpu_logical, load1, mem_used_bytes, mem_total_bytes, swap_used_bytes, fs_max_used_pct, seconds,
    CASE WHEN cpu_ok THEN (busy - prev_busy) * scale END AS cpu_busy,
    CASE WHEN cpu_ok THEN (cpu_total_jiffies - prev_total) * scale END AS cpu_total,
    CASE WHEN net_rx_bytes >= prev_rx THEN (net_rx_bytes - prev_rx) * scale END AS net_rx,
    CASE WHEN net_tx_bytes >= prev_tx THEN (net_tx_bytes - prev_tx) * scale END AS net_tx,
    CASE WHEN disk_read_bytes >= prev_read THEN (disk_read_bytes - prev_read) * scale END AS disk_read,
    CASE WHEN disk_write_bytes >= prev_write THEN (disk_write_bytes - prev_write) * scale END AS disk_write,
    -- CPU counters that went back (the total; the busy count, or the idle one, with iowait, which some kernels
    -- let go back: either way not a share of the total) lose the interval's CPU, as a reboot does: counted
    CASE WHEN dt IS NOT NULL AND (coalesce(rebooted, false) OR NOT coalesce(cpu_ok, true))
        THEN 1 ELSE 0 END AS counter_reset
FROM f
WHERE ts >= $day_start AND ts < $day_end
