"""Deployments plugin: users' apps on Kubernetes from templates, per-user MongoDB."""
