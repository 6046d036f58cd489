/* The deal board: drag and drop with SortableJS; each drop is one htmx POST that saves the move
   and answers with out-of-band column headers and totals. */
(function () {
  "use strict";

  function cardId(el) {
    while (el && !(el.classList && el.classList.contains("deal-card"))) el = el.nextElementSibling;
    return el ? el.dataset.dealId : "";
  }
  function prevCardId(el) {
    while (el && !(el.classList && el.classList.contains("deal-card"))) el = el.previousElementSibling;
    return el ? el.dataset.dealId : "";
  }

  function filters() {
    const form = document.getElementById("board-filters");
    const values = {};
    if (form) new FormData(form).forEach(function (v, k) { values[k] = v; });
    return values;
  }

  function init(root) {
    const board = document.getElementById("board");
    if (!board || !window.Sortable) return;
    root.querySelectorAll(".board-cards").forEach(function (list) {
      if (list.dataset.sortable) return;
      list.dataset.sortable = "1";
      Sortable.create(list, {
        group: "deals",
        draggable: ".deal-card",
        // Another rep's deal is read-only here (the server would refuse the move anyway).
        filter: ".locked",
        preventOnFilter: false,
        animation: 120,
        onEnd: function (evt) {
          if (evt.from === evt.to && evt.oldIndex === evt.newIndex) return;
          const item = evt.item;
          const values = Object.assign(filters(), {
            from: "board",
            stage: evt.to.dataset.stageId,
            after: prevCardId(item.previousElementSibling),
            before: cardId(item.nextElementSibling),
          });
          const url = board.dataset.moveUrl.replace("/0/", "/" + item.dataset.dealId + "/");
          htmx.ajax("POST", url, { values: values, swap: "none", source: item });
        },
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function () { init(document); });
  // A refused move (a deal someone else owns): say why and put the board back as the server has it.
  document.addEventListener("board-refused", function (e) {
    window.alert(e.detail.message);
    window.location.reload();
  });
  document.addEventListener("htmx:responseError", function (e) {
    if (e.detail.xhr.status === 403 && document.getElementById("board")) {
      window.alert("You may not change this deal.");
      window.location.reload();
    }
  });
})();
