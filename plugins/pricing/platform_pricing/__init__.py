"""Pricing plugin: spot-instance cost optimisation with agents, decision engines and replicas."""
