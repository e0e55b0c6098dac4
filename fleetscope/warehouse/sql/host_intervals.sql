-- One row per host sample of the day being rolled up, with the interval it stands for and the counter
-- deltas over it. Input: view host_src (host_samples of the day and the day before).
-- Parameters: $day_start, $day_end, $max_interval_s.
-- A delta is left out (NULL, counted in counter_resets) when the counter went down or the host rebooted
-- (boot_time moved by more than 5 s: some kernels report it with a second of jitter); over a gap longer
-- than $max_interval_s it is scaled to the counted seconds. The first sample after more than 24 h without
-- one stands for nothing, as a host's first does (gpu_intervals.sql).
-- A sample without a counter (its subsystem failed or timed out: network, disks, cpu) has no delta for it,
-- and the next sample with the counter takes its delta from the last sample that had it (each counter its
-- own), scaled to the seconds the samples since then stand for (each capped at $max_interval_s, as above):
-- the counters are cumulative, so nothing is lost. Not across a reboot or a 24 h gap: a new run of
-- comparable samples starts at each, and a delta is taken only within one run, between two samples whose
-- boot times (where both have one) are the same.
WITH s AS (
    SELECT *,
        epoch(lag(ts) OVER w) AS prev_t,
        CASE WHEN epoch(ts) - epoch(lag(ts) OVER w) <= 86400 THEN epoch(ts) - epoch(lag(ts) OVER w) END AS dt,
        abs(epoch(boot_time) - epoch(lag(boot_time) OVER w)) > 5 AS rebooted,
        cpu_total_jiffies - cpu_idle_jiffies AS busy
    FROM host_src
    WINDOW w AS (PARTITION BY host ORDER BY ts)
), r AS (
    SELECT *,
        CASE WHEN dt IS NULL THEN 0 ELSE least(dt, $max_interval_s) END AS seconds,  -- least() skips NULLs
        -- the seconds counted so far, and the run the sample is in (a new one at a first sample, after 24 h
        -- without one, at a reboot)
        sum(CASE WHEN dt IS NULL THEN 0 ELSE least(dt, $max_interval_s) END) OVER upto AS counted,
        sum(CASE WHEN dt IS NULL OR rebooted THEN 1 ELSE 0 END) OVER upto AS run
    FROM s
    WINDOW upto AS (PARTITION BY host ORDER BY ts ROWS UNBOUNDED PRECEDING)
), p AS (
    -- each counter's last sample before this one that had it: the one before, unless that one had none
    SELECT *,
        lag(CASE WHEN busy IS NOT NULL THEN {'t': epoch(ts), 'counted': counted, 'run': run,
            'boot': epoch(boot_time), 'v': busy, 'total': cpu_total_jiffies} END IGNORE NULLS) OVER before AS p_cpu,
        lag(CASE WHEN net_rx_bytes IS NOT NULL THEN {'t': epoch(ts), 'counted': counted, 'run': run,
            'boot': epoch(boot_time), 'v': net_rx_bytes} END IGNORE NULLS) OVER before AS p_rx,
        lag(CASE WHEN net_tx_bytes IS NOT NULL THEN {'t': epoch(ts), 'counted': counted, 'run': run,
            'boot': epoch(boot_time), 'v': net_tx_bytes} END IGNORE NULLS) OVER before AS p_tx,
        lag(CASE WHEN disk_read_bytes IS NOT NULL THEN {'t': epoch(ts), 'counted': counted, 'run': run,
            'boot': epoch(boot_time), 'v': disk_read_bytes} END IGNORE NULLS) OVER before AS p_read,
        lag(CASE WHEN disk_write_bytes IS NOT NULL THEN {'t': epoch(ts), 'counted': counted, 'run': run,
            'boot': epoch(boot_time), 'v': disk_write_bytes} END IGNORE NULLS) OVER before AS p_write
    FROM r
    WINDOW before AS (PARTITION BY host ORDER BY ts)
), f AS (
    -- what a delta since that sample is scaled by: the seconds counted since it over the seconds since it
    -- (least(dt, max) / dt over one interval); NULL where that sample is in another run, or its boot time and
    -- this one's differ (a reboot in between, on samples without one), or it is at the same instant
    SELECT *,
        CASE WHEN p_cpu.run = run AND epoch(ts) > p_cpu.t THEN (CASE WHEN p_cpu.t = prev_t THEN seconds
            ELSE counted - p_cpu.counted END) / (epoch(ts) - p_cpu.t) END AS k_cpu,
        CASE WHEN p_rx.run = run AND NOT coalesce(abs(epoch(boot_time) - p_rx.boot) > 5, false)
            AND epoch(ts) > p_rx.t
            THEN (CASE WHEN p_rx.t = prev_t THEN seconds ELSE counted - p_rx.counted END) / (epoch(ts) - p_rx.t)
            END AS k_rx,
        CASE WHEN p_tx.run = run AND NOT coalesce(abs(epoch(boot_time) - p_tx.boot) > 5, false)
            AND epoch(ts) > p_tx.t
            THEN (CASE WHEN p_tx.t = prev_t THEN seconds ELSE counted - p_tx.counted END) / (epoch(ts) - p_tx.t)
            END AS k_tx,
        CASE WHEN p_read.run = run AND NOT coalesce(abs(epoch(boot_time) - p_read.boot) > 5, false)
            AND epoch(ts) > p_read.t
            THEN (CASE WHEN p_read.t = prev_t THEN seconds ELSE counted - p_read.counted END) / (epoch(ts) - p_read.t)
            END AS k_read,
        CASE WHEN p_write.run = run AND NOT coalesce(abs(epoch(boot_time) - p_write.boot) > 5, false)
            AND epoch(ts) > p_write.t
            THEN (CASE WHEN p_write.t = prev_t THEN seconds ELSE counted - p_write.counted END)
                / (epoch(ts) - p_write.t)
            END AS k_write,
        -- NULL without a predecessor in the run; false across a reboot only the two boot times show (counted)
        CASE WHEN p_cpu.run = run THEN NOT coalesce(abs(epoch(boot_time) - p_cpu.boot) > 5, false)
            AND busy >= p_cpu.v AND cpu_total_jiffies >= p_cpu.total
            AND busy - p_cpu.v <= cpu_total_jiffies - p_cpu.total END AS cpu_ok
    FROM p
)
SELECT
    ts, host, cpu_logical, load1, mem_used_bytes, mem_total_bytes, swap_used_bytes, fs_max_used_pct, seconds,
    CASE WHEN cpu_ok THEN (busy - p_cpu.v) * k_cpu END AS cpu_busy,
    CASE WHEN cpu_ok THEN (cpu_total_jiffies - p_cpu.total) * k_cpu END AS cpu_total,
    CASE WHEN net_rx_bytes >= p_rx.v THEN (net_rx_bytes - p_rx.v) * k_rx END AS net_rx,
    CASE WHEN net_tx_bytes >= p_tx.v THEN (net_tx_bytes - p_tx.v) * k_tx END AS net_tx,
    CASE WHEN disk_read_bytes >= p_read.v THEN (disk_read_bytes - p_read.v) * k_read END AS disk_read,
    CASE WHEN disk_write_bytes >= p_write.v THEN (disk_write_bytes - p_write.v) * k_write END AS disk_write,
    -- CPU counters that went back (the total; the busy count, or the idle one, with iowait, which some kernels
    -- let go back: either way not a share of the total) lose the interval's CPU, as a reboot does: counted
    CASE WHEN dt IS NOT NULL AND (coalesce(rebooted, false) OR NOT coalesce(cpu_ok, true))
        THEN 1 ELSE 0 END AS counter_reset
FROM f
WHERE ts >= $day_start AND ts < $day_end
