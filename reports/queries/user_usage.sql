-- GPU-hours and energy per user over the last 7 days, 30 days and year (from user_gpu_daily): hours a GPU was
-- active for the user, hours it sat idle while the user's processes held it, hours they held it while its
-- utilization was unknown (MIG mode; 0 in rows rolled up before that was kept), and the user's share of its
-- energy in kWh. A window counts whole UTC days back from the day of the newest data, that day included.
-- Parameters: $since_7d, $since_30d, $since_1y (day starts).
SELECT "user",
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
       count(DISTINCT host) FILTER (WHERE ts >= $since_30d) AS hosts_30d,
       max(ts) AS last_day
FROM user_gpu_daily
WHERE ts >= $since_1y
GROUP BY "user"
ORDER BY coalesce(active_h_30d, 0) + coalesce(held_h_30d, 0) + coalesce(unmeasured_h_30d, 0) DESC,
         active_h_1y + held_h_1y + coalesce(unmeasured_h_1y, 0) DESC, "user"
