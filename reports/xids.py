"""What the common Xid codes mean (NVIDIA's "Xid Errors" catalog), for the problems page: the kernel log gives
only the number. An application's own fault (13, 31, 43, 45) says little about the GPU; the others do."""

#: code -> meaning, in a few words
MEANINGS = {
    8: "GPU stopped processing (timeout)",
    13: "graphics engine exception (mostly the application's fault)",
    31: "GPU memory page fault (mostly the application's fault)",
    32: "invalid or corrupted push buffer stream",
    38: "driver firmware error",
    43: "GPU stopped processing (the application's fault)",
    45: "preemptive cleanup: a process ended or was killed",
    48: "double-bit ECC error",
    56: "display engine error",
    57: "error programming video memory interface",
    61: "internal micro-controller breakpoint/warning",
    62: "internal micro-controller halt",
    63: "ECC page retirement or row remapping recorded",
    64: "ECC page retirement or row remapping failed",
    68: "video processor exception",
    69: "graphics engine class error",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error (the application was stopped)",
    95: "uncontained ECC error (reset the GPU)",
    109: "context switch timeout",
    119: "GSP RPC timeout",
    120: "GSP error",
    121: "C2C link error",
    122: "SPI PMU RPC read failure",
    123: "SPI PMU RPC write failure",
    140: "unrecovered ECC error",
    143: "GPU initialization failure",
    149: "NVLink (NETIR) error",
    154: "GPU recovery action changed (reset or reboot needed)",
}
#: mostly an application's own fault, not the GPU's
APPLICATION = frozenset({13, 31, 43, 45})
