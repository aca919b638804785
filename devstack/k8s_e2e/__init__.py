"""`make k8s-e2e`: the whole mission on the cluster the current kubectl context points at."""
