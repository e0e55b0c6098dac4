// The report's only script (no framework, works from file://):
// - table.sortable: click a header to sort (again to reverse). A cell's data-sort attribute, when present, is
//   the sort key (raw numbers, epoch seconds); else its text. Empty keys always sort last.
// - table.filterable: a box under each header filters on that column (text: contains, case-insensitive;
//   number columns also take >50, <=8, =0, !=0); all boxes must match. A count says how many rows show.
// - .group-filter[data-table=ID]: buttons that keep the rows of table ID whose data-groups (a JSON list) holds
//   the button's data-group ("" = every row); combined with the filter boxes.
// - .data-age (base.html): shown, with the age, once the latest run is older than stale_minutes by this
//   browser's clock (collection stopped, or the page was left open).
// - #refresh (in the header): reload the page every 1, 5 or 15 min; the choice is kept in localStorage (or,
//   where that throws, as on some browsers' file:// pages, in sessionStorage, or not at all). Before such a
//   reload the page keeps its scroll position, filters, group, sort and each chart's range in sessionStorage
//   and takes them back.
//   window.fleetscopeRefreshUnitMs (default 60000) is the length of a "minute" there, for tests.
// - figures: drawn with Plotly from the page's JSON (<script id="page-data">); a figure with ranges gets
//   its buttons (.range-switch) wired to swap the range in.
(function () {
  "use strict";

  function cellKey(row, col) {
    var cell = row.cells[col];
    if (!cell) return "";
    return (cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent).trim();
  }

  function headers(table) { return Array.prototype.slice.call(table.tHead.rows[0].cells); }
  function bodyRows(table) { return Array.prototype.slice.call(table.tBodies[0].rows); }

  // text sorts as people read it: gpu9 before gpu10 (numeric), any case (base)
  var NATURAL = typeof Intl !== "undefined" && Intl.Collator ?
    new Intl.Collator(undefined, {numeric: true, sensitivity: "base"}) : null;

  function sortBy(table, th) {
    var col = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    function key(row) {
      var raw = cellKey(row, col);
      if (raw === "") return null;
      if (!numeric) return NATURAL ? raw : raw.toLowerCase();
      var n = parseFloat(raw);
      return isNaN(n) ? null : n;
    }
    var body = table.tBodies[0];
    var rows = bodyRows(table).map(function (row, i) { return {row: row, key: key(row), i: i}; });
    rows.sort(function (a, b) {
      if (a.key === null || b.key === null) return a.key === b.key ? a.i - b.i : (a.key === null ? 1 : -1);
      var c = !numeric && NATURAL ? NATURAL.compare(a.key, b.key) : (a.key < b.key ? -1 : (a.key > b.key ? 1 : 0));
      return (ascending ? c : -c) || a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    headers(table).forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  var COMPARE = /^\s*(<=|>=|!=|<|>|=)\s*(-?[0-9.]+)\s*$/;

  function matcher(text, numeric) {
    text = text.trim().toLowerCase();
    if (text === "") return null;
    var m = numeric && COMPARE.exec(text);
    if (m) {
      var v = parseFloat(m[2]);
      return function (raw) {
        var n = parseFloat(raw);
        if (isNaN(n)) return false;
        switch (m[1]) {
          case "<": return n < v;
          case "<=": return n <= v;
          case ">": return n > v;
          case ">=": return n >= v;
          case "=": return n === v;
          default: return n !== v;
        }
      };
    }
    return null;
  }

  function rowGroups(row) {
    try {
      var groups = JSON.parse(row.getAttribute("data-groups") || "[]");
      return Array.isArray(groups) ? groups : [];
    } catch (e) {
      return [];
    }
  }

  function applyFilters(table, inputs, counter) {
    var group = table.getAttribute("data-group") || "";
    var tests = inputs.map(function (input, col) {
      var text = input.value.trim().toLowerCase();
      if (text === "") return null;
      var compare = matcher(text, input.getAttribute("data-type") === "num");
      return function (row) {
        if (compare) return compare(cellKey(row, col));
        var cell = row.cells[col];
        return cell ? cell.textContent.toLowerCase().indexOf(text) >= 0 : false;
      };
    });
    var rows = bodyRows(table), shown = 0;
    rows.forEach(function (row) {
      var ok = (group === "" || rowGroups(row).indexOf(group) >= 0) &&
        tests.every(function (t) { return t === null || t(row); });
      row.hidden = !ok;
      if (ok) shown++;
    });
    var noun = rows.length === 1 ? " row" : " rows";
    counter.textContent = shown === rows.length ? rows.length + noun : shown + " of " + rows.length + noun;
  }

  function addFilters(table) {
    var row = table.tHead.insertRow(-1);
    row.className = "filters";
    var counter = document.createElement("p");
    counter.className = "note filter-count";
    counter.setAttribute("aria-live", "polite");
    var inputs = headers(table).map(function (th) {
      var cell = document.createElement("th");
      var input = document.createElement("input");
      // data-filter="text" on a header: sort by the number (data-sort), filter by the text shown ("5 min ago")
      var type = th.getAttribute("data-filter") || th.getAttribute("data-type") || "text";
      input.type = "search";
      input.placeholder = type === "num" ? "e.g. >50" : "filter";
      input.setAttribute("aria-label", "filter " + th.textContent.trim());
      input.setAttribute("data-type", type);
      cell.appendChild(input);
      row.appendChild(cell);
      return input;
    });
    inputs.forEach(function (input) {
      input.addEventListener("input", function () { applyFilters(table, inputs, counter); });
    });
    var scroller = table.parentNode.classList.contains("scroll") ? table.parentNode : table;
    scroller.parentNode.insertBefore(counter, scroller.nextSibling);
    table.filterInputs = inputs;
    table.refilter = function () { applyFilters(table, inputs, counter); };
    table.refilter();
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    var first = table.tBodies[0].rows[0];
    headers(table).forEach(function (th, col) {
      // a column of numbers (right-aligned cells) gets its header over them, not at the column's left edge
      var cell = first && first.cells.length === headers(table).length ? first.cells[col] : null;
      if (cell && cell.classList.contains("num")) th.classList.add("num");
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th); }
      });
    });
  });
  document.querySelectorAll("table.filterable").forEach(function (table) {
    if (table.tHead && table.tBodies.length) addFilters(table);
  });

  // -- inventory groups -----------------------------------------------------------------------------------
  function setGroup(table, group) {
    table.setAttribute("data-group", group);
    document.querySelectorAll('.group-filter[data-table="' + table.id + '"] button').forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-group") === group));
    });
    if (table.refilter) table.refilter();
  }

  document.querySelectorAll(".group-filter").forEach(function (box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    if (!table || !table.tBodies.length) return;
    box.hidden = false;
    box.querySelectorAll("button[data-group]").forEach(function (b) {
      b.addEventListener("click", function () { setGroup(table, b.getAttribute("data-group")); });
    });
  });

  // -- data age -------------------------------------------------------------------------------------------
  // The banner for stopped collection (base.html): shown when the latest run is older than stale_minutes by
  // this browser's clock too, so a page left open (or a site nothing rebuilds) says so; as site.py's duration.
  function duration(s) {
    if (s < 90) return Math.round(s) + " s";
    if (s < 90 * 60) return Math.round(s / 60) + " min";
    if (s < 36 * 3600) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }
  var dataAge = document.querySelector(".data-age[data-latest]");
  function showDataAge() {
    var age = Date.now() / 1000 - parseFloat(dataAge.getAttribute("data-latest"));
    if (age > parseFloat(dataAge.getAttribute("data-stale-s"))) {
      dataAge.querySelector(".age").textContent = duration(age);
      dataAge.hidden = false;
    }
  }
  if (dataAge) {
    showDataAge();
    setInterval(showDataAge, 60000);
  }

  // -- auto-refresh ---------------------------------------------------------------------------------------
  function usable(kind) {
    try {  // file:// pages may have no storage, or one that throws on use
      var store = window[kind], probe = "fleetscope.probe";
      store.setItem(probe, probe);
      store.removeItem(probe);
      return store;
    } catch (e) {
      return null;
    }
  }
  function readKey(store, key) {
    try { return store ? store.getItem(key) : null; } catch (e) { return null; }
  }
  function writeKey(store, key, value) {
    try {
      if (!store) return false;
      if (value === null) store.removeItem(key); else store.setItem(key, value);
      return true;
    } catch (e) {
      return false;
    }
  }

  var REFRESH_KEY = "fleetscope.refresh";
  var STATE_KEY = "fleetscope.state:" + window.location.pathname;
  var local = usable("localStorage"), session = usable("sessionStorage");
  var sortable = Array.prototype.slice.call(document.querySelectorAll("table.sortable"));

  function saveState() {
    var tables = sortable.map(function (table) {
      var sorted = headers(table).filter(function (th) { return th.hasAttribute("aria-sort"); })[0];
      return {
        sort: sorted ? [sorted.cellIndex, sorted.getAttribute("aria-sort")] : null,
        filters: table.filterInputs ? table.filterInputs.map(function (input) { return input.value; }) : null,
        group: table.getAttribute("data-group") || ""
      };
    });
    var ranges = {};  // each chart's range (24 h, 7 d, ...), by the figure's id
    Array.prototype.forEach.call(document.querySelectorAll("[data-range][id]"), function (div) {
      ranges[div.id] = div.getAttribute("data-range");
    });
    var boxes = boxList().map(function (box) { return [box.scrollLeft, box.scrollTop]; });
    writeKey(session, STATE_KEY, JSON.stringify({x: window.scrollX, y: window.scrollY, tables: tables,
                                                 ranges: ranges, boxes: boxes}));
  }
  // the boxes that scroll on their own (a long table, a tall heat map), in page order
  function boxList() { return Array.prototype.slice.call(document.querySelectorAll(".scroll, .figure-box, .wide")); }
  var savedRanges = {};  // restoreState's, for the figures drawn below

  function restoreState() {
    var text = readKey(session, STATE_KEY);
    if (text === null) return;
    writeKey(session, STATE_KEY, null);
    var state;
    try { state = JSON.parse(text); } catch (e) { return; }
    savedRanges = state.ranges || {};
    (state.tables || []).forEach(function (saved, i) {
      var table = sortable[i];
      if (!table || !saved) return;
      if (saved.filters && table.filterInputs) {
        table.filterInputs.forEach(function (input, col) { input.value = saved.filters[col] || ""; });
      }
      if (saved.group) table.setAttribute("data-group", saved.group);
      if (table.refilter) setGroup(table, table.getAttribute("data-group") || "");
      var th = saved.sort && headers(table)[saved.sort[0]];
      if (th) {
        sortBy(table, th);  // ascending
        if (saved.sort[1] === "descending") sortBy(table, th);
      }
    });
    window.addEventListener("load", function () {
      window.scrollTo(state.x || 0, state.y || 0);
      var boxes = state.boxes || [];
      boxList().forEach(function (box, i) {  // a box's figure is drawn by now (Plotly draws before load ends)
        if (boxes[i]) { box.scrollLeft = boxes[i][0]; box.scrollTop = boxes[i][1]; }
      });
    });
  }

  var refresh = document.getElementById("refresh");
  var refreshTimer = null;

  function scheduleRefresh(minutes) {
    var root = document.documentElement;
    if (refreshTimer !== null) clearTimeout(refreshTimer);
    refreshTimer = null;
    root.removeAttribute("data-refresh-at");
    if (!(minutes > 0)) return;
    var delay = minutes * (window.fleetscopeRefreshUnitMs || 60000);
    root.setAttribute("data-refresh-at", String(Date.now() + delay));  // when, for people and tests
    refreshTimer = setTimeout(function () {
      saveState();
      // Chromium commits storage writes asynchronously: a reload in the same instant can lose them.
      setTimeout(function () { window.location.reload(); }, 250);
    }, delay);
  }

  restoreState();
  if (refresh) {
    refresh.parentNode.hidden = false;
    var stored = readKey(local, REFRESH_KEY);
    if (stored === null) stored = readKey(session, REFRESH_KEY);
    Array.prototype.forEach.call(refresh.options, function (option) {
      if (option.value === stored) refresh.value = stored;
    });
    refresh.addEventListener("change", function () {
      if (!writeKey(local, REFRESH_KEY, refresh.value)) writeKey(session, REFRESH_KEY, refresh.value);
      scheduleRefresh(parseFloat(refresh.value));
    });
    scheduleRefresh(parseFloat(refresh.value));
  }

  // -- figures --------------------------------------------------------------------------------------------
  var source = document.getElementById("page-data");
  if (!source || !window.Plotly) return;
  var page = JSON.parse(source.textContent);
  var config = {displaylogo: false, responsive: true};

  function withX(data) {
    data.forEach(function (trace) {
      if (trace.xs !== undefined) {
        trace.x = page.x[trace.xs];
        delete trace.xs;
      }
    });
    return data;
  }

  // An axis on top leaves its labels room under the title (figures.py), guessed for a laptop's width; on a
  // narrower screen Plotly may turn them upright, and they would print over the title: the margin grows.
  function clearTitle(div) {
    var layout = div.layout, title = div.querySelector(".gtitle");
    if (!title || !layout || !layout.xaxis || layout.xaxis.side !== "top") return;
    var t = title.getBoundingClientRect(), top = Infinity;
    Array.prototype.forEach.call(div.querySelectorAll(".xtick text, .g-xtitle text"), function (label) {
      var b = label.getBoundingClientRect();
      if (b.width > 0 && b.right > t.left && b.left < t.right) top = Math.min(top, b.top);
    });
    var overlap = Math.ceil(t.bottom + 4 - top);
    div.titleRoom = div.titleRoom || 0;
    if (overlap > 0 && div.titleRoom < 600) {  // bounded: never a loop of relayouts
      div.titleRoom += overlap;
      Plotly.relayout(div, {"margin.t": layout.margin.t + overlap});
    }
  }

  page.figures.forEach(function (fig) {
    var div = document.getElementById(fig.id);
    if (!div) return;
    if (!fig.ranges) {
      Plotly.newPlot(div, withX(fig.data), fig.layout, config);
    } else {
      var buttons = document.querySelectorAll('.range-switch[data-figure="' + fig.id + '"] button');
      var show = function (i) {
        var r = fig.ranges[i];
        Plotly.react(div, withX(r.data), r.layout, config);
        div.setAttribute("data-range", r.label);
        Array.prototype.forEach.call(buttons, function (b) {
          b.setAttribute("aria-pressed", String(b.getAttribute("data-range") === String(i)));
        });
      };
      Array.prototype.forEach.call(buttons, function (b) {
        b.addEventListener("click", function () { show(parseInt(b.getAttribute("data-range"), 10)); });
      });
      var label = savedRanges[fig.id], start = fig.selected || 0;
      fig.ranges.forEach(function (r, i) { if (r.label === label) start = i; });
      show(start);  // the range shown before an auto-refresh, else the page's default
    }
    if (fig.links) {
      div.on("plotly_click", function (e) {
        var point = e.points && e.points[0];
        var at = point && (Array.isArray(point.pointIndex) ? point.pointIndex : [point.pointIndex]);
        var link = at && at[0] !== undefined ? fig.links[at[0]] : null;
        if (Array.isArray(link)) {  // a row of several hosts: a link per host, fig.span columns each, the last free
          link = at[1] % fig.span === fig.span - 1 ? null : link[Math.floor(at[1] / fig.span)];
        }
        if (link) window.location.href = link;
      });
    }
    div.on("plotly_afterplot", function () { clearTitle(div); });
    clearTitle(div);
  });
})();
