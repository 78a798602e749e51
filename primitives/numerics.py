"""Named numerical constants that keep every primitive finite in fp32."""

from __future__ import annotations

import math

#: Smallest magnitude a safe operator divides by or takes the log of (docs/architecture.md section 2).
EPS: float = 1e-12

#: Largest magnitude ``mul`` and ``square`` return; beyond it the output saturates (zero gradient).
MAX_MAGNITUDE: float = 1e30

#: Largest input of ``exp``: ln(1e30) ~ 69.08, so that ``exp`` saturates where the products do.
#: (It was 80, e**80 ~ 5.5e34: ``bench fuzz`` found its slope times a box area of 1e8 overflowing
#: float32 in the chain rule, 5.5e34 * 1e8 > 3.4e38.)
EXP_MAX: float = math.log(MAX_MAGNITUDE)

#: sqrt(EPS): below |x| = EPS the signed square root is linear with this slope's inverse.
SQRT_EPS: float = EPS**0.5
