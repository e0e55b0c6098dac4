-- Mean GPU utilization per host and time bucket (all its GPUs together): the fleet heat-map.
-- Parameters: $since, $bucket_s.
SELECT host,
       time_bucket(to_seconds($bucket_s), ts) AS bucket,
       round(avg(coalesce(utilization_gpu_avg_pct, utilization_gpu_pct)), 1) AS gpu_util_pct
FROM gpu_samples
WHERE ts >= $since
GROUP BY host, bucket
ORDER BY host, bucket
