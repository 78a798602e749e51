"""Named numerical constants that keep every primitive finite in fp32."""

from __future__ import annotations

#: Smallest magnitude a safe operator divides by or takes the log of (DESIGN section 2).
EPS: float = 1e-12

#: Largest input of ``exp``: e**80 ~ 5.5e34 stays finite in fp32 with room for a few sums.
EXP_MAX: float = 80.0

#: Largest magnitude ``mul`` and ``square`` return; beyond it the output saturates (zero gradient).
MAX_MAGNITUDE: float = 1e30

#: sqrt(EPS): below |x| = EPS the signed square root is linear with this slope's inverse.
SQRT_EPS: float = EPS**0.5
