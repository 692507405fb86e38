"""Procedural demo images: scenes of coloured shapes drawn with Pillow alone.

The demo seed (``evalhub.demo.catalog``) needs images that behave like a text-to-image model's
output in a study: mostly faithful to the prompt, sometimes not, and with visual flaws
an annotator can spot. ``draw_demo_image`` draws one scene from a ``SceneSpec``;
``quality`` (0 to 1) sets how often it misses the prompt (a wrong colour or shape, a
wrong count, an extra shape, a swapped arrangement) and how often it adds flaws (jagged
or smeared edges, a torn-off and displaced part, a ghost duplicate, noise blotches).

Everything is drawn from ``random.Random(seed)``, so one seed always gives the same
pixels, and every seed jitters positions, sizes, angles and colours a little, so
different seeds give different images (the image importer rejects byte-identical ones).
"""

import functools
import math
import random
from dataclasses import dataclass, field

from PIL import Image, ImageChops, ImageDraw, ImageFilter

# Pure colours would look flat; these are the mid tones a person names by the key.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 40, 40),
    "blue": (31, 95, 209),
    "green": (42, 157, 63),
    "yellow": (244, 194, 13),
    "orange": (247, 127, 0),
    "purple": (123, 44, 191),
    "pink": (255, 111, 174),
    "white": (250, 250, 250),
    "black": (20, 20, 20),
    "gray": (140, 140, 140),
}
DEFAULT_BACKGROUND = (238, 232, 220)
SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon")
RELATIONS = ("above", "to the left of")
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}

MISS_KINDS = ("wrong colour", "wrong shape", "wrong count", "extra shape", "swapped arrangement")
FLAW_KINDS = ("jagged edges", "smeared edges", "torn part", "ghost duplicate", "noise blotch")

# Shapes are drawn at twice the output size and scaled down: cheap anti-aliasing.
SUPERSAMPLE = 2


@dataclass(frozen=True)
class ShapeGroup:
    """``count`` shapes of one kind and colour, e.g. two green triangles."""

    count: int
    colour: str
    shape: str

    @property
    def noun(self) -> str:
        """ "red circle" or "red circles", as a prompt or question names the group."""
        return f"{self.colour} {self.shape}{'s' if self.count > 1 else ''}"


@dataclass(frozen=True)
class SceneSpec:
    """What a demo prompt asks for: groups of shapes, their arrangement, the background.

    ``relation`` is "" (anywhere), "above" or "to the left of" (the first group relative
    to the second). ``background`` is a colour name, or "" when the prompt names none: a
    neutral default is drawn then, and no question asks about it.
    """

    groups: tuple[ShapeGroup, ...]
    relation: str = ""
    background: str = ""

    def __post_init__(self):
        if not self.groups:
            raise ValueError("a scene needs at least one group of shapes")
        for group in self.groups:
            if group.colour not in COLOURS or group.shape not in SHAPES or group.count not in NUMBER_WORDS:
                raise ValueError(f"unsupported group {group}")
        if self.relation and (self.relation not in RELATIONS or len(self.groups) != 2):
            raise ValueError(f"relation {self.relation!r} needs one of {RELATIONS} and two groups")
        if self.background and self.background not in COLOURS:
            raise ValueError(f"unsupported background {self.background!r}")


@dataclass(frozen=True)
class DemoPrompt:
    """A demo prompt's text with the scene it describes."""

    text: str
    spec: SceneSpec

    @property
    def category(self) -> str:
        """The skill the prompt tests, for grouping results."""
        if self.spec.relation:
            return "spatial relation"
        if len(self.spec.groups) > 1:
            return "composition"
        if self.spec.groups[0].count > 1:
            return "counting"
        return "single object"

    @property
    def questions(self) -> list[tuple[str, bool]]:
        """The binary alignment questions with their expected answers (paper §4.1)."""
        return alignment_questions(self.spec)


def alignment_questions(spec: SceneSpec) -> list[tuple[str, bool]]:
    """(question, expected answer) pairs a faithful image of ``spec`` answers."""
    questions = []
    for group in spec.groups:
        if group.count == 1:
            questions.append((f"Is there one {group.noun}?", True))
        else:
            questions.append((f"Are there exactly {NUMBER_WORDS[group.count]} {group.noun}?", True))
    if spec.relation:
        first, second = spec.groups
        verb = "Is" if first.count == 1 else "Are"
        questions.append((f"{verb} the {first.noun} {spec.relation} the {second.noun}?", True))
    if spec.background:
        questions.append((f"Is the background {spec.background}?", True))
    questions.append(("Are there other shapes present?", False))
    return questions


def _prompt(text: str, *groups: tuple[int, str, str], relation: str = "", background: str = "") -> DemoPrompt:
    return DemoPrompt(
        text=text,
        spec=SceneSpec(
            groups=tuple(ShapeGroup(*g) for g in groups), relation=relation, background=background
        ),
    )


DEMO_PROMPTS: tuple[DemoPrompt, ...] = (
    _prompt(
        "a red circle above a blue square", (1, "red", "circle"), (1, "blue", "square"), relation="above"
    ),
    _prompt("two green triangles on a white background", (2, "green", "triangle"), background="white"),
    _prompt("one yellow star on a black background", (1, "yellow", "star"), background="black"),
    _prompt("three blue circles", (3, "blue", "circle")),
    _prompt(
        "a purple square to the left of an orange circle",
        (1, "purple", "square"),
        (1, "orange", "circle"),
        relation="to the left of",
    ),
    _prompt("four pink diamonds on a white background", (4, "pink", "diamond"), background="white"),
    _prompt("a green hexagon and a red triangle", (1, "green", "hexagon"), (1, "red", "triangle")),
    _prompt("five yellow circles on a blue background", (5, "yellow", "circle"), background="blue"),
    _prompt(
        "an orange star above two purple circles",
        (1, "orange", "star"),
        (2, "purple", "circle"),
        relation="above",
    ),
    _prompt("two red squares and one blue triangle", (2, "red", "square"), (1, "blue", "triangle")),
    _prompt("a white circle on a black background", (1, "white", "circle"), background="black"),
    _prompt("three orange triangles on a green background", (3, "orange", "triangle"), background="green"),
    _prompt(
        "a blue diamond to the left of a yellow diamond",
        (1, "blue", "diamond"),
        (1, "yellow", "diamond"),
        relation="to the left of",
    ),
    _prompt("one black square on a yellow background", (1, "black", "square"), background="yellow"),
    _prompt("two purple stars and a green circle", (2, "purple", "star"), (1, "green", "circle")),
    _prompt(
        "a red hexagon above a white square on a gray background",
        (1, "red", "hexagon"),
        (1, "white", "square"),
        relation="above",
        background="gray",
    ),
    _prompt("four blue squares", (4, "blue", "square")),
    _prompt(
        "a pink circle to the left of two green squares",
        (1, "pink", "circle"),
        (2, "green", "square"),
        relation="to the left of",
    ),
    _prompt("three red stars on a white background", (3, "red", "star"), background="white"),
    _prompt(
        "a yellow triangle above an orange hexagon",
        (1, "yellow", "triangle"),
        (1, "orange", "hexagon"),
        relation="above",
    ),
)


@dataclass
class DemoDrawing:
    """A drawn image and what went wrong in it: the ground truth a study should find."""

    image: Image.Image
    misses: list[str] = field(default_factory=list)
    flaws: list[str] = field(default_factory=list)


@dataclass
class _Item:
    colour: str
    shape: str


def draw_demo_image(spec: SceneSpec, *, seed: int, quality: float, size: int = 256) -> Image.Image:
    """Draw ``spec`` as a ``size``×``size`` RGB image, deterministically from ``seed``.

    The lower ``quality`` (0 to 1), the more often the image misses the prompt or shows
    visual flaws; at 1 it never does.
    """
    return demo_image_render(spec, seed=seed, quality=quality, size=size).image


def demo_image_render(spec: SceneSpec, *, seed: int, quality: float, size: int = 256) -> DemoDrawing:
    """Like ``draw_demo_image``, also listing the misses and flaws it drew."""
    if not 0.0 <= quality <= 1.0:
        raise ValueError(f"quality must lie in [0, 1], got {quality}")
    if size < 16:
        raise ValueError(f"size must be at least 16, got {size}")
    rng = random.Random(seed)
    badness = 1.0 - quality
    drawing = DemoDrawing(image=Image.new("RGB", (size, size)))

    regions = _regions_with_misses(spec, rng, 0.3 * badness, drawing.misses)
    width = size * SUPERSAMPLE
    polished = rng.random() < 0.15 + 0.8 * quality
    canvas = _background(spec.background, width, rng, polished)
    for item, (cx, cy, radius) in _layout(regions, spec.relation, width, rng):
        flaw = rng.choice(FLAW_KINDS[:4]) if rng.random() < 0.45 * badness else ""
        if flaw:
            drawing.flaws.append(flaw)
        _draw_shape(canvas, item, cx, cy, radius, rng, polished=polished, flaw=flaw)
    if rng.random() < 0.5 * badness:
        for _ in range(rng.randint(1, 3)):
            _noise_blotch(canvas, rng)
            drawing.flaws.append("noise blotch")

    drawing.image = canvas.convert("RGB").reduce(SUPERSAMPLE)
    return drawing


# ---------------------------------------------------------------- prompt misses


def _regions_with_misses(spec: SceneSpec, rng: random.Random, p_miss: float, misses: list[str]):
    """The shapes to draw, one list per region, with the prompt misses applied."""
    groups = [[_Item(g.colour, g.shape) for _ in range(g.count)] for g in spec.groups]
    colours = [c for c in COLOURS if c != spec.background]
    asked = {(g.colour, g.shape) for g in spec.groups}

    if rng.random() < p_miss:
        members = rng.choice(groups)
        colour = rng.choice([c for c in colours if c != members[0].colour])
        # Either the whole group or a single shape of it comes out in the wrong colour.
        for item in members if rng.random() < 0.5 else [rng.choice(members)]:
            item.colour = colour
        misses.append("wrong colour")
    if rng.random() < p_miss:
        item = rng.choice(rng.choice(groups))
        item.shape = rng.choice([s for s in SHAPES if s != item.shape])
        misses.append("wrong shape")
    if rng.random() < p_miss:
        members = rng.choice(groups)
        if len(members) > 1 and rng.random() < 0.5:
            members.pop()
        elif len(members) == 1 and len(groups) > 1 and rng.random() < 0.3:
            members.clear()  # the whole object is missing
        else:
            members.append(_Item(members[0].colour, members[0].shape))
        misses.append("wrong count")
    if rng.random() < p_miss:
        extra = [(c, s) for c in colours for s in SHAPES if (c, s) not in asked]
        rng.choice(groups).append(_Item(*rng.choice(extra)))
        misses.append("extra shape")
    if spec.relation and rng.random() < p_miss:
        groups.reverse()
        misses.append("swapped arrangement")

    if not spec.relation:
        return [[item for members in groups for item in members]]
    return groups


# ---------------------------------------------------------------- layout


def _layout(regions, relation: str, width: int, rng: random.Random):
    """(item, (centre x, centre y, radius)) for every item, in canvas pixels.

    Each region is cut into a grid of cells; items take random cells and sit jittered
    inside them, so scenes vary from seed to seed without shapes overlapping much.
    """
    if relation == "above":
        boxes = [(0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 1.0)]
    elif relation:
        boxes = [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]
    else:
        boxes = [(0.0, 0.0, 1.0, 1.0)]
    placed = []
    for items, (x0, y0, x1, y1) in zip(regions, boxes, strict=True):
        if not items:
            continue
        margin = 0.05
        x0, y0, x1, y1 = x0 + margin, y0 + margin, x1 - margin, y1 - margin
        w, h = x1 - x0, y1 - y0
        cols = max(range(1, len(items) + 1), key=lambda c: min(w / c, h / math.ceil(len(items) / c)))
        rows = math.ceil(len(items) / cols)
        cw, ch = w / cols, h / rows
        cells = rng.sample([(c, r) for r in range(rows) for c in range(cols)], len(items))
        for item, (c, r) in zip(items, cells, strict=True):
            cell = min(cw, ch)
            radius = min(0.3, cell * rng.uniform(0.28, 0.36))
            # Capped jitter: a shape "above" another should not drift to the far side.
            cx = x0 + (c + 0.5) * cw + rng.uniform(-1, 1) * min(0.5 * (cw - 2 * radius), 0.15)
            cy = y0 + (r + 0.5) * ch + rng.uniform(-1, 1) * min(0.5 * (ch - 2 * radius), 0.15)
            placed.append((item, (cx * width, cy * width, radius * width)))
    return placed


# ---------------------------------------------------------------- drawing


def _jitter(rgb: tuple[int, int, int], rng: random.Random, amount: int) -> tuple[int, int, int]:
    return tuple(max(0, min(255, v + rng.randint(-amount, amount))) for v in rgb)


def _background(name: str, width: int, rng: random.Random, polished: bool) -> Image.Image:
    base = _jitter(COLOURS[name] if name else DEFAULT_BACKGROUND, rng, 6)
    canvas = Image.new("RGBA", (width, width), base + (255,))
    if polished:
        # A soft vertical light falloff reads as a studio backdrop: more appeal.
        darker = tuple(int(v * 0.86) for v in base)
        gradient = _gradient(width)
        canvas = Image.composite(Image.new("RGBA", (width, width), darker + (255,)), canvas, gradient)
    return canvas


@functools.lru_cache(maxsize=8)
def _gradient(width: int) -> Image.Image:
    """A top-to-bottom ramp from 0 to 255; cached, as only read, never changed."""
    return Image.linear_gradient("L").resize((width, width))


def _unit_outline(shape: str) -> list[tuple[float, float]]:
    """The shape's corners around (0, 0) with radius about 1, y pointing down."""

    def ring(n: int, radius: float, start: float) -> list[tuple[float, float]]:
        return [
            (radius * math.cos(start + 2 * math.pi * k / n), radius * math.sin(start + 2 * math.pi * k / n))
            for k in range(n)
        ]

    if shape == "circle":
        return ring(72, 1.0, 0.0)
    if shape == "square":
        return ring(4, 0.95, math.pi / 4)
    if shape == "triangle":
        return [(x, y + 0.15) for x, y in ring(3, 1.05, -math.pi / 2)]
    if shape == "star":
        outer, inner = ring(5, 1.05, -math.pi / 2), ring(5, 0.45, -math.pi / 2 + math.pi / 5)
        return [p for pair in zip(outer, inner, strict=True) for p in pair]
    if shape == "diamond":
        return [(0.0, -1.0), (0.68, 0.0), (0.0, 1.0), (-0.68, 0.0)]
    return ring(6, 0.97, 0.0)


def _outline(shape, cx, cy, radius, angle, *, scale=1.0, rng=None, roughness=0.0):
    """The shape's corners in tile pixels; with ``rng``, every edge is cut into short
    segments whose ends wander radially by up to ``roughness`` × radius."""
    points = _unit_outline(shape)
    if rng is not None:
        dense = []
        for (ax, ay), (bx, by) in zip(points, points[1:] + points[:1], strict=True):
            steps = 2 if shape == "circle" else 10
            dense += [(ax + (bx - ax) * k / steps, ay + (by - ay) * k / steps) for k in range(steps)]
        points = [(x * f, y * f) for x, y in dense for f in [1 + rng.uniform(-roughness, roughness)]]
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    r = radius * scale
    return [(cx + r * (x * cos_a - y * sin_a), cy + r * (x * sin_a + y * cos_a)) for x, y in points]


def _scaled_alpha(layer: Image.Image, factor: float) -> Image.Image:
    out = layer.copy()
    out.putalpha(layer.getchannel("A").point(lambda a: int(a * factor)))
    return out


def _shifted(layer: Image.Image, dx: float, dy: float) -> Image.Image:
    out = Image.new("RGBA", layer.size, (0, 0, 0, 0))
    out.paste(layer, (round(dx), round(dy)))
    return out


def _soft(mask: Image.Image, blur: float) -> Image.Image:
    """``mask`` Gaussian-blurred; done at a quarter of the size, since a soft mask loses
    nothing there and blurring dominates the drawing time otherwise."""
    small = mask.reduce(4) if min(mask.size) >= 16 else mask
    factor = mask.width / small.width
    return small.filter(ImageFilter.GaussianBlur(blur / factor)).resize(mask.size, Image.Resampling.BILINEAR)


def _paste(canvas: Image.Image, tile: Image.Image, x: int, y: int) -> None:
    # alpha_composite wants its destination on the canvas: crop what hangs over the edge.
    left, top = max(0, -x), max(0, -y)
    right, bottom = min(tile.width, canvas.width - x), min(tile.height, canvas.height - y)
    if right > left and bottom > top:
        canvas.alpha_composite(tile.crop((left, top, right, bottom)), dest=(x + left, y + top))


def _draw_shape(canvas, item: _Item, cx, cy, radius, rng: random.Random, *, polished: bool, flaw: str):
    """Draw one shape onto ``canvas`` through a tile around it, with its flaw if any."""
    # The tile leaves room for what a flaw moves outward; small tiles keep blurs cheap.
    reach = {"ghost duplicate": 2.7, "torn part": 2.2, "smeared edges": 2.2}.get(flaw, 1.6)
    half = int(reach * radius) + 4
    ox, oy = round(cx) - half, round(cy) - half
    tx, ty = cx - ox, cy - oy  # the centre inside the tile keeps the sub-pixel jitter
    size = (2 * half, 2 * half)
    angle = math.radians(rng.uniform(-12, 12))
    colour = _jitter(COLOURS[item.colour], rng, 10)

    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    if flaw == "jagged edges":
        # Drawn coarse and blown up unsmoothed: stair-step, wobbly edges.
        factor = max(2, int(radius / 12))
        small = Image.new("RGBA", (size[0] // factor + 1, size[1] // factor + 1), (0, 0, 0, 0))
        points = _outline(
            item.shape, tx / factor, ty / factor, radius / factor, angle, rng=rng, roughness=0.12
        )
        ImageDraw.Draw(small).polygon(points, fill=colour + (255,))
        big = small.resize((small.width * factor, small.height * factor), Image.Resampling.NEAREST)
        layer = big.crop((0, 0) + size)
    else:
        ImageDraw.Draw(layer).polygon(_outline(item.shape, tx, ty, radius, angle), fill=colour + (255,))

    if polished:
        _add_highlight(layer, item.shape, tx, ty, radius, angle, colour)
    if flaw == "smeared edges":
        layer = _smear(layer, radius, rng)
    elif flaw == "torn part":
        layer = _tear(layer, tx, ty, radius, rng)
    elif flaw == "ghost duplicate":
        direction = rng.uniform(0, 2 * math.pi)
        distance = rng.uniform(0.7, 1.3) * radius
        ghost = _scaled_alpha(
            _shifted(layer, distance * math.cos(direction), distance * math.sin(direction)),
            rng.uniform(0.3, 0.5),
        )
        layer = Image.alpha_composite(ghost, layer)

    if polished:
        shadow = Image.new("RGBA", size, (0, 0, 0, 0))
        shadow.putalpha(_soft(layer.getchannel("A").point(lambda a: int(a * 0.35)), radius * 0.1))
        layer = Image.alpha_composite(_shifted(shadow, radius * 0.08, radius * 0.12), layer)
    _paste(canvas, layer, ox, oy)


def _add_highlight(layer, shape, tx, ty, radius, angle, colour) -> None:
    """Lighten the upper left of the shape softly, as if lit from there."""
    light = Image.new("L", layer.size, 0)
    points = _outline(shape, tx - 0.25 * radius, ty - 0.3 * radius, radius, angle, scale=0.55)
    ImageDraw.Draw(light).polygon(points, fill=110)
    light = ImageChops.multiply(_soft(light, radius * 0.3), layer.getchannel("A"))
    lighter = Image.new("RGB", layer.size, tuple(v + (255 - v) // 2 for v in colour))
    rgb = Image.composite(lighter, layer.convert("RGB"), light)
    rgb.putalpha(layer.getchannel("A"))
    layer.paste(rgb)


def _smear(layer: Image.Image, radius: float, rng: random.Random) -> Image.Image:
    """Fading copies dragged along one direction, then softened: a motion smear."""
    direction = rng.uniform(0, 2 * math.pi)
    step = rng.uniform(0.05, 0.09) * radius
    smeared = Image.new("RGBA", layer.size, (0, 0, 0, 0))
    for i in range(6, 0, -1):
        copy = _shifted(layer, i * step * math.cos(direction), i * step * math.sin(direction))
        smeared = Image.alpha_composite(smeared, _scaled_alpha(copy, 0.6 * (1 - i / 7)))
    smeared = Image.alpha_composite(smeared, layer)
    return smeared.filter(ImageFilter.GaussianBlur(radius * 0.05))


def _tear(layer: Image.Image, tx, ty, radius, rng: random.Random) -> Image.Image:
    """Cut the shape along a random line and push the cut-off part askew."""
    theta = rng.uniform(0, 2 * math.pi)
    nx, ny = math.cos(theta), math.sin(theta)
    px, py = tx + nx * rng.uniform(0.0, 0.4) * radius, ty + ny * rng.uniform(0.0, 0.4) * radius
    far = 4 * max(layer.size)
    half_plane = [
        (px + ny * far, py - nx * far),
        (px - ny * far, py + nx * far),
        (px - ny * far + nx * far, py + nx * far + ny * far),
        (px + ny * far + nx * far, py - nx * far + ny * far),
    ]
    mask = Image.new("L", layer.size, 0)
    ImageDraw.Draw(mask).polygon(half_plane, fill=255)
    alpha = layer.getchannel("A")
    part, rest = layer.copy(), layer.copy()
    part.putalpha(ImageChops.multiply(alpha, mask))
    rest.putalpha(ImageChops.multiply(alpha, ImageChops.invert(mask)))
    push, slide = rng.uniform(0.15, 0.35) * radius, rng.uniform(-0.15, 0.15) * radius
    part = part.rotate(rng.uniform(-25, 25), resample=Image.Resampling.BICUBIC, center=(px, py))
    part = _shifted(part, nx * push - ny * slide, ny * push + nx * slide)
    return Image.alpha_composite(rest, part)


def _noise_blotch(canvas: Image.Image, rng: random.Random) -> None:
    """A soft-edged patch of speckles somewhere on the canvas."""
    width = canvas.width
    r = int(rng.uniform(0.05, 0.12) * width) + 2
    base = (rng.randint(60, 200), rng.randint(50, 180), rng.randint(40, 170))
    patch = Image.new("RGBA", (2 * r, 2 * r), base + (255,))
    draw = ImageDraw.Draw(patch)
    for _ in range(120):
        x, y, d = rng.uniform(0, 2 * r), rng.uniform(0, 2 * r), rng.uniform(1, max(2.0, r / 12))
        draw.ellipse((x - d, y - d, x + d, y + d), fill=_jitter(base, rng, 90) + (255,))
    mask = Image.new("L", patch.size, 0)
    ImageDraw.Draw(mask).ellipse((r * 0.3, r * 0.3, r * 1.7, r * 1.7), fill=int(rng.uniform(150, 230)))
    patch.putalpha(mask.filter(ImageFilter.GaussianBlur(r * 0.25)))
    x, y = rng.randint(-r // 2, width - r), rng.randint(-r // 2, width - r)
    _paste(canvas, patch.filter(ImageFilter.GaussianBlur(0.8)), x, y)
