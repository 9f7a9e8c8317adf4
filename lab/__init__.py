"""The lab's model: config parsed and validated once, what each routing mode means, the address
plan, routes, Helm values, FRR rendering and the kind config. Pure logic; no Docker, no builds.
"""
