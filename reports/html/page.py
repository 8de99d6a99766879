"""One self-contained HTML page: styles, sections, figure specs and plotly.js, inline.

plotly.js comes from plotly's own offline bundle (:func:`plotly.offline.get_plotlyjs`, imported
only here and only when a page is rendered). It is embedded once, gzip-compressed and base64
encoded (4.8 MB of JavaScript become about 1.9 MB), and unpacked by the browser's
``DecompressionStream`` (Chrome 80+, Firefox 113+, Safari 16.4+). Nothing is fetched from the
network. The figures' JSON sits in a ``<script type="application/json">`` element, escaped by
:func:`~reports.html.text.script_json`. Every section's text is readable without JavaScript;
a browser that cannot unpack the bundle says so where the plots would be.

When all plots are drawn the page sets ``window.servescopeRendered`` to
``performance.now()`` (milliseconds since navigation), which the browser tests and the size
benchmark read; an error while drawing sets ``window.servescopeError``.
"""

from __future__ import annotations

import base64
import functools
import gzip
from collections.abc import Sequence

from reports.html.figspec import Figure
from reports.html.text import esc, script_json

__all__ = ["plot_div", "plotly_bundle", "render_page"]

_CSS = """
:root{--fg:#1d1d1f;--muted:#666;--line:#e3e3e3;--crit:#c62828;--warn:#b26a00;--ok:#2e7d32}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
margin:0;background:#f4f5f7}
main{max-width:1180px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:34px 0 10px;
border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.what{font-size:15px;margin:4px 0}.path{color:var(--muted);font-size:12px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:10px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .label{font-weight:600;color:#333}.card .value{font-size:18px;margin:4px 0}
.card .def{font-size:11.5px;color:var(--muted)}.pct{font-size:12px;color:var(--muted)}
.unit{font-size:12px;color:var(--muted)}.na{color:var(--muted);font-size:14px}
.bad{color:var(--crit);font-weight:600}
.banner{border-radius:8px;padding:12px 16px;margin:14px 0;border-left:6px solid}
.banner.critical{background:#fdecea;border-color:var(--crit)}
.banner.warning{background:#fff4e0;border-color:var(--warn)}
.banner.ok{background:#e8f5e9;border-color:var(--ok)}
.banner .kicker{text-transform:uppercase;font-size:11px;letter-spacing:.05em;color:#555}
.banner b{font-size:16px}.banner .more{color:var(--muted);font-size:12px;margin-top:4px}
.finding{background:#fff;border:1px solid var(--line);border-left:5px solid #999;
border-radius:6px;padding:8px 14px;margin:10px 0}
.finding.critical{border-left-color:var(--crit)}.finding.warning{border-left-color:var(--warn)}
.ftitle{font-weight:600;font-size:15px}.sev{text-transform:uppercase;font-size:11px;
padding:1px 6px;border-radius:4px;background:#eee;margin-right:4px}
.critical .sev{background:var(--crit);color:#fff}.warning .sev{background:var(--warn);color:#fff}
.rule{font-weight:400;color:var(--muted);font-size:12px;font-family:monospace}
.meta{color:var(--muted);font-size:12px}.actions ul{margin:2px 0 6px}
.warnings{background:#fffbe6;border:1px solid #f0e0a0;border-radius:6px;padding:8px 14px;
margin:12px 0}.warnings ul{margin:4px 0}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f1f3}table.num td{text-align:right}table.num td:first-child{text-align:left}
table.kv td:first-child{white-space:nowrap;color:#333}
code{font-size:12px;word-break:break-all}.ci{color:var(--muted);font-size:12px}
.msg{font-family:monospace;font-size:12px;word-break:break-word}
.plot{background:#fff;border:1px solid var(--line);border-radius:8px;margin:10px 0;
min-height:120px}.plot .loading{padding:40px;color:var(--muted)}
.verdict{font-weight:600;white-space:nowrap}.v-regressed{color:var(--crit)}
.v-improved{color:var(--ok)}.v-inconclusive{color:var(--warn)}.v-unchanged,.v-not{color:#777}
pre.text{white-space:pre-wrap;background:#fff;border:1px solid var(--line);padding:8px}
dl.defs dt{font-weight:600;margin-top:6px}dl.defs dd{margin:0 0 0 16px;color:#333}
footer{color:var(--muted);font-size:12px;margin-top:40px}
#js-status{color:var(--crit)}
.side{display:flex;flex-wrap:wrap;gap:8px 28px;align-items:flex-start}
table.hot td:nth-child(2){word-break:break-all}
"""

_BOOT = """
(async () => {
  const say = (m) => { window.servescopeError = m;
    document.getElementById('js-status').textContent = 'Plots not drawn: ' + m; };
  try {
    if (typeof DecompressionStream === 'undefined') {
      say('this browser cannot unpack the embedded plotly.js (it needs DecompressionStream:'
          + ' Chrome 80+, Firefox 113+, Safari 16.4+); every table above is complete.');
      return;
    }
    const b64 = document.getElementById('plotly-gz').textContent.trim();
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    const js = await new Response(stream).text();
    window.servescopeTimes = {unpacked: performance.now()};
    const tag = document.createElement('script');
    tag.textContent = js;
    document.head.appendChild(tag);
    window.servescopeTimes.plotly = performance.now();
    const figs = JSON.parse(document.getElementById('figures').textContent);
    const config = {responsive: true, displaylogo: false};
    for (const f of figs) {
      const el = document.getElementById(f.id);
      el.textContent = '';
      await Plotly.newPlot(el, f.data, f.layout, config);
      window.servescopeTimes[f.id] = performance.now();
    }
    window.servescopeFigures = figs.length;
    window.servescopeRendered = performance.now();
  } catch (e) {
    say(String(e && e.message || e));
  }
})();
"""


@functools.lru_cache(maxsize=1)
def plotly_bundle() -> str:
    """plotly's offline plotly.js, gzip-compressed (deterministically) and base64-encoded."""
    from plotly.offline import get_plotlyjs

    raw = get_plotlyjs().encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")


def plot_div(fig: Figure | None) -> str:
    """The element a figure is drawn into (empty when there is no figure)."""
    if fig is None:
        return ""
    return (f'<div class="plot plotly-graph-div" id="{esc(fig["id"])}">'
            f'<div class="loading">Drawing the plot ({esc(fig["note"])})…</div></div>')


def render_page(title: str, body: str, figures: Sequence[Figure | None]) -> str:
    """The whole page; ``body`` is HTML already escaped by the sections."""
    figs = [{"id": f["id"], "data": f["data"], "layout": f["layout"]}
            for f in figures if f is not None]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<p id=\"js-status\"></p>{body}</main>"
        f"<script type=\"application/json\" id=\"figures\">{script_json(figs)}</script>"
        f"<script type=\"application/octet-stream\" id=\"plotly-gz\">{plotly_bundle()}"
        f"</script><script>{_BOOT}</script></body></html>\n"
    )
