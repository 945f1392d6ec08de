"""Deterministic procedural faces, so the demo and the tests run without any dataset.

`synthetic_face(index, size, seed)` draws a frontal, aligned face (FFHQ-like framing): background,
hair, skin-toned face and neck, ears, eyes with iris and pupil, eyebrows, nose shading, lips, then
low-frequency shading and fine skin grain. Everything comes from `default_rng([seed, index])`,
so a face depends only on (index, seed, size). Not a realistic face model: a stand-in with the
structures (edges, texture, symmetric parts) that restoration metrics react to.
"""

from __future__ import annotations

import cv2
import numpy as np

SKIN_TONES = [(233, 196, 170), (224, 172, 138), (198, 140, 105), (160, 105, 75), (110, 72, 52), (241, 210, 190)]
HAIR_COLOURS = [(30, 22, 18), (70, 45, 30), (120, 80, 45), (190, 150, 90), (90, 90, 95), (150, 60, 30)]
IRIS_COLOURS = [(70, 45, 30), (60, 100, 140), (80, 110, 70), (110, 80, 50), (40, 40, 45)]


def synthetic_face(index: int, size: int = 1024, seed: int = 0) -> np.ndarray:
    """A uint8 RGB (size, size, 3) face, a pure function of (index, size, seed)."""
    rng = np.random.default_rng([seed, index])
    s = size / 1024.0

    def pt(x, y):
        return (int(round(x * s)), int(round(y * s)))

    def ax(a, b):
        return (max(1, int(round(a * s))), max(1, int(round(b * s))))

    def jitter(colour, amount=12):
        return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)

    aa = cv2.LINE_AA
    top = np.array(jitter((rng.integers(40, 220),) * 3, 40), np.float32)
    bottom = np.array(jitter(tuple(int(v) for v in top), 60), np.float32)
    ramp = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    img = np.ascontiguousarray(np.broadcast_to(top * (1 - ramp) + bottom * ramp, (size, size, 3)).astype(np.uint8))

    skin = jitter(SKIN_TONES[rng.integers(len(SKIN_TONES))], 10)
    hair = jitter(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], 10)
    cx = 512 + rng.integers(-12, 13)
    face_w, face_h = rng.integers(215, 265), rng.integers(285, 330)
    cy = 540 + rng.integers(-15, 16)

    cv2.ellipse(img, pt(cx, cy - 40), ax(face_w + 70, face_h + 60), 0, 0, 360, hair, -1, aa)  # hair mass
    cv2.rectangle(img, pt(cx - 95, cy + 150), pt(cx + 95, 1024), skin, -1, aa)  # neck
    cv2.ellipse(img, pt(cx, 1060), ax(380, 170), 0, 180, 360, jitter((60, 70, 110), 50), -1, aa)  # shoulders
    for side in (-1, 1):  # ears
        cv2.ellipse(img, pt(cx + side * face_w, cy + 10), ax(34, 62), 0, 0, 360, skin, -1, aa)
    cv2.ellipse(img, pt(cx, cy), ax(face_w, face_h), 0, 0, 360, skin, -1, aa)  # face
    fringe = rng.integers(120, 200)
    cv2.ellipse(img, pt(cx, cy - face_h + 40), ax(face_w + 10, fringe), 0, 180, 360, hair, -1, aa)

    eye_y = cy - rng.integers(30, 60)
    eye_dx = rng.integers(85, 105)
    iris = jitter(IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))], 15)
    brow = tuple(int(c * 0.8) for c in hair)
    for side in (-1, 1):
        ex = cx + side * eye_dx
        cv2.ellipse(img, pt(ex, eye_y), ax(48, 22), 0, 0, 360, (245, 242, 238), -1, aa)
        cv2.circle(img, pt(ex, eye_y), max(1, int(19 * s)), iris, -1, aa)
        cv2.circle(img, pt(ex, eye_y), max(1, int(8 * s)), (15, 12, 12), -1, aa)
        cv2.circle(img, pt(ex - 6, eye_y - 6), max(1, int(4 * s)), (255, 255, 255), -1, aa)
        cv2.ellipse(img, pt(ex, eye_y), ax(50, 24), 0, 180, 360, (60, 40, 35), max(1, int(4 * s)), aa)
        brow_y = eye_y - rng.integers(45, 65)
        curve = np.array([pt(ex - side * 55, brow_y + 12), pt(ex, brow_y - 6), pt(ex + side * 55, brow_y + 4)])
        cv2.polylines(img, [curve], False, brow, max(1, int(13 * s)), aa)

    nose_y = cy + rng.integers(55, 80)
    shade = tuple(int(c * 0.78) for c in skin)
    cv2.line(img, pt(cx - 8, eye_y + 20), pt(cx - 18, nose_y), shade, max(1, int(5 * s)), aa)
    cv2.ellipse(img, pt(cx, nose_y), ax(34, 14), 0, 0, 180, shade, max(1, int(5 * s)), aa)

    mouth_y = nose_y + rng.integers(70, 95)
    lip = jitter((170, 80, 85), 20)
    mouth_w = rng.integers(55, 80)
    cv2.ellipse(img, pt(cx, mouth_y), ax(mouth_w, 16), 0, 0, 360, lip, -1, aa)
    cv2.line(img, pt(cx - mouth_w, mouth_y), pt(cx + mouth_w, mouth_y), (90, 35, 40), max(1, int(3 * s)), aa)
    for side in (-1, 1):  # cheeks
        blush = img.copy()
        cv2.circle(blush, pt(cx + side * 130, nose_y + 10), max(1, int(55 * s)), jitter((225, 120, 120), 10), -1, aa)
        img = cv2.addWeighted(img, 0.85, blush, 0.15, 0)

    # Shading (smooth random field) and skin grain (fine noise), then a little optical blur.
    low = cv2.resize(rng.standard_normal((8, 8, 1), dtype=np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    grain = rng.standard_normal((size, size, 1), dtype=np.float32)
    out = img.astype(np.float32) * (1 + 0.06 * low[..., None]) + 5.0 * grain
    out = cv2.GaussianBlur(np.clip(out, 0, 255), (0, 0), 0.8 * max(s, 0.25))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
