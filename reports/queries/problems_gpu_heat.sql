-- GPUs that ran hot (temperature at or above $hot_c) or were throttled for one of $reasons since $since:
-- per GPU, the samples concerned, the hottest and the latest temperature, which reasons were seen and when.
-- Parameters: $since, $hot_c, $reasons (list of throttle reason names).
WITH s AS (
    SELECT host, gpu_uuid, gpu_index, name, ts, temperature_c,
           list_intersect(string_split(coalesce(throttle_reasons, ''), ','), CAST($reasons AS VARCHAR[])) AS bad
    FROM gpu_samples
    WHERE ts >= $since
)
SELECT host,
       gpu_uuid,
       arg_max(gpu_index, ts) AS gpu_index,
       arg_max(name, ts) AS name,
       count(*) AS samples,
       count(*) FILTER (WHERE temperature_c >= $hot_c) AS hot_samples,
       count(*) FILTER (WHERE len(bad) > 0) AS throttled_samples,
       max(temperature_c) AS temp_max_c,
       arg_max(temperature_c, ts) AS temp_now_c,
       list_sort(list_distinct(flatten(list(bad)))) AS reasons,
       max(ts) FILTER (WHERE temperature_c >= $hot_c OR len(bad) > 0) AS last_ts
FROM s
GROUP BY host, gpu_uuid
HAVING hot_samples > 0 OR throttled_samples > 0
ORDER BY hot_samples + throttled_samples DESC, host, gpu_index
