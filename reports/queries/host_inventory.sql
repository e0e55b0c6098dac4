-- The latest inventory row of each host, with the boot time of its latest sample (report_latest,
-- _prepare.sql): a reboot alone adds no inventory row (boot_time is not part of facts_hash:
-- fleetscope/warehouse/rows.py), so the row's own boot_time is that of the run that last saw a fact change.
-- A host with no raw samples left keeps it.
SELECT h.* REPLACE (coalesce(s.boot_time, h.boot_time) AS boot_time)
FROM hosts AS h
LEFT JOIN report_latest AS s USING (host)
QUALIFY row_number() OVER (PARTITION BY h.host ORDER BY h.ts DESC, h.run_id DESC) = 1
ORDER BY h.host
