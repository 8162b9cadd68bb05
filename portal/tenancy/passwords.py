"""Password hashing with argon2id and the password policy."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from portal.tenancy.errors import WeakPassword

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

# OWASP's argon2id profile (19 MiB, 2 passes, 1 lane) rather than argon2-cffi's default
# (64 MiB, 3 passes, 4 lanes): equivalent protection by OWASP's password storage guidance,
# and a web worker's peak memory stays ~45 MiB lower, since every login allocates it.
# Hashes made with other parameters are rehashed at the next successful login.
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_PARALLELISM = 1

_hasher = PasswordHasher(
    time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM
)


@functools.cache
def _dummy_hash() -> str:
    """Verified when the e-mail is unknown, so response time does not reveal which e-mails
    exist. Made on first use, not at import: argon2 allocates its working memory in every process
    that imports this module otherwise (job workers and API-only workers never need it)."""
    return _hasher.hash("not-a-real-password-but-same-cost")


def check_policy(password: str) -> None:
    """Raise :class:`WeakPassword` if ``password`` is too short or too long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"Use at most {MAX_PASSWORD_LENGTH} characters.")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; compares against a dummy hash when there is none."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
