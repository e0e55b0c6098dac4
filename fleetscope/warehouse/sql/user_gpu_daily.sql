-- user_gpu_daily for one day, from the GPU intervals (view gpu_iv) and each user's share of each GPU at each
-- sample (temp table gpu_user_shares: gpu_user_shares.sql): seconds, energy and memory follow the share.
SELECT
    date_trunc('day', i.ts) AS ts, s."user", i.host, i.gpu_uuid,
    arg_max(i.gpu_index, i.ts) AS gpu_index,
    count(*) AS samples,
    coalesce(sum(i.seconds * s.share) FILTER (WHERE i.state = 'active'), 0) AS active_s,
    coalesce(sum(i.seconds * s.share) FILTER (WHERE i.state = 'idle_held'), 0) AS idle_held_s,
    coalesce(sum(i.seconds * s.share) FILTER (WHERE i.state = 'unmeasured'), 0) AS unmeasured_s,
    sum(s.mem * i.seconds) AS gpu_mem_byte_s,
    max(s.mem) AS gpu_mem_max_bytes,
    coalesce(sum(i.energy_j * s.share), 0) AS energy_j
FROM gpu_iv AS i
JOIN gpu_user_shares AS s ON s.ts = i.ts AND s.host = i.host AND s.gpu_uuid = i.gpu_uuid
GROUP BY 1, 2, 3, 4
