"""The view's CSS and JS, every rule and handler scoped to one root element id."""

from __future__ import annotations

from ._common import PALETTE

__all__ = ["css", "script"]


def css(root: str, n_colours: int = len(PALETTE)) -> str:
    """The stylesheet for the view under `#root` (one class `ra-cK` per answer colour)."""
    r = f"#{root}"
    colours = "".join(
        f"{r} .ra-c{k}{{--c:{solid};--t:{tint}}}"
        for k, (solid, tint) in enumerate(PALETTE[:n_colours])
    )
    rules = (
        f"{r}{{--fg:#1f2328;--muted:#59636e;--line:#d8dee4;--panel:#ffffff;--bg:#f3f4f6;"
        "--accent:#2563eb;--bad:#b91c1c;--bad-soft:#fef2f2;--good:#15803d;--good-soft:#dcfce7;"
        "--grey:#6b7280;--c:#2563eb;--t:#dbeafe;"
        "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,'Helvetica Neue',Arial,"
        "'Liberation Sans',sans-serif;font-size:14px;line-height:1.55;color:var(--fg);"
        "background:var(--bg);padding:20px 24px 28px;box-sizing:border-box;text-align:left;"
        "container-type:inline-size;border-radius:10px}",
        f"{r} *{{box-sizing:border-box}}",
        colours,
        f"{r} h1{{font-size:20px;margin:0 0 6px;font-weight:650;letter-spacing:-.01em}}",
        f"{r} h2{{font-size:12px;margin:0 0 10px;text-transform:uppercase;letter-spacing:.08em;"
        "color:var(--muted);font-weight:650}",
        f"{r} p{{margin:0}}",
        f"{r} .ra-head{{margin-bottom:12px}}",
        f"{r} .ra-question{{font-size:15px;margin:2px 0 10px;max-width:75ch}}",
        f"{r} .ra-q{{display:inline-block;font-size:11px;font-weight:650;text-transform:uppercase;"
        "letter-spacing:.06em;color:var(--accent);background:#dbeafe;border-radius:4px;"
        "padding:1px 6px;margin-right:8px;vertical-align:1px}",
        f"{r} .ra-stats{{display:flex;flex-wrap:wrap;gap:6px}}",
        f"{r} .ra-pill{{font-size:12px;color:var(--muted);background:var(--panel);"
        "border:1px solid var(--line);border-radius:999px;padding:2px 10px}",
        f"{r} .ra-pill b{{color:var(--fg);font-weight:650}}",
        f"{r} .ra-good b{{color:var(--good)}}",
        f"{r} .ra-warn b{{color:var(--bad)}}",
        f"{r} .ra-error{{margin-top:10px;padding:8px 12px;border-radius:6px;color:#7f1d1d;"
        "background:#fee2e2;border:1px solid #fca5a5;white-space:pre-wrap;"
        "overflow-wrap:anywhere}",
        f"{r} .ra-legend{{display:flex;flex-wrap:wrap;align-items:center;gap:6px 20px;"
        "font-size:12px;color:var(--muted);margin:0 0 16px;padding:8px 12px;"
        "background:var(--panel);border:1px solid var(--line);border-radius:8px}",
        f"{r} .ra-legend-item{{display:inline-flex;align-items:center;gap:6px}}",
        f"{r} .ra-legend-wide{{flex-basis:100%}}",
        f"{r} .ra-grid{{display:grid;grid-template-columns:minmax(0,1fr);gap:20px;"
        "align-items:start}",
        f"@container (min-width: 820px){{{r} .ra-grid{{grid-template-columns:"
        "minmax(0,5fr) minmax(0,7fr)}"
        f"{r} .ra-answer-col{{position:sticky;top:12px;max-height:calc(100vh - 24px);"
        "overflow:auto}}",
        # number marks: the number comes from data-n through CSS, so the text stays exact
        f"{r} .ra-mark{{display:inline-flex;align-items:center;justify-content:center;"
        "min-width:17px;height:17px;border-radius:9px;font-size:11px;font-weight:700;"
        "line-height:1;padding:0 4px;margin:0 1px 0 3px;vertical-align:2px;"
        "font-variant-numeric:tabular-nums;user-select:none}",
        f"{r} .ra-mark::after{{content:attr(data-n)}}",
        f"{r} .ra-tail{{white-space:nowrap}}",
        f"{r} .ra-mark.ra-main{{background:var(--c);color:#fff;border:1.5px solid var(--c)}}",
        f"{r} .ra-mark.ra-more{{background:#fff;color:var(--c);border:1.5px solid var(--c)}}",
        f"{r} .ra-mark.ra-closest{{background:#fff;color:var(--grey);"
        "border:1.5px dashed var(--grey)}",
        f"{r} .ra-answers{{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;"
        "gap:10px}",
        f"{r} .ra-ans{{background:var(--panel);border:1px solid var(--line);"
        "border-left:5px solid var(--c);border-radius:8px;padding:10px 12px;cursor:pointer;"
        "transition:box-shadow .12s;outline:none;display:grid;"
        "grid-template-columns:auto minmax(0,1fr);gap:10px;align-items:start}",
        f"{r} .ra-ans:hover,{r} .ra-ans:focus-visible,{r} .ra-ans.active{{"
        "box-shadow:0 0 0 1px var(--c),0 2px 10px rgba(0,0,0,.12)}",
        f"{r} .ra-ans.pinned{{box-shadow:0 0 0 2px var(--c)}}",
        f"{r} .ra-num{{display:inline-flex;align-items:center;justify-content:center;"
        "min-width:24px;height:24px;border-radius:12px;background:var(--c);color:#fff;"
        "font-size:13px;font-weight:700;padding:0 6px}",
        f"{r} .ra-ans-text{{font-size:15px;overflow-wrap:anywhere}}",
        f"{r} .ra-unsupported{{--c:var(--bad);background:var(--bad-soft)}}",
        f"{r} .ra-unsupported .ra-ans-text{{text-decoration:underline wavy var(--bad);"
        "text-decoration-thickness:1px;text-underline-offset:4px}",
        f"{r} .ra-verdict{{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 8px;"
        "margin-top:4px;font-size:12px}",
        f"{r} .ra-tag{{font-size:11px;font-weight:700;text-transform:uppercase;"
        "letter-spacing:.05em;border-radius:4px;padding:1px 6px}",
        f"{r} .ra-tag-good{{color:var(--good);background:var(--good-soft)}}",
        f"{r} .ra-tag-bad{{color:#fff;background:var(--bad)}}",
        f"{r} .ra-talk{{--c:var(--muted)}}",
        f"{r} .ra-talk .ra-ans-text{{color:var(--muted)}}",
        f"{r} .ra-tag-talk{{color:var(--muted);border:1px solid var(--muted)}}",
        f"{r} .ra-fig{{font-variant-numeric:tabular-nums;color:var(--muted)}}",
        f"{r} .ra-reason{{color:var(--bad);overflow-wrap:anywhere}}",
        f"{r} .ra-cites-head{{margin-top:8px;font-size:11px;color:var(--muted);"
        "text-transform:uppercase;letter-spacing:.05em}",
        f"{r} .ra-cites{{list-style:none;margin:4px 0 0;padding:0;display:flex;flex-wrap:wrap;"
        "gap:6px}",
        f"{r} .ra-cite{{display:inline-flex;align-items:center;gap:6px;font-size:12px;"
        "border:1px solid var(--line);border-radius:6px;padding:2px 4px 2px 2px;"
        "background:#fff;max-width:100%}",
        f"{r} .ra-cite .ra-mark{{margin:0}}",
        f"{r} .ra-cite.ra-closest{{border-style:dashed;color:var(--grey)}}",
        f"{r} .ra-cite:hover{{border-color:var(--c)}}",
        f"{r} .ra-cite-src{{font-weight:650;overflow-wrap:anywhere}}",
        f"{r} .ra-cite-sn{{color:var(--muted);white-space:nowrap}}",
        f"{r} .ra-cite-score{{font-variant-numeric:tabular-nums;background:#f3f4f6;"
        "color:var(--fg);border-radius:4px;padding:0 5px}",
        f"{r} .ra-nocite{{margin-top:6px;font-size:12px;color:var(--muted)}}",
        f"{r} .ra-source{{background:var(--panel);border:1px solid var(--line);border-radius:8px;"
        "padding:10px 14px 12px;margin-bottom:12px;transition:border-color .12s, opacity .12s}",
        f"{r} .ra-src-head{{display:flex;align-items:center;justify-content:space-between;"
        "flex-wrap:wrap;gap:4px 12px;margin-bottom:6px}",
        f"{r} .ra-src-name{{display:flex;align-items:baseline;flex-wrap:wrap;gap:0 8px;"
        "min-width:0}",
        f"{r} .ra-src-id{{font-weight:650;font-family:ui-monospace,SFMono-Regular,Menlo,"
        "'DejaVu Sans Mono',monospace;font-size:13px;overflow-wrap:anywhere}",
        f"{r} .ra-src-title{{color:var(--muted);font-size:13px;overflow-wrap:anywhere}}",
        f"{r} .ra-share{{display:flex;align-items:center;gap:8px;flex:none;font-size:12px;"
        "color:var(--muted)}",
        f"{r} .ra-bar{{display:inline-block;width:90px;height:8px;border-radius:4px;"
        "background:#e5e7eb;overflow:hidden}",
        f"{r} .ra-bar-fill{{display:block;height:100%;background:#64748b}}",
        f"{r} .ra-share-num{{font-weight:650;min-width:34px;text-align:right;color:var(--fg);"
        "font-variant-numeric:tabular-nums}",
        f"{r} .ra-src-text{{white-space:pre-wrap;overflow-wrap:anywhere;font-size:14px;"
        "line-height:1.9}",
        f"{r} .ra-sent{{border-radius:3px;padding:1px 0;transition:opacity .12s, box-shadow .12s;"
        "-webkit-box-decoration-break:clone;box-decoration-break:clone}",
        f"{r} .ra-sent.ra-main{{background:var(--t);box-shadow:inset 0 -2px 0 var(--c)}}",
        f"{r} .ra-sent.ra-more{{background:var(--t);"
        "background-image:linear-gradient(rgba(255,255,255,.45),rgba(255,255,255,.45));"
        "border-bottom:2px dashed var(--c)}",
        f"{r} .ra-sent.ra-closest{{background:#f3f4f6;border-bottom:2px dashed var(--grey)}}",
        f"{r}.ra-active .ra-sent{{opacity:.3}}",
        f"{r}.ra-active .ra-source{{opacity:.75}}",
        f"{r}.ra-active .ra-source.cited{{opacity:1;border-color:var(--accent)}}",
        f"{r} .ra-sent.highlight{{opacity:1;outline:2px solid var(--fg);outline-offset:1px}}",
        f"{r} .ra-sent.flash{{animation:{root}-flash 1s ease-out}}",
        f"@keyframes {root}-flash{{0%{{outline-offset:6px}}100%{{outline-offset:1px}}}}",
        f"{r} .ra-empty{{color:var(--muted);font-style:italic}}",
        f"{r} .ra-flow{{margin-top:20px;background:var(--panel);border:1px solid var(--line);"
        "border-radius:8px;padding:12px 14px}",
        f"{r} .ra-markers{{margin:0 0 16px;background:var(--panel);border:1px solid var(--line);"
        "border-radius:8px;padding:10px 14px}",
        f"{r} .ra-mk-legend{{font-size:12px;color:var(--muted);margin-bottom:8px}}",
        f"{r} .ra-mk-counts{{margin-left:12px;color:var(--fg)}}",
        f"{r} .ra-mk-count{{white-space:nowrap}}",
        f"{r} .ra-mk-answer{{font-size:15px;white-space:pre-wrap;overflow-wrap:anywhere;"
        "line-height:1.8}",
        f"{r} .ra-mk{{border-radius:4px;padding:0 4px;font-weight:700;"
        "font-variant-numeric:tabular-nums}",
        f"{r} .ra-mk-ok{{color:#fff;background:var(--good)}}",
        f"{r} .ra-mk-warn{{color:#1f2328;background:#fbbf24}}",
        f"{r} .ra-mk-bad{{color:#fff;background:var(--bad)}}",
        f"{r} .ra-mk-notes{{margin:8px 0 0;padding-left:18px;font-size:13px;color:var(--fg)}}",
    )
    return "".join(rules)


def script() -> str:
    """Hover, click-to-pin and Esc for every view on the page not yet set up (plain ES5).

    The text is the same for every render, so one Content-Security-Policy hash allows it
    wherever views are joined on one page; each run sets up the roots not yet marked.
    """
    return _SCRIPT


_SCRIPT = (
    "(function(){"
    "Array.prototype.forEach.call(document.querySelectorAll('.ra-root:not([data-ra-ready])'),"
    "function(root){root.setAttribute('data-ra-ready','1');"
    "var pinned=null;"
    "function each(sel,f){Array.prototype.forEach.call(root.querySelectorAll(sel),f);}"
    "function sent(id){return /^s[0-9]+-[0-9]+$/.test(id||'')?"
    "root.querySelector('.ra-sent[data-sid=\"'+id+'\"]'):null;}"
    "function clear(){root.classList.remove('ra-active');"
    "each('.highlight',function(e){e.classList.remove('highlight');});"
    "each('.ra-source.cited',function(e){e.classList.remove('cited');});"
    "each('.ra-ans.active',function(e){e.classList.remove('active');});}"
    "function show(card,scroll){clear();if(!card)return;"
    "card.classList.add('active');root.classList.add('ra-active');"
    "var ids=(card.getAttribute('data-cites')||'').split(' ').filter(Boolean);var first=null;"
    "ids.forEach(function(id){var el=sent(id);if(!el)return;"
    "el.classList.add('highlight');if(!first)first=el;"
    "var src=el.closest('.ra-source');if(src)src.classList.add('cited');});"
    "if(first&&scroll)first.scrollIntoView({block:scroll,behavior:'smooth'});}"
    "function pin(card){"
    "if(pinned)pinned.classList.remove('pinned');"
    "pinned=(pinned===card)?null:card;"
    "if(pinned){pinned.classList.add('pinned');show(pinned,'center');}else{show(null);}}"
    "each('.ra-ans',function(card){"
    "card.addEventListener('mouseenter',function(){show(card,'nearest');});"
    "card.addEventListener('mouseleave',function(){show(pinned,null);});"
    "card.addEventListener('focus',function(){show(card,'nearest');});"
    "card.addEventListener('blur',function(){show(pinned,null);});"
    "card.addEventListener('click',function(ev){"
    "var chip=ev.target.closest?ev.target.closest('.ra-cite'):null;"
    "if(chip){var el=sent(chip.getAttribute('data-sid'));"
    "if(el){el.scrollIntoView({block:'center',behavior:'smooth'});"
    "el.classList.remove('flash');void el.offsetWidth;el.classList.add('flash');}"
    "if(pinned===card)return;}"
    "pin(card);});"
    "card.addEventListener('keydown',function(ev){"
    "if(ev.key==='Enter'||ev.key===' '){ev.preventDefault();pin(card);}});});"
    "root.addEventListener('keydown',function(ev){"
    "if(ev.key==='Escape'&&pinned){pinned.classList.remove('pinned');pinned=null;"
    "show(null);}});"
    "});})();"
)
