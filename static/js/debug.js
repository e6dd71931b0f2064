// Debug mode editors: the trace beside the editors shows one stage at a time; add, remove and
// reorder sub-queries, reorder documents, flag the passage selected in the original answer.
// Everything else on the page is a plain form (without JavaScript every stage is shown).
(function () {
  "use strict";

  function relabelSubqueries(list) {
    var rows = list.querySelectorAll(":scope > li");
    rows.forEach(function (row, i) {
      var n = i + 1;
      var input = row.querySelector("input[name$='subquery']");
      var label = row.querySelector("label");
      input.id = list.dataset.prefix + "subquery-" + n;
      label.htmlFor = input.id;
      label.textContent = "Sub-query " + n;
      row.querySelector("[data-move='up']").setAttribute("aria-label", "Move sub-query " + n + " up");
      row.querySelector("[data-move='down']").setAttribute("aria-label", "Move sub-query " + n + " down");
      row.querySelector("[data-remove]").setAttribute("aria-label", "Remove sub-query " + n);
    });
  }

  function afterChange(list) {
    if (list.classList.contains("subqueries")) relabelSubqueries(list);
  }

  function move(row, direction) {
    var list = row.parentElement;
    if (direction === "up" && row.previousElementSibling) {
      list.insertBefore(row, row.previousElementSibling);
    } else if (direction === "down" && row.nextElementSibling) {
      list.insertBefore(row.nextElementSibling, row);
    } else {
      return;
    }
    afterChange(list);
  }

  function newSubqueryRow(prefix) {
    var row = document.createElement("li");
    row.className = "subquery-row";
    row.innerHTML =
      '<label></label> <input size="60"> <input type="hidden" value="new"> ' +
      '<span class="row-tools"><button type="button" data-move="up">↑</button> ' +
      '<button type="button" data-move="down">↓</button> ' +
      '<button type="button" data-remove>Remove</button></span>';
    var inputs = row.querySelectorAll("input");
    inputs[0].name = prefix + "subquery";
    inputs[1].name = prefix + "origin";
    return row;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) return;
    var row = button.closest("li");
    if (button.dataset.move && row) {
      move(row, button.dataset.move);
      button.focus();
    } else if (button.hasAttribute("data-remove") && row) {
      var list = row.parentElement;
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      afterChange(list);
      if (next) next.querySelector("input:not([type=hidden])").focus();
    } else if (button.dataset.addSubquery !== undefined) {
      var prefix = button.dataset.addSubquery;
      var target = document.querySelector("ol.subqueries[data-prefix='" + prefix + "']");
      var added = newSubqueryRow(prefix);
      target.appendChild(added);
      relabelSubqueries(target);
      added.querySelector("input").focus();
    } else if (button.dataset.flagSelection !== undefined) {
      flagSelection(button.dataset.flagSelection);
    }
  });

  // Alt+Up / Alt+Down move the focused item; Alt+Delete removes a sub-query.
  document.addEventListener("keydown", function (event) {
    if (!event.altKey) return;
    var row = event.target.closest && event.target.closest("ol.subqueries > li, ol.documents > li");
    if (!row) return;
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      event.preventDefault();
      move(row, event.key === "ArrowUp" ? "up" : "down");
      event.target.focus();
    } else if (event.key === "Delete" && row.querySelector("[data-remove]")) {
      event.preventDefault();
      row.querySelector("[data-remove]").click();
    }
  });

  function flagSelection(prefix) {
    var original = document.getElementById(prefix + "original");
    var selection = window.getSelection();
    if (!original || !selection || selection.isCollapsed) return;
    if (!original.contains(selection.anchorNode) || !original.contains(selection.focusNode)) return;
    var text = selection.toString().trim();
    if (!text) return;
    var rows = document.querySelector(".flag-rows[data-prefix='" + prefix + "']");
    var empty = Array.prototype.find.call(rows.querySelectorAll(".flag-row"), function (r) {
      return !r.querySelector("textarea").value.trim();
    });
    if (!empty) {
      empty = rows.querySelector(".flag-row").cloneNode(true);
      empty.querySelector("textarea").value = "";
      empty.querySelector("input").value = "";
      rows.appendChild(empty);
    }
    empty.querySelector("textarea").value = text;
    empty.querySelector("input").focus();
  }

  // One stage at a time: the one picked in the trace (or named by the address, or the first
  // with an error, or the first). Hidden stages stay in the form and are saved with it.
  var stages = document.querySelectorAll("ol.stages > li.stage");
  var links = document.querySelectorAll("[data-stage-link]");

  function selectStage(id, scroll) {
    var chosen = document.getElementById(id);
    if (!chosen || stages.length < 2) return;
    stages.forEach(function (stage) {
      stage.hidden = stage !== chosen;
    });
    links.forEach(function (link) {
      if (link.dataset.stageLink === id) {
        link.setAttribute("aria-current", "step");
      } else {
        link.removeAttribute("aria-current");
      }
    });
    if (scroll && window.matchMedia("(max-width: 60rem)").matches) {
      chosen.scrollIntoView({ block: "start" });
    }
  }

  links.forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      selectStage(link.dataset.stageLink, true);
      history.replaceState(null, "", "#" + link.dataset.stageLink);
    });
  });

  var initial = document.querySelector("ol.stages > li.stage[data-has-errors]");
  var named = window.location.hash.slice(1);
  if (initial) {
    selectStage(initial.id, false);
  } else if (named && /^stage-\d+$/.test(named)) {
    selectStage(named, false);
  } else if (stages.length) {
    selectStage(stages[0].id, false);
  }
})();
