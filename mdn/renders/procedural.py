"""Random Mitsuba 3 scenes for training a render denoiser: every draw from one seed, so a scene is its number.

A floor, sometimes walls, two to six objects (spheres, cubes, cylinders, panels) of diffuse (a colour or a
texture from the training photos), plastic, rough metal or glass materials, lit by one to three area lights
and, in most scenes, an environment (a constant sky or a training photo as a lat-long map), seen by a
perspective camera from a random height and side. Pixels are reconstructed with a box filter, so that noise
stays per pixel as a path tracer's raw output has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mdn.renders.backend import mitsuba

METALS = ("Au", "Ag", "Al", "Cu", "Cr", "W")
"""Conductors Mitsuba knows by name (measured complex indices of refraction)."""


@dataclass(frozen=True)
class SceneOptions:
    """What varies: image size, path depth, how busy a scene is, and the share of closed rooms."""

    size: int = 128
    max_depth: tuple[int, int] = (5, 12)
    objects: tuple[int, int] = (2, 6)
    lights: tuple[int, int] = (1, 3)
    rooms: float = 0.0
    """The share of scenes that are closed rooms lit by small ceiling lights, seen from inside: light that
    reaches most surfaces only after bounces, the noisiest case for a path tracer (a Cornell box's)."""
    boxes: float = 0.0
    """The share of scenes that are Cornell-like boxes: five walls (two of them strongly coloured) open towards
    a camera outside, one or two small lights under the ceiling, a few objects inside, nothing beyond."""
    mirrors: float = 0.0
    """The share of a box's objects that are large polished metal (a silver block, a gold sphere; roughness
    0.01-0.1): mirror images of the walls and the light, where 4 samples leave the noisiest reflections."""


def _rgb(value: Sequence[float]) -> dict[str, Any]:
    return {"type": "rgb", "value": [float(v) for v in value]}


def _colour(rng: np.random.Generator, low: float = 0.05, high: float = 0.9) -> list[float]:
    """A random reflectance: a hue, a saturation and a brightness, so that greys and strong colours both occur."""
    base = rng.uniform(low, high)
    tint = rng.dirichlet(np.ones(3)) * 3 * rng.uniform(0, 0.7)
    return list(np.clip(base * (1 - rng.uniform(0, 0.7)) + base * tint / 3 + base * 0.3, low, high))


def _texture(rng: np.random.Generator, textures: Sequence[Path]) -> dict[str, Any]:
    """A training photo as a bitmap texture, tiled a random number of times."""
    path = textures[rng.integers(len(textures))]
    mi = mitsuba()
    repeat = float(rng.uniform(1, 4))
    return {"type": "bitmap", "filename": str(path), "to_uv": mi.ScalarTransform4f().scale([repeat, repeat, 1])}


def material(rng: np.random.Generator, textures: Sequence[Path]) -> dict[str, Any]:
    """A random BSDF: diffuse (a colour or a photo texture), plastic, rough metal, smooth or rough glass."""
    kind = rng.choice(["diffuse", "plastic", "metal", "glass"], p=[0.45, 0.2, 0.2, 0.15])
    reflectance = _texture(rng, textures) if textures and rng.random() < 0.5 else _rgb(_colour(rng))
    if kind == "diffuse":
        return {"type": "diffuse", "reflectance": reflectance}
    if kind == "plastic":
        return {"type": "roughplastic", "diffuse_reflectance": reflectance, "alpha": float(rng.uniform(0.02, 0.4))}
    if kind == "metal":
        return {"type": "roughconductor", "material": str(rng.choice(METALS)), "alpha": float(rng.uniform(0.02, 0.5))}
    if rng.random() < 0.5:
        return {"type": "dielectric", "int_ior": float(rng.uniform(1.3, 1.7))}
    return {"type": "roughdielectric", "int_ior": float(rng.uniform(1.3, 1.7)), "alpha": float(rng.uniform(0.02, 0.3))}


def _object(rng: np.random.Generator, bsdf: dict[str, Any]) -> dict[str, Any]:
    """A shape resting on the floor near the centre, at a random size and turn."""
    T = mitsuba().ScalarTransform4f
    kind = str(rng.choice(["sphere", "cube", "cylinder", "rectangle"]))
    size = float(rng.uniform(0.25, 0.9))
    x, z = rng.uniform(-1.8, 1.8, size=2)
    turn = T().rotate([0, 1, 0], float(rng.uniform(0, 360)))
    if kind == "sphere":
        return {"type": "sphere", "center": [float(x), size, float(z)], "radius": size, "bsdf": bsdf}
    if kind == "cube":
        place = T().translate([float(x), size, float(z)]) @ turn @ T().scale(size)
    elif kind == "cylinder":
        place = (
            T().translate([float(x), 0.0, float(z)])
            @ turn
            @ T().rotate([1, 0, 0], -90)
            @ T().scale([size * 0.6, size * 0.6, 2 * size])
        )
        return {"type": "cylinder", "to_world": place, "bsdf": bsdf}
    else:  # an upright panel, a picture or a screen, seen from either side
        place = T().translate([float(x), size, float(z)]) @ turn @ T().scale(size)
        bsdf = bsdf if "dielectric" in bsdf["type"] else {"type": "twosided", "bsdf": bsdf}
    return {"type": kind, "to_world": place, "bsdf": bsdf}


def _area_light(rng: np.random.Generator) -> dict[str, Any]:
    """A rectangle or sphere emitter above the scene, warm to cool, bright enough to light it alone."""
    T = mitsuba().ScalarTransform4f
    colour = np.array([1.0, rng.uniform(0.75, 1.0), rng.uniform(0.5, 1.0)])[:: 1 if rng.random() < 0.6 else -1]
    size = float(rng.uniform(0.2, 1.2))
    radiance = _rgb(colour * rng.uniform(3, 40) / size**2)
    position = [float(rng.uniform(-3, 3)), float(rng.uniform(2.0, 5.0)), float(rng.uniform(-3, 3))]
    if rng.random() < 0.5:
        return {
            "type": "sphere",
            "center": position,
            "radius": size * 0.5,
            "emitter": {"type": "area", "radiance": radiance},
        }
    facing = T().look_at(origin=position, target=[0, 0, 0], up=[0, 0, 1] if position[0] == 0 else [0, 1, 0])
    return {
        "type": "rectangle",
        "to_world": facing @ T().scale(size),
        "emitter": {"type": "area", "radiance": radiance},
    }


def _environment(rng: np.random.Generator, textures: Sequence[Path]) -> dict[str, Any] | None:
    """A constant sky, a training photo as a lat-long environment, or (a quarter of scenes) none."""
    draw = rng.random()
    if draw < 0.25:
        return None
    if draw < 0.6 or not textures:
        return {"type": "constant", "radiance": _rgb(np.array(_colour(rng, 0.3, 1.0)) * rng.uniform(0.1, 1.5))}
    return {
        "type": "envmap",
        "filename": str(textures[rng.integers(len(textures))]),
        "scale": float(rng.uniform(0.3, 3)),
    }


def _camera(rng: np.random.Generator, size: int, walled: bool) -> dict[str, Any]:
    """A perspective camera on a circle around the scene (in front of the walls when there are any), looking at
    its middle."""
    T = mitsuba().ScalarTransform4f
    distance, height = rng.uniform(3.5, 7.5), rng.uniform(0.4, 4.0)
    angle = rng.uniform(0.1, np.pi / 2 - 0.1) if walled else rng.uniform(0, 2 * np.pi)
    origin = [float(distance * np.cos(angle)), float(height), float(distance * np.sin(angle))]
    target = [float(rng.uniform(-0.5, 0.5)), float(rng.uniform(0.2, 0.8)), float(rng.uniform(-0.5, 0.5))]
    return {
        "type": "perspective",
        "fov": float(rng.uniform(30, 60)),
        "to_world": T().look_at(origin=origin, target=target, up=[0, 1, 0]),
        "sampler": {"type": "independent"},
        "film": {"type": "hdrfilm", "width": size, "height": size, "rfilter": {"type": "box"}},
    }


def _room(rng: np.random.Generator, textures: Sequence[Path], options: SceneOptions) -> dict[str, Any]:
    """A closed box room (floor, ceiling, four walls) with objects, one or two small ceiling lights facing down,
    and a camera inside near a wall looking across it."""
    T = mitsuba().ScalarTransform4f
    width, depth, height = (float(v) for v in rng.uniform([4.0, 4.0, 2.5], [8.0, 8.0, 4.0]))
    walls = [{"type": "diffuse", "reflectance": _rgb(_colour(rng, 0.2, 0.85))} for _ in range(2)]
    faces = {
        "floor": (T().rotate([1, 0, 0], -90) @ T().scale([width / 2, depth / 2, 1]), material(rng, textures)),
        "ceiling": (T().translate([0, height, 0]) @ T().rotate([1, 0, 0], 90) @ T().scale([width / 2, depth / 2, 1]),
                    walls[0]),
        "back": (T().translate([0, height / 2, -depth / 2]) @ T().scale([width / 2, height / 2, 1]), walls[1]),
        "front": (T().translate([0, height / 2, depth / 2]) @ T().rotate([0, 1, 0], 180)
                  @ T().scale([width / 2, height / 2, 1]), walls[1]),
        "left": (T().translate([-width / 2, height / 2, 0]) @ T().rotate([0, 1, 0], 90)
                 @ T().scale([depth / 2, height / 2, 1]), walls[0]),
        "right": (T().translate([width / 2, height / 2, 0]) @ T().rotate([0, 1, 0], -90)
                  @ T().scale([depth / 2, height / 2, 1]), walls[1]),
    }  # fmt: skip
    parts: dict[str, Any] = {
        name: {"type": "rectangle", "to_world": place, "bsdf": bsdf} for name, (place, bsdf) in faces.items()
    }
    for i in range(int(rng.integers(*options.objects, endpoint=True))):
        parts[f"object{i}"] = _object(rng, material(rng, textures))
    for i in range(int(rng.integers(1, 2, endpoint=True))):
        size = float(rng.uniform(0.2, 0.7))
        x, z = rng.uniform(-0.35, 0.35, size=2) * [width, depth]
        colour = np.array([1.0, rng.uniform(0.75, 1.0), rng.uniform(0.5, 1.0)])
        place = T().translate([float(x), height - 0.01, float(z)]) @ T().rotate([1, 0, 0], 90) @ T().scale(size)
        emitter = {"type": "area", "radiance": _rgb(colour * rng.uniform(5, 25) / size**2)}
        parts[f"light{i}"] = {"type": "rectangle", "to_world": place, "emitter": emitter}
    angle = rng.uniform(0, 2 * np.pi)
    eye = float(rng.uniform(0.6, height - 0.5))
    origin = [float(0.42 * width * np.cos(angle)), eye, float(0.42 * depth * np.sin(angle))]
    target = [float(rng.uniform(-0.5, 0.5)), float(rng.uniform(0.3, 1.0)), float(rng.uniform(-0.5, 0.5))]
    parts["sensor"] = {
        "type": "perspective",
        "fov": float(rng.uniform(45, 70)),
        "to_world": T().look_at(origin=origin, target=target, up=[0, 1, 0]),
        "sampler": {"type": "independent"},
        "film": {"type": "hdrfilm", "width": options.size, "height": options.size, "rfilter": {"type": "box"}},
    }
    return parts


def _saturated(rng: np.random.Generator) -> list[float]:
    """A strongly coloured wall: one or two channels high, the rest low, as a Cornell box's red and green."""
    colour = rng.uniform(0.02, 0.12, size=3)
    colour[rng.permutation(3)[: rng.integers(1, 3, endpoint=True)]] = rng.uniform(0.3, 0.75)
    return [float(v) for v in colour]


def _polished_metal(rng: np.random.Generator) -> dict[str, Any]:
    """A nearly mirror-like conductor: silver or gold most often, roughness 0.01-0.1."""
    metal = str(rng.choice(["Ag", "Au", "Al", "Cu"], p=[0.4, 0.3, 0.2, 0.1]))
    return {"type": "roughconductor", "material": metal, "alpha": float(rng.uniform(0.01, 0.1))}


def _box_object(
    rng: np.random.Generator, bsdf: dict[str, Any], width: float, depth: float, large: bool = False
) -> dict[str, Any]:
    """A block, a sphere or a cylinder standing on the box's floor, away from its walls (`large`: 1.6 times as
    wide and as tall)."""
    T = mitsuba().ScalarTransform4f
    x, z = float(rng.uniform(-0.6, 0.6) * width), float(rng.uniform(-0.6, 0.45) * depth)
    turn = T().rotate([0, 1, 0], float(rng.uniform(0, 90)))
    kind = rng.choice(["block", "sphere", "cylinder"], p=[0.55, 0.25, 0.2])
    grow = 1.6 if large else 1.0
    if kind == "sphere":
        radius = float(rng.uniform(0.15, 0.4) * width * grow)
        return {"type": "sphere", "center": [x, radius, z], "radius": radius, "bsdf": bsdf}
    side, tall = float(rng.uniform(0.15, 0.35) * width * grow), float(rng.uniform(0.15, 0.65) * grow)
    if kind == "block":
        place = T().translate([x, tall, z]) @ turn @ T().scale([side, tall, side])
        return {"type": "cube", "to_world": place, "bsdf": bsdf}
    place = T().translate([x, 0.0, z]) @ T().rotate([1, 0, 0], -90) @ T().scale([side, side, 2 * tall])
    return {"type": "cylinder", "to_world": place, "bsdf": bsdf}


def _box(rng: np.random.Generator, textures: Sequence[Path], options: SceneOptions) -> dict[str, Any]:
    """A Cornell-like box: floor, ceiling and back wall pale, the side walls two strong colours (now and then a
    texture or a glossy material instead), one or two small ceiling lights, one to three objects, and a camera
    outside the open front framing the inside."""
    T = mitsuba().ScalarTransform4f
    width, height, depth = (float(v) for v in rng.uniform([0.8, 1.6, 0.8], [1.3, 2.4, 1.3]))
    pale = [{"type": "diffuse", "reflectance": _rgb(_colour(rng, 0.45, 0.85))} for _ in range(2)]
    sides = [{"type": "diffuse", "reflectance": _rgb(_saturated(rng))} for _ in range(2)]
    floor = material(rng, textures) if rng.random() < 0.25 else pale[0]
    back = {"type": "diffuse", "reflectance": _texture(rng, textures)} if textures and rng.random() < 0.2 else pale[1]
    faces = {
        "floor": (T().rotate([1, 0, 0], -90) @ T().scale([width, depth, 1]), floor),
        "ceiling": (T().translate([0, height, 0]) @ T().rotate([1, 0, 0], 90) @ T().scale([width, depth, 1]),
                    pale[0]),
        "back": (T().translate([0, height / 2, -depth]) @ T().scale([width, height / 2, 1]), back),
        "left": (T().translate([-width, height / 2, 0]) @ T().rotate([0, 1, 0], 90)
                 @ T().scale([depth, height / 2, 1]), sides[0]),
        "right": (T().translate([width, height / 2, 0]) @ T().rotate([0, 1, 0], -90)
                  @ T().scale([depth, height / 2, 1]), sides[1]),
    }  # fmt: skip
    parts: dict[str, Any] = {
        name: {"type": "rectangle", "to_world": place, "bsdf": bsdf} for name, (place, bsdf) in faces.items()
    }
    for i in range(int(rng.integers(1, 3, endpoint=True))):
        if options.mirrors and rng.random() < options.mirrors:
            parts[f"object{i}"] = _box_object(rng, _polished_metal(rng), width, depth, large=True)
            continue
        bsdf = material(rng, textures) if rng.random() < 0.5 else {"type": "diffuse", "reflectance": _rgb(_colour(rng))}
        parts[f"object{i}"] = _box_object(rng, bsdf, width, depth)
    colour = np.array([1.0, rng.uniform(0.6, 1.0), rng.uniform(0.3, 1.0)])[:: 1 if rng.random() < 0.8 else -1]
    for i in range(1 if rng.random() < 0.8 else 2):
        half = rng.uniform(0.1, 0.3, size=2) * [width, depth]
        x, z = rng.uniform(-0.3, 0.3, size=2) * [width, depth]
        place = (T().translate([float(x), height - 0.005, float(z)]) @ T().rotate([1, 0, 0], 90)
                 @ T().scale([float(half[0]), float(half[1]), 1]))  # fmt: skip
        radiance = colour * rng.uniform(8, 30) * 0.044 / float(half[0] * half[1])
        parts[f"light{i}"] = {
            "type": "rectangle",
            "to_world": place,
            "emitter": {"type": "area", "radiance": _rgb(radiance)},
        }
    fov = float(rng.uniform(25, 45))
    reach = max(width, height / 2) / np.tan(np.radians(fov / 2)) * rng.uniform(0.9, 1.2)
    origin = [float(rng.uniform(-0.15, 0.15) * width), float(height / 2 + rng.uniform(-0.15, 0.15) * height),
              float(depth + reach)]  # fmt: skip
    target = [float(rng.uniform(-0.1, 0.1) * width), float(height / 2 + rng.uniform(-0.1, 0.1) * height), 0.0]
    parts["sensor"] = {
        "type": "perspective",
        "fov": fov,
        "to_world": T().look_at(origin=origin, target=target, up=[0, 1, 0]),
        "sampler": {"type": "independent"},
        "film": {"type": "hdrfilm", "width": options.size, "height": options.size, "rfilter": {"type": "box"}},
    }
    return parts


def scene(seed: int, textures: Sequence[Path] = (), options: SceneOptions = SceneOptions()) -> dict[str, Any]:
    """The scene dictionary of number `seed` (textures: image files to draw textures and environments from)."""
    rng = np.random.default_rng([seed, 0x5CE7E])
    T = mitsuba().ScalarTransform4f
    if options.rooms and rng.random() < options.rooms:
        depth = int(rng.integers(*options.max_depth, endpoint=True))
        return {"type": "scene", "integrator": {"type": "path", "max_depth": depth}, **_room(rng, textures, options)}
    if options.boxes and rng.random() < options.boxes:
        depth = int(rng.integers(*options.max_depth, endpoint=True))
        return {"type": "scene", "integrator": {"type": "path", "max_depth": depth}, **_box(rng, textures, options)}
    floor = T().rotate([1, 0, 0], -90) @ T().scale(6)
    walled = bool(rng.random() < 0.5)
    parts: dict[str, Any] = {
        "type": "scene",
        "integrator": {"type": "path", "max_depth": int(rng.integers(*options.max_depth, endpoint=True))},
        "sensor": _camera(rng, options.size, walled),
        "floor": {"type": "rectangle", "to_world": floor, "bsdf": material(rng, textures)},
    }
    if walled:
        wall = {"type": "diffuse", "reflectance": _rgb(_colour(rng, 0.2, 0.85))}
        parts["back"] = {"type": "rectangle", "to_world": T().translate([0, 3, -4]) @ T().scale(6), "bsdf": wall}
        side = T().translate([-4, 3, 0]) @ T().rotate([0, 1, 0], 90) @ T().scale(6)
        parts["side"] = {"type": "rectangle", "to_world": side, "bsdf": wall}
    for i in range(int(rng.integers(*options.objects, endpoint=True))):
        parts[f"object{i}"] = _object(rng, material(rng, textures))
    for i in range(int(rng.integers(*options.lights, endpoint=True))):
        parts[f"light{i}"] = _area_light(rng)
    environment = _environment(rng, textures)
    if environment is not None:
        parts["environment"] = environment
    return parts
