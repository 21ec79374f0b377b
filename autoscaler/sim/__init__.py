"""Simulation: the app model, the built-in simulated app, and the trace simulator."""
