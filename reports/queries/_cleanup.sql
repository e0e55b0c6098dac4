-- Run at the end of a build: the temp tables of _prepare.sql.
DROP TABLE IF EXISTS report_latest;
DROP TABLE IF EXISTS report_previous;
DROP TABLE IF EXISTS report_status;
DROP TABLE IF EXISTS report_gpus;
DROP TABLE IF EXISTS report_processes;
DROP TABLE IF EXISTS report_host_processes;
DROP TABLE IF EXISTS report_maintenance;
DROP VIEW IF EXISTS report_process_days;
