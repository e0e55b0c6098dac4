-- Hosts whose /proc hid other users' processes from the collector at their latest sample (hidepid=, the
-- collecting account neither root nor in the mount's gid= group): their top processes lack other users', and
-- other users' GPU processes show no owner.
SELECT host, ts, procs_visible
FROM report_latest
WHERE procs_hidden
ORDER BY host
