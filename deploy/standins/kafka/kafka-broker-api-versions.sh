#!/bin/sh
exec java -Xmx128m -cp "/opt/kafka/libs/*" -Dlog4j2.configurationFile=/opt/kafka/config/log4j2-tools.properties \
  org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
