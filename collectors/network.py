"""Network: cumulative counters per interface (all but lo), from psutil or /proc/net/dev."""

from ._util import PROC, counter, get_psutil, read_text

FIELDS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped")
# positions in a /proc/net/dev line after "name:": 8 receive columns, then transmit
_PROC_COLUMNS = (0, 8, 1, 9, 2, 10, 3, 11)


def collect(ctx):
    psutil = get_psutil()
    rows = []
    if psutil is not None:
        for name, c in (psutil.net_io_counters(pernic=True, nowrap=False) or {}).items():
            values = (c.bytes_recv, c.bytes_sent, c.packets_recv, c.packets_sent,
                      c.errin, c.errout, c.dropin, c.dropout)
            rows.append((name, values))
    else:
        for line in read_text(PROC + "/net/dev").splitlines()[2:]:
            name, _, rest = line.partition(":")
            numbers = [int(v) for v in rest.split()]
            rows.append((name.strip(), [numbers[i] for i in _PROC_COLUMNS]))
    interfaces = []
    for name, values in sorted(rows):
        if name != "lo":
            interface = {"name": name}
            interface.update(zip(FIELDS, (counter(v) for v in values)))
            interfaces.append(interface)
    return {"interfaces": interfaces}
