// Drives a Snakemake report (window.REPORT_URL, loaded in the iframe #report)
// the way a reader does: every category, every subcategory, every result's
// view button, and checks that what it shows loads. The report's tables and
// findings pages are also loaded as documents of their own, to sort a table
// and read its rows. The summary goes into <pre id="prh-result"> as JSON,
// which `chromium --dump-dom` prints. Console messages are read by the test
// from chromium's log.
(function () {
  "use strict";
  var sleep = function (ms) { return new Promise(function (r) { setTimeout(r, ms); }); };
  var out = { app: false, categories: [], viewed: {}, downloads: {}, pages: {}, problems: [] };

  function finish() {
    document.getElementById("prh-result").textContent = JSON.stringify(out);
  }

  async function until(test, what, ms) {
    for (var t = 0; t < (ms || 5000); t += 50) {
      var v = test();
      if (v) return v;
      await sleep(50);
    }
    throw new Error("timed out waiting for " + what);
  }

  function links(doc, text) {
    return Array.prototype.filter.call(doc.querySelectorAll("nav a"), function (a) {
      return a.textContent.trim() === text;
    });
  }

  async function click(doc, text) {
    var a = await until(function () { return links(doc, text)[0]; }, "menu entry " + text);
    a.click();
    await sleep(100);
  }

  function loaded(el) {
    return new Promise(function (resolve) {
      if (el.tagName === "IMG") {
        if (el.complete) return resolve(el.naturalWidth > 0);
        el.addEventListener("load", function () { resolve(el.naturalWidth > 0); });
        el.addEventListener("error", function () { resolve(false); });
      } else {
        el.addEventListener("load", function () { resolve(true); });
        setTimeout(function () { resolve(true); }, 3000);  // an already loaded frame
      }
    });
  }

  function current(doc) {  // what the main panel shows
    return doc.querySelector("div.grow img[src^='data:'], div.grow iframe[src^='data:']");
  }

  function shownSrc(doc) {
    var el = current(doc);
    return el ? el.getAttribute("src") : null;
  }

  function pathOf(w, uri) {
    return Object.keys(w.results).find(function (p) { return w.results[p].data_uri === uri; });
  }

  // The menu's entries below its current heading, in the order shown.
  function entries(doc, names) {
    return Array.prototype.map.call(doc.querySelectorAll("nav ul li a span"), function (s) {
      return s.textContent.trim();
    }).filter(function (t) { return names.indexOf(t) >= 0; });
  }

  // Every combination of the results table's toggles (e.g. raw / calibrated).
  async function eachToggle(doc, body) {
    var n = doc.querySelectorAll("nav fieldset").length;
    for (var combo = 0; combo < (1 << n); combo++) {
      for (var t = 0; t < n; t++) {
        var input = doc.querySelectorAll("nav fieldset")[t].querySelectorAll("input")[(combo >> t) & 1];
        if (!input.checked) { input.click(); await sleep(100); }
      }
      await body();
    }
  }

  async function viewAll(w, doc, where) {
    await until(function () { return doc.querySelector("nav table tbody"); }, "results of " + where);
    await eachToggle(doc, async function () {
      var count = doc.querySelectorAll('nav table a[iconname="eye"]').length;
      for (var i = 0; i < count; i++) {
        var eye = doc.querySelectorAll('nav table a[iconname="eye"]')[i];
        var href = eye.getAttribute("href");
        if (href && href.indexOf("data:") === 0) {  // a file offered as a download
          var text = await (await fetch(href)).text();
          out.downloads[pathOf(w, href) || "unknown " + where] = {
            bytes: text.length, lines: text.split("\n").length - 1 };
          continue;
        }
        var before = shownSrc(doc);
        eye.click();
        // the same result may already be shown (a toggle switches the view too)
        await until(function () { return shownSrc(doc) !== before; }, "a view", 1000).catch(function () {});
        var el = current(doc);
        if (!el) throw new Error("nothing shown for result " + i + " of " + where);
        out.viewed[pathOf(w, el.getAttribute("src")) || "unknown " + where] = {
          ok: await loaded(el), tag: el.tagName.toLowerCase(), category: where,
          width: el.tagName === "IMG" ? el.naturalWidth : null };
      }
    });
  }

  async function checkPage(path, uri) {
    var text = await (await fetch(uri)).text();
    var frame = document.createElement("iframe");
    frame.style.width = "1200px";
    frame.style.height = "600px";
    document.body.appendChild(frame);
    var done = new Promise(function (r) { frame.addEventListener("load", r); });
    frame.srcdoc = text;
    await done;
    var d = frame.contentDocument, info = { title: d.title, items: d.querySelectorAll("li").length };
    var t = d.getElementById("t");
    if (t) {
      info.rows = t.tBodies[0].rows.length;
      info.columns = Array.prototype.map.call(t.tHead.rows[0].cells, function (c) { return c.textContent; });
      // sort by the line column, descending (second click), then ascending
      var th = t.tHead.rows[0].cells[0];
      th.click();
      th.click();
      info.descending = Array.prototype.map.call(t.tBodies[0].rows, function (r) { return Number(r.cells[0].textContent); });
      th.click();
      info.ascending = Array.prototype.map.call(t.tBodies[0].rows, function (r) { return Number(r.cells[0].textContent); });
      // a numeric column with empty cells: numbers in order, either way, empty cells last
      var col = info.columns.indexOf("p_bh") >= 0 ? info.columns.indexOf("p_bh") : info.columns.indexOf("score");
      if (col >= 0) {
        var heads = t.tHead.rows[0].cells;
        var cells = function () {
          return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.cells[col].textContent; });
        };
        var ordered = function (vals, sign) {
          var full = vals.filter(function (v) { return v !== ""; });
          var tail = vals.slice(full.length);
          return tail.every(function (v) { return v === ""; }) && full.every(function (v, k) {
            return k === 0 || sign * (Number(v) - Number(full[k - 1])) >= 0;
          });
        };
        heads[col].click();
        var up = ordered(cells(), 1);
        heads[col].click();
        info.numericSort = { column: info.columns[col], ascending: up, descending: ordered(cells(), -1) };
      }
      var box = d.getElementById("filter");
      box.value = String(info.ascending[0]);
      box.dispatchEvent(new Event("input"));
      info.filtered = Array.prototype.filter.call(t.tBodies[0].rows, function (r) { return !r.hidden; }).length;
    }
    out.pages[path] = info;
    frame.remove();
  }

  async function run() {
    var frame = document.getElementById("report");
    var w = frame.contentWindow, doc = w.document;
    await until(function () { return doc.querySelector("#app nav"); }, "the report app", 20000);
    out.app = true;
    out.results = Object.keys(w.results).length;
    out.categories = entries(doc, Object.keys(w.categories));
    for (var cat of out.categories.slice()) {
      if (links(doc, "Results").length) await click(doc, "Results");
      await click(doc, cat);
      var subs = Object.keys(w.categories[cat]);
      // one subcategory: the menu goes straight to its results
      var shown = await until(function () {
        var e = entries(doc, subs);
        return doc.querySelector("nav table tbody") ? "table" : e.length === subs.length && e;
      }, "the subcategories of " + cat);
      if (shown === "table") {
        await viewAll(w, doc, cat);
        continue;
      }
      for (var sub of shown) {
        await click(doc, sub);
        await viewAll(w, doc, cat + " / " + sub);
        await click(doc, cat);
      }
    }
    for (var p of Object.keys(w.results)) {
      if (w.results[p].mime_type === "text/html") await checkPage(p, w.results[p].data_uri);
    }
  }

  document.getElementById("report").addEventListener("load", function () {
    run().catch(function (e) { out.problems.push(String(e && e.stack || e)); }).then(finish);
  });
})();
