"""Mitsuba's variant is chosen by a test render in a child process, so that a variant that aborts at its first
render (Dr.Jit's LLVM back end with an older libLLVM) costs a child and not the caller."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from mdn.renders import backend

pytestmark = pytest.mark.skipif(not backend.available(), reason="mitsuba is not installed")


@pytest.fixture
def fresh_choice() -> Iterator[None]:
    """`variant()` chosen anew in the test, and again by whoever asks after it."""
    backend.variant.cache_clear()
    yield
    backend.variant.cache_clear()


def test_a_child_that_aborts_means_the_scalar_variant_with_one_line_saying_why(
    fresh_choice: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(backend, "PROBE", "import os; os.abort()")
    with caplog.at_level(logging.WARNING, logger=backend.__name__):
        assert backend.variant() == "scalar_rgb"
        assert backend.variant() == "scalar_rgb"  # cached: one probe, one line
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "llvm_ad_rgb" in lines[0] and "SIGABRT" in lines[0] and "scalar_rgb" in lines[0]


def test_the_probe_renders_in_a_child_that_inherits_drjit_libllvm_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert backend.probe("scalar_rgb") is None  # the real test render, in the variant that needs no LLVM
    monkeypatch.setattr(backend, "PROBE", "import os, sys; sys.exit(os.environ.get('DRJIT_LIBLLVM_PATH') != '/x')")
    monkeypatch.setenv("DRJIT_LIBLLVM_PATH", "/x")
    assert backend.probe("llvm_ad_rgb") is None
    monkeypatch.setattr(backend, "PROBE", "raise SystemExit('no such variant')")
    assert backend.probe("llvm_ad_rgb") == "its test render failed (no such variant)"


def test_the_chosen_variant_renders_in_this_process() -> None:
    mi = backend.mitsuba()
    assert mi.variant() == backend.variant() in backend.VARIANTS
    assert backend.probe(backend.variant()) is None
