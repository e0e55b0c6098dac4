-- GPU-hours per user in [$since, $until), from the daily rollup (days that start in the range).
SELECT "user", sum(active_s + idle_held_s + coalesce(unmeasured_s, 0)) / 3600 AS gpu_hours
FROM user_gpu_daily
WHERE ts >= $since AND ts < $until
GROUP BY 1
ORDER BY 2 DESC, 1
