/* The deal board: drag and drop with SortableJS; each drop is one htmx POST that saves the move
   and answers with out-of-band column headers and totals. Dropping on the Won zone wins the deal;
   on the Lost zone it opens the lost-reason form (the card's own "Lost…" action). While a card is
   dragged near the left or right edge, the board scrolls sideways. */
(function () {
  "use strict";

  // How close to the board's edge (px) the pointer starts the sideways scroll, and its top speed
  // (px per frame). The browser's own drag auto-scroll only reacts within a few pixels of the
  // edge, which a person dragging a card rarely hits.
  const EDGE = 80;
  const MAX_SPEED = 20;

  let drag = null; // the card being dragged: {item, from, next}

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

  function dealUrl(board, name, dealId) {
    return board.dataset[name].replace("/0/", "/" + dealId + "/");
  }

  // --- sideways auto-scroll while dragging

  const scroll = { speed: 0, frame: null };

  function scroller() {
    return document.querySelector("#board .board");
  }

  function onPointer(e) {
    if (!drag || typeof e.clientX !== "number") return;
    const box = scroller();
    if (!box) return;
    const rect = box.getBoundingClientRect();
    const left = Math.max(rect.left, 0);
    const right = Math.min(rect.right, window.innerWidth);
    let speed = 0;
    if (e.clientY >= rect.top && e.clientY <= rect.bottom) {
      if (e.clientX > right - EDGE) speed = Math.min(1, (e.clientX - (right - EDGE)) / EDGE);
      else if (e.clientX < left + EDGE) speed = -Math.min(1, (left + EDGE - e.clientX) / EDGE);
    }
    scroll.speed = Math.round(speed * MAX_SPEED) || Math.sign(speed);
    box.dataset.autoscroll = String(scroll.speed); // the current speed, for tests and debugging
    if (scroll.speed && !scroll.frame) scroll.frame = requestAnimationFrame(step);
  }

  function step() {
    scroll.frame = null;
    const box = scroller();
    if (!drag || !scroll.speed || !box) return;
    box.scrollLeft += scroll.speed;
    scroll.frame = requestAnimationFrame(step);
  }

  function stopScroll() {
    scroll.speed = 0;
    if (scroll.frame) cancelAnimationFrame(scroll.frame);
    scroll.frame = null;
  }

  // Capture phase: SortableJS stops dragover from bubbling once it has handled it. Native drag
  // reports the pointer in dragover; SortableJS's fallback mode (touch) in pointermove.
  document.addEventListener("dragover", onPointer, true);
  document.addEventListener("pointermove", onPointer, true);

  // --- drops

  function putBack(item) {
    if (drag && drag.from) drag.from.insertBefore(item, drag.next && drag.next.parentNode === drag.from ? drag.next : null);
  }

  function dropOnZone(board, zone, item) {
    const id = item.dataset.dealId;
    if (zone === "won") {
      // The card waits (hidden) in the zone until the server has won the deal; a refusal
      // reloads the board (the handlers below).
      item.addEventListener("htmx:afterRequest", function (e) {
        if (e.detail.successful) item.remove();
      }, { once: true });
      htmx.ajax("POST", dealUrl(board, "wonUrl", id), {
        values: Object.assign(filters(), { from: "board" }), swap: "none", source: item,
      });
    } else {
      // Losing needs a reason: the card goes back where it was and the lost-reason form opens
      // in the modal; saving it removes the card, cancelling leaves the deal as it was.
      putBack(item);
      htmx.ajax("GET", dealUrl(board, "lostUrl", id) + "?from=board", { target: "#modal-body", swap: "innerHTML" });
    }
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
        onStart: function (evt) {
          drag = { item: evt.item, from: evt.from, next: evt.item.nextSibling };
          board.classList.add("is-dragging");
        },
        onEnd: function (evt) {
          stopScroll();
          board.classList.remove("is-dragging");
          const item = evt.item;
          const zone = evt.to.dataset.drop;
          if (zone) {
            dropOnZone(board, zone, item);
            drag = null;
            return;
          }
          drag = null;
          if (evt.from === evt.to && evt.oldIndex === evt.newIndex) return;
          const values = Object.assign(filters(), {
            from: "board",
            stage: evt.to.dataset.stageId,
            after: prevCardId(item.previousElementSibling),
            before: cardId(item.nextElementSibling),
          });
          htmx.ajax("POST", dealUrl(board, "moveUrl", item.dataset.dealId), { values: values, swap: "none", source: item });
        },
      });
    });
    root.querySelectorAll(".board-drop").forEach(function (zone) {
      if (zone.dataset.sortable) return;
      zone.dataset.sortable = "1";
      // A zone takes cards in and gives none back; a card dropped here is handled in onEnd.
      Sortable.create(zone, { group: { name: "deals", pull: false, put: true }, draggable: ".deal-card", sort: false });
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
      e.preventDefault();  // handled here: app.js's general notice stays away
      window.alert("You may not change this deal.");
      window.location.reload();
    }
  });
})();
