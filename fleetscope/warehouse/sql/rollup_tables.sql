-- The rollup tables: what stays exact when re-aggregated (counts, sums, sums of squares, min, max, seconds).
-- Stored like the raw tables, in Parquet under <data>/<table>/date=YYYY-MM-DD/, one file per day, written
-- by `fleetscope rollup` from the .sql files beside this one. `ts` is the start of the hour or day (UTC).
--
-- Seconds: each raw sample stands for the interval since the previous sample of the same host or GPU,
-- capped at rollup.max_interval_s (a host that was down is not counted as busy, idle or free for the gap).
-- A GPU-second is active (utilization > report.busy_threshold_pct), idle_held (not active, but a process
-- on it or more than rollup.held_mem_mib of memory used), unmeasured (held so, but NVML gave no utilization:
-- a GPU in MIG mode) or free. active_s + idle_held_s + unmeasured_s + free_s = seconds.
--
-- Utilization means divide by the samples and seconds that had a utilization (util_samples, util_seconds),
-- not by all of them. Rows written before those columns existed have them NULL: there every sample counted
-- (use coalesce(util_seconds, seconds)).

CREATE TABLE gpu_hourly (
    ts                  TIMESTAMP,  -- hour start
    host                VARCHAR,
    gpu_uuid            VARCHAR,
    gpu_index           INTEGER,    -- the last index seen in the bucket
    name                VARCHAR,
    samples             BIGINT,
    seconds             DOUBLE,     -- covered seconds
    active_s            DOUBLE,
    idle_held_s         DOUBLE,
    free_s              DOUBLE,
    unmeasured_s        DOUBLE,     -- held, utilization unknown (MIG mode)
    util_s              DOUBLE,     -- sum of utilization % x seconds: util_s / util_seconds = time-weighted mean %
    util_samples        BIGINT,     -- samples with a utilization
    util_seconds        DOUBLE,     -- seconds of the samples with a utilization
    util_sum            DOUBLE,     -- sum over samples of utilization %: util_sum / util_samples = mean %
    util_sumsq          DOUBLE,     -- sum of squares, for the standard deviation
    util_min            DOUBLE,
    util_max            DOUBLE,
    mem_used_byte_s     DOUBLE,     -- sum of used bytes x seconds
    mem_used_max_bytes  BIGINT,
    mem_total_bytes     BIGINT,
    temp_sum            DOUBLE,     -- degrees C, over samples with a temperature
    temp_samples        BIGINT,
    temp_max            DOUBLE,
    power_max_w         DOUBLE,     -- highest instantaneous reading
    energy_j            DOUBLE,     -- joules, from the cumulative energy counter (0 where it reset)
    energy_s            DOUBLE,     -- seconds the energy figure covers (average power = energy_j / energy_s)
    energy_resets       BIGINT,     -- counter went down (driver reload, reboot)
    throttled_samples   BIGINT,     -- samples with a throttle reason other than gpu_idle
    ecc_uncorrected_max BIGINT      -- volatile uncorrected ECC errors, highest
);

CREATE TABLE gpu_daily (            -- the same columns, one row per GPU and UTC day, summed from gpu_hourly
    ts                  TIMESTAMP,  -- day start
    host                VARCHAR,
    gpu_uuid            VARCHAR,
    gpu_index           INTEGER,
    name                VARCHAR,
    samples             BIGINT,
    seconds             DOUBLE,
    active_s            DOUBLE,
    idle_held_s         DOUBLE,
    free_s              DOUBLE,
    unmeasured_s        DOUBLE,
    util_s              DOUBLE,
    util_samples        BIGINT,
    util_seconds        DOUBLE,
    util_sum            DOUBLE,
    util_sumsq          DOUBLE,
    util_min            DOUBLE,
    util_max            DOUBLE,
    mem_used_byte_s     DOUBLE,
    mem_used_max_bytes  BIGINT,
    mem_total_bytes     BIGINT,
    temp_sum            DOUBLE,
    temp_samples        BIGINT,
    temp_max            DOUBLE,
    power_max_w         DOUBLE,
    energy_j            DOUBLE,
    energy_s            DOUBLE,
    energy_resets       BIGINT,
    throttled_samples   BIGINT,
    ecc_uncorrected_max BIGINT
);

CREATE TABLE host_hourly (
    ts                  TIMESTAMP,  -- hour start
    host                VARCHAR,
    samples             BIGINT,
    seconds             DOUBLE,     -- covered seconds (capped per interval, as for GPUs)
    cpu_busy_jiffies    DOUBLE,     -- from the cumulative counters: total - idle - iowait
    cpu_total_jiffies   DOUBLE,     -- cpu % = 100 * busy / total
    cpu_logical         INTEGER,
    load1_sum           DOUBLE,
    load1_max           DOUBLE,
    mem_used_byte_s     DOUBLE,
    mem_used_max_bytes  BIGINT,
    mem_total_bytes     BIGINT,
    swap_used_max_bytes BIGINT,
    net_rx_bytes        DOUBLE,     -- bytes moved in the bucket, from the cumulative counters
    net_tx_bytes        DOUBLE,
    disk_read_bytes     DOUBLE,
    disk_write_bytes    DOUBLE,
    fs_max_used_pct     DOUBLE,
    counter_resets      BIGINT      -- intervals dropped because a counter went down (reboot)
);

CREATE TABLE host_daily (           -- the same columns, one row per host and UTC day, summed from host_hourly
    ts                  TIMESTAMP,  -- day start
    host                VARCHAR,
    samples             BIGINT,
    seconds             DOUBLE,
    cpu_busy_jiffies    DOUBLE,
    cpu_total_jiffies   DOUBLE,
    cpu_logical         INTEGER,
    load1_sum           DOUBLE,
    load1_max           DOUBLE,
    mem_used_byte_s     DOUBLE,
    mem_used_max_bytes  BIGINT,
    mem_total_bytes     BIGINT,
    swap_used_max_bytes BIGINT,
    net_rx_bytes        DOUBLE,
    net_tx_bytes        DOUBLE,
    disk_read_bytes     DOUBLE,
    disk_write_bytes    DOUBLE,
    fs_max_used_pct     DOUBLE,
    counter_resets      BIGINT
);

CREATE TABLE user_gpu_daily (       -- per user, host, GPU and UTC day: what the user's processes used
    ts                  TIMESTAMP,  -- day start
    "user"              VARCHAR,
    host                VARCHAR,
    gpu_uuid            VARCHAR,
    gpu_index           INTEGER,
    samples             BIGINT,     -- samples where the user had a process on the GPU
    active_s            DOUBLE,     -- the user's share of the GPU's active seconds
    idle_held_s         DOUBLE,     -- the user's share of the GPU's idle-held seconds
    unmeasured_s        DOUBLE,     -- the user's share of the GPU's unmeasured seconds (MIG mode)
    gpu_mem_byte_s      DOUBLE,     -- GPU memory held by the user's processes x seconds
    gpu_mem_max_bytes   BIGINT,
    energy_j            DOUBLE      -- the user's share of the GPU's energy
);

CREATE TABLE process_gpu_daily (    -- per process (host, pid, user, start) and UTC day: the GPUs it used
    ts                  TIMESTAMP,  -- day start
    host                VARCHAR,
    pid                 INTEGER,
    "user"              VARCHAR,    -- '(unknown)' where the host did not say
    command             VARCHAR,    -- the last seen in the day, redacted on the host; NULL if never read
    started_at          TIMESTAMP,  -- when it started: an earlier day's value, else the earliest reading
    first_seen          TIMESTAMP,  -- its first sample on a GPU in the day
    last_seen           TIMESTAMP,  -- its last
    samples             BIGINT,     -- samples at which it was on a GPU
    gpus                BIGINT,     -- GPUs it was seen on in the day
    gpu_indexes         INTEGER[],  -- their indexes (sorted)
    active_s            DOUBLE,     -- its share of those GPUs' active seconds
    idle_held_s         DOUBLE,     -- ... idle-held seconds
    unmeasured_s        DOUBLE,     -- ... unmeasured seconds (MIG mode)
    gpu_mem_byte_s      DOUBLE,     -- GPU memory it held x seconds, all its GPUs
    gpu_mem_max_bytes   BIGINT,     -- most GPU memory it held on one GPU at a sample
    energy_j            DOUBLE      -- its share of those GPUs' energy
);
