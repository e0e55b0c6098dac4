-- gpu_daily for one day, summed from that day's gpu_hourly rows (view gpu_hourly_day): every column is a
-- count, sum, min or max, so the daily value equals the one computed from the raw samples.
SELECT
    date_trunc('day', ts) AS ts, host, gpu_uuid,
    arg_max(gpu_index, ts) AS gpu_index,
    arg_max(name, ts) AS name,
    sum(samples) AS samples,
    sum(seconds) AS seconds,
    sum(active_s) AS active_s,
    sum(idle_held_s) AS idle_held_s,
    sum(free_s) AS free_s,
    sum(unmeasured_s) AS unmeasured_s,
    sum(util_s) AS util_s,
    sum(util_samples) AS util_samples,
    sum(util_seconds) AS util_seconds,
    sum(util_sum) AS util_sum,
    sum(util_sumsq) AS util_sumsq,
    min(util_min) AS util_min,
    max(util_max) AS util_max,
    sum(mem_used_byte_s) AS mem_used_byte_s,
    max(mem_used_max_bytes) AS mem_used_max_bytes,
    max(mem_total_bytes) AS mem_total_bytes,
    sum(temp_sum) AS temp_sum,
    sum(temp_samples) AS temp_samples,
    max(temp_max) AS temp_max,
    max(power_max_w) AS power_max_w,
    sum(energy_j) AS energy_j,
    sum(energy_s) AS energy_s,
    sum(energy_resets) AS energy_resets,
    sum(throttled_samples) AS throttled_samples,
    max(ecc_uncorrected_max) AS ecc_uncorrected_max
FROM gpu_hourly_day
GROUP BY 1, 2, 3
