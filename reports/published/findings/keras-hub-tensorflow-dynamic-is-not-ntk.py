#!/usr/bin/env python3
"""keras-hub-tensorflow (tensorflow 2.21.0, keras 3.15.1, keras-hub 0.32.0): rope_type='dynamic' divides every inverse frequency by scaling_factor^(d/(d-2)) at every length: no original length, no dependence on the positions, and theta_0 scaled too, so it is neither HF's dynamic NTK (unscaled up to L0, then a grown base) nor static NTK

Class: different semantics. The library's code: keras_hub/src/layers/modeling/rotary_embedding.py: RotaryEmbedding._get_inverse_freq.
Found by rope-suite: agreement on case agreement/dynamic-above/float64/per_row.
Self-contained (numpy, tensorflow and the library; not rope-suite): calls the library
directly on the case's inputs, prints what it returned against what RoPE gives, and ends
with "reproduced" (exit 0) when the deviation shows, "NOT reproduced" (exit 1) when not.
"""
from __future__ import annotations
import sys

import numpy as np

import tensorflow as tf


def native(a, dtype):
    return tf.cast(tf.constant(a), dtype)


def host(t):
    return tf.cast(t, tf.float64).numpy()


# --- the library, called as its users call it (from the adapter) ---
import os

os.environ.setdefault("KERAS_BACKEND", 'tensorflow')
from typing import Any

import numpy as np
import keras
from keras_hub.src.layers.modeling.rotary_embedding import RotaryEmbedding

def rotate(ops: Any, layer: Any, x: Any, positions: Any, rotary_dim: int, order: np.ndarray | None) -> Any:
    """``layer(x, positions=positions)`` on x [batch, seq, heads, head_dim]: the first
    ``rotary_dim`` channels rotate, the rest are concatenated back (``GPTNeoXAttention.call``);
    with ``order`` (interleaved pairs) the channels are gathered to the layer's rotate-half
    layout before and back after."""
    xs = ops.take(x, np.argsort(order), axis=-1) if order is not None else x  # interleaved -> half
    if rotary_dim == x.shape[-1]:
        out = layer(xs, positions=positions)
    else:  # GPTNeoXAttention.call: rotate x[..., :r], concatenate the tail back
        out = ops.concatenate([layer(xs[..., :rotary_dim], positions=positions), xs[..., rotary_dim:]], axis=-1)
    return ops.take(out, order, axis=-1) if order is not None else out


def make():
    layer = RotaryEmbedding(**{'max_wavelength': 10000.0, 'rope_type': 'dynamic', 'scaling_factor': 4.0, 'sequence_axis': 1, 'feature_axis': -1, 'dtype': 'float64'})
    order = None

    def rope(x, positions):
        return rotate(keras.ops, layer, x, positions, 64, order)

    return rope


DTYPE, POS_DTYPE = 'float64', 'int64'
x64 = np.random.default_rng([2518138177, 0]).standard_normal((2, 6, 3, 64))  # the case's x (seeded by its id)
positions64 = np.array([[403, 785, 1978, 2495, 3902, 4092], [445, 472, 474, 1206, 1304, 3669]], dtype=np.int64)

# RoPE of this token and head in float64 (rope-suite's reference), and the largest error the
# accuracy model allows at the worst element (float32 angles: standard practice)
INDEX, WANTED, ALLOWED = [0, 4, 1, 53], np.array([ 0.38376046768026106,  1.712655061833528  ,  0.5056463889337844 ,  0.03462121953279929,
  1.1823355710784347 , -0.3482579870741024 ,  0.9529901217721714 , -0.32399229600565677,
 -0.7237864669613427 , -1.515204604133574  ,  1.5851650286305934 ,  0.41047622617522816,
 -0.4844594570622404 ,  0.6829075486787592 ,  0.9070358783117226 , -1.1143547606866624 ,
  0.1392492264501451 ,  0.3205877590276066 , -0.810892340107966  ,  0.09327264841546079,
  0.9851153627339144 , -0.8160213875380511 ,  0.822424817098192  ,  0.06754639716159694,
  1.7004421321924499 , -1.9025843976351637 ,  0.8796632641413772 , -0.31345031917706423,
 -0.1789751356554257 ,  0.4276440517593521 , -2.0137699170044403 , -1.034973555881769  ,
  0.4933734352765639 , -0.6941768416076776 ,  0.7658948183436782 , -0.5145328736410762 ,
  0.31252300637513686,  1.3080906789048097 ,  1.0905438277776272 ,  0.09358765108864753,
 -1.410465620311312  ,  0.39999473563913246,  0.09176070630673142, -1.5883022360025092 ,
  1.571845278825668  , -0.8631922458755151 ,  0.06392357497699983,  1.4551733099862827 ,
  1.6198245758496446 ,  1.8311141947065217 , -1.5664037558042814 ,  0.5439700303732649 ,
 -1.6401222446297594 ,  1.3379894374684254 , -1.5174911215581892 , -0.2993886378409907 ,
 -0.9251312868575517 , -0.10600834919814599,  0.8019369584765036 ,  0.5354643527026632 ,
 -0.5441902500563323 ,  0.6786226706094544 , -0.4566081708010392 , -0.20560196803047523]), 8.197551174176948e-07
rope = make()
got = host(rope(native(x64, DTYPE), native(positions64, POS_DTYPE)))[tuple(INDEX[:3])]
error = np.abs(got - WANTED)
print(f"x{INDEX} at position 3902: got {got[INDEX[3]]:.6g}, wanted {WANTED[INDEX[3]]:.6g}, "
      f"error {error[INDEX[3]]:.3g} (allowed {ALLOWED:.3g}); largest error in that head {error.max():.3g}")
reproduced = bool(error[INDEX[3]] > ALLOWED)

print("reproduced" if reproduced else "NOT reproduced")
sys.exit(0 if reproduced else 1)
