"""Accessibility of the dashboard in a real headless Chromium against the demo fleet's SIMULATED
clusters (tests/ui/conftest.py): the keyboard (every control reached by Tab in reading order,
with a visible focus ring that contrasts with its background; Enter and Space activate links,
buttons and forms), the WCAG 2.x contrast of every visible text, and the cumulative layout
shift while a page loads and while live updates arrive.

The measures run in the page (getComputedStyle, PerformanceObserver) through Playwright's
evaluate; the thresholds are WCAG's (4.5:1 for text, 3:1 for large text and for a focus
indicator: 1.4.3, 1.4.11) and web-vitals' "good" cumulative layout shift (< 0.1).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from fleetplane_testing.waiting import wait_until
from tests.ui.conftest import API, CANARY, DemoFleet, Tab
from tests.ui.test_dashboard import REPO, json_of, sign_in, wait_js

# ------------------------------------------------------------------ in-page measures

COLOR_JS = r"""
(() => {
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c || "");
    if (!m) return null;
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, under) => {
    const a = top.a + under.a * (1 - top.a);
    if (a === 0) return { r: 0, g: 0, b: 0, a: 0 };
    const mix = (k) => (top[k] * top.a + under[k] * under.a * (1 - top.a)) / a;
    return { r: mix("r"), g: mix("g"), b: mix("b"), a };
  };
  const lum = (c) => {
    const ch = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
  };
  const ratio = (x, y) => { const [a, b] = [lum(x), lum(y)].sort((p, q) => q - p); return (a + 0.05) / (b + 0.05); };
  /** The colour behind `el`: its and its ancestors' backgrounds composited, white canvas last;
   * null when an image or gradient is in the way (not measurable this way). */
  const background = (el) => {
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const st = getComputedStyle(n);
      if (st.backgroundImage && st.backgroundImage !== "none") return null;
      const c = parse(st.backgroundColor);
      if (c && c.a > 0) layers.push(c);
      if (c && c.a >= 1) break;
    }
    let out = { r: 255, g: 255, b: 255, a: 1 };
    for (const c of layers.reverse()) out = over(c, out);
    return out;
  };
  const describe = (el) => {
    const bits = [el.tagName.toLowerCase()];
    if (el.id) bits.push(`#${el.id}`);
    if (el.className && typeof el.className === "string") bits.push(`.${el.className.trim().split(/\s+/).join(".")}`);
    return bits.join("");
  };
  return { parse, over, ratio, background, describe };
})()
"""

CONTRAST_JS = (
    r"""
() => {
  const C = """
    + COLOR_JS
    + r""";
  const out = [];
  const seen = new Set();
  const check = (el, colorText, text, what) => {
    const st = getComputedStyle(el);
    const fg = C.parse(colorText);
    const bg = C.background(el);
    if (!fg || !bg) return;
    const opacity = [...(function* () { for (let n = el; n && n.nodeType === 1; n = n.parentElement) yield Number(getComputedStyle(n).opacity); })()].reduce((a, b) => a * b, 1);
    const shown = C.over({ ...fg, a: fg.a * opacity }, bg);
    const size = parseFloat(st.fontSize);
    const bold = Number(st.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const need = large ? 3 : 4.5;
    const ratio = C.ratio(shown, bg);
    out.push({ el: C.describe(el), what, text: text.slice(0, 40), ratio: Math.round(ratio * 100) / 100, need, size, fg: colorText, bg: `rgb(${Math.round(bg.r)}, ${Math.round(bg.g)}, ${Math.round(bg.b)})` });
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const text = t.textContent.trim();
    const el = t.parentElement;
    if (!text || !el || seen.has(el)) continue;
    if (el.closest("svg, script, style, option, [aria-hidden='true']")) continue;
    // WCAG 1.4.3 exempts the text of inactive (disabled) controls.
    if (el.closest("button:disabled, input:disabled, select:disabled, textarea:disabled")) continue;
    const rect = el.getBoundingClientRect();
    const st = getComputedStyle(el);
    if (!rect.width || !rect.height || st.visibility !== "visible" || rect.right < 0 || rect.bottom < 0) continue;
    seen.add(el);
    check(el, st.color, text, "text");
  }
  for (const el of document.querySelectorAll("input[placeholder], textarea[placeholder]")) {
    const rect = el.getBoundingClientRect();
    if (!rect.width || el.value || el.disabled) continue;
    check(el, getComputedStyle(el, "::placeholder").color, el.placeholder, "placeholder");
  }
  for (const el of document.querySelectorAll("input:not([type=file]), select, textarea")) {
    const rect = el.getBoundingClientRect();
    if (!rect.width || el.disabled || !(el.value || el.selectedOptions?.length)) continue;
    check(el, getComputedStyle(el).color, String(el.value), "value");
  }
  return out;
}
"""
)

FOCUSABLE = (
    "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), "
    "textarea:not([disabled]), [tabindex]:not([tabindex='-1'])"
)

FOCUS_JS = (
    r"""
(selector) => {
  const C = """
    + COLOR_JS
    + r""";
  const key = (el) => {
    if (!el || el === document.body || el === document.documentElement) return "(body)";
    const text = (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40);
    return `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.dataset.key ? "[" + el.dataset.key + "]" : ""}${el.getAttribute("href") ? " " + el.getAttribute("href") : ""}${text && !el.id ? " " + text : ""}`;
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const st = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && st.visibility === "visible" && !el.closest("[hidden]");
  };
  const expected = [...document.querySelectorAll(selector)].filter((el) => visible(el) || el.classList.contains("skip")).map(key);
  const el = document.activeElement;
  const st = el ? getComputedStyle(el) : null;
  const r = el ? el.getBoundingClientRect() : null;
  const ring = st ? C.parse(st.outlineColor) : null;
  // The ring is drawn just outside the control: measure it against what is there (the skip
  // link, for one, sits over the header, not over its parent's background).
  const under = r ? document.elementsFromPoint(Math.max(0, r.left - 4), r.top + r.height / 2).find((n) => n !== el && !el.contains(n)) : null;
  const behind = under ? C.background(under) : null;
  return {
    expected,
    active: key(el),
    focusVisible: Boolean(el && el.matches(":focus-visible")),
    outline: st ? `${st.outlineStyle} ${st.outlineWidth} ${st.outlineColor}` : "",
    outlineVisible: Boolean(st && st.outlineStyle !== "none" && parseFloat(st.outlineWidth) > 0),
    boxShadow: st ? st.boxShadow : "none",
    ringContrast: ring && behind ? Math.round(C.ratio(C.over(ring, behind), behind) * 100) / 100 : null,
    rect: r ? { top: r.top + scrollY, left: r.left + scrollX, bottom: r.bottom + scrollY } : null,
    dialogs: document.querySelectorAll("dialog, [role=dialog], [role=alertdialog]").length,
  };
}
"""
)


def focus_state(p: Any) -> dict[str, Any]:
    return dict(p.evaluate(FOCUS_JS, FOCUSABLE))


def tab_walk(p: Any) -> list[dict[str, Any]]:
    """Focus the first control of the document (the skip link) from the keyboard, then Tab
    through every control: one state per stop, until focus leaves the last one."""
    p.evaluate("document.querySelector('a.skip').focus()")
    p.keyboard.press("Tab")
    p.keyboard.press("Shift+Tab")  # back on the skip link, now by keyboard
    stops = [focus_state(p)]
    assert stops[0]["active"].startswith("a #main"), stops[0]
    for _ in range(len(stops[0]["expected"]) - 1):
        p.keyboard.press("Tab")
        stops.append(focus_state(p))
    return stops


def expect_keyboard_reaches_everything(p: Any, what: str) -> list[str]:
    stops = tab_walk(p)
    expected = stops[0]["expected"]
    reached = [s["active"] for s in stops]
    assert reached == expected, f"{what}: Tab order\n reached  {reached}\n expected {expected}"
    for s in stops:
        assert s["focusVisible"], f"{what}: {s['active']} focused by Tab does not match :focus-visible"
        assert s["outlineVisible"] or s["boxShadow"] != "none", f"{what}: no focus ring on {s['active']}: {s}"
        assert s["ringContrast"] is None or s["ringContrast"] >= 3, f"{what}: focus ring of {s['active']}: {s}"
    for a, b in itertools.pairwise(stops[1:]):  # reading order below the skip link
        ra, rb = a["rect"], b["rect"]
        assert rb["bottom"] > ra["top"], f"{what}: focus jumps up from {a['active']} to {b['active']}"
        if rb["top"] < ra["bottom"] and rb["bottom"] > ra["top"]:  # on one line: left to right
            assert rb["left"] >= ra["left"], f"{what}: focus goes right to left from {a['active']} to {b['active']}"
    assert all(s["dialogs"] == 0 for s in stops), f"{what}: a dialog appeared: test that Escape closes it"
    return reached


def resume(tab: Tab, fleet: DemoFleet, page: str) -> Any:
    """Sign in, then load `page` afresh with the tab's token (no click involved in the load)."""
    p = sign_in(tab, fleet, page=page)
    p.reload()
    p.wait_for_selector("#nav:not([hidden])")
    return p


# ------------------------------------------------------------------ keyboard


def test_the_login_form_is_used_from_the_keyboard_alone(fleet: DemoFleet, tab: Tab) -> None:
    p = tab.page
    p.goto(fleet.ui + "#/workloads")
    p.wait_for_selector("#login:not([hidden])")
    reached = expect_keyboard_reaches_everything(p, "login")
    assert [r.split(" ")[0] for r in reached] == ["a", "input#token", "input#kubeconfig", "button"]
    # Tab to the token field, type, Enter: signed in, on the page asked for.
    p.evaluate("document.querySelector('a.skip').focus()")
    p.keyboard.press("Tab")
    assert focus_state(p)["active"] == "input#token"
    p.keyboard.type(fleet.hub.admin_token)
    p.keyboard.press("Enter")
    p.wait_for_selector("#workloads-table")
    assert p.is_visible("#nav") and not p.is_visible("#login")


SORTS = [f"button[sort-{k}]" for k in ("cluster", "status", "region", "report", "model", "capacity", "price", "free")]


@pytest.mark.parametrize(
    ("page", "ready", "controls"),
    [
        (
            "#/fleet",
            "#clusters-table tbody tr",
            ["input#fleet-search", "select#pick-model", "select#pick-capacity-type", "select#pick-status", *SORTS],
        ),
        (
            "#/workloads",
            "#workloads-table tbody tr",
            [
                "input#wl-search",
                "select#pick-namespace",
                "select#pick-phase",
                "select#pick-queue",
                "select#pick-cluster",
            ]
            + [f"a #/workloads/demo/{n}" for n in ("embed-batch", "finetune-spot", "giant-gang", "llm-pretrain")],
        ),
        ("#/workloads/demo/llm-pretrain", "table.explanation", ["a #/workloads ← Workloads"]),
        ("#/queues", "#queues", []),  # nothing to operate: tables only
        ("#/whatif", "#whatif-manifest", ["textarea#whatif-manifest", "input#whatif-file", "select#whatif-profile"]),
    ],
)
def test_tab_reaches_every_control_in_reading_order_with_a_visible_focus_ring(
    fleet: DemoFleet, tab: Tab, page: str, ready: str, controls: list[str]
) -> None:
    p = resume(tab, fleet, page)
    p.wait_for_selector(ready)
    reached = expect_keyboard_reaches_everything(p, page)
    head = ["a #main", "a #/fleet", "a #/workloads", "a #/queues", "a #/whatif", "button#logout"]
    assert [r.startswith(h) for r, h in zip(reached, head, strict=False)] == [True] * len(head), reached
    for control in controls:  # the page's own controls, in the order the page shows them
        assert any(r.startswith(control) for r in reached[len(head) :]), f"{page}: Tab never reaches {control}"
    found = [next(i for i, r in enumerate(reached) if r.startswith(c)) for c in controls]
    assert found == sorted(found), f"{page}: {controls} reached out of order: {reached}"
    assert not tab.errors, tab.errors


def test_the_skip_link_shows_when_focused_and_moves_focus_to_the_page(fleet: DemoFleet, tab: Tab) -> None:
    p = resume(tab, fleet, "#/fleet")
    p.wait_for_selector("#clusters-table tbody tr")
    tab_walk(p)
    p.evaluate("document.querySelector('a.skip').focus()")
    box = p.eval_on_selector("a.skip", "e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width]; }")
    assert box[0] >= 0 and box[1] >= 0 and box[2] > 0, "on screen while focused"
    p.keyboard.press("Enter")
    p.keyboard.press("Tab")
    assert focus_state(p)["active"] == "input#fleet-search", "the next stop after skipping is the page's first control"


def test_enter_opens_a_workload_from_the_list_and_space_and_enter_sort_the_fleet(fleet: DemoFleet, tab: Tab) -> None:
    p = resume(tab, fleet, "#/workloads")
    p.wait_for_selector("#workloads-table tr[data-workload='demo/llm-pretrain']")
    link = "#workloads-table tr[data-workload='demo/llm-pretrain'] a"
    for _ in range(40):  # Tab until the workload's link has focus
        p.keyboard.press("Tab")
        if p.evaluate(f"document.activeElement === document.querySelector({json.dumps(link)})"):
            break
    else:
        pytest.fail("Tab never reached the workload's link")
    p.keyboard.press("Enter")
    p.wait_for_selector("table.explanation")
    assert p.evaluate("location.hash") == "#/workloads/demo/llm-pretrain"
    wait_js(p, "document.activeElement === document.getElementById('main')")  # focus moved to the new page

    p.goto(fleet.ui + "#/fleet")
    p.wait_for_selector("#clusters-table tbody tr")
    region = "#clusters-table button[data-key='sort-region']"
    p.focus(region)
    p.keyboard.press("Space")
    wait_js(p, "document.querySelector('#clusters-table th[aria-sort=ascending] [data-key=sort-region]') !== null")
    assert p.evaluate("document.activeElement.dataset.key") == "sort-region", "focus stays on the re-drawn header"
    p.keyboard.press("Enter")
    wait_js(p, "document.querySelector('#clusters-table th[aria-sort=descending] [data-key=sort-region]') !== null")
    regions = p.eval_on_selector_all("#clusters-table tbody tr td:nth-child(4)", "tds => tds.map(t => t.textContent)")
    assert regions == sorted(regions, reverse=True) and len(set(regions)) > 1


@pytest.mark.parametrize(
    ("page", "table", "control"),
    [
        ("#/fleet", "#clusters-table", "#clusters-table button[data-key='sort-free']"),
        ("#/workloads", "#workloads-table", "#workloads-table tr[data-workload='demo/llm-pretrain'] a"),
    ],
)
def test_focus_stays_on_its_control_while_a_live_update_redraws_the_table(
    fleet: DemoFleet, tab: Tab, page: str, table: str, control: str
) -> None:
    p = resume(tab, fleet, page)
    p.wait_for_selector(control)
    wait_js(p, "document.getElementById('live').textContent.includes('live')")
    p.focus(control)
    before = p.evaluate("document.activeElement.outerHTML")
    p.evaluate(f"window.__table = document.querySelector({json.dumps(table)})")
    with fleet.client() as c:  # a watch event for the page: a Cluster's label, a Workload's
        merge = {"Content-Type": "application/merge-patch+json"}
        patch = json.dumps({"metadata": {"labels": {"a11y-test": "redraw"}}})
        path = f"{API}/clusters/{CANARY}" if page == "#/fleet" else f"{API}/namespaces/demo/workloads/giant-gang"
        assert c.patch(path, content=patch, headers=merge).status_code == 200
    wait_js(p, f"document.querySelector({json.dumps(table)}) !== window.__table")  # redrawn from the event
    assert p.evaluate("document.activeElement.outerHTML") == before, "focus is back on the same control"
    assert p.evaluate(f"document.activeElement === document.querySelector({json.dumps(control)})")


def test_enter_runs_what_if_from_its_button(fleet: DemoFleet, tab: Tab) -> None:
    p = resume(tab, fleet, "#/whatif")
    p.focus("#whatif-profile")
    p.keyboard.press("Tab")
    assert focus_state(p)["active"].startswith("button Run what-if")
    p.keyboard.press("Enter")
    p.wait_for_selector("#whatif-result section.decision")


# ------------------------------------------------------------------ contrast


def expect_contrast(p: Any, what: str) -> int:
    measured = p.evaluate(CONTRAST_JS)
    bad = [m for m in measured if m["ratio"] < m["need"]]
    assert not bad, f"{what}: text below WCAG AA contrast:\n" + "\n".join(map(str, bad))
    return len(measured)


def test_every_visible_text_meets_wcag_aa_contrast(fleet: DemoFleet, tab: Tab) -> None:
    p = tab.page
    p.goto(fleet.ui)
    p.wait_for_selector("#login:not([hidden])")
    assert expect_contrast(p, "login") >= 5
    p.fill("#token", "fpa-not-a-token")
    p.click("#login-form button[type=submit]")
    p.wait_for_selector("#login-error:not([hidden])")
    expect_contrast(p, "login error")
    sign_in(tab, fleet)
    pages = [
        ("#/fleet", "#clusters-table tbody tr"),
        ("#/workloads", "#workloads-table tbody tr"),
        ("#/workloads/demo/llm-pretrain", "table.explanation tr.chosen"),
        ("#/workloads/demo/giant-gang", "table.explanation"),
        ("#/queues", "#queues"),
    ]
    counted = 0
    for page, ready in pages:
        p.goto(fleet.ui + page)
        p.wait_for_selector(ready)
        wait_js(p, "document.getElementById('live').textContent.includes('live')")
        counted += expect_contrast(p, page)
    p.goto(fleet.ui + "#/whatif")
    p.click("button:has-text('Run what-if')")
    p.wait_for_selector("#whatif-result section.decision")
    counted += expect_contrast(p, "what-if result")
    p.fill("#whatif-manifest", "kind: [")
    p.click("button:has-text('Run what-if')")
    p.wait_for_selector("#whatif-result .error")
    expect_contrast(p, "what-if error")
    # A NotReady row (red) and the focused skip link are measured too.
    p.goto(fleet.ui + "#/fleet")
    p.wait_for_selector("#clusters-table tbody tr")
    p.focus("a.skip")
    counted += expect_contrast(p, "fleet, skip link shown")
    assert counted > 200, "the pages' texts were measured"


# ------------------------------------------------------------------ layout shift

CLS_JS = r"""
() => {
  window.__shifts = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.hadRecentInput) continue;
      window.__shifts.push({
        value: e.value,
        t: Math.round(e.startTime),
        sources: (e.sources || []).map((s) => {
          const n = s.node;
          const d = n && n.nodeType === 1 ? n.tagName.toLowerCase() + (n.id ? "#" + n.id : "") + (n.className && typeof n.className === "string" ? "." + n.className.trim().split(/\s+/).join(".") : "") : String(n && n.nodeName);
          return d;
        }),
      });
    }
  }).observe({ type: "layout-shift", buffered: true });
}
"""


def layout_shift(p: Any) -> tuple[float, list[dict[str, Any]]]:
    shifts = list(p.evaluate("window.__shifts"))
    return sum(s["value"] for s in shifts), shifts


@pytest.mark.parametrize(
    ("page", "ready"),
    [
        ("#/fleet", "#clusters-table tbody tr"),
        ("#/workloads", "#workloads-table tbody tr"),
        ("#/workloads/demo/llm-pretrain", "table.explanation"),
        ("#/queues", "#queues section[data-queue], #queues .empty"),
    ],
)
def test_cumulative_layout_shift_stays_good_while_a_page_loads_and_updates_live(
    fleet: DemoFleet, tab: Tab, page: str, ready: str
) -> None:
    p = resume(tab, fleet, page)
    p.evaluate(CLS_JS)  # buffered: every shift since this load began
    p.wait_for_selector(ready)
    wait_js(p, "document.getElementById('live').textContent.includes('live')")
    with fleet.client() as c:  # a live update: a new workload, its placement, and agents' reports
        name = f"cls-{page.strip('#/').replace('/', '-')}"
        wl = json_of((REPO / "examples" / "workload.yaml").read_text())
        wl["metadata"] = {"name": name, "namespace": "demo"}
        wl["spec"]["gpu"] = {"count": 1, "models": ["L4"]}
        r = c.post(f"{API}/namespaces/demo/workloads", json=wl)
        assert r.status_code == 201, r.text
        wait_until(
            f"{name} placed",
            lambda: (c.get(f"{API}/namespaces/demo/workloads/{name}").json().get("status") or {}).get("phase"),
            30,
        )
    if page == "#/workloads":
        p.wait_for_selector(f"#workloads-table tr[data-workload='demo/{name}']")
    p.evaluate("new Promise((done) => setTimeout(done, 2500))")  # a few seconds of agents' reports
    cls, shifts = layout_shift(p)
    assert cls < 0.1, f"{page}: cumulative layout shift {cls:.3f}: {shifts}"
    with fleet.client() as c:
        c.delete(f"{API}/namespaces/demo/workloads/{name}")
