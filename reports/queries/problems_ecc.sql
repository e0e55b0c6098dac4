-- GPUs with uncorrected ECC errors or remapped rows (uncorrectable, pending, or failed remapping) at their
-- host's latest sample (report_gpus, _prepare.sql). Aggregate counts last for the GPU's life; volatile ones
-- since the driver loaded.
SELECT host, ts, gpu_index, gpu_uuid, name,
       ecc_volatile_uncorrected, ecc_aggregate_uncorrected, remapped_rows_uncorrectable,
       remapped_rows_pending, remapped_rows_failure
FROM report_gpus
WHERE coalesce(ecc_volatile_uncorrected, 0) > 0
   OR coalesce(ecc_aggregate_uncorrected, 0) > 0
   OR coalesce(remapped_rows_uncorrectable, 0) > 0
   OR coalesce(remapped_rows_pending, false)
   OR coalesce(remapped_rows_failure, false)
ORDER BY host, gpu_index
