/* altvoice review page: the records of a caption run, filtered, sorted, searched and paged;
   corrections kept in localStorage and exported as corrections.jsonl. Data arrives through
   data/*.js files (script tags work from a folder and from a bucket alike). Every text from the
   records is set with textContent or setAttribute, never parsed as markup. */
"use strict";

var altvoiceReview = (function () {
  var PAGE = 50;
  var FORMAT = 1;  // corrections.jsonl "version"
  var run = {errors: [], errors_total: 0, counts: {}, id: "altvoice"};
  var records = [];
  var corrections = Object.create(null);  // image key -> {alt_text, decision, note, time}
  var view = {filter: "needs_review", sort: "confidence", query: "", page: 0};
  var shown = [];

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function key(record) { return record.image_raw || record.image; }

  function storageKey() { return "altvoice-review:" + run.id; }

  function load() {
    try {
      var saved = JSON.parse(localStorage.getItem(storageKey()) || "{}") || {};
      Object.keys(saved).forEach(function (k) { corrections[k] = saved[k]; });
      $("reviewer").value = localStorage.getItem("altvoice-review:reviewer") || "";
    } catch (err) { /* storage off (private window, file:// policy): in memory only */ }
    records.forEach(function (record) {  // corrections the caption job has applied since are done
      var fix = corrections[key(record)];
      if (fix && record.correction_time && fix.time && fix.time <= record.correction_time) delete corrections[key(record)];
    });
  }

  function save() {
    try { localStorage.setItem(storageKey(), JSON.stringify(corrections)); } catch (err) { /* in memory only */ }
    var n = Object.keys(corrections).length;
    $("corrections-count").textContent = n ? n + (n === 1 ? " image" : " images") + " corrected or decided." : "No corrections yet.";
  }

  function altText(record) {
    var fix = corrections[key(record)];
    return fix && typeof fix.alt_text === "string" ? fix.alt_text : (record.alt_text || "");
  }

  function failed(record) { return record.status === "failed" || record.status === "partial"; }

  function matches(record) {
    if (view.filter === "needs_review" && !(record.needs_review || failed(record))) return false;
    if (view.filter === "failed" && !failed(record)) return false;
    if (!view.query) return true;
    var q = view.query;
    return [altText(record), record.caption || "", record.image].some(function (s) { return s.toLowerCase().indexOf(q) >= 0; });
  }

  function confidence(record) { return typeof record.confidence === "number" ? record.confidence : -1; }

  function compare(a, b) {
    if (view.sort === "confidence") return confidence(a) - confidence(b) || (a.image < b.image ? -1 : 1);
    if (view.sort === "-confidence") return confidence(b) - confidence(a) || (a.image < b.image ? -1 : 1);
    return a.image < b.image ? -1 : a.image > b.image ? 1 : 0;
  }

  function refresh(keepPage) {
    shown = records.filter(matches).sort(compare);
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    view.page = keepPage ? Math.min(view.page, pages - 1) : 0;
    render();
  }

  function pager(nav) {
    nav.textContent = "";
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    var prev = el("button", {type: "button"}, "Previous page");
    var next = el("button", {type: "button"}, "Next page");
    prev.disabled = view.page === 0;
    next.disabled = view.page >= pages - 1;
    prev.addEventListener("click", function () { go(view.page - 1); });
    next.addEventListener("click", function () { go(view.page + 1); });
    nav.appendChild(prev);
    nav.appendChild(el("span", {}, "Page " + (view.page + 1) + " of " + pages));
    nav.appendChild(next);
  }

  function go(page) {
    view.page = page;
    render();
    $("results").focus();
  }

  function render() {
    var list = $("records");
    list.textContent = "";
    var start = view.page * PAGE;
    shown.slice(start, start + PAGE).forEach(function (record, i) { list.appendChild(card(record, start + i)); });
    pager($("pager-top"));
    pager($("pager-bottom"));
    var total = records.length;
    $("status").textContent = !total ? "This output folder has no image records yet: run altvoice caption on it first." :
      shown.length + " of " + total + " images match" + (shown.length ? ", showing " + (start + 1) + " to " + Math.min(start + PAGE, shown.length) + "." : ".");
  }

  function card(record, index) {
    var id = "r" + index;
    var fix = corrections[key(record)] || {};
    var item = el("li", {"class": "record" + (fix.decision ? " " + fix.decision : "")});
    var article = el("article", {tabindex: "0", "aria-labelledby": id + "-name", "data-index": String(index)});
    article.addEventListener("keydown", function (event) { shortcut(event, article, record); });
    item.appendChild(article);

    var figure = el("div", {"class": "thumb"});
    if (record.thumb) {
      figure.appendChild(el("img", {src: record.thumb, alt: altText(record) || "(no alt text)"}));
    } else {
      figure.appendChild(el("p", {"class": "nothumb"}, "No thumbnail"));
    }
    article.appendChild(figure);

    var body = el("div", {"class": "body"});
    article.appendChild(body);
    body.appendChild(el("h3", {id: id + "-name", "class": "name"}, record.image));
    var facts = el("p", {"class": "facts"});
    if (failed(record)) facts.appendChild(el("strong", {"class": "badge failed"}, record.status === "failed" ? "Failed" : "Partly written"));
    if (record.needs_review) facts.appendChild(el("strong", {"class": "badge review"}, "Needs review"));
    var decision = fix.decision || record.decision;
    if (decision) facts.appendChild(el("strong", {"class": "badge " + decision}, (decision === "approved" ? "Approved" : "Rejected") + (fix.decision ? "" : " earlier")));
    if (record.source === "human") facts.appendChild(el("strong", {"class": "badge human"}, "Alt text by a person"));
    facts.appendChild(el("span", {}, typeof record.confidence === "number" ? "Confidence " + record.confidence.toFixed(2) : (typeof record.score === "number" ? "Score " + record.score.toFixed(2) : "")));
    body.appendChild(facts);
    if (record.reasons && record.reasons.length) {
      var reasons = el("ul", {"class": "reasons", "aria-label": "Why it failed"});
      record.reasons.forEach(function (reason) { reasons.appendChild(el("li", {}, reason)); });
      body.appendChild(reasons);
    }

    body.appendChild(el("label", {"for": id + "-alt"}, "Alt text"));
    var text = el("textarea", {id: id + "-alt", rows: "2", maxlength: "1000"});
    text.value = altText(record);
    text.addEventListener("input", function () {
      var value = text.value.trim();
      correct(record, {alt_text: value === (record.alt_text || "") ? undefined : value});
      var img = figure.querySelector("img");
      if (img) img.setAttribute("alt", value || "(no alt text)");
    });
    body.appendChild(text);
    if (record.model_alt_text) body.appendChild(el("p", {"class": "facts"}, "The model wrote: " + record.model_alt_text));

    if (record.audio) {
      var audio = el("audio", {controls: "", preload: "none", src: record.audio, "aria-label": "Spoken description of " + record.image});
      body.appendChild(audio);
    } else {
      body.appendChild(el("p", {"class": "facts"}, "No audio."));
    }

    var decide = el("div", {"class": "decide", role: "group", "aria-label": "Decision for " + record.image});
    [["approved", "Approve"], ["rejected", "Reject"]].forEach(function (pair) {
      var button = el("button", {type: "button", "aria-pressed": String(fix.decision === pair[0]), "class": "decision"}, pair[1]);
      button.addEventListener("click", function () {
        correct(record, {decision: (corrections[key(record)] || {}).decision === pair[0] ? null : pair[0]});
        refreshCard(item, record, index, pair[0]);
      });
      decide.appendChild(button);
    });
    body.appendChild(decide);
    body.appendChild(el("label", {"for": id + "-note"}, "Note for the team"));
    var note = el("input", {type: "text", id: id + "-note", value: fix.note || "", maxlength: "1000"});
    note.addEventListener("input", function () { correct(record, {note: note.value.trim()}); });
    body.appendChild(note);
    body.appendChild(el("p", {"class": "facts"}, [record.model_id, record.voice].filter(Boolean).join(" · ")));
    return item;
  }

  function refreshCard(item, record, index, pressed) {
    var fresh = card(record, index);
    var fromKey = item.contains(document.activeElement) && document.activeElement.tagName === "ARTICLE";
    item.replaceWith(fresh);
    if (fromKey) fresh.firstChild.focus();  // a shortcut keeps the focus on the card, so j/k go on
    else fresh.querySelectorAll("button.decision")[pressed === "rejected" ? 1 : 0].focus();
  }

  function correct(record, change) {
    var k = key(record);
    var fix = Object.assign({}, corrections[k] || {}, change);
    Object.keys(fix).forEach(function (name) { if (fix[name] === undefined || fix[name] === null || fix[name] === "") delete fix[name]; });
    delete fix.time;
    if (Object.keys(fix).length) {
      fix.time = new Date().toISOString();
      corrections[k] = fix;
    } else {
      delete corrections[k];
    }
    save();
  }

  function shortcut(event, article, record) {
    if (event.target !== article || event.altKey || event.ctrlKey || event.metaKey) return;
    var item = article.parentNode;
    var act = {
      j: function () { step(item.nextElementSibling, 1); },
      k: function () { step(item.previousElementSibling, -1); },
      e: function () { article.querySelector("textarea").focus(); },
      p: function () { var a = article.querySelector("audio"); if (a) { if (a.paused) a.play(); else a.pause(); } },
      a: function () { article.querySelectorAll("button.decision")[0].click(); },
      r: function () { article.querySelectorAll("button.decision")[1].click(); }
    }[event.key];
    if (act) { event.preventDefault(); act(); }
  }

  function step(sibling, direction) {
    if (sibling) { sibling.firstChild.focus(); return; }
    var pages = Math.ceil(shown.length / PAGE);
    if (view.page + direction < 0 || view.page + direction >= pages) {
      $("status").textContent = direction > 0 ? "That was the last image." : "That was the first image.";
      return;
    }
    view.page += direction;
    render();
    var cards = document.querySelectorAll(".record article");
    cards[direction > 0 ? 0 : cards.length - 1].focus();
  }

  function correctionsJsonl() {
    var reviewer = $("reviewer").value.trim();
    var byKey = {};
    records.forEach(function (record) { byKey[key(record)] = record; });
    return Object.keys(corrections).sort().map(function (k) {
      var fix = corrections[k];
      var line = {version: FORMAT, image: byKey[k] ? byKey[k].image : k};
      if (byKey[k] && byKey[k].image_raw) line.image_raw = byKey[k].image_raw;
      if (typeof fix.alt_text === "string") line.alt_text = fix.alt_text;
      else if (fix.decision === "approved" && byKey[k] && byKey[k].alt_text) line.alt_text = byKey[k].alt_text;  // what was approved
      if (fix.decision) line.decision = fix.decision;
      if (fix.note) line.note = fix.note;
      if (reviewer) line.reviewer = reviewer;
      line.time = fix.time;
      return JSON.stringify(line) + "\n";
    }).join("");
  }

  function exportCorrections() {
    var text = correctionsJsonl();
    if (!text) { $("corrections-count").textContent = "Nothing to export yet: edit, approve or reject an image first."; return; }
    var link = el("a", {download: "corrections.jsonl", href: URL.createObjectURL(new Blob([text], {type: "application/x-ndjson"}))});
    document.body.appendChild(link);
    link.click();
    link.remove();
    $("corrections-count").textContent = "Exported " + Object.keys(corrections).length + " corrections to corrections.jsonl.";
  }

  function showErrors() {
    var table = $("errors");
    var body = table.querySelector("tbody");
    run.errors.forEach(function (error) {
      var row = el("tr");
      [error.image, error.stage, error.kind, error.reason].forEach(function (value) { row.appendChild(el("td", {}, value || "")); });
      body.appendChild(row);
    });
    table.hidden = !run.errors.length;
    var more = run.errors_total - run.errors.length;
    $("errors-summary").textContent = !run.errors_total ? "No errors." :
      run.errors_total + (run.errors_total === 1 ? " error" : " errors") + " in errors.jsonl" + (more > 0 ? "; the first " + run.errors.length + " are shown." : ".");
  }

  function summary() {
    var parts = Object.keys(run.counts).sort().map(function (status) { return run.counts[status] + " " + status.replace(/_/g, " "); });
    $("run-summary").textContent = records.length + " image records" + (parts.length ? " (" + parts.join(", ") + ")" : "") +
      (run.created ? "; page made " + run.created : "") + ".";
  }

  function start() {
    load();
    save();
    summary();
    showErrors();
    document.querySelectorAll("input[name=filter]").forEach(function (radio) {
      radio.addEventListener("change", function () { view.filter = radio.value; refresh(false); });
    });
    $("sort").addEventListener("change", function () { view.sort = $("sort").value; refresh(false); });
    var typing = null;  // the list (and its announcement) follows the search once typing pauses
    $("search").addEventListener("input", function () {
      clearTimeout(typing);
      typing = setTimeout(function () { view.query = $("search").value.trim().toLowerCase(); refresh(false); }, 250);
    });
    $("reviewer").addEventListener("change", function () {
      try { localStorage.setItem("altvoice-review:reviewer", $("reviewer").value.trim()); } catch (err) { /* in memory */ }
    });
    $("export").addEventListener("click", exportCorrections);
    if (!records.some(function (r) { return r.needs_review || failed(r); })) {
      view.filter = "all";
      document.querySelector("input[name=filter][value=all]").checked = true;
    }
    refresh(false);
    if (window.performance && performance.mark) performance.mark("altvoice-ready");
  }

  return {
    setRun: function (info) { run = Object.assign(run, info); },
    addRecords: function (chunk) { records = records.concat(chunk); },
    start: start,
    correctionsJsonl: correctionsJsonl,
    shownImages: function () { return shown.map(function (r) { return r.image; }); }
  };
})();
