-- Hosts whose clock differed from the controller's by more than $max_skew_s at their latest sample
-- (report_latest, _prepare.sql; clock_skew_s = host clock - controller clock, positive: the host is ahead).
-- Parameters: $max_skew_s.
SELECT host, ts, clock_skew_s, host_ts
FROM report_latest
WHERE abs(clock_skew_s) > $max_skew_s
ORDER BY abs(clock_skew_s) DESC, host
