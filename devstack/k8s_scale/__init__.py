"""`make k8s-scale`: the scaling curve and the HPA acting, on the current kubectl context."""
