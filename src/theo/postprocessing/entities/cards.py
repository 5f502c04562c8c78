"""Card numbers in their printed groups, whatever the language they were dictated in."""

from __future__ import annotations


def format_card(digits: str) -> str | None:
    """Write a card number in its printed groups.

    Returns:
        16 digits as ``4111 1111 1111 1111``, 15 (American Express) as
        ``3782 822463 10005``; ``None`` for other lengths.
    """
    if len(digits) == 16:
        return " ".join(digits[i : i + 4] for i in range(0, 16, 4))
    if len(digits) == 15:
        return f"{digits[:4]} {digits[4:10]} {digits[10:]}"
    return None
