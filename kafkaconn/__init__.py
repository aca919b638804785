"""How every part of the project talks to Kafka: one connection model (`KafkaConnection`) and its
`<PREFIX>KAFKA_*` settings (`KafkaSettings`), turned into a librdkafka configuration in one place;
a wrong setting named by its variable, never shown by its value (`settings_problems`); why Kafka
failed, in one line (`ReasonWatch`, `KafkaUnavailable`); and one way to read a topic to its end
(`read_to_end`).
"""

from kafkaconn.connection import KafkaConnection, KafkaSettings, Properties
from kafkaconn.errors import settings_problems
from kafkaconn.reading import read_to_end
from kafkaconn.reasons import KafkaUnavailable, ReasonWatch, TopicReadError

__all__ = [
    "KafkaConnection",
    "KafkaSettings",
    "KafkaUnavailable",
    "Properties",
    "ReasonWatch",
    "TopicReadError",
    "read_to_end",
    "settings_problems",
]
