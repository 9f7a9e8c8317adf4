"""The Docker host a lab runs on: the preflight before `make up`, the cgroup facts it reads, and
`make sweep` / `make clean` for what a stack left behind.
"""
