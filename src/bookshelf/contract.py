"""The runtime contract between the app and whatever runs it (ECS, compose, a laptop).

Every environment variable the app reads in a container is named here once. The settings
(`bookshelf.config`), the Dockerfile contract test and the CDK task definition (`infra/`) all
import these names, so the app and the infrastructure cannot drift apart.
"""

from typing import Final

# Plain environment variables: safe to show in a task definition.
DB_HOST: Final = "DB_HOST"
DB_PORT: Final = "DB_PORT"
DB_NAME: Final = "DB_NAME"
DB_SSLMODE: Final = "DB_SSLMODE"
MIGRATE_ON_START: Final = "BOOKSHELF_MIGRATE_ON_START"
PORT: Final = "BOOKSHELF_PORT"
WORKERS: Final = "BOOKSHELF_WORKERS"
FORWARDED_ALLOW_IPS: Final = "BOOKSHELF_FORWARDED_ALLOW_IPS"

# Secrets: injected by the orchestrator from a secret store, never written in plaintext.
# DB_SECRET holds the JSON of an RDS-generated Secrets Manager secret
# (host, port, dbname, username, password, ...).
DB_SECRET: Final = "DB_SECRET"
API_KEYS: Final = "BOOKSHELF_API_KEYS"

# Alternatives for other runtimes (compose, a laptop): a URL, or user and password as parts.
DATABASE_URL: Final = "DATABASE_URL"
DB_USER: Final = "DB_USER"
DB_PASSWORD: Final = "DB_PASSWORD"

# What the AWS task definition sets: environment (names) and secrets (names).
TASK_ENVIRONMENT: Final = (
    DB_HOST,
    DB_PORT,
    DB_NAME,
    DB_SSLMODE,
    MIGRATE_ON_START,
    PORT,
    WORKERS,
    FORWARDED_ALLOW_IPS,
)
TASK_SECRETS: Final = (DB_SECRET, API_KEYS)

# Facts about the process that the load balancer and orchestrator must agree with.
CONTAINER_PORT: Final = 8000
LIVE_PATH: Final = "/health/live"
READY_PATH: Final = "/health/ready"
# The container health check, exec form, for the image's HEALTHCHECK and the ECS task alike.
# `bookshelf healthcheck` GETs LIVE_PATH on $BOOKSHELF_PORT (the slim image has no curl), so
# no port is written into it.
HEALTH_CHECK_COMMAND: Final = ("bookshelf", "healthcheck")
# In-flight requests get this long to finish after SIGTERM. ECS waits STOP_TIMEOUT_SECONDS
# before SIGKILL, so the drain must end well inside it.
DRAIN_SECONDS: Final = 20
STOP_TIMEOUT_SECONDS: Final = 30
# Longer than an ALB's default 60 s idle timeout, so the ALB, not the app, closes idle
# connections (otherwise the ALB may reuse a socket the app just closed: sporadic 502s).
KEEP_ALIVE_SECONDS: Final = 75
