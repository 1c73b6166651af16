"""Tiny text helpers for captions."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """"1 recording", "2,345 recordings" (thousands separated; `plural` for irregular nouns)."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"
