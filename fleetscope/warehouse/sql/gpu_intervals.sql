-- One row per GPU sample of the day being rolled up, with the interval it stands for.
-- Input: view gpu_src (gpu_samples of the day and the day before, for the first interval's predecessor).
-- Parameters: $day_start, $day_end, $max_interval_s, $busy_pct, $held_bytes.
-- A sample stands for the time since the previous sample of the same GPU, capped at $max_interval_s (a gap
-- while the host was down counts for no more than that); the first sample ever, and the first after more
-- than 24 h without one, stand for nothing (the day before is all a day's rollup reads: so a gap counts the
-- same whichever days it spans, and the report's raw queries count it alike).
-- A sample without a utilization (MIG mode) keeps util NULL: it is left out of the utilization sums and
-- counts (util_samples, util_seconds) and classed 'unmeasured' where something holds the GPU.
-- Energy comes from the cumulative counter; over a capped gap it is scaled to the counted seconds (the
-- average power times the seconds), and where the counter went down (driver reload, reboot) it is left out.
WITH s AS (
    SELECT *,
        coalesce(utilization_gpu_avg_pct, utilization_gpu_pct) AS util,
        coalesce(process_count, 0) > 0 OR coalesce(mem_used_bytes, 0) > $held_bytes AS held,
        CASE WHEN epoch(ts) - epoch(lag(ts) OVER w) <= 86400 THEN epoch(ts) - epoch(lag(ts) OVER w) END AS dt,
        lag(energy_mj) OVER w AS prev_energy_mj
    FROM gpu_src
    WINDOW w AS (PARTITION BY host, gpu_uuid ORDER BY ts)
)
SELECT
    ts, host, gpu_uuid, gpu_index, name, util, mem_used_bytes, mem_total_bytes, temperature_c, power_w,
    ecc_volatile_uncorrected, process_count,
    CASE WHEN dt IS NULL THEN 0 ELSE least(dt, $max_interval_s) END AS seconds,  -- least() skips NULLs
    CASE
        WHEN util > $busy_pct THEN 'active'
        -- held, but NVML gave no utilization (a GPU in MIG mode, or the call refused): in use, busy or not
        -- unknown. Not idle_held: a MIG GPU running jobs is not an idle one.
        WHEN held AND util IS NULL THEN 'unmeasured'
        WHEN held THEN 'idle_held'
        ELSE 'free'
    END AS state,
    CASE WHEN energy_mj >= prev_energy_mj AND dt > 0
        THEN (energy_mj - prev_energy_mj) / 1000.0 * least(dt, $max_interval_s) / dt END AS energy_j,
    CASE WHEN energy_mj >= prev_energy_mj AND dt > 0 THEN least(dt, $max_interval_s) END AS energy_s,
    CASE WHEN dt IS NOT NULL AND energy_mj < prev_energy_mj THEN 1 ELSE 0 END AS energy_reset,
    -- throttled: any reason but gpu_idle (an idle GPU clocks down; that is not a problem)
    CASE WHEN replace(replace(',' || coalesce(throttle_reasons, '') || ',', ',gpu_idle,', ','), ',', '') <> ''
        THEN 1 ELSE 0 END AS throttled
FROM s
WHERE ts >= $day_start AND ts < $day_end
