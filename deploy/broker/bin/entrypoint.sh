#!/bin/bash
# Writes server.properties from the image's defaults plus every KAFKA_* variable (the apache/kafka
# image's convention: strip KAFKA_, lower-case, "___" -> "-", "__" -> "_", "_" -> "."), formats the
# KRaft storage once with CLUSTER_ID, then execs the broker so that it gets SIGTERM directly.
set -euo pipefail

KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
DATA="${KAFKA_DATA_DIR:-/var/lib/kafka}"
CONFIG="$DATA/server.properties"
# apache/kafka's default cluster id, for a broker started without CLUSTER_ID
CLUSTER_ID="${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}"
# JVM options, not broker properties
NOT_PROPERTIES=" KAFKA_HOME KAFKA_DATA_DIR KAFKA_HEAP_OPTS KAFKA_JVM_PERFORMANCE_OPTS KAFKA_OPTS KAFKA_LOG4J_OPTS KAFKA_JMX_OPTS KAFKA_GC_LOG_OPTS KAFKA_DEBUG "

set_property() {
    local key="$1" value="$2" line kept=()
    while IFS= read -r line; do
        [[ "$line" == "$key="* ]] || kept+=("$line")
    done <"$CONFIG"
    printf '%s\n' "${kept[@]}" "$key=$value" >"$CONFIG"
}

mkdir -p "$DATA/data"
cp "$KAFKA_HOME/config/server.properties" "$CONFIG"
set_property log.dirs "$DATA/data"
for name in $(compgen -e); do
    [[ "$name" == KAFKA_* ]] || continue
    [[ "$NOT_PROPERTIES" == *" $name "* ]] && continue
    key="${name#KAFKA_}"
    key="${key,,}"
    key="${key//___/-}"
    key="${key//__/@}"
    key="${key//_/.}"
    key="${key//@/_}"
    set_property "$key" "${!name}"
done

# shellcheck disable=SC2206  # the *_OPTS variables are word lists, as in Kafka's own scripts
JAVA_OPTS=(${KAFKA_HEAP_OPTS:--Xmx512m -Xms512m}
    ${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}
    ${KAFKA_OPTS:-})
LOG_OPTS=("-Dlog4j2.configurationFile=$KAFKA_HOME/config/log4j2.properties" "-Dkafka.logs.dir=$DATA")

if [ ! -f "$DATA/data/meta.properties" ]; then
    # "=" form: a cluster id may start with "-"
    java -Xmx256m "${LOG_OPTS[@]}" -cp "$KAFKA_HOME/libs/*" kafka.tools.StorageTool format \
        "--cluster-id=$CLUSTER_ID" -c "$CONFIG" --ignore-formatted
fi
exec java "${JAVA_OPTS[@]}" "${LOG_OPTS[@]}" -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$CONFIG"
