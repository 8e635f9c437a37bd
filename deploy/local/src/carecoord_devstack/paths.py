"""Where the local stack keeps things: all of it under the git-ignored .local/ folder."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
LOCAL = REPO_ROOT / ".local"
KAFKA_POM = REPO_ROOT / "deploy" / "local" / "kafka" / "pom.xml"
KAFKA_LOG4J = REPO_ROOT / "deploy" / "local" / "kafka" / "log4j2.yaml"
# The broker's jars are shared by every stack on this checkout (fetched once).
KAFKA_LIB = LOCAL / "kafka-lib"
ZIPKIN_POM = REPO_ROOT / "deploy" / "local" / "zipkin" / "pom.xml"
ZIPKIN_LIB = LOCAL / "zipkin-lib"
