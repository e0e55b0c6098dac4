// The report's only script (no framework, works from file://):
// - table.sortable: click a header to sort (again to reverse). A cell's data-sort attribute, when present, is
//   the sort key (raw numbers, epoch seconds); else its text. Empty keys always sort last.
// - table.filterable: a box under each header filters on that column (text: contains, case-insensitive;
//   number columns also take >50, <=8, =0, !=0); all boxes must match. A count says how many rows show.
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

  function sortBy(table, th) {
    var col = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    function key(row) {
      var raw = cellKey(row, col);
      if (raw === "") return null;
      if (!numeric) return raw.toLowerCase();
      var n = parseFloat(raw);
      return isNaN(n) ? null : n;
    }
    var body = table.tBodies[0];
    var rows = bodyRows(table).map(function (row, i) { return {row: row, key: key(row), i: i}; });
    rows.sort(function (a, b) {
      if (a.key === null || b.key === null) return a.key === b.key ? a.i - b.i : (a.key === null ? 1 : -1);
      var c = a.key < b.key ? -1 : (a.key > b.key ? 1 : 0);
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

  function applyFilters(table, inputs, counter) {
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
      var ok = tests.every(function (t) { return t === null || t(row); });
      row.hidden = !ok;
      if (ok) shown++;
    });
    counter.textContent = shown === rows.length ? rows.length + " rows" : shown + " of " + rows.length + " rows";
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
    applyFilters(table, inputs, counter);
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    headers(table).forEach(function (th) {
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
      show(fig.selected || 0);
    }
    if (fig.links) {
      div.on("plotly_click", function (e) {
        var point = e.points && e.points[0];
        var row = point && (Array.isArray(point.pointIndex) ? point.pointIndex[0] : point.pointIndex);
        var link = row !== undefined ? fig.links[row] : null;
        if (link) window.location.href = link;
      });
    }
  });
})();
