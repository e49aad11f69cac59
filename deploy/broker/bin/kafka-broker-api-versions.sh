#!/bin/bash
# The apache/kafka image's command of the same name (docker-compose.yml's healthcheck runs it).
exec java -Xmx128m -XX:TieredStopAtLevel=1 \
    "-Dlog4j2.configurationFile=${KAFKA_HOME:-/opt/kafka}/config/tools-log4j2.properties" \
    -cp "${KAFKA_HOME:-/opt/kafka}/libs/*" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
