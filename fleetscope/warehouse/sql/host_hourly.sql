-- host_hourly for one day, from the view host_iv (host_intervals.sql).
SELECT
    date_trunc('hour', ts) AS ts, host,
    count(*) AS samples,
    sum(seconds) AS seconds,
    coalesce(sum(cpu_busy), 0) AS cpu_busy_jiffies,
    coalesce(sum(cpu_total), 0) AS cpu_total_jiffies,
    max(cpu_logical) AS cpu_logical,
    sum(load1) AS load1_sum,
    max(load1) AS load1_max,
    coalesce(sum(mem_used_bytes * seconds), 0) AS mem_used_byte_s,
    max(mem_used_bytes) AS mem_used_max_bytes,
    max(mem_total_bytes) AS mem_total_bytes,
    max(swap_used_bytes) AS swap_used_max_bytes,
    coalesce(sum(net_rx), 0) AS net_rx_bytes,
    coalesce(sum(net_tx), 0) AS net_tx_bytes,
    coalesce(sum(disk_read), 0) AS disk_read_bytes,
    coalesce(sum(disk_write), 0) AS disk_write_bytes,
    max(fs_max_used_pct) AS fs_max_used_pct,
    sum(counter_reset) AS counter_resets
FROM host_iv
GROUP BY 1, 2
