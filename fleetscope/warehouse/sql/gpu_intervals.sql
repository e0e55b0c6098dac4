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
-- A sample without an energy reading (NVML refused it) has none; the next sample with one takes the energy
-- since the last sample that had one, scaled to the seconds the samples since then stand for (each capped
-- as above), so nothing is lost: not across a 24 h gap (where a new run of comparable samples starts).
WITH s AS (
    SELECT *,
        coalesce(utilization_gpu_avg_pct, utilization_gpu_pct) AS util,
        coalesce(process_count, 0) > 0 OR coalesce(mem_used_bytes, 0) > $held_bytes AS held,
        epoch(lag(ts) OVER w) AS prev_t,
        CASE WHEN epoch(ts) - epoch(lag(ts) OVER w) <= 86400 THEN epoch(ts) - epoch(lag(ts) OVER w) END AS dt
    FROM gpu_src
    WINDOW w AS (PARTITION BY host, gpu_uuid ORDER BY ts)
), r AS (
    SELECT *,
        CASE WHEN dt IS NULL THEN 0 ELSE least(dt, $max_interval_s) END AS seconds,  -- least() skips NULLs
        -- the seconds counted so far, and the run the sample is in (a new one at a first sample, after 24 h
        -- without one)
        sum(CASE WHEN dt IS NULL THEN 0 ELSE least(dt, $max_interval_s) END) OVER upto AS counted,
        sum(CASE WHEN dt IS NULL THEN 1 ELSE 0 END) OVER upto AS run
    FROM s
    WINDOW upto AS (PARTITION BY host, gpu_uuid ORDER BY ts ROWS UNBOUNDED PRECEDING)
), p AS (
    -- the last sample before this one with an energy reading: the one before, unless that one had none
    SELECT *,
        lag(CASE WHEN energy_mj IS NOT NULL THEN {'t': epoch(ts), 'counted': counted, 'run': run,
            'v': energy_mj} END IGNORE NULLS) OVER before AS p_e
    FROM r
    WINDOW before AS (PARTITION BY host, gpu_uuid ORDER BY ts)
), e AS (
    -- the seconds since that sample, and those counted since it (least(dt, max) over one interval)
    SELECT *,
        CASE WHEN p_e.run = run THEN epoch(ts) - p_e.t END AS e_span,  -- NULL: no predecessor in the run
        CASE WHEN p_e.t = prev_t THEN seconds ELSE counted - p_e.counted END AS e_counted
    FROM p
)
SELECT
    ts, host, gpu_uuid, gpu_index, name, util, mem_used_bytes, mem_total_bytes, temperature_c, power_w,
    ecc_volatile_uncorrected, process_count,
    seconds,
    CASE
        WHEN util > $busy_pct THEN 'active'
        -- held, but NVML gave no utilization (a GPU in MIG mode, or the call refused): in use, busy or not
        -- unknown. Not idle_held: a MIG GPU running jobs is not an idle one.
        WHEN held AND util IS NULL THEN 'unmeasured'
        WHEN held THEN 'idle_held'
        ELSE 'free'
    END AS state,
    CASE WHEN energy_mj >= p_e.v AND e_span > 0
        THEN (energy_mj - p_e.v) / 1000.0 * e_counted / e_span END AS energy_j,
    CASE WHEN energy_mj >= p_e.v AND e_span > 0 THEN e_counted END AS energy_s,
    CASE WHEN e_span IS NOT NULL AND energy_mj < p_e.v THEN 1 ELSE 0 END AS energy_reset,
    -- throttled: any reason but gpu_idle (an idle GPU clocks down; that is not a problem)
    CASE WHEN replace(replace(',' || coalesce(throttle_reasons, '') || ',', ',gpu_idle,', ','), ',', '') <> ''
        THEN 1 ELSE 0 END AS throttled
FROM e
WHERE ts >= $day_start AND ts < $day_end
