-- When the warehouse last heard from the fleet: the latest run (by its finish, else start) or, when the
-- runs table is empty, the latest host status. Also the time the timelines are anchored to.
SELECT coalesce(
           (SELECT max(coalesce(finished_at, started_at)) FROM runs),
           (SELECT max(ts) FROM host_status)
       ) AS latest_run_at,
       greatest(
           (SELECT max(ts) FROM host_samples),
           (SELECT max(ts) FROM host_status)
       ) AS latest_data_at
