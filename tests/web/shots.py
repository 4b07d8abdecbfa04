"""Pages in both colour schemes, screenshots in a temporary folder, and WCAG contrast measured in
the page (``contrast`` runs in chromium on computed colours)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMES = ["light", "dark"]

#: Contrast of each element matched by a selector with the first opaque background behind it.
#: ``prop`` is the computed colour property to read (color, fill, stroke or background-color).
CONTRAST_JS = """
([selector, prop]) => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c || "");
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const behind = (el) => {
    for (let e = el.parentElement; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) return c;
    }
    return parse(getComputedStyle(document.documentElement).backgroundColor) ||
      { r: 255, g: 255, b: 255, a: 1 };
  };
  return [...document.querySelectorAll(selector)].map((el) => {
    const fg = parse(getComputedStyle(el)[prop]);
    const what = `${el.getAttribute("class") || el.tagName} ${(el.textContent || "").slice(0, 30)}`;
    return { what, ratio: fg ? ratio(fg, behind(el)) : null, color: getComputedStyle(el)[prop] };
  });
}
"""


def contrast(page: Any, selector: str, prop: str) -> list[dict[str, Any]]:
    """Each matched element's contrast ratio; fails when nothing matches (a renamed class)."""
    found = page.evaluate(CONTRAST_JS, [selector, prop])
    assert found, f"nothing matches {selector!r}"
    return found


def below(found: list[dict[str, Any]], minimum: float) -> list[dict[str, Any]]:
    return [f for f in found if f["ratio"] is None or f["ratio"] < minimum]


def shot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``$LOOPLAB_SCREENSHOTS`` to keep them for a look, else a temp dir."""
    folder = Path(os.environ.get("LOOPLAB_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def open_page(browser: Any, scheme: str, width: int = 1280, height: int = 800) -> Iterator[Any]:
    """A page in ``scheme`` (light or dark); fails the test on any JavaScript error."""
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    context.set_default_timeout(5_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
