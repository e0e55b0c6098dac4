"""fleetscope: agentless GPU and host fleet collection, warehouse and report (the controller side)."""

__version__ = "0.1.0"
