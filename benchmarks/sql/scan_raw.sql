-- One pass over every raw row the rollups read: the least any rollup of these tables can cost.
SELECT
    (SELECT count(*) + sum(utilization_gpu_pct) + sum(mem_used_bytes) + sum(energy_mj) FROM gpu_samples),
    (SELECT count(*) + sum(gpu_mem_bytes) FROM gpu_processes),
    (SELECT count(*) + sum(cpu_total_jiffies) + sum(net_rx_bytes) FROM host_samples)
