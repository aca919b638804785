"""How every part of the project talks to Kafka: one connection model (`KafkaConnection`) and its
`<PREFIX>KAFKA_*` settings (`KafkaSettings`), turned into a librdkafka configuration in one place.
"""

from kafkaconn.connection import KafkaConnection, KafkaSettings, Properties

__all__ = ["KafkaConnection", "KafkaSettings", "Properties"]
