// librdkafka (Debian: librdkafka-dev) and its mock cluster. rd_kafka_producev is variadic, which
// Swift cannot call: sluice_kafka_produce wraps it for one message with at most one header.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static inline rd_kafka_resp_err_t sluice_kafka_produce(rd_kafka_t *rk, const char *topic, int32_t partition,
                                                       const void *key, size_t key_len,
                                                       const void *value, size_t value_len,
                                                       const char *header, const void *header_value,
                                                       size_t header_len, int64_t timestamp_ms) {
    if (header) {
        return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
                                 RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                                 RD_KAFKA_V_HEADER(header, header_value, (ssize_t)header_len), RD_KAFKA_V_END);
    }
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
                             RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                             RD_KAFKA_V_END);
}
