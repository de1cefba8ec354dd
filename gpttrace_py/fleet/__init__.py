"""A fleet: one planned bpftrace program run on many nodes (Kubernetes manifests), and their results merged.

program.py makes the program fit for a fleet, k8s.py writes the manifests that run it, merge.py combines
what the nodes print (bpftrace's ``-f json`` lines) into one result, show.py prints that result.
"""
