"""The synthetic world the default model learns: scenes made of GStreamer's test sources.

A scene is one class (colour bars, snow, a bouncing ball ...) with continuous parameters drawn
from a TRAIN or a HELD-OUT range. The world pairs, for every scene, what a camera would see
(videotestsrc), what a microphone would hear (audiotestsrc), what a depth camera and a thermal
camera would measure and what an IMU on the device would feel (the last three synthesised
here with numpy from the same parameters). README.md (this directory) has the table.

Everything here is deterministic given a numpy Generator: generate.py seeds it.
"""

import colorsys
import math

import numpy as np

TRAIN, HELD_OUT = 'train', 'held-out'

# Frame sizes the camera may have (the encoders resize to 224 themselves).
FRAME_SIZES = [(320, 240), (256, 256), (384, 288), (240, 320)]
AUDIO_RATE = 16000
AUDIO_SECONDS = 2.0
IMU_SAMPLES = 2000          # the model's window: 2000 samples of 6 channels
IMU_RATE = 200.0            # Hz: 10 s of motion

# Colour words for captions of coloured things, by hue in degrees.
HUE_WORDS = [(15, 'red'), (45, 'orange'), (70, 'yellow'), (160, 'green'), (200, 'cyan'),
             (255, 'blue'), (290, 'purple'), (340, 'pink'), (360, 'red')]


def hue_word(hue):
    for limit, word in HUE_WORDS:
        if hue < limit:
            return word
    return 'red'


def span(rng, split, lo, hi):
    """A value of [lo, hi]: the middle fifth (40-60 %) is HELD-OUT, the rest TRAIN, so that
    held-out values lie between trained ones (interpolation, not extrapolation)."""
    a, b = lo + 0.4 * (hi - lo), lo + 0.6 * (hi - lo)
    return pick(rng, split, [(lo, a), (b, hi)], (a, b))


def pick(rng, split, train, held_out):
    """A value from the TRAIN interval or the HELD-OUT one: (lo, hi) tuples, or lists of them."""
    ranges = train if split == TRAIN else held_out
    if isinstance(ranges, tuple):
        ranges = [ranges]
    lo, hi = ranges[rng.integers(len(ranges))]
    return float(rng.uniform(lo, hi))


def argb(hue, sat, val):
    r, g, b = colorsys.hsv_to_rgb((hue % 360) / 360.0, sat, val)
    return 0xff000000 | (int(r * 255) << 16) | (int(g * 255) << 8) | int(b * 255)


class Scene:
    """One class of the world; subclasses define its five views and its words."""
    name = ''           # short id
    visual = []         # noun phrases for what is seen (first one: the prompt)
    sound = []          # noun phrases for what is heard (first one: the prompt)

    def params(self, rng, split):
        raise NotImplementedError

    def video(self, p):      # videotestsrc properties
        raise NotImplementedError

    def audio(self, p):      # audiotestsrc properties
        raise NotImplementedError

    def depth(self, p, w, h, rng):       # metres, (h, w); 0 = no return
        raise NotImplementedError

    def thermal(self, p, w, h, rng):     # 8-bit grey, (h, w): bright = hot
        raise NotImplementedError

    def imu(self, p, rng):               # (IMU_SAMPLES, 6): ax ay az m/s^2, gx gy gz rad/s
        raise NotImplementedError

    def visual_words(self, p):
        return self.visual


# ---- helpers for the synthetic sensors ----

def grid(w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return x / w, y / h


def still(rng, gravity=(0.0, 0.0, 9.81), noise=0.02):
    t = np.zeros((IMU_SAMPLES, 6))
    t[:, :3] = gravity
    return t + rng.normal(0, noise, t.shape)


def times():
    return np.arange(IMU_SAMPLES) / IMU_RATE


def band_depth(w, h, values):
    x, _ = grid(w, h)
    idx = np.minimum((x * len(values)).astype(int), len(values) - 1)
    return np.asarray(values)[idx]


# ---- the scenes ----

class Bars(Scene):
    name = 'bars'
    visual = ['colour bars', 'color bars', 'a test card', 'smpte bars',
              'vertical stripes of colour']
    sound = ['a steady tone', 'a test tone', 'a beep', 'a sine tone']

    def params(self, rng, split):
        return dict(pattern=['smpte', 'smpte75', 'smpte100'][rng.integers(3)],
                    freq=span(rng, split, 440, 1000),
                    volume=span(rng, split, 0.3, 0.9),
                    distance=span(rng, split, 1.5, 3.6),
                    band_temps=rng.uniform(60, 200, 7).tolist())

    def video(self, p):
        return dict(pattern=p['pattern'])

    def audio(self, p):
        return dict(wave='sine', freq=p['freq'], volume=p['volume'])

    def depth(self, p, w, h, rng):
        # a staircase of seven vertical panels, one per bar
        return band_depth(w, h, p['distance'] + 0.15 * np.arange(7) * ((-1) ** np.arange(7)))

    def thermal(self, p, w, h, rng):
        return band_depth(w, h, p['band_temps'])

    def imu(self, p, rng):
        return still(rng)      # a camera on a tripod


class Snow(Scene):
    name = 'snow'
    visual = ['static noise', 'television snow', 'random noise', 'a noisy screen',
              'snow on a screen']
    sound = ['white noise', 'static hiss', 'a hissing sound', 'loud static']

    def params(self, rng, split):
        return dict(volume=span(rng, split, 0.3, 0.9),
                    shake=span(rng, split, 1.0, 3.2))

    def video(self, p):
        return dict(pattern='snow')

    def audio(self, p):
        return dict(wave='white-noise', volume=p['volume'])

    def depth(self, p, w, h, rng):
        return rng.uniform(0.5, 5.0, (h, w))

    def thermal(self, p, w, h, rng):
        return rng.uniform(0, 255, (h, w))

    def imu(self, p, rng):
        t = still(rng)
        t[:, :3] += rng.normal(0, p['shake'], (IMU_SAMPLES, 3))
        t[:, 3:] += rng.normal(0, 0.3 * p['shake'], (IMU_SAMPLES, 3))
        return t


class Black(Scene):
    name = 'black'
    visual = ['a black screen', 'darkness', 'a dark screen', 'nothing', 'an empty black picture']
    sound = ['silence', 'no sound', 'quiet', 'nothing to hear']

    def params(self, rng, split):
        return dict(cold=span(rng, split, 10, 38))

    def video(self, p):
        return dict(pattern='black')

    def audio(self, p):
        return dict(wave='silence')

    def depth(self, p, w, h, rng):
        return np.zeros((h, w))           # nothing in range

    def thermal(self, p, w, h, rng):
        return np.full((h, w), p['cold']) + rng.normal(0, 1.0, (h, w))

    def imu(self, p, rng):
        return still(rng, gravity=(0.0, 0.0, -9.81), noise=0.01)   # lying face down


class Ball(Scene):
    name = 'ball'
    visual = ['a bouncing ball', 'a moving ball', 'a ball', 'a ball bouncing around']
    sound = ['ticking', 'a clock ticking', 'clicks', 'regular ticks']

    def params(self, rng, split):
        return dict(hue=pick(rng, split, [(0, 40), (80, 190), (220, 300)],
                             [(40, 80), (190, 220), (300, 360)]),
                    motion=['wavy', 'sweep', 'hsweep'][rng.integers(3)],
                    frame=int(rng.integers(1, 60)),
                    rate=span(rng, split, 2.0, 8.0),      # bounces per second
                    tick_freq=span(rng, split, 800, 2000),
                    volume=span(rng, split, 0.4, 0.95),
                    near=span(rng, split, 0.6, 1.4),
                    cx=float(rng.uniform(0.2, 0.8)), cy=float(rng.uniform(0.2, 0.8)),
                    radius=float(rng.uniform(0.06, 0.12)))

    def visual_words(self, p):
        c = hue_word(p['hue'])
        return self.visual + ['a %s ball' % c, 'a bouncing %s ball' % c]

    def video(self, p):
        return {'pattern': 'ball', 'motion': p['motion'],
                'foreground-color': argb(p['hue'], 0.9, 1.0), '_frame': p['frame']}

    def audio(self, p):
        return {'wave': 'ticks', 'freq': p['tick_freq'], 'volume': p['volume'],
                'tick-interval': int(1e9 / p['rate'])}

    def _disc(self, p, w, h):
        x, y = grid(w, h)
        return ((x - p['cx']) * w) ** 2 + ((y - p['cy']) * h) ** 2 < (p['radius'] * min(w, h)) ** 2

    def depth(self, p, w, h, rng):
        d = np.full((h, w), 4.5)
        d[self._disc(p, w, h)] = p['near']
        return d

    def thermal(self, p, w, h, rng):
        t = np.full((h, w), 40.0) + rng.normal(0, 2, (h, w))
        t[self._disc(p, w, h)] = 235
        return t

    def imu(self, p, rng):
        # a sharp vertical spike at every bounce
        t = still(rng)
        phase = (times() * p['rate']) % 1.0
        t[:, 2] += 25.0 * np.exp(-(phase / 0.03) ** 2)
        t[:, 4] += 1.5 * np.sin(2 * math.pi * times() * p['rate'])
        return t


class Checkers(Scene):
    name = 'checkers'
    visual = ['a checkerboard', 'a chequered pattern', 'checkers', 'a grid of squares']
    sound = ['a buzzing square wave', 'a buzz', 'a harsh buzzing', 'a square wave']

    def params(self, rng, split):
        return dict(pattern=['checkers-2', 'checkers-4', 'checkers-8'][rng.integers(3)],
                    freq=span(rng, split, 90, 190),
                    volume=span(rng, split, 0.3, 0.9),
                    tile=span(rng, split, 0.08, 0.2),
                    jerk=span(rng, split, 0.5, 2.0))

    def video(self, p):
        return dict(pattern=p['pattern'])

    def audio(self, p):
        return dict(wave='square', freq=p['freq'], volume=p['volume'])

    def _board(self, p, w, h):
        x, y = grid(w, h)
        s = p['tile']
        return ((np.floor(x / s) + np.floor(y * h / w / s)) % 2).astype(bool)

    def depth(self, p, w, h, rng):
        return np.where(self._board(p, w, h), 1.5, 2.5)

    def thermal(self, p, w, h, rng):
        return np.where(self._board(p, w, h), 180.0, 70.0)

    def imu(self, p, rng):
        # square-wave jerks left and right
        t = still(rng)
        t[:, 0] += 3.0 * np.sign(np.sin(2 * math.pi * p['jerk'] * times()))
        return t


class Rings(Scene):
    name = 'rings'
    visual = ['circular rings', 'a zone plate', 'concentric circles', 'rings', 'ripples']
    sound = ['a sawtooth wave', 'a raspy tone', 'a sawtooth buzz', 'a bright buzzing tone']

    def params(self, rng, split):
        return dict(pattern=['zone-plate', 'circular'][rng.integers(2)],
                    k2=int(span(rng, split, 8, 32)),
                    freq=span(rng, split, 220, 380),
                    volume=span(rng, split, 0.3, 0.9),
                    spin=span(rng, split, 0.5, 1.5),
                    ring=span(rng, split, 6, 15))

    def video(self, p):
        v = dict(pattern=p['pattern'])
        if p['pattern'] == 'zone-plate':
            v.update(kx2=p['k2'], ky2=p['k2'], kt2=2)
        return v

    def audio(self, p):
        return dict(wave='saw', freq=p['freq'], volume=p['volume'])

    def _r(self, w, h):
        x, y = grid(w, h)
        return np.hypot(x - 0.5, (y - 0.5) * h / w)

    def depth(self, p, w, h, rng):
        return 2.0 + 0.3 * np.sin(2 * math.pi * p['ring'] * self._r(w, h))

    def thermal(self, p, w, h, rng):
        return 128 + 100 * np.sin(2 * math.pi * p['ring'] * self._r(w, h))

    def imu(self, p, rng):
        # circling: centripetal acceleration turning in the horizontal plane
        t = still(rng)
        a = 2 * math.pi * p['spin'] * times()
        t[:, 0] += 2.0 * np.cos(a)
        t[:, 1] += 2.0 * np.sin(a)
        t[:, 5] += 2 * math.pi * p['spin']
        return t


class SolidColour(Scene):
    """A screen of one colour; the subclasses choose the hue band, the sound and the sensors."""
    pattern_hues = None   # (lo, hi) in degrees
    sat = (0.8, 1.0)

    def params(self, rng, split):
        return dict(hue=span(rng, split, *self.pattern_hues), sat=float(rng.uniform(*self.sat)),
                    val=float(rng.uniform(0.8, 1.0)), **self.more(rng, split))

    def video(self, p):
        return {'pattern': 'solid-color', 'foreground-color': argb(p['hue'], p['sat'], p['val'])}


class Red(SolidColour):
    name = 'red'
    visual = ['a red screen', 'a red picture', 'red', 'a screen filled with red']
    sound = ['a low hum', 'a deep hum', 'a humming sound', 'mains hum']
    pattern_hues = (-12, 14)

    def more(self, rng, split):
        return dict(freq=span(rng, split, 60, 150),
                    volume=span(rng, split, 0.3, 0.9),
                    near=span(rng, split, 0.5, 1.0),
                    warmth=span(rng, split, 140, 190),
                    rock=span(rng, split, 0.2, 0.5))

    def audio(self, p):
        return dict(wave='sine', freq=p['freq'], volume=p['volume'])

    # A radiator right in front of the camera: horizontal fins, warm. (Uniform maps would not
    # do: the stems' LayerNorm removes a constant level, so texture must tell scenes apart.)
    def _fins(self, w, h):
        _, y = grid(w, h)
        return np.sin(2 * math.pi * 12 * y) > 0

    def depth(self, p, w, h, rng):
        return np.where(self._fins(w, h), p['near'], p['near'] + 0.05)

    def thermal(self, p, w, h, rng):
        return np.where(self._fins(w, h), p['warmth'], p['warmth'] - 50) + rng.normal(0, 3, (h, w))

    def imu(self, p, rng):
        # gently rocking (tilt about x)
        t = still(rng)
        a = 0.3 * np.sin(2 * math.pi * p['rock'] * times())
        t[:, 1] += 9.81 * np.sin(a)
        t[:, 3] += 0.3 * 2 * math.pi * p['rock'] * np.cos(2 * math.pi * p['rock'] * times())
        return t


class White(SolidColour):
    name = 'white'
    visual = ['a white screen', 'a bright white picture', 'white', 'a blank white screen']
    sound = ['a high whistle', 'a high-pitched whistle', 'a shrill tone', 'a piercing whistle']
    pattern_hues = (0, 360)
    sat = (0.0, 0.08)

    def more(self, rng, split):
        return dict(freq=span(rng, split, 2500, 5000),
                    volume=span(rng, split, 0.3, 0.9),
                    distance=span(rng, split, 2.0, 3.4),
                    heat=span(rng, split, 205, 245),
                    turn=span(rng, split, 0.3, 1.0))

    def params(self, rng, split):
        p = super().params(rng, split)
        p['val'] = float(rng.uniform(0.9, 1.0))
        return p

    def audio(self, p):
        return dict(wave='sine', freq=p['freq'], volume=p['volume'])

    def depth(self, p, w, h, rng):
        x, _ = grid(w, h)
        return p['distance'] + 0.8 * (x - 0.5)      # a wall seen at an angle

    def thermal(self, p, w, h, rng):
        # a glowing panel filling the middle of the view, cooler surroundings
        x, y = grid(w, h)
        inside = (np.abs(x - 0.5) < 0.3) & (np.abs(y - 0.5) < 0.3)
        return np.where(inside, p['heat'], 90.0) + rng.normal(0, 3, (h, w))

    def imu(self, p, rng):
        t = still(rng)
        t[:, 5] += p['turn']                       # turning slowly about the vertical
        return t


class Blue(SolidColour):
    name = 'blue'
    visual = ['a blue screen', 'a blue picture', 'blue', 'a screen filled with blue']
    sound = ['a deep rumble', 'rumbling', 'a low roar', 'a rumbling noise']
    pattern_hues = (215, 248)

    def more(self, rng, split):
        return dict(volume=span(rng, split, 0.4, 0.95),
                    far=span(rng, split, 3.0, 6.0),
                    step=span(rng, split, 1.5, 2.5))

    def audio(self, p):
        return dict(wave='red-noise', volume=p['volume'])

    def depth(self, p, w, h, rng):
        _, y = grid(w, h)
        return 0.8 + (p['far'] - 0.8) * (1 - y)     # the ground, receding to the horizon

    def thermal(self, p, w, h, rng):
        _, y = grid(w, h)
        return 50 + 60 * y                          # cool sky above, warmer ground below

    def imu(self, p, rng):
        # walking: vertical bobbing at the step rate
        t = still(rng)
        t[:, 2] += 3.0 * np.abs(np.sin(math.pi * p['step'] * times()))
        t[:, 0] += 0.8 * np.sin(math.pi * p['step'] * times())
        return t


class Pinwheel(Scene):
    name = 'pinwheel'
    visual = ['a pinwheel', 'spokes', 'a spinning wheel', 'radiating spokes']
    sound = ['wind', 'rushing air', 'a soft whoosh', 'the sound of wind']

    def params(self, rng, split):
        return dict(pattern=['pinwheel', 'spokes'][rng.integers(2)],
                    volume=span(rng, split, 0.4, 0.95),
                    spin=span(rng, split, 3.0, 7.0),
                    sectors=int(span(rng, split, 6, 14)))

    def video(self, p):
        return dict(pattern=p['pattern'])

    def audio(self, p):
        return dict(wave='pink-noise', volume=p['volume'])

    def _angle(self, w, h):
        x, y = grid(w, h)
        return np.arctan2((y - 0.5) * h / w, x - 0.5)

    def depth(self, p, w, h, rng):
        return 1.0 + 2.0 * ((self._angle(w, h) / (2 * math.pi) + 0.5) % 1.0)   # a spiral ramp

    def thermal(self, p, w, h, rng):
        return np.where(np.sin(p['sectors'] * self._angle(w, h)) > 0, 200.0, 60.0)

    def imu(self, p, rng):
        t = still(rng)
        t[:, 5] += p['spin']                      # spinning fast about the vertical
        t[:, 0] += 0.05 * p['spin'] ** 2          # and pushed outwards
        return t


SCENES = [Bars(), Snow(), Black(), Ball(), Checkers(), Rings(), Red(), White(), Blue(),
          Pinwheel()]
CLASS_NAMES = [s.name for s in SCENES]

# ---- captions ----

VISUAL_TEMPLATES = ['{v}', 'a video of {v}', 'a picture of {v}', 'there is {v} on the screen',
                    'footage of {v}', 'a photo of {v}']
SOUND_TEMPLATES = ['the sound of {s}', '{s}', 'you can hear {s}']
BOTH_TEMPLATES = ['{v} with {s}', 'a video of {v} with {s}', '{v} and {s}']


def caption(scene, p, rng):
    """One caption of a scene from the grammar: what is seen, what is heard, or both."""
    v = scene.visual_words(p)
    v = v[rng.integers(len(v))]
    s = scene.sound[rng.integers(len(scene.sound))]
    kind = rng.random()
    if kind < 0.5:
        t = VISUAL_TEMPLATES[rng.integers(len(VISUAL_TEMPLATES))]
    elif kind < 0.7:
        t = SOUND_TEMPLATES[rng.integers(len(SOUND_TEMPLATES))]
    else:
        t = BOTH_TEMPLATES[rng.integers(len(BOTH_TEMPLATES))]
    return t.format(v=v, s=s)


def all_captions():
    """Every caption the grammar can make (the BPE corpus), in a fixed order."""
    out = []
    for scene in SCENES:
        vis = list(scene.visual) + ['a %s ball' % c for _, c in HUE_WORDS if scene.name == 'ball']
        vis += ['a bouncing %s ball' % c for _, c in HUE_WORDS if scene.name == 'ball']
        for v in vis:
            out += [t.format(v=v) for t in VISUAL_TEMPLATES]
            for s in scene.sound:
                out += [t.format(v=v, s=s) for t in BOTH_TEMPLATES]
        for s in scene.sound:
            out += [t.format(s=s) for t in SOUND_TEMPLATES]
    return out


# Prompts for zero-shot classification (first phrase of each class).
def image_prompt(scene):
    return 'a video of ' + scene.visual[0]


def sound_prompt(scene):
    return 'the sound of ' + scene.sound[0]
