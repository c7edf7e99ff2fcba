"""OpenEXR renders in and out: a file's layers and parts (Blender's view layers and passes, OIDN's albedo and
normal), the beauty pass picked and read as a picture, a render's buffers read beside it from the same view layer,
and the picture written back with every other channel and part as it came."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR

from mdn.errors import MdnError
from mdn.io import library_messages
from mdn.io.metadata import Metadata
from mdn.io.picture import Image, Layout, Source, kept_lines


def _exr_layers(channels: Collection[str]) -> dict[str, list[str]]:
    """Colour layers of one EXR part's channel names: prefix ('' for the unnamed layer) -> [R, G, B], [X, Y, Z] (a
    renderer's normals, in a layer of their own or a file of their own) or [Y] channel names."""
    layers: dict[str, list[str]] = {}
    prefixes = {name.rpartition(".")[0] for name in channels}
    for prefix in sorted(prefixes):
        dot = f"{prefix}." if prefix else ""
        if all(f"{dot}{c}" in channels for c in "RGB"):
            layers[prefix] = [f"{dot}{c}" for c in "RGB"]
        elif all(f"{dot}{c}" in channels for c in "XYZ"):
            layers[prefix] = [f"{dot}{c}" for c in "XYZ"]
        elif f"{dot}Y" in channels:
            layers[prefix] = [f"{dot}Y"]
    return layers


def _channel_names(part: Any) -> set[str]:
    """The channel names an EXR part's header lists (read with its pixels or without)."""
    return {channel.name for channel in part.header.get("channels", [])}


class _Layers(dict[str, tuple[int, str, list[str]]]):
    """Every colour layer of an EXR by the name `--layer` takes -> (part index, prefix, channel names)
    (`_exr_layer_names`), and `aliases`: other names `--layer` takes for one of them."""

    aliases: dict[str, str | None]
    """Other names -> the layer's (None: the default, `_pick_exr_layer`'s)."""


def _exr_layer_names(exr: OpenEXR.File) -> _Layers:
    """Every colour layer of every part by the name `--layer` takes -> (part index, prefix, channel names).

    A single part's layer without a prefix (plain R, G, B or Y) is "beauty"; in a file of parts each part's is
    called by the part's name, but that of the part taken as the beauty by its place (`_beauty_by_place`), which is
    "beauty" (its part's name is an alias). A prefixed layer goes by its prefix (PART.PREFIX where parts repeat it
    or a part is so named).
    """
    found = [
        (i, prefix, names)
        for i, part in enumerate(exr.parts)
        for prefix, names in _exr_layers(_channel_names(part)).items()
    ]
    parts = [part.name() or f"part{i}" for i, part in enumerate(exr.parts)]
    by_place = _beauty_by_place(parts, [i for i, prefix, _ in found if not prefix])
    prefixes = [prefix for _, prefix, _ in found]
    repeated = {prefix for prefix in prefixes if prefixes.count(prefix) > 1}
    named = _Layers()
    named.aliases = {"beauty": None} if len(parts) > 1 else {}  # a file of parts: --layer beauty is the default
    for i, prefix, names in sorted(found, key=lambda f: f[1] != ""):  # unprefixed layers first: beauty leads
        if not prefix:
            layer = "beauty" if i == by_place else parts[i]
            if layer != parts[i] and exr.parts[i].name():
                named.aliases[parts[i]] = layer
        else:
            clash = prefix in repeated or prefix in named or prefix in named.aliases
            layer = f"{parts[i]}.{prefix}" if clash else prefix
        named.setdefault(layer, (i, prefix, names))
    return named


BUFFER_NAMES = {"albedo": ("albedo", "denoising albedo"), "normal": ("normal", "denoising normal", "n")}
"""Layer names (case aside, after any view-layer prefix) that hold each of a render's buffers, in order of
preference (Arnold's and Karma's normal is `N`: N.X, N.Y, N.Z, or a part so named); `buffers.LAYER_NAMES`."""

OTHER_PASSES = frozenset(
    {name for names in BUFFER_NAMES.values() for name in names}
    | {"nn", "ng", "p", "pref", "z", "uv", "st", "id", "ao", "gi", "a", "alpha", "sss", "env", "mist", "vector"}
    | {"direct", "indirect", "variance", "opacity", "indexob", "indexma", "diffdir", "diffind", "diffcol", "glossdir"}
    | {"glossind", "glosscol", "transdir", "transind", "transcol", "volumedir", "volumeind", "diffuse", "specular"}
    | {"reflection", "refraction", "depth", "zdepth", "motion", "velocity", "crypto", "shadow", "emission", "emit"}
    | {"transmission", "subsurface", "coat", "sheen", "gloss", "volume", "occlusion", "caustic", "position"}
    | {"objectid", "materialid", "denoising"}
)
"""What renderers call passes other than the beauty (lower case: Arnold's, Karma's and Redshift's AOVs, Blender's
passes, the buffers' names)."""
PASS_PARTS = frozenset({"direct", "indirect", "albedo", "color", "colour", "raw", "filter", "normal"})
"""The second word of an AOV named for its pass and what part of it it holds (Arnold's "diffuse_direct",
"sss_albedo", Blender's "Denoising Normal")."""


def _names_other_pass(name: str) -> bool:
    """Whether a part's name says it holds another pass than the beauty (`OTHER_PASSES`), whole ("albedo", "N") or
    as a pass and its part ("diffuse_direct", "Denoising Albedo"): such a part is never the beauty by its place."""
    words = re.split(r"[\s_-]+", pass_name(name))
    return "".join(words) in OTHER_PASSES or (len(words) == 2 and words[0] in OTHER_PASSES and words[1] in PASS_PARTS)


def _beauty_by_place(parts: list[str], plain: list[int]) -> int | None:
    """The part whose plain layer is "beauty" (`plain`: the parts with one, in order): a single part's; in a file
    of parts, none where a part's name says it is the beauty (`BEAUTY_NAMES`: picked by name), else the first
    whose name does not say it holds another pass (`OTHER_PASSES`: an albedo part first is no beauty)."""
    if len(parts) == 1:
        return plain[0] if plain else None
    if any(pass_name(parts[i]) in BEAUTY_NAMES for i in plain):
        return None
    return next((i for i in plain if not _names_other_pass(parts[i])), None)


def exr_layer_names(path: Path) -> list[str]:
    """The names `--layer` takes for an EXR's layers (`_exr_layer_names`), from its headers alone."""
    return list(_exr_layer_names(_opened(path, header_only=True)))


def layer_window(path: Path, layer: str | None) -> str:
    """The data window (`_window`) of the part holding an EXR's layer (None: the one read by default), from its
    headers alone."""
    headers = _opened(path, header_only=True)
    named = _exr_layer_names(headers)
    return _window(headers.parts[named[_pick_exr_layer(path, named, layer)][0]].header)


def buffer_view_layers(path: Path, wanted: dict[str, tuple[str, ...]]) -> list[str]:
    """The view layers of an EXR that hold a layer of `wanted`'s passes (a render's albedo or normal), from its
    headers alone."""
    passes = {name for names in wanted.values() for name in names}
    return sorted({_view_layer(layer) for layer in exr_layer_names(path) if pass_name(layer) in passes})


def pass_name(layer: str) -> str:
    """A layer's pass: its last name, in lower case (Blender's "ViewLayer.Denoising Albedo" is "denoising albedo")."""
    return layer.lower().rpartition(".")[2]


def _view_layer(layer: str) -> str:
    """The view layer a layer's name puts it in: the name before its pass ('' for none)."""
    return layer.rpartition(".")[0]


def read_exr_layers(
    path: Path, wanted: dict[str, tuple[str, ...]], beauty: str | None = None, opened: OpenEXR.File | None = None
) -> dict[str, np.ndarray]:
    """Float32 (H, W, C) pixels of the layers that go with an EXR's beauty layer (`beauty`: the `--layer` name it
    was read by, else the default), NaN and Inf as stored, from one read of the file (`opened`: the file already
    read, as `read` keeps it): for each key of `wanted`, the first of its passes (lower case) that a layer of the
    beauty's view layer has (`_buffer_view_layer`); keys with none are left out. An MdnError where such a layer
    covers other pixels than the beauty."""
    exr = opened if opened is not None else open_exr(path)
    named = _exr_layer_names(exr)
    beauty = _pick_exr_layer(path, named, beauty)
    scope = _buffer_view_layer(named, beauty, wanted)
    found = {}
    for key, passes in wanted.items():
        layer = next((n for p in passes for n in named if _view_layer(n) == scope and pass_name(n) == p), None)
        if layer is not None:
            part, _, names = named[layer]
            _check_aligned(path, exr, named[beauty][0], part, layer)
            found[key] = np.stack([exr.parts[part].channels[n].pixels for n in names], axis=-1).astype(np.float32)
    return found


COMPOSITE = "composite"
"""Blender's view layer (lower case) of its compositor's picture, made from the file's view layers."""
PICTURE_LAYERS = ("", COMPOSITE)
"""View layers (lower case) of a file's own picture rather than of one view layer's: plain R, G, B (no view
layer), or Blender's Composite."""


def _buffer_view_layer(named: dict[str, Any], beauty: str, wanted: dict[str, tuple[str, ...]]) -> str | None:
    """The view layer whose buffers (`wanted`'s passes) go with the layer `beauty`: its own; for a file's own
    picture (`PICTURE_LAYERS`) without buffers of its own, the file's one view layer that has them; None for
    none (several have them)."""
    own = _view_layer(beauty)
    passes = {name for names in wanted.values() for name in names}
    holding = {_view_layer(layer) for layer in named if pass_name(layer) in passes}
    if own in holding or own.lower() not in PICTURE_LAYERS:
        return own
    return holding.pop() if len(holding) == 1 else None


def _check_aligned(path: Path, exr: OpenEXR.File, beauty_part: int, part: int, layer: str) -> None:
    """An MdnError where a layer's part covers other pixels than the beauty's (its data window offset, or of
    another size): taken pixel for pixel, it would lie beside the picture."""
    windows = [_window(exr.parts[index].header) for index in (part, beauty_part)]
    if windows[0] != windows[1]:
        raise MdnError(f"its {layer} layer's data window {windows[0]} is not the beauty's {windows[1]}", path)


def _window(header: dict[str, Any]) -> str:
    """A part's data window in words: (x0, y0)-(x1, y1), its first and last pixels."""
    low, high = (tuple(int(v) for v in corner) for corner in header["dataWindow"])
    return f"{low}-{high}"


BEAUTY_NAMES = ("beauty", "combined", "rgba", "rgb", "image", "ci", "c", "color", "colour")
"""What renderers call the beauty pass in a layer's last name (lower case; Blender's ViewLayer.Combined, Karma's
C, RenderMan's Ci), best first: the layer taken from an EXR with no plain R, G, B unless `--layer` says."""


def _beauty_rank(name: str) -> tuple[int, bool]:
    """A layer's place among beauty passes (lower first): its pass's in `BEAUTY_NAMES`, Blender's Composite before
    one view layer's own of the same pass."""
    rank = -1 if name == "beauty" else BEAUTY_NAMES.index(pass_name(name))
    return rank, _view_layer(name).lower() != COMPOSITE


def _pick_exr_layer(path: Path, named: _Layers, layer: str | None) -> str:
    """The name of the requested layer (or of the one an alias of it names; "beauty" where none is so called: the
    default), or of the default: the beauty pass, where one ranks first (two view layers' Combined are asked
    about, not one of them denoised and the other left noisy)."""
    if not named:
        raise MdnError("EXR has no RGB or Y layer", path)
    if layer is not None and layer not in named:
        layer = named.aliases.get(layer, layer)
    if layer is not None:
        if layer not in named:
            raise MdnError(f"no EXR layer {layer!r} (available: {', '.join(named)})", path)
        return layer
    if len(named) == 1:
        return next(iter(named))
    beauty = [n for n in named if n == "beauty" or pass_name(n) in BEAUTY_NAMES]
    beauty = [n for n in beauty if not named[n][1]] or beauty  # a part's own picture before a layer inside a part
    best = [n for n in beauty if _beauty_rank(n) == min(map(_beauty_rank, beauty))]
    if len(best) == 1:
        return best[0]
    raise MdnError(f"which layer is the beauty pass? pick one with --layer ({', '.join(best or named)})", path)


def _opened(path: Path, **options: bool) -> OpenEXR.File:
    """OpenEXR's File of `path` (`options`: its reading options), or an MdnError; the library's own lines about a
    damaged file kept from the terminal."""
    try:
        with library_messages.quiet():
            return OpenEXR.File(str(path), **options)
    except (RuntimeError, ValueError) as exc:  # what OpenEXR raises on a file it cannot open
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MdnError(f"cannot read EXR (corrupt or truncated?): {reason}", path) from None


def open_exr(path: Path) -> OpenEXR.File:
    """An EXR file with every channel of every part its headers list, or an MdnError: OpenEXR's reader leaves
    out a part whose pixels it cannot read (a file cut short), which would then be missing from the output. The
    library's own lines about a damaged file are kept from the terminal: the error says it once."""
    exr = _opened(path, separate_channels=True)
    listed = _opened(path, header_only=True).parts
    for index, part in enumerate(listed):
        decoded = exr.parts[index].channels if index < len(exr.parts) else {}
        if not _channel_names(part) <= set(decoded):
            which = f"part {index} ({part.name()})" if len(listed) > 1 and part.name() else f"part {index}"
            what = f"the pixels of {which}" if len(listed) > 1 else "its pixels"
            raise MdnError(f"cannot read EXR (corrupt or truncated?): {what} could not be read", path)
    return exr


def read(path: Path, layer: str | None) -> tuple[np.ndarray, Layout, dict[str, Any]]:
    exr = open_exr(path)
    named = _exr_layer_names(exr)
    layer = _pick_exr_layer(path, named, layer)
    part_index, prefix, names = named[layer]
    channels = exr.parts[part_index].channels
    dot = f"{prefix}." if prefix else ""
    if names == [f"{dot}Y"] and {f"{dot}RY", f"{dot}BY"} <= set(channels):  # its colour would stay noisy
        raise MdnError("unsupported EXR layout: luminance and chroma (Y, RY, BY); convert it to RGB", path)
    if any(channels[name].xSampling != 1 or channels[name].ySampling != 1 for name in names):
        raise MdnError("unsupported EXR layout: subsampled channels", path)
    dtypes = {channels[name].pixels.dtype for name in names}
    if len(dtypes) != 1 or next(iter(dtypes)).kind != "f":
        raise MdnError("unsupported EXR layout: layer channels must share one half or float type", path)
    alpha = channels.get(f"{prefix}.A" if prefix else "A")
    if alpha is not None and alpha.pixels.dtype.kind == "f" and alpha.pixels.shape == channels[names[0]].pixels.shape:
        names = [*names, alpha.name]  # half or float beside either; one of whole numbers or subsampled kept as it came
    arrays = [channels[name].pixels for name in names]
    raw = np.stack(arrays, axis=-1)  # the wider type of colour and alpha: each written back in its own (`_stored`)
    meta = {"file": exr, "part": part_index, "names": names, "layer": layer, "left_out": _levels_left_out(exr)}
    meta["types"] = [array.dtype for array in arrays]
    return raw, Layout("YXS", tuple(raw.shape), raw.dtype), meta


def _levels_left_out(exr: OpenEXR.File) -> list[str]:
    """Words for the reduced levels of an EXR's mip- or rip-mapped parts (a texture's): OpenEXR's Python binding
    reads and writes level 0 alone, so they are left out of the output (`_one_level`)."""
    words = []
    for index, part in enumerate(exr.parts):
        count, kind = _levels_besides_full(part.header)
        if count:
            whose = f"its part {part.name() or index}'s" if len(exr.parts) > 1 else "its"
            words.append(f"{whose} {count} {kind} levels below the full size")
    return words


def _levels_besides_full(header: dict[str, Any]) -> tuple[int, str]:
    """How many levels a tiled part holds besides its full size, and of what (mip-map, rip-map); 0 for one."""
    tiles = header.get("tiles")
    if tiles is None or tiles.mode not in (OpenEXR.MIPMAP_LEVELS, OpenEXR.RIPMAP_LEVELS):
        return 0, ""
    low, high = header["dataWindow"]
    width, height = (int(b) - int(a) + 1 for a, b in zip(low, high, strict=True))
    up = tiles.roundingMode == OpenEXR.ROUND_UP
    levels = [(size - 1).bit_length() + 1 if up else size.bit_length() for size in (width, height)]
    if tiles.mode == OpenEXR.MIPMAP_LEVELS:
        return max(levels) - 1, "mip-map"
    return levels[0] * levels[1] - 1, "rip-map"


def write(path: Path, raw: np.ndarray, source: Source | None, kept: Metadata) -> None:
    if source is None:
        names = ["R", "G", "B", "A"][: raw.shape[-1]] if raw.shape[-1] >= 3 else ["Y", "A"][: raw.shape[-1]]
        channels = {name: np.ascontiguousarray(raw[..., i]) for i, name in enumerate(names)}
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, channels).write(str(path))
        return
    exr: OpenEXR.File = source.meta["file"]
    channels = exr.parts[source.meta["part"]].channels
    if raw.shape[:2] != channels[source.meta["names"][0]].pixels.shape:  # a noise that decimates
        _shrunk_exr(exr, source, raw).write(str(path))
        return
    for i, name in enumerate(source.meta["names"]):
        channels[name].pixels = _stored(raw, source, i)
    for part in exr.parts:
        _one_level(part.header)
    exr.write(str(path))


def _stored(raw: np.ndarray, source: Source, index: int) -> np.ndarray:
    """The `index`-th channel of the picture's layer as the file gets it: in the type it was read in (half colour
    beside a float alpha is read as float: each goes back in its own, half clipped to its range), or in `raw`'s,
    the one `--dtype` asked for, where `images.write` took the types out of the source's meta."""
    plane = raw[..., index]
    types = source.meta.get("types")
    if types is not None and types[index] != raw.dtype:
        info = np.finfo(types[index])
        plane = np.clip(plane, info.min, info.max).astype(types[index])
    return np.ascontiguousarray(plane)


def _shrunk_exr(exr: OpenEXR.File, source: Source, raw: np.ndarray) -> OpenEXR.File:
    """The EXR of a picture that a noise made smaller (`aliased`): `raw` in its layer, and every other channel of
    the layer's size, in every part, taken at the rows and columns the picture kept (`kept_lines`); channels of
    another size are left out (`shrinking_leaves_out`), and the data windows start at (0, 0)."""
    size = exr.parts[source.meta["part"]].channels[source.meta["names"][0]].pixels.shape
    rows, cols = (kept_lines(old, new) for old, new in zip(size, raw.shape[:2], strict=True))
    parts = []
    for index, part in enumerate(exr.parts):
        halved = {name: channel.pixels[rows][:, cols] for name, channel in part.channels.items()
                if channel.pixels.shape == size}  # fmt: skip
        if index == source.meta["part"]:
            halved.update({name: _stored(raw, source, i) for i, name in enumerate(source.meta["names"])})
        header = {key: value for key, value in part.header.items() if key not in _DERIVED}
        _one_level(header)
        if halved:
            parts.append((header, {name: np.ascontiguousarray(pixels) for name, pixels in halved.items()}, part.name()))
    if len(exr.parts) == 1:
        header, channels, _ = parts[0]
        return OpenEXR.File(header, channels)
    return OpenEXR.File([OpenEXR.Part(*part) for part in parts])


_DERIVED = ("channels", "chunkCount", "dataWindow", "displayWindow", "name")
"""Header attributes that OpenEXR derives from a part's pixels and name as it writes them."""


def shrinking_leaves_out(image: Image) -> list[str]:
    """What of an EXR's other channels a picture made smaller (`_shrunk_exr`) leaves out: those of another size
    than its layer's (subsampled, a part's smaller data window), whose rows and columns are not the picture's."""
    if image.source.format != "exr":
        return []
    exr: OpenEXR.File = image.source.meta["file"]
    size = image.height, image.width
    other = [name for part in exr.parts for name, channel in part.channels.items() if channel.pixels.shape != size]
    if not other:
        return []
    listed = ", ".join(other[:3]) + (", ..." if len(other) > 3 else "")
    return [f"its {len(other)} channel{'s' * (len(other) > 1)} of another size ({listed})"]


def _one_level(header: dict[str, Any]) -> None:
    """A mip- or rip-mapped part's header (a texture's) made single-level: OpenEXR's Python binding reads and
    writes level 0 alone, and under the header's levels wrote a file with a corrupt chunk table."""
    tiles = header.get("tiles")
    if tiles is None or tiles.mode == OpenEXR.ONE_LEVEL:
        return
    single = OpenEXR.TileDescription()
    single.xSize, single.ySize, single.mode, single.roundingMode = (
        tiles.xSize,
        tiles.ySize,
        OpenEXR.ONE_LEVEL,
        tiles.roundingMode,
    )
    header["tiles"] = single
