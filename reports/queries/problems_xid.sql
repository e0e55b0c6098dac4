-- Xid events (gpu_xid: the NVIDIA driver's errors in the hosts' kernel logs) read by runs since $since, per host,
-- GPU and code: how many (an event stored twice counts once: by its boot and sequence number), the first and the latest
-- (logged_at: host clock), the latest message, and the GPU's index where NVML still listed it.
-- Parameters: $since.
SELECT host, pci, xid,
       count(DISTINCT (coalesce(boot_id, logged_at::VARCHAR), seq)) AS events,
       min(logged_at) AS first_at,
       max(logged_at) AS last_at,
       arg_max(message, logged_at) AS message,
       arg_max(gpu_index, logged_at) FILTER (WHERE gpu_index IS NOT NULL) AS gpu_index
FROM gpu_xid
WHERE ts >= $since
GROUP BY host, pci, xid
ORDER BY host, pci, xid
