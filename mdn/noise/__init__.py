"""Seeded noise, one package around one base (`base.NoiseModel`): the masked-training paper's test noises and
their mixture (`models`), camera noise after Brooks et al. (`camera`), what cameras and the web do to pictures
(`degrade`), and procedural microscopy with an sCMOS-like camera (`specimens`). `make_noise(name, level)` gives
any of the types by name; `display_transform` is the map a file's pixels take into [0, 1] and back around it."""

from mdn.noise.base import NoiseModel
from mdn.noise.camera import Camera, Cameras, IspNoise
from mdn.noise.models import (
    NOISE_TYPES,
    AliasedNoise,
    CameraJpegNoise,
    CorrelatedNoise,
    GaussianNoise,
    MixtureNoise,
    PhotonNoise,
    PoissonNoise,
    PracticalNoise,
    SaltPepperNoise,
    SpeckleNoise,
    file_seed,
    make_noise,
)
from mdn.noise.transform import display_transform

__all__ = [
    "NOISE_TYPES",
    "AliasedNoise",
    "Camera",
    "CameraJpegNoise",
    "Cameras",
    "CorrelatedNoise",
    "GaussianNoise",
    "IspNoise",
    "MixtureNoise",
    "NoiseModel",
    "PhotonNoise",
    "PoissonNoise",
    "PracticalNoise",
    "SaltPepperNoise",
    "SpeckleNoise",
    "display_transform",
    "file_seed",
    "make_noise",
]
