"""Shadow mode: the mirrored plant in DuckDB (telemetry, plant events), the soft sensor and the forecast from now.

The OPC UA side lives in `adapters.opcua.client`; this package stores and interprets what it receives.
"""
