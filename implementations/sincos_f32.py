"""The constants of the vectorisable float32 sin/cos that jax_rope and tf_rope write in their own
framework's operations (``_sincos_f32`` in each): XLA CPU lowers float32 cos/sin to scalar libm
cosf/sinf calls, and plain arithmetic on these constants it vectorises.

k = round(phi * TWO_OVER_PI), r = phi - k * PIO2[0] - ... - k * PIO2[4] (Cody-Waite), then
sin r = r + r z (SIN[2] + z (SIN[1] + z SIN[0])) and cos r = 1 - z/2 + z^2 (COS[2] + z (COS[1] +
z COS[0])) with z = r^2, and the quadrant k mod 4 picks and signs them.
"""

# pi/2 = PIO2[0] + ... + PIO2[4] to ~5e-17: four parts of 5 significant bits (k * part exact for
# k < 2^19, i.e. |phi| < ~8e5) and a float32 rest.
PIO2 = (1.5625, 0.00830078125, -4.5299530029296875e-06, 7.450580596923828e-08, 9.92093629470503e-10)
TWO_OVER_PI = 0.6366197466850281
# Cephes sinf.c / cosf.c (S. L. Moshier, Cephes Math Library 2.2): minimax polynomials on [-pi/4, pi/4],
# highest power first.
SIN = (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
COS = (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)
