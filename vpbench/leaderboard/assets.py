"""The HTML site's one stylesheet and one script, written beside its pages (no CDN, no network).

The pages are complete without the script: every table is a plain table, every animation a
film strip of all its frames. The script adds sorting, filters and a frame-stepping player.
"""

from __future__ import annotations

__all__ = ["CSS", "JS"]

CSS = """\
[hidden]{display:none!important}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:84rem;padding:1rem 1.5rem;color:#1b1f24;background:#fff}
a{color:#0b57d0}
nav.crumbs{font-size:.9rem;margin-bottom:.5rem}
h1{font-size:1.6rem;margin:.3rem 0 .6rem}h2{font-size:1.3rem;margin-top:2rem;border-bottom:1px solid #d0d7de}h3{font-size:1.08rem;margin-top:1.4rem}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.5rem 0 1rem}
.facts dt{font-weight:600}.facts dd{margin:0}
.warning{background:#fff4e5;border-left:4px solid #e8a33d;padding:.5rem .8rem}
.generated{font-weight:700;color:#8a3b00}
.scroll{overflow-x:auto;max-width:100%}
table.board{border-collapse:collapse;font-size:.88rem;margin:.4rem 0 1rem}
table.board th,table.board td{border:1px solid #d0d7de;padding:.25rem .5rem;vertical-align:top}
table.board th{background:#f6f8fa;white-space:nowrap}
table.board td:not(.num):not(.cmd){min-width:5rem}
table.board td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
table.board td.best{font-weight:700;background:#e6f4ea}
table.board tr.baseline td{color:#57606a}
table.board th button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer;color:inherit}
table.board th[aria-sort=ascending] button::after{content:" \\25B2"}
table.board th[aria-sort=descending] button::after{content:" \\25BC"}
td.cmd code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre-wrap;word-break:break-all}
td.cmd details{max-width:22rem}
section.reported{background:#fbf7ee;border:1px dashed #c9a227;padding:.2rem 1rem 1rem;margin-top:2rem}
section.reported table.board th{background:#f3ead2}
.badge{display:inline-block;font-size:.75rem;font-weight:700;padding:0 .4rem;border-radius:.6rem;background:#c9a227;color:#fff;vertical-align:middle}
form.filters{display:flex;gap:1.2rem;flex-wrap:wrap;align-items:center;background:#f6f8fa;padding:.4rem .8rem;border-radius:.4rem}
.clips{display:flex;flex-wrap:wrap;gap:1rem 2rem}
figure.player{margin:0}
figure.player .heads{display:flex;font-size:.75rem;line-height:1.15;align-items:flex-end}
figure.player .heads span{overflow:hidden;overflow-wrap:anywhere;padding-bottom:.2rem}
figure.player figcaption{font-size:.8rem;color:#57606a}
.strip{overflow-y:auto;max-height:36rem}
.strip img{image-rendering:pixelated;display:block;max-width:none}
.js .strip{overflow:hidden;max-height:none}
.controls{display:flex;gap:.8rem;align-items:center;margin:.4rem 0}
.controls output{font-variant-numeric:tabular-nums;min-width:14rem}
.plots{display:flex;flex-wrap:wrap;gap:1rem}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3rem 1rem;font-size:.82rem}
.legend i{display:inline-block;width:1.6rem;height:.25rem;margin-right:.3rem;vertical-align:middle}
svg text{font:11px system-ui,sans-serif}
footer{margin-top:3rem;font-size:.82rem;color:#57606a}
"""

JS = """\
'use strict';
(function () {
  document.documentElement.classList.add('js');
  // --- sortable tables: click a heading; numbers by their data-sort value, empty cells last
  function sortTable(table, col, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute('data-sort'), y = b.cells[col].getAttribute('data-sort');
      if (x === '' && y === '') return 0;
      if (x === '') return 1;
      if (y === '') return -1;
      var nx = Number(x), ny = Number(y), c;
      if (!isNaN(nx) && !isNaN(ny)) c = nx - ny; else c = x < y ? -1 : x > y ? 1 : 0;
      return dir === 'ascending' ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.board'), function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      var b = document.createElement('button');
      b.type = 'button';
      while (th.firstChild) b.appendChild(th.firstChild);
      th.appendChild(b);
      th.setAttribute('aria-sort', 'none');
      b.addEventListener('click', function () {
        var dir = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
        Array.prototype.forEach.call(heads, function (h) { h.setAttribute('aria-sort', 'none'); });
        th.setAttribute('aria-sort', dir);
        sortTable(table, col, dir);
      });
    });
  });
  // --- filters by protocol (whole tables) and model family (rows)
  var form = document.querySelector('form.filters');
  if (form) {
    form.hidden = false;
    var apply = function () {
      var p = form.elements.protocol.value, m = form.elements.family.value;
      Array.prototype.forEach.call(document.querySelectorAll('section.track'), function (s) {
        s.hidden = p !== '' && s.getAttribute('data-protocol') !== p;
      });
      Array.prototype.forEach.call(document.querySelectorAll('section.track tbody tr'), function (r) {
        r.hidden = m !== '' && r.getAttribute('data-family') !== m;
      });
    };
    form.addEventListener('change', apply);
    apply();
  }
  // --- players: every clip of a test set steps through its frames on one clock
  Array.prototype.forEach.call(document.querySelectorAll('.clips'), function (box) {
    var players = box.querySelectorAll('figure.player');
    var ctl = box.parentNode.querySelector('.controls');
    if (!players.length || !ctl) return;
    var frames = Number(box.getAttribute('data-frames')), context = Number(box.getAttribute('data-context'));
    var slider = ctl.querySelector('input'), out = ctl.querySelector('output'), button = ctl.querySelector('button');
    var t = 0, timer = null;
    Array.prototype.forEach.call(players, function (f) {
      var strip = f.querySelector('.strip');
      strip.style.height = f.getAttribute('data-cell') + 'px';
    });
    function show(k) {
      t = k;
      Array.prototype.forEach.call(players, function (f) {
        var img = f.querySelector('.strip img');
        img.style.transform = 'translateY(' + (-k * Number(f.getAttribute('data-step'))) + 'px)';
      });
      slider.value = String(k);
      out.value = 'frame ' + (k + 1) + ' of ' + frames + (k < context ? ' (input)' : ' (predicted +' + (k - context + 1) + ')');
      box.setAttribute('data-frame', String(k));
    }
    function stop() { if (timer !== null) { clearInterval(timer); timer = null; } button.textContent = 'Play'; }
    button.addEventListener('click', function () {
      if (timer !== null) { stop(); return; }
      button.textContent = 'Pause';
      timer = setInterval(function () { show((t + 1) % frames); }, 250);
    });
    slider.addEventListener('input', function () { stop(); show(Number(slider.value)); });
    ctl.hidden = false;
    show(0);
  });
})();
"""
