-- Hosts whose fullest local file system was at least $full_pct used at their latest sample (report_latest,
-- _prepare.sql).
-- Parameters: $full_pct.
SELECT host, ts, fs_max_used_pct, fs_max_used_mount, fs_total_bytes, fs_used_bytes
FROM report_latest
WHERE fs_max_used_pct >= $full_pct
ORDER BY fs_max_used_pct DESC, host
