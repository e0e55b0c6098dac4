-- GPU-hours per user and host over the last 7 days, 30 days and year (from user_gpu_daily), as in
-- user_usage.sql: the users page's user x host heat-map and each host page's "who used it".
-- Parameters: $since_7d, $since_30d, $since_1y (day starts).
SELECT "user",
       host,
       sum(active_s) FILTER (WHERE ts >= $since_7d) / 3600.0 AS active_h_7d,
       sum(idle_held_s) FILTER (WHERE ts >= $since_7d) / 3600.0 AS held_h_7d,
       sum(unmeasured_s) FILTER (WHERE ts >= $since_7d) / 3600.0 AS unmeasured_h_7d,
       sum(energy_j) FILTER (WHERE ts >= $since_7d) / 3.6e6 AS kwh_7d,
       sum(active_s) FILTER (WHERE ts >= $since_30d) / 3600.0 AS active_h_30d,
       sum(idle_held_s) FILTER (WHERE ts >= $since_30d) / 3600.0 AS held_h_30d,
       sum(unmeasured_s) FILTER (WHERE ts >= $since_30d) / 3600.0 AS unmeasured_h_30d,
       sum(energy_j) FILTER (WHERE ts >= $since_30d) / 3.6e6 AS kwh_30d,
       sum(active_s) / 3600.0 AS active_h_1y,
       sum(idle_held_s) / 3600.0 AS held_h_1y,
       sum(unmeasured_s) / 3600.0 AS unmeasured_h_1y,
       sum(energy_j) / 3.6e6 AS kwh_1y,
       max(ts) AS last_day
FROM user_gpu_daily
WHERE ts >= $since_1y
GROUP BY "user", host
ORDER BY host, active_h_1y + held_h_1y + coalesce(unmeasured_h_1y, 0) DESC, "user"
