"""Accessibility checks in headless Chromium: axe-core (vendored in tests/vendor) and a
contrast check computed from the rendered styles of every piece of visible text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parent.parent / "vendor" / "axe-core" / "axe.min.js"
#: WCAG 2.0-2.2 A and AA rules
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

_RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': ' + n.failureSummary),
  }));
}"""

# Every element with its own visible text: its colour over the background it is drawn
# on (the nearest painted backgrounds, composited; the canvas when none), the WCAG
# ratio, and whether it is large text (3:1 is enough there; 4.5:1 otherwise).
_CONTRAST = """() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat([1]);
  };
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const dark = matchMedia('(prefers-color-scheme: dark)').matches &&
    /dark/.test(getComputedStyle(document.documentElement).colorScheme);
  const canvas = dark ? [18, 18, 18, 1] : [255, 255, 255, 1];
  const background = (el) => {
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = canvas;
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].filter(n => n.nodeType === 3 && n.textContent.trim());
    if (!own.length || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || parseFloat(style.opacity) === 0) continue;
    const bg = background(el);
    const fg = over(parse(style.color), bg);
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && parseInt(style.fontWeight) >= 700);
    out.push({
      text: own.map(n => n.textContent.trim()).join(' ').slice(0, 50),
      tag: el.tagName.toLowerCase() + (el.className ? '.' + String(el.className) : ''),
      ratio: Math.round(((l1 + 0.05) / (l2 + 0.05)) * 100) / 100,
      need: large ? 3 : 4.5,
      fg: style.color, bg: 'rgb(' + bg.slice(0, 3).map(Math.round).join(',') + ')',
    });
  }
  return out;
}"""


def axe_violations(page: Any, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[Any]:
    """axe-core's WCAG A/AA violations of ``impacts`` on the loaded page (evaluated over
    the DevTools protocol, so a page's CSP does not stop it)."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[Any] = page.evaluate(_RUN_AXE, AXE_TAGS)
    return [v for v in found if v["impact"] in impacts]


def text_contrast(page: Any) -> list[dict[str, Any]]:
    """Every visible text's colours and contrast ratio, computed from rendered styles."""
    result: list[dict[str, Any]] = page.evaluate(_CONTRAST)
    return result


def low_contrast(page: Any) -> list[dict[str, Any]]:
    """The texts below WCAG 2.2 AA (4.5:1; 3:1 for large text)."""
    return [t for t in text_contrast(page) if t["ratio"] < t["need"]]


# The focused element's outline against what surrounds it (WCAG 2.4.7 and 1.4.11: a
# visible indicator, 3:1 against the adjacent colours).
_FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const dark = matchMedia('(prefers-color-scheme: dark)').matches &&
    /dark/.test(getComputedStyle(document.documentElement).colorScheme);
  let bg = dark ? [18, 18, 18, 1] : [255, 255, 255, 1];
  for (let e = el.parentElement; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c[3] >= 1) { bg = c; break; }
  }
  const style = getComputedStyle(el);
  const ring = parse(style.outlineColor);
  const [l1, l2] = [lum(ring), lum(bg)].sort((a, b) => b - a);
  return {
    tag: el.tagName.toLowerCase() + (el.className ? '.' + String(el.className) : ''),
    text: (el.textContent || el.value || '').trim().slice(0, 40),
    style: style.outlineStyle, width: parseFloat(style.outlineWidth),
    ratio: Math.round(((l1 + 0.05) / (l2 + 0.05)) * 100) / 100,
  };
}"""


def focus_rings(page: Any, *, tabs: int = 12) -> list[dict[str, Any]]:
    """What each Tab press focuses, with its outline and the outline's contrast."""
    rings: list[dict[str, Any]] = []
    for _ in range(tabs):
        page.keyboard.press("Tab")
        ring = page.evaluate(_FOCUS)
        if ring is not None:
            rings.append(ring)
    return rings


def weak_focus(page: Any, *, tabs: int = 12) -> list[dict[str, Any]]:
    """Focus indicators that are missing, thinner than 2px or under 3:1."""
    return [
        r
        for r in focus_rings(page, tabs=tabs)
        if r["style"] == "none" or r["width"] < 2 or r["ratio"] < 3
    ]
