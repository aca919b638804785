"""The local stack: a real Kafka broker, collector replicas and a load balancer on 127.0.0.1."""
