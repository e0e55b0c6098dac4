-- The warehouse tables: names and columns are part of the user interface (docs/sql.md).
-- Each CREATE TABLE here gives the column types of one table. The rows themselves live in Parquet under
-- <data>/<table>/date=YYYY-MM-DD/*.parquet; the catalog exposes each table as a view over those files
-- with exactly these columns. Every time is UTC (TIMESTAMP without zone, meaning UTC).

CREATE TABLE runs (
    run_id              VARCHAR,    -- e.g. 20261123T092000123456Z-3f2a: sortable by start time
    started_at          TIMESTAMP,  -- controller clock
    finished_at         TIMESTAMP,
    inventory           VARCHAR,    -- path of the inventory the run used
    hosts_total         INTEGER,
    hosts_ok            INTEGER,
    hosts_unreachable   INTEGER,
    hosts_failed        INTEGER,
    hosts_timeout       INTEGER,
    fleetscope_version  VARCHAR
);

CREATE TABLE host_status (
    run_id      VARCHAR,
    ts          TIMESTAMP,  -- controller clock when the host's result arrived
    host        VARCHAR,    -- inventory name
    status      VARCHAR,    -- ok | unreachable | failed | timeout
    message     VARCHAR,    -- why, for anything but ok; subsystem errors for ok hosts with errors
    errors      INTEGER,    -- number of failed subsystems in the document (ok hosts)
    duration_s  DOUBLE      -- collector wall time on the host (ok hosts)
);

CREATE TABLE hosts (            -- inventory history: one row per host whenever its facts change
    run_id          VARCHAR,
    ts              TIMESTAMP,  -- controller clock
    host            VARCHAR,
    hostname        VARCHAR,
    fqdn            VARCHAR,
    os              VARCHAR,
    kernel          VARCHAR,
    arch            VARCHAR,
    cpu_model       VARCHAR,
    cpu_logical     INTEGER,
    cpu_physical    INTEGER,
    mem_total_bytes BIGINT,
    boot_time       TIMESTAMP,
    python          VARCHAR,
    nvidia_driver   VARCHAR,
    cuda_version    VARCHAR,
    gpu_count       INTEGER,
    gpu_models      VARCHAR,    -- comma-separated distinct models
    facts_hash      VARCHAR     -- what "changed" is decided on
);

CREATE TABLE host_samples (
    run_id              VARCHAR,
    ts                  TIMESTAMP,  -- controller clock: use this one to join and plot
    host                VARCHAR,
    host_ts             TIMESTAMP,  -- host clock at collection
    clock_skew_s        DOUBLE,     -- host_ts - ts (positive: host clock ahead)
    collect_duration_s  DOUBLE,
    cpu_logical         INTEGER,
    cpu_user_hz         INTEGER,
    cpu_user_jiffies    BIGINT,     -- cumulative since boot, summed over CPUs (user + nice)
    cpu_system_jiffies  BIGINT,     -- system + irq + softirq
    cpu_idle_jiffies    BIGINT,     -- idle + iowait
    cpu_iowait_jiffies  BIGINT,
    cpu_steal_jiffies   BIGINT,
    cpu_total_jiffies   BIGINT,
    load1               DOUBLE,
    load5               DOUBLE,
    load15              DOUBLE,
    procs_total         INTEGER,    -- threads (the kernel's scheduling entities, /proc/loadavg); processes: procs_visible
    mem_total_bytes     BIGINT,
    mem_used_bytes      BIGINT,
    mem_available_bytes BIGINT,
    swap_total_bytes    BIGINT,
    swap_used_bytes     BIGINT,
    net_rx_bytes        BIGINT,     -- cumulative, all interfaces but lo
    net_tx_bytes        BIGINT,
    disk_read_bytes     BIGINT,     -- cumulative, whole block devices
    disk_write_bytes    BIGINT,
    fs_total_bytes      BIGINT,     -- sum over local filesystems
    fs_used_bytes       BIGINT,
    fs_max_used_pct     DOUBLE,     -- the fullest filesystem
    fs_max_used_mount   VARCHAR,
    boot_time           TIMESTAMP,  -- a change means the counters restarted
    gpu_count           INTEGER,
    gpu_reason          VARCHAR,    -- why there are no GPUs (null when NVML answered)
    procs_visible       INTEGER,    -- processes the collector could see (all, unless procs_hidden)
    procs_hidden        BOOLEAN,    -- /proc hides other users' processes from the collector (hidepid=)
    oom_kills           BIGINT      -- cumulative since boot: processes the kernel's OOM killer killed
);

CREATE TABLE gpu_samples (
    run_id                      VARCHAR,
    ts                          TIMESTAMP,
    host                        VARCHAR,
    gpu_index                   INTEGER,
    gpu_uuid                    VARCHAR,
    name                        VARCHAR,
    bus_id                      VARCHAR,
    utilization_gpu_pct         DOUBLE,
    utilization_mem_pct         DOUBLE,
    utilization_gpu_avg_pct     DOUBLE,
    mem_total_bytes             BIGINT,
    mem_used_bytes              BIGINT,
    temperature_c               DOUBLE,
    temperature_mem_c           DOUBLE,
    power_w                     DOUBLE,
    power_limit_w               DOUBLE,
    energy_mj                   BIGINT,     -- cumulative since driver load
    fan_pct                     DOUBLE,
    clock_sm_mhz                INTEGER,
    clock_mem_mhz               INTEGER,
    pstate                      INTEGER,
    throttle_reasons            VARCHAR,    -- comma-separated names, '' when none
    ecc_volatile_uncorrected    BIGINT,
    ecc_aggregate_uncorrected   BIGINT,
    remapped_rows_uncorrectable BIGINT,
    remapped_rows_pending       BOOLEAN,
    remapped_rows_failure       BOOLEAN,
    persistence_mode            BOOLEAN,
    compute_mode                VARCHAR,
    mig_mode                    BOOLEAN,
    process_count               INTEGER
);

CREATE TABLE gpu_processes (
    run_id          VARCHAR,
    ts              TIMESTAMP,
    host            VARCHAR,
    gpu_index       INTEGER,
    gpu_uuid        VARCHAR,
    pid             INTEGER,
    user            VARCHAR,
    command         VARCHAR,    -- redacted on the host
    gpu_mem_bytes   BIGINT,
    type            VARCHAR,    -- compute | graphics
    source          VARCHAR,    -- running (seen now) | accounting (ran since the last run)
    gpu_util_pct    DOUBLE,     -- accounting records only
    started_at      TIMESTAMP,  -- when the process started
    duration_s      DOUBLE      -- accounting records only
);

CREATE TABLE gpu_mig (          -- MIG instances of GPUs in MIG mode, per run
    run_id          VARCHAR,
    ts              TIMESTAMP,
    host            VARCHAR,
    gpu_index       INTEGER,    -- the parent GPU
    gpu_uuid        VARCHAR,
    mig_index       INTEGER,
    mig_uuid        VARCHAR,
    gi_id           INTEGER,    -- GPU instance id (processes carry it)
    ci_id           INTEGER,    -- compute instance id
    slices          INTEGER,    -- compute slices (e.g. 1 of 7 for 1g.10gb)
    mem_total_bytes BIGINT,
    mem_used_bytes  BIGINT
);

CREATE TABLE gpu_xid (          -- Xid events: the NVIDIA driver's errors in the kernel log, as each run found them
    run_id          VARCHAR,
    ts              TIMESTAMP,  -- controller clock of the run that read it
    host            VARCHAR,
    logged_at       TIMESTAMP,  -- when the kernel logged it (host clock: boot time + its microseconds)
    boot_id         VARCHAR,    -- the kernel's id of the boot (/proc/sys/kernel/random/boot_id)
    seq             BIGINT,     -- the kernel log's sequence number: with the boot, what tells one event
    pci             VARCHAR,    -- the GPU's PCI address as the driver names it (0000:18:00)
    gpu_index       INTEGER,    -- that GPU's index at the same run, where NVML still lists it
    gpu_uuid        VARCHAR,
    xid             INTEGER,    -- the Xid code (79: fallen off the bus, 48: double-bit ECC, ...)
    message         VARCHAR     -- the rest of the line (pid, process name, details), at most 300 characters
);

CREATE TABLE host_processes (   -- the top consumers on each host at each run
    run_id      VARCHAR,
    ts          TIMESTAMP,
    host        VARCHAR,
    pid         INTEGER,
    user        VARCHAR,
    command     VARCHAR,        -- redacted on the host
    cpu_time_s  DOUBLE,
    cpu_percent DOUBLE,
    rss_bytes   BIGINT,
    started_at  TIMESTAMP
);

CREATE TABLE admin_actions (    -- every `fleetscope admin` action, done or refused, check mode included
    run_id      VARCHAR,        -- admin-<time>-<random>
    ts          TIMESTAMP,      -- controller clock when the action ended
    operator    VARCHAR,        -- who ran it: the controller's login name
    host        VARCHAR,
    action      VARCHAR,        -- kill | maintenance | power_limit
    target      VARCHAR,        -- pid 4242 | gpu 0 | all gpus
    args        VARCHAR,        -- the module arguments, JSON
    check_mode  BOOLEAN,        -- true: nothing was changed, only reported
    status      VARCHAR,        -- ok | failed | unreachable | timeout
    changed     BOOLEAN,
    message     VARCHAR         -- what was done, or why not
);

CREATE TABLE bookings (         -- the calendars as of the last sync: 35 days back to 35 days ahead
    ts          TIMESTAMP,      -- when the calendars were read (controller clock)
    source      VARCHAR,        -- the calendar's path or URL
    uid         VARCHAR,        -- event UID @ occurrence start (recurring events expanded)
    "start"     TIMESTAMP,      -- UTC
    "end"       TIMESTAMP,      -- UTC
    host        VARCHAR,        -- inventory name
    gpu_index   INTEGER,        -- NULL: the whole host
    "user"      VARCHAR,        -- @name in the title, else the organizer's (attendee's) e-mail local part
    summary     VARCHAR         -- the event title
);
