"""Fail fast, with a message that says what to do, when PostgreSQL or Redis is down.

`make test` runs this before the production-configuration tests, so a missing service
is a failed run with a clear reason rather than a pile of connection errors or skips.
"""

import argparse
import sys

import psycopg
import redis
from dj_database_url import parse

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ""'


def check_postgres(url: str) -> str | None:
    config = parse(url)
    try:
        with psycopg.connect(
            host=config["HOST"],
            port=config["PORT"] or 5432,
            user=config["USER"],
            password=config["PASSWORD"] or None,
            dbname=config["NAME"],
            connect_timeout=5,
        ) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        where = f"{config['HOST']}:{config['PORT']}"
        return f"PostgreSQL is not reachable at {where} ({exc}).\n  Start it: {START_POSTGRES}"
    return None


def check_redis(url: str) -> str | None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {url} ({exc}).\n  Start it: {START_REDIS}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    problems = [p for p in (check_postgres(args.database_url), check_redis(args.redis_url)) if p]
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    if not problems:
        print("PostgreSQL and Redis are reachable.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
