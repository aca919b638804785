"""How every part of the project talks to Kafka: one connection model (`KafkaConnection`) and its
`<PREFIX>KAFKA_*` settings (`KafkaSettings`), turned into a librdkafka configuration in one place;
a wrong setting is named by its variable, never shown by its value (`settings_problems`).
"""

from kafkaconn.connection import KafkaConnection, KafkaSettings, Properties
from kafkaconn.errors import settings_problems

__all__ = ["KafkaConnection", "KafkaSettings", "Properties", "settings_problems"]
