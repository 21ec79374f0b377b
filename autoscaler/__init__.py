"""Queue-time autoscaler: keeps a PaaS app's process formation sized to how long work waits."""

__version__ = "0.1.0"
