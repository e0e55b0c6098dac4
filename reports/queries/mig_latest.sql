-- MIG instances of each GPU at its host's latest sample (report_gpus, _prepare.sql), for the host pages.
SELECT m.host, m.gpu_index, m.gpu_uuid, m.mig_index, m.mig_uuid, m.gi_id, m.ci_id, m.slices,
       m.mem_total_bytes, m.mem_used_bytes
FROM gpu_mig AS m
JOIN report_gpus AS g ON g.host = m.host AND g.gpu_uuid IS NOT DISTINCT FROM m.gpu_uuid AND g.ts = m.ts
ORDER BY m.host, m.gpu_index, m.mig_index
