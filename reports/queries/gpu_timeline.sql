-- Per host, GPU and time bucket: utilization, memory used, temperature, power and SM clock, rounded to what a
-- chart shows. `ts` is the bucket start. Ordered by host, GPU index, then time.
-- Power is the exact mean from the cumulative energy counter: the joules between the last sample of the
-- previous bucket and the last sample of this one, over the seconds between them (the intervals that end
-- in the bucket). Where that is unknown (the first bucket, a counter that went down in the bucket: driver
-- reload or reboot, an implausible jump) the mean of the instantaneous power_w readings stands in.
-- Buckets first, then the window over buckets: far fewer rows to sort than one per sample.
-- Parameters: $since, $bucket_s.
WITH buckets AS (
    SELECT host,
           gpu_index,
           time_bucket(to_seconds($bucket_s), ts) AS ts,
           avg(coalesce(utilization_gpu_avg_pct, utilization_gpu_pct)) AS util_pct,
           avg(mem_used_bytes) AS mem_used_bytes,
           max(mem_total_bytes) AS mem_total_bytes,
           avg(temperature_c) AS temperature_c,
           avg(power_w) AS power_read_w,
           max(power_limit_w) AS power_limit_w,
           avg(clock_sm_mhz) AS clock_sm_mhz,
           arg_max(energy_mj, ts) AS energy_last_mj,
           min(energy_mj) AS energy_min_mj,
           max(ts) AS last_ts
    FROM gpu_samples
    WHERE ts >= $since
    GROUP BY ALL
),
deltas AS (
    SELECT *,
           energy_last_mj - lag(energy_last_mj) OVER w AS d_energy_mj,
           energy_min_mj >= lag(energy_last_mj) OVER w AS counter_kept,
           epoch(last_ts) - epoch(lag(last_ts) OVER w) AS d_s
    FROM buckets
    WINDOW w AS (PARTITION BY host, gpu_index ORDER BY ts)
)
SELECT host,
       gpu_index,
       ts,
       CAST(round(util_pct) AS INTEGER) AS util_pct,
       round(mem_used_bytes / 1073741824.0, 1) AS mem_used_gib,
       round(mem_total_bytes / 1073741824.0, 1) AS mem_total_gib,
       CAST(round(temperature_c) AS INTEGER) AS temperature_c,
       CAST(round(CASE WHEN d_s > 0 AND counter_kept
                            AND d_energy_mj / 1000.0 / d_s <= 2 * coalesce(power_limit_w, 1500)
                       THEN d_energy_mj / 1000.0 / d_s
                       ELSE power_read_w END) AS INTEGER) AS power_w,
       CAST(round(clock_sm_mhz) AS INTEGER) AS clock_sm_mhz
FROM deltas
ORDER BY host, gpu_index, ts
