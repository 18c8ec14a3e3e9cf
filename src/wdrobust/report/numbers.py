"""The one number format of the printouts (``wdrobust certify``) and report.md: significant digits, never
long fixed-point strings (1e21 prints as ``1e+21``, not as 22 digits)."""

from __future__ import annotations

import math

#: What a missing value prints as.
MISSING = "—"


def number(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits (``format(value, ".{digits}g")``: exponent notation
    from 10**digits on and below 1e-4); None as MISSING, non-finite values as inf, -inf, nan."""
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.{digits}g}"


def seconds(value: float) -> str:
    """Seconds with three significant digits (0.0123, 1.5, 20.7, 1.23e+03)."""
    return number(value, 3)
