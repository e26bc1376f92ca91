"""Operations: status, heartbeat, metrics, health endpoints, logs and systemd notification."""
