"""Rate limiting: token buckets shared through the store (PostgreSQL) or kept in memory."""

from connhub.ratelimit.service import Quota, RateLimiter, build_limiter

__all__ = ["Quota", "RateLimiter", "build_limiter"]
