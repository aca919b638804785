"""The offline deployment gate (make k8s-check): manifests, Dockerfiles and monitoring, checked
without a cluster."""
