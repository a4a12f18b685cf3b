"""Batched tf.data augmentation that makes training crops vary the way a camera and a detector make them vary.

The source is a context chip (conversion/crops.py) whose central 1/CONTEXT is the device crop. One affine warp per
image does box jitter (a detector box wanders and changes size between frames, people and poses: scale ±25%,
shift ±10%), in-plane rotation (heads tilt ±20°; the agent does not align) and the crop itself. Then what a camera
does: flips, blur and motion blur, JPEG re-compression, sensor noise, low resolution (far faces, down to 20 px),
colour and white-balance shifts, some grayscale (IR/night cameras), and occluding bands where glasses and masks go.
Optionally, context mixing: a crop keeps its own face and takes the hair, background and clothes around it from
another crop of the batch, so a head cannot rest on context alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AugmentSpec:
    crop_frac: float = 1 / 1.6  # side of the device crop as a fraction of the context chip
    scale_jitter: float = 0.25  # crop side × U(1 - j, 1 + j)
    shift_jitter: float = 0.10  # centre shift × crop side, per axis
    max_rotate_deg: float = 20.0
    flip: bool = True
    brightness: float = 0.25  # additive, in units of the [0, 1] range
    contrast: float = 0.30  # multiplicative around the mean, × U(1 - c, 1 + c)
    low_res_prob: float = 0.3  # fraction of crops degraded to a random lower resolution first
    low_res_min: int = 20  # px, the smallest face the agent is asked to classify
    blur_prob: float = 0.2  # Gaussian (defocus) or motion blur, half each
    jpeg_prob: float = 0.3  # re-compressed at quality U(jpeg_min, 95)
    jpeg_min: int = 30
    noise_prob: float = 0.25  # Gaussian sensor noise, sigma U(0, noise_max)
    noise_max: float = 0.06
    white_balance: float = 0.12  # per-channel gain × U(1 - w, 1 + w)
    saturation: float = 0.3
    gray_prob: float = 0.08
    occlude_prob: float = 0.12  # a dark glasses-like band at the eyes, or a mask-like band over mouth and chin
    erase_prob: float = 0.0  # random erasing: one rectangle (4-20% of the crop) filled with a flat colour or noise
    context_mix: float = 0.0  # share of crops whose surround (outside an ellipse on the face) comes from another crop


def _transforms(tf: Any, n: Any, src: int, out: int, spec: AugmentSpec, train: bool) -> Any:
    """ImageProjectiveTransformV3 rows mapping output pixels to source pixels, one per image."""
    side = spec.crop_frac * src
    if train:
        scale = tf.random.uniform([n], 1 - spec.scale_jitter, 1 + spec.scale_jitter)
        dx = tf.random.uniform([n], -spec.shift_jitter, spec.shift_jitter) * side
        dy = tf.random.uniform([n], -spec.shift_jitter, spec.shift_jitter) * side
        theta = tf.random.uniform([n], -1.0, 1.0) * (spec.max_rotate_deg * math.pi / 180.0)
    else:
        scale, dx, dy, theta = tf.ones([n]), tf.zeros([n]), tf.zeros([n]), tf.zeros([n])
    k = side * scale / out  # source pixels per output pixel
    c, s = tf.cos(theta) * k, tf.sin(theta) * k
    cx, cy = src / 2.0 + dx, src / 2.0 + dy
    h = out / 2.0
    # x_src = c*(x - h) - s*(y - h) + cx ; y_src = s*(x - h) + c*(y - h) + cy   (pixel-centre offsets cancel out)
    a2 = cx - c * h + s * h
    b2 = cy - s * h - c * h
    zeros = tf.zeros([n])
    return tf.stack([c, -s, a2, s, c, b2, zeros, zeros], axis=1)


def augment_batch(images: Any, out_size: int, spec: AugmentSpec, train: bool) -> Any:
    """uint8 (B, C, C, 3) RGB source chips → float32 (B, S, S, 3) in [-1, 1]."""
    import tensorflow as tf

    src = int(images.shape[1])
    n = tf.shape(images)[0]
    x = tf.cast(images, tf.float32) / 255.0
    t = _transforms(tf, n, src, out_size, spec, train)
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=x,
        transforms=t,
        output_shape=[out_size, out_size],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )
    if train:
        if spec.flip:
            x = tf.image.random_flip_left_right(x)
        x = _camera(tf, x, n, out_size, spec)
    return x * 2.0 - 1.0


def _pick(tf: Any, n: Any, p: float) -> Any:
    return tf.random.uniform([n, 1, 1, 1]) < p


def _camera(tf: Any, x: Any, n: Any, out_size: int, spec: AugmentSpec) -> Any:
    """Photometric and optical effects of real cameras, each on a random part of the batch; x in [0, 1]."""
    if spec.context_mix > 0:  # first, so the mixed crop gets one camera's effects, as a real frame would
        x = _context_mix(tf, x, n, out_size, spec.context_mix)
    if spec.occlude_prob > 0:
        x = _occlude(tf, x, n, out_size, spec.occlude_prob)
    if spec.erase_prob > 0:
        x = _erase(tf, x, n, out_size, spec.erase_prob)
    if spec.blur_prob > 0:
        x = tf.where(_pick(tf, n, spec.blur_prob), _blur(tf, x), x)
    if spec.low_res_prob > 0:
        x = _random_low_res(tf, x, out_size, spec)
    # Colour: white balance (per-channel gains), saturation, brightness and contrast, then some grayscale.
    gains = tf.random.uniform([n, 1, 1, 3], 1 - spec.white_balance, 1 + spec.white_balance)
    x = x * gains
    grey = tf.reduce_mean(x, axis=-1, keepdims=True)
    sat = tf.random.uniform([n, 1, 1, 1], 1 - spec.saturation, 1 + spec.saturation)
    x = grey + (x - grey) * sat
    b = tf.random.uniform([n, 1, 1, 1], -spec.brightness, spec.brightness)
    cst = tf.random.uniform([n, 1, 1, 1], 1 - spec.contrast, 1 + spec.contrast)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = tf.clip_by_value((x - mean) * cst + mean + b, 0.0, 1.0)
    x = tf.where(_pick(tf, n, spec.gray_prob), tf.repeat(tf.reduce_mean(x, -1, keepdims=True), 3, -1), x)
    if spec.noise_prob > 0:
        sigma = tf.random.uniform([n, 1, 1, 1], 0.0, spec.noise_max)
        noisy = x + tf.random.normal(tf.shape(x)) * sigma
        x = tf.clip_by_value(tf.where(_pick(tf, n, spec.noise_prob), noisy, x), 0.0, 1.0)
    if spec.jpeg_prob > 0:
        x = _jpeg(tf, x, n, spec)
    return x


def _blur(tf: Any, x: Any) -> Any:
    """One random kernel per batch: Gaussian defocus (sigma 0.6-1.8 px) or a 3-7 px motion streak at a random angle."""
    k = 7
    r = tf.range(k, dtype=tf.float32) - (k - 1) / 2.0
    sigma = tf.random.uniform([], 0.6, 1.8)
    g = tf.exp(-(r**2) / (2 * sigma**2))
    gauss = tf.tensordot(g, g, axes=0)
    length = tf.random.uniform([], 1.5, 3.5)
    theta = tf.random.uniform([], 0.0, math.pi)
    yy, xx = tf.meshgrid(r, r, indexing="ij")
    along = xx * tf.cos(theta) + yy * tf.sin(theta)
    across = -xx * tf.sin(theta) + yy * tf.cos(theta)
    motion = tf.cast((tf.abs(along) <= length) & (tf.abs(across) <= 0.5), tf.float32)
    kern = tf.cond(tf.random.uniform([]) < 0.5, lambda: gauss, lambda: motion)
    kern = kern / tf.reduce_sum(kern)
    kern = tf.tile(kern[:, :, None, None], [1, 1, 3, 1])
    padded = tf.pad(x, [[0, 0], [k // 2, k // 2], [k // 2, k // 2], [0, 0]], mode="SYMMETRIC")
    return tf.nn.depthwise_conv2d(padded, kern, [1, 1, 1, 1], "VALID")


def _jpeg(tf: Any, x: Any, n: Any, spec: AugmentSpec) -> Any:
    pick = tf.random.uniform([n]) < spec.jpeg_prob

    def one(args: Any) -> Any:
        img, p = args
        return tf.cond(p, lambda: tf.image.random_jpeg_quality(img, spec.jpeg_min, 95), lambda: img)

    return tf.map_fn(one, (x, pick), fn_output_signature=tf.float32)


def _occlude(tf: Any, x: Any, n: Any, size: int, p: float) -> Any:
    """Glasses-like dark band across the eyes (rows ~30-45%) or a mask-like flat band over the lower face (>= 60%)."""
    rows = tf.range(size, dtype=tf.float32)[None, :, None, None] / size
    cols = tf.range(size, dtype=tf.float32)[None, None, :, None] / size
    top = tf.random.uniform([n, 1, 1, 1], 0.28, 0.40)
    glasses = (
        (rows >= top) & (rows <= top + tf.random.uniform([n, 1, 1, 1], 0.08, 0.15)) & (cols >= 0.15) & (cols <= 0.85)
    )
    mtop = tf.random.uniform([n, 1, 1, 1], 0.58, 0.70)
    mask = (rows >= mtop) & (cols >= 0.12) & (cols <= 0.88)
    kind = tf.random.uniform([n, 1, 1, 1]) < 0.5
    region = tf.where(kind, glasses, mask) & (tf.random.uniform([n, 1, 1, 1]) < p)
    colour = tf.where(kind, tf.random.uniform([n, 1, 1, 1], 0.0, 0.15), tf.random.uniform([n, 1, 1, 3], 0.2, 1.0))
    return tf.where(region, colour * tf.ones_like(x), x)


def face_ellipse(tf: Any, n: Any, size: int) -> Any:
    """(n, size, size, 1) weights, 1 on the face and 0 on its surround: an ellipse around the crop's face (half-width
    0.36-0.46, half-height 0.42-0.52 of the side, centre 0.52-0.58 down: the detector box sits low on the head) with
    a soft edge, so no seam is there to learn."""
    rows = (tf.range(size, dtype=tf.float32)[None, :, None, None] + 0.5) / size
    cols = (tf.range(size, dtype=tf.float32)[None, None, :, None] + 0.5) / size
    a = tf.random.uniform([n, 1, 1, 1], 0.36, 0.46)
    b = tf.random.uniform([n, 1, 1, 1], 0.42, 0.52)
    cy = tf.random.uniform([n, 1, 1, 1], 0.52, 0.58)
    r = tf.sqrt(((cols - 0.5) / a) ** 2 + ((rows - cy) / b) ** 2)
    return tf.clip_by_value((1.08 - r) / 0.16, 0.0, 1.0)


def _context_mix(tf: Any, x: Any, n: Any, size: int, p: float) -> Any:
    """Context mixing: a share p of the crops keep their face (inside `face_ellipse`) and take the surround from the
    next crop of the batch (a random one: usually another person, about half the time of the other gender). The
    surround is the corners, a band over the top of the head and sometimes the chin and collar: the hair above the
    face and the background, while the hair beside the cheeks is mostly kept. Hair and clothes then predict gender
    less well on those crops, so the heads must also read the face; a short-haired woman, or a face whose box takes
    in more hair than usual, is not decided by the hair alone. Labels are the face's."""
    keep = face_ellipse(tf, n, size)
    mixed = keep * x + (1.0 - keep) * tf.roll(x, shift=1, axis=0)
    return tf.where(_pick(tf, n, p), mixed, x)


def _erase(tf: Any, x: Any, n: Any, size: int, p: float) -> Any:
    """Random erasing (Zhong et al. 2017): one rectangle of 4-20% of the crop, aspect 1:2 to 2:1, anywhere, filled
    with a flat random colour or uniform noise. Hands, hair, a phone or a passer-by cover any part of a real face;
    it keeps the model from resting a decision on one small region."""
    area = tf.random.uniform([n, 1, 1, 1], 0.04, 0.20)
    aspect = tf.exp(tf.random.uniform([n, 1, 1, 1], -math.log(2.0), math.log(2.0)))
    h = tf.minimum(tf.sqrt(area * aspect), 1.0)
    w = tf.minimum(tf.sqrt(area / aspect), 1.0)
    top = tf.random.uniform([n, 1, 1, 1]) * (1.0 - h)
    left = tf.random.uniform([n, 1, 1, 1]) * (1.0 - w)
    rows = tf.range(size, dtype=tf.float32)[None, :, None, None] / size
    cols = tf.range(size, dtype=tf.float32)[None, None, :, None] / size
    region = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w) & _pick(tf, n, p)
    flat = tf.random.uniform([n, 1, 1, 3]) * tf.ones_like(x)
    fill = tf.where(_pick(tf, n, 0.5), flat, tf.random.uniform(tf.shape(x)))
    return tf.where(region, fill, x)


def _random_low_res(tf: Any, x: Any, out_size: int, spec: AugmentSpec) -> Any:
    """Degrade a random subset of the batch to one random lower resolution and back (one size per batch)."""
    lo = tf.random.uniform([], spec.low_res_min, out_size, dtype=tf.int32)
    small = tf.image.resize(x, [lo, lo], method="area")
    blurred = tf.image.resize(small, [out_size, out_size], method="bilinear")
    pick = tf.random.uniform([tf.shape(x)[0], 1, 1, 1]) < spec.low_res_prob
    return tf.where(pick, blurred, x)
