-- host_daily for one day, summed from that day's host_hourly rows (view host_hourly_day).
SELECT
    date_trunc('day', ts) AS ts, host,
    sum(samples) AS samples,
    sum(seconds) AS seconds,
    sum(cpu_busy_jiffies) AS cpu_busy_jiffies,
    sum(cpu_total_jiffies) AS cpu_total_jiffies,
    max(cpu_logical) AS cpu_logical,
    sum(load1_sum) AS load1_sum,
    max(load1_max) AS load1_max,
    sum(mem_used_byte_s) AS mem_used_byte_s,
    max(mem_used_max_bytes) AS mem_used_max_bytes,
    max(mem_total_bytes) AS mem_total_bytes,
    max(swap_used_max_bytes) AS swap_used_max_bytes,
    sum(net_rx_bytes) AS net_rx_bytes,
    sum(net_tx_bytes) AS net_tx_bytes,
    sum(disk_read_bytes) AS disk_read_bytes,
    sum(disk_write_bytes) AS disk_write_bytes,
    max(fs_max_used_pct) AS fs_max_used_pct,
    sum(counter_resets) AS counter_resets
FROM host_hourly_day
GROUP BY 1, 2
