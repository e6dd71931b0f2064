// Selecting text inside the answer fills the critique's "Quoted span" field.
(function () {
  "use strict";
  document.addEventListener("mouseup", function () {
    var body = document.getElementById("answer-body");
    var quote = document.getElementById("critique-quote");
    var selection = window.getSelection();
    if (!body || !quote || !selection || selection.isCollapsed) return;
    if (!body.contains(selection.anchorNode) || !body.contains(selection.focusNode)) return;
    var text = selection.toString().trim();
    if (text) quote.value = text.slice(0, 5000);
  });
})();
