-- GPUs with uncorrected ECC errors or remapped rows (uncorrectable, pending, or failed remapping) at any
-- sample since $since, or at their host's latest sample (report_gpus, _prepare.sql): a GPU that had them
-- and then fell off the bus, or whose host went down, stays listed. The values are those of its latest
-- sample with them (`ts`); `now`: 'now' when its host's latest sample still has them, 'cleared' when that
-- sample has the GPU without them (volatile counts restart with the driver), 'missing' when it lacks the
-- GPU. Aggregate counts last for the GPU's life; volatile ones since the driver loaded.
-- Parameters: $since.
WITH seen AS (  -- the window's samples, and each host's latest (which may be older than the window)
    SELECT * FROM gpu_samples WHERE ts >= $since
    UNION ALL BY NAME
    SELECT * FROM report_gpus
),
latest_bad AS (
    SELECT host, ts, gpu_index, gpu_uuid, name,
           ecc_volatile_uncorrected, ecc_aggregate_uncorrected, remapped_rows_uncorrectable,
           remapped_rows_pending, remapped_rows_failure
    FROM seen
    WHERE coalesce(ecc_volatile_uncorrected, 0) > 0
       OR coalesce(ecc_aggregate_uncorrected, 0) > 0
       OR coalesce(remapped_rows_uncorrectable, 0) > 0
       OR coalesce(remapped_rows_pending, false)
       OR coalesce(remapped_rows_failure, false)
    QUALIFY row_number() OVER (PARTITION BY host, coalesce(gpu_uuid, gpu_index::VARCHAR) ORDER BY ts DESC) = 1
)
SELECT b.*,
       CASE WHEN r.host IS NULL THEN 'missing' WHEN r.ts = b.ts THEN 'now' ELSE 'cleared' END AS now
FROM latest_bad AS b
LEFT JOIN report_gpus AS r
       ON r.host = b.host AND coalesce(r.gpu_uuid, r.gpu_index::VARCHAR) = coalesce(b.gpu_uuid, b.gpu_index::VARCHAR)
ORDER BY b.host, b.gpu_index
