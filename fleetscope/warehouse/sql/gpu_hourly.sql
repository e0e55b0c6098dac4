-- gpu_hourly for one day, from the view gpu_iv (gpu_intervals.sql).
SELECT
    date_trunc('hour', ts) AS ts, host, gpu_uuid,
    arg_max(gpu_index, ts) AS gpu_index,
    arg_max(name, ts) AS name,
    count(*) AS samples,
    sum(seconds) AS seconds,
    coalesce(sum(seconds) FILTER (WHERE state = 'active'), 0) AS active_s,
    coalesce(sum(seconds) FILTER (WHERE state = 'idle_held'), 0) AS idle_held_s,
    coalesce(sum(seconds) FILTER (WHERE state = 'free'), 0) AS free_s,
    coalesce(sum(util * seconds), 0) AS util_s,
    sum(util) AS util_sum,
    sum(util * util) AS util_sumsq,
    min(util) AS util_min,
    max(util) AS util_max,
    coalesce(sum(mem_used_bytes * seconds), 0) AS mem_used_byte_s,
    max(mem_used_bytes) AS mem_used_max_bytes,
    max(mem_total_bytes) AS mem_total_bytes,
    sum(temperature_c) AS temp_sum,
    count(temperature_c) AS temp_samples,
    max(temperature_c) AS temp_max,
    max(power_w) AS power_max_w,
    coalesce(sum(energy_j), 0) AS energy_j,
    coalesce(sum(energy_s), 0) AS energy_s,
    sum(energy_reset) AS energy_resets,
    sum(throttled) AS throttled_samples,
    max(ecc_volatile_uncorrected) AS ecc_uncorrected_max
FROM gpu_iv
GROUP BY 1, 2, 3
